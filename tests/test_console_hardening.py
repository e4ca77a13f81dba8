"""The supervisor console against hostile users: a login flood does not stall other requests, one
address gets a few login attempts a minute, unknown and locked users get the same answer, query
parameters out of range are refused (never a 500), the store's files are private, weak passwords are
refused, and `ivr console` stops cleanly on SIGTERM and Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from ivr.console import auth
from ivr.console.app import SESSION_COOKIE, create_app
from ivr.console.auth import MAX_FAILED_LOGINS, Users
from ivr.store import Store, StoreConfig
from tests.console_client import PASSWORD, csrf_of, login
from tests.test_store_support import add_call, console_store, stereo_wav

REPO = Path(__file__).resolve().parents[1]
CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture
def store(tmp_path):
    with console_store(tmp_path, PASSWORD) as s:
        add_call(s, "call1", ["I want to check my balance"], recording=stereo_wav(tmp_path / "call1.wav"))
        add_call(s, "call2", ["thanks that is all"])
        yield s


@pytest.fixture
def app(store):
    return create_app(store)


# ---- 1. password hashing off the event loop, a bounded number at once ---------------------------------

def test_a_login_flood_hashes_off_the_event_loop_and_health_checks_still_answer(app, monkeypatch):
    """Logins held inside a blocked password hash: /healthz still answers, no hash ran on the event
    loop's thread, and no more hashes ran at once than the console allows."""
    logins = 8  # fewer than one address may try in a minute
    release = threading.Event()
    lock = threading.Lock()
    entered: list[int] = []
    running: list[int] = []
    most_at_once = [0]
    loop_threads: set[int] = set()

    def blocking_verify(password: str, stored: str) -> bool:
        me = threading.get_ident()
        with lock:
            entered.append(me)
            running.append(me)
            most_at_once[0] = max(most_at_once[0], len(running))
        try:
            if me not in loop_threads:  # blocking the event loop's own thread would hang the test
                release.wait(30)
            return False
        finally:
            with lock:
                running.remove(me)

    monkeypatch.setattr(auth, "verify_password", blocking_verify)

    async def flood() -> tuple[httpx.Response, int, list[httpx.Response]]:
        loop_threads.add(threading.get_ident())
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://console") as client:
            csrf = CSRF_FIELD.search((await client.get("/login")).text).group(1)
            form = {"username": "sam", "password": "wrong password", "csrf": csrf, "next": "/calls"}
            tasks = [asyncio.create_task(client.post("/login", data=form)) for _ in range(logins)]
            try:
                for _ in range(2000):  # until the first hashes have started (or run, on the loop)
                    if entered:
                        break
                    await asyncio.sleep(0.01)
                health = await asyncio.wait_for(client.get("/healthz"), 30)
                finished_before_health = sum(t.done() for t in tasks)
            finally:
                release.set()
            answers = await asyncio.gather(*tasks)
        return health, finished_before_health, answers

    health, finished_before_health, answers = asyncio.run(flood())
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    assert not set(entered) & loop_threads, "a password hash ran on the event loop"
    assert finished_before_health == 0, "the health check waited for the logins"
    assert len(entered) == logins and {a.status_code for a in answers} == {401}
    assert 1 <= most_at_once[0] <= app.state.gate.workers


def test_the_hash_gate_refuses_work_past_its_queue():
    from ivr.console.guards import GateFull, HashGate

    gate = HashGate(workers=1, waiting=2)
    release = threading.Event()

    async def flood() -> list[object]:
        jobs = [asyncio.ensure_future(gate.run(release.wait, 30)) for _ in range(3)]
        await asyncio.sleep(0)
        with pytest.raises(GateFull):
            await gate.run(release.wait, 30)
        release.set()
        return list(await asyncio.gather(*jobs))

    try:
        assert asyncio.run(flood()) == [True, True, True]
        for _ in range(500):
            if gate.pending == 0:
                break
            time.sleep(0.01)
        assert gate.pending == 0
    finally:
        release.set()
        gate.close()


# ---- 2. a throttle per client address -----------------------------------------------------------------

def test_login_attempts_from_one_address_are_throttled(app):
    statuses = []
    for _ in range(50):
        _, response = login(app, "nobody", "wrong password")
        statuses.append(response.status_code)
        if response.status_code == 429:
            break
    assert statuses[-1] == 429, "never throttled"
    assert statuses[:-1] == [401] * 10  # ten attempts a minute
    assert 1 <= int(response.headers["retry-after"]) <= 60
    assert "Too many login attempts" in response.text and 'id="login-form"' in response.text
    _, right = login(app, "sam")  # the right password waits too
    assert right.status_code == 429 and SESSION_COOKIE not in right.cookies
    elsewhere = TestClient(app, follow_redirects=False, client=("203.0.113.7", 40000))
    csrf = CSRF_FIELD.search(elsewhere.get("/login").text).group(1)
    ok = elsewhere.post("/login", data={"username": "sam", "password": PASSWORD, "csrf": csrf})
    assert ok.status_code == 303  # another address is not affected


def test_the_throttle_window_slides_and_its_memory_is_bounded():
    from ivr.console.guards import LoginThrottle, client_key

    now = [1000.0]
    throttle = LoginThrottle(attempts=3, window_s=60, max_clients=100, clock=lambda: now[0])
    assert [throttle.hit("a") for _ in range(3)] == [0, 0, 0]
    assert throttle.hit("a") == 60
    now[0] += 59.5
    assert throttle.hit("a") == 1
    now[0] += 1
    assert throttle.hit("a") == 0  # the oldest attempts left the window
    for i in range(5000):
        throttle.hit(f"10.0.{i // 256}.{i % 256}")
    assert len(throttle) == 100
    assert client_key("2001:db8::1") == client_key("2001:db8::ffff") != client_key("2001:db8:0:1::1")
    assert client_key("::ffff:192.0.2.1") == "192.0.2.1" and client_key(None) == "?"


# ---- 3. no user enumeration -----------------------------------------------------------------------------

def test_unknown_and_locked_users_get_the_same_answer_for_the_same_work(app, monkeypatch):
    hashed: list[str] = []
    real = auth.verify_password

    def counting_verify(password: str, stored: str) -> bool:
        hashed.append(password)
        return real(password, stored)

    monkeypatch.setattr(auth, "verify_password", counting_verify)
    for _ in range(MAX_FAILED_LOGINS):
        login(app, "sam", "wrong password")
    assert [u["locked"] for u in Users(app.state.store).list() if u["name"] == "sam"] == [True]
    hashed.clear()
    answers = {case: login(app, name, password)[1] for case, name, password in (
        ("locked", "sam", "wrong password"), ("locked, right password", "sam", PASSWORD),
        ("unknown", "nobody", "wrong password"), ("wrong password", "ada", "wrong password"))}

    def shown(response: httpx.Response) -> tuple[int, str]:
        return response.status_code, CSRF_FIELD.sub("", response.text)

    assert len({shown(r) for r in answers.values()}) == 1, {k: r.status_code for k, r in answers.items()}
    assert answers["unknown"].status_code == 401
    assert all(SESSION_COOKIE not in r.cookies for r in answers.values())
    assert len(hashed) == len(answers)  # one password hash each, whatever the case


def test_logins_checked_at_once_all_count_towards_the_lockout(app):
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: app.state.users.authenticate("sam", "wrong password"),
                                range(MAX_FAILED_LOGINS)))
    assert sorted(why for _, why in results) == ["invalid"] * (MAX_FAILED_LOGINS - 1) + ["locked"]
    assert app.state.users.authenticate("sam", PASSWORD) == (None, "locked")


# ---- 4. query parameters bounded -----------------------------------------------------------------------

BAD_NUMBERS = [str(2**63), str(2**64), "9" * 30, "9" * 5000, "-1", "-" + "9" * 30, "1e3", "abc", "0x10", "+-5",
               "\u00b2"]


@pytest.mark.parametrize("path", ["/calls", "/api/calls"])
def test_query_parameters_out_of_range_are_refused_not_a_server_error(app, path):
    client = TestClient(app, follow_redirects=False, raise_server_exceptions=False)
    csrf = CSRF_FIELD.search(client.get("/login").text).group(1)
    assert client.post("/login", data={"username": "sam", "password": PASSWORD, "csrf": csrf}).status_code == 303
    for name in ("offset", "limit"):
        for value in BAD_NUMBERS:
            response = client.get(path, params={name: value})
            assert response.status_code in (400, 422), (name, value[:40], response.status_code)
            assert name in response.text
    for name, value in (("date_to", "9999-12-31"), ("date_from", "0001-01-01"), ("q", "word " * 1000)):
        response = client.get(path, params={name: value})
        assert response.status_code in (400, 422), (name, response.status_code)
    assert client.get(path, params={"offset": "1000000"}).status_code == 200
    assert client.get(path, params={"date_to": "2999-12-31"}).status_code == 200
    if path == "/api/calls":
        assert len(client.get(path, params={"limit": "1"}).json()["calls"]) == 1
        assert len(client.get(path, params={"limit": "1000", "offset": "1"}).json()["calls"]) == 1
    huge_range = client.get("/api/calls/call1/audio", headers={"Range": "bytes=" + "9" * 5000 + "-"})
    assert huge_range.status_code in (200, 416)


# ---- 5. private files -------------------------------------------------------------------------------------

def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_store_makes_its_files_private_whatever_the_umask(tmp_path):
    config = StoreConfig(db_url=f"sqlite:///{tmp_path}/calls/db/ivr.db", data_dir=tmp_path / "calls" / "store",
                         recording_key=None, key_file=tmp_path / "config" / "ivr" / "recording.key")
    old_umask = os.umask(0)
    try:
        store = Store(config)
        add_call(store, "c1", ["hello"], recording=stereo_wav(tmp_path / "c1.wav"))
        Users(store).add("ada", "admin", PASSWORD)
        secrets_files = sorted((tmp_path / "calls" / "db").glob("ivr.db*"))
        recordings = sorted((tmp_path / "calls" / "store").rglob("*.enc"))
        modes = {p.name: _mode(p) for p in [*secrets_files, *recordings, config.key_file]}
        store.close()
    finally:
        os.umask(old_umask)
    assert len(secrets_files) >= 1 and len(recordings) == 1 and config.key_file.exists()
    assert all(mode & 0o077 == 0 for mode in modes.values()), {k: oct(v) for k, v in modes.items()}
    for directory in (tmp_path / "calls", tmp_path / "calls" / "db", tmp_path / "calls" / "store",
                      recordings[0].parent, config.key_file.parent):
        assert _mode(directory) & 0o022 == 0, (directory, oct(_mode(directory)))


def test_files_left_readable_by_others_are_made_private_when_opened(tmp_path):
    config = StoreConfig(db_url=f"sqlite:///{tmp_path}/ivr.db", data_dir=tmp_path / "store", recording_key=None,
                         key_file=tmp_path / "recording.key")
    Store(config).close()
    config.key()
    for path in (tmp_path / "ivr.db", config.key_file):
        os.chmod(path, 0o644)
    store = Store(config)
    try:
        key = store.config.key()
    finally:
        store.close()
    assert len(key) == 32
    assert _mode(tmp_path / "ivr.db") == 0o600 and _mode(config.key_file) == 0o600


# ---- 6. password policy ---------------------------------------------------------------------------------

def test_the_policy_refuses_common_passwords_and_the_user_name():
    from ivr.console.policy import password_problem

    for weak in ("password123", "qwertyuiop", "1234567890", "P@ssw0rd2024!", "iloveyou!!!!", "Welcome123456",
                 "letmein-letmein", "aaaaaaaaaaaa", "abababababab", "Dragon.1987!"):
        assert password_problem(weak, "tia") is not None, weak
    assert "user name" in (password_problem("tiamaria2024!", "TiaMaria") or "")
    assert "at least 10" in (password_problem("short", "x") or "")
    for fine in (PASSWORD, "a long password", "violet kettle on the stairs", "Tr0mbone-Sunrise-42"):
        assert password_problem(fine, "tia") is None, fine


def test_the_admin_form_refuses_weak_passwords_with_a_clear_message(app):
    client, _ = login(app, "ada")
    csrf = csrf_of(client)

    def create(name: str, password: str) -> str:
        r = client.post("/admin/users", data={"csrf": csrf, "username": name, "role": "supervisor",
                                              "password": password})
        return client.get(r.headers["location"]).text

    assert "common password" in create("tia", "Password2024!")
    assert "must not contain the user name" in create("tiamaria", "tiamaria-rules")
    assert [u["name"] for u in Users(app.state.store).list()] == ["ada", "sam"]
    reset = client.post("/admin/users/sam/reset", data={"csrf": csrf, "password": "qwerty123456"})
    assert "common password" in client.get(reset.headers["location"]).text
    assert "created tia" in create("tia", "violet kettle on the stairs")


def test_the_cli_refuses_weak_passwords(tmp_path, monkeypatch, capsys):
    from ivr.cli import main

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    store_args = ["--db", f"sqlite:///{tmp_path}/u.db", "--data-dir", str(tmp_path / "d")]
    monkeypatch.setenv("IVR_NEW_PASSWORD", "password12345")
    assert main(["console", "adduser", "boss", *store_args]) == 1
    assert "common password" in capsys.readouterr().err
    monkeypatch.setenv("IVR_NEW_PASSWORD", "bossanova-2024")
    assert main(["console", "adduser", "bossanova", *store_args]) == 1
    assert "user name" in capsys.readouterr().err
    monkeypatch.setenv("IVR_NEW_PASSWORD", "violet kettle on the stairs")
    assert main(["console", "adduser", "boss", *store_args]) == 0
    monkeypatch.setenv("IVR_NEW_PASSWORD", "Boss-of-the-house")
    assert main(["console", "passwd", "boss", *store_args]) == 1
    assert "user name" in capsys.readouterr().err


# ---- 7. clean stop ----------------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_ivr_console_stops_cleanly_on_a_signal(tmp_path, stop):
    port, db = _free_port(), tmp_path / "ivr.db"
    env = {**os.environ, "IVR_RECORDING_KEY": "00" * 32, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "ivr", "console", "--port", str(port), "--db", f"sqlite:///{db}",
                             "--data-dir", str(tmp_path / "d")], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the console did not answer /healthz"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                time.sleep(0.2)
        assert db.with_name("ivr.db-wal").exists()  # the store is open
        proc.send_signal(stop)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, (proc.returncode, err)
    assert "Traceback" not in err
    assert not db.with_name("ivr.db-wal").exists()  # closed: SQLite folds the log back into the database
