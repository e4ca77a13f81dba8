"""The supervisor console over HTTP (FastAPI TestClient): access control on every route, CSRF,
lockout, inert display of hostile transcripts, the call page, audio, export, users, live view."""

from __future__ import annotations

import io
import re
import zipfile
from urllib.parse import quote

import pytest
from fastapi.routing import APIRoute
from prometheus_client.parser import text_string_to_metric_families

from ivr.console.app import PUBLIC_PATHS, SESSION_COOKIE, create_app
from ivr.console.auth import MAX_FAILED_LOGINS, Users
from tests.console_client import PASSWORD, client_for, csrf_of, login
from tests.test_store_support import add_call, console_store, stereo_wav

XSS = "<script>alert('x')</script> <img src=x onerror=alert(1)>"
SQL = "'; DROP TABLE calls; --"


@pytest.fixture
def store(tmp_path):
    with console_store(tmp_path, PASSWORD) as s:
        add_call(s, "call1", ["I want to check my balance", "thanks that is all"], caller="+15550001234",
                 recording=stereo_wav(tmp_path / "call1.wav"), emotions=[{"neutral": 0.8, "angry": 0.2},
                                                                         {"neutral": 0.3, "angry": 0.7}],
                 intents=["balance", "goodbye"])
        add_call(s, "hostile", [XSS, SQL], outcome="transferred", reason="<b>bold</b> reason")
        add_call(s, "active", ["hello is anyone there"], ended=False)
        yield s


@pytest.fixture
def app(store):
    return create_app(store)


def concrete_routes(app):
    """(method, path) for every route of the app, path parameters filled with real values."""
    values = {"call_id": "call1", "name": "sam", "search_id": "1", "card_id": "1"}
    out = []
    for route in app.routes:
        if not isinstance(route, APIRoute):
            continue
        path = re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], route.path)
        for method in sorted(route.methods - {"HEAD"}):
            out.append((method, path))
    assert len(out) >= 18
    return out


def is_public(path):
    return any(path == p or path.startswith(p + "/") for p in PUBLIC_PATHS)


def test_logged_out_gets_401_everywhere(app):
    """The API and every POST answer 401; a page asked for with GET redirects to the login page, which
    comes back to it after logging in."""
    client = client_for(app)
    checked = 0
    for method, path in concrete_routes(app):
        if is_public(path):
            continue
        response = client.request(method, path, data={"csrf": "x"})
        if method == "GET" and not path.startswith("/api/"):
            assert response.status_code == 303, (method, path, response.status_code)
            assert response.headers["location"] == "/login?next=" + quote(path)
        else:
            assert response.status_code == 401, (method, path, response.status_code)
            if not path.startswith("/api/"):
                assert 'href="/login?next=' in response.text
        checked += 1
    assert checked >= 15
    # a forged or expired session cookie is the same as none
    client.cookies.set(SESSION_COOKIE, "forged")
    assert client.get("/calls").status_code == 303
    assert client.get("/api/calls/call1/audio").status_code == 401


def test_supervisor_gets_403_on_admin_routes(app):
    client, _ = login(app, "sam")
    csrf = csrf_of(client)
    admin_routes = [(m, p) for m, p in concrete_routes(app) if p.startswith("/admin")]
    assert len(admin_routes) >= 5
    for method, path in admin_routes:
        response = client.request(method, path, data={"csrf": csrf, "username": "eve", "role": "admin",
                                                      "password": "x" * 12})
        assert response.status_code == 403, (method, path)
    assert [u["name"] for u in Users(app.state.store).list()] == ["ada", "sam"]
    # and every other route is open to the supervisor
    for method, path in concrete_routes(app):
        if method == "GET" and not path.startswith("/admin") and path != "/api/live":
            assert client.get(path).status_code in (200, 303), path


def test_post_without_csrf_is_refused(app):
    client, _ = login(app, "ada")
    for method, path in concrete_routes(app):
        if method != "POST" or is_public(path):  # /login has its own token (below); the chat has no login
            continue
        for data in ({}, {"csrf": "wrong"}):
            response = client.post(path, data={**data, "username": "eve", "role": "admin", "password": "x" * 12})
            assert response.status_code == 403, (path, data)
    assert [u["name"] for u in Users(app.state.store).list()] == ["ada", "sam"]
    assert client.get("/calls").status_code == 200  # still logged in: /logout without a token did nothing
    # the login form has its own token too
    fresh = client_for(app)
    assert fresh.post("/login", data={"username": "ada", "password": PASSWORD}).status_code == 403


def test_login_sets_a_safe_session_cookie(app):
    _, response = login(app, "sam")
    assert response.status_code == 303 and response.headers["location"] == "/calls"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    assert "Secure" not in cookie
    _, secure = login(app, "sam", base_url="https://testserver")
    assert "Secure" in secure.headers["set-cookie"]


def test_logout_ends_the_session(app):
    client, _ = login(app, "sam")
    token = client.cookies.get(SESSION_COOKIE)
    assert client.post("/logout", data={"csrf": csrf_of(client)}).status_code == 303
    stale = client_for(app)
    stale.cookies.set(SESSION_COOKIE, token)
    assert stale.get("/calls").status_code == 303


def test_five_wrong_passwords_lock_the_account(app):
    for _ in range(MAX_FAILED_LOGINS):
        _, response = login(app, "sam", "wrong password")
        assert response.status_code == 401
    _, response = login(app, "sam")  # the right password no longer helps
    assert response.status_code == 401 and "locked for 15 minutes" in response.text  # as for anyone: no enumeration
    assert SESSION_COOKIE not in response.cookies
    assert [u["locked"] for u in Users(app.state.store).list() if u["name"] == "sam"] == [True]
    admin, _ = login(app, "ada")
    assert admin.post("/admin/users/sam/reset", data={"csrf": csrf_of(admin), "password": "another long one"}
                      ).status_code == 303
    _, response = login(app, "sam", "another long one")
    assert response.status_code == 303
    assert any(e["action"] == "login-failed" for e in app.state.store.audit_log())


def test_hostile_transcript_is_shown_inertly(app):
    client, _ = login(app, "sam")
    page = client.get("/calls/hostile")
    assert page.status_code == 200
    assert "<script>alert" not in page.text and "<img src=x" not in page.text and "<b>bold" not in page.text
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page.text
    assert "&#39;; DROP TABLE calls; --" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    listing = client.get("/calls", params={"q": "DROP TABLE"})
    assert 'href="/calls/hostile"' in listing.text and 'href="/calls/call1"' not in listing.text
    assert client.get("/calls", params={"q": "' OR 1=1 --"}).text.count('class="call-row') == 0
    assert app.state.store.count_calls() == 3


def test_call_list_search_and_filters(app):
    client, _ = login(app, "sam")

    def listed(**params):
        return sorted(re.findall(r'href="/calls/(\w+)"', client.get("/calls", params=params).text))

    assert listed() == ["active", "call1", "hostile"]
    assert listed(q="balance") == ["call1"]
    assert listed(escalated="yes") == ["hostile"]
    assert listed(intent="balance") == ["call1"]
    assert listed(emotion="angry") == ["call1"]
    assert listed(outcome="transferred") == ["hostile"]
    assert listed(caller="+1 555 000 1234") == ["call1"] and listed(caller="34") == ["call1"]
    assert client.get("/calls", params={"date_from": "not-a-date"}).status_code == 422
    data = client.get("/api/calls", params={"q": "balance"}).json()
    assert [c["id"] for c in data["calls"]] == ["call1"] and "caller_hash" in data["calls"][0]


def test_call_page_shows_speakers_emotion_and_audio(app, tmp_path):
    client, _ = login(app, "sam")
    page = client.get("/calls/call1").text
    turns = re.findall(r'<li class="turn (\w+)[^"]*" data-start="([\d.]+)"', page)
    assert [s for s, _ in turns] == ["agent", "caller", "agent", "caller", "agent"]
    assert float(turns[1][1]) == pytest.approx(2.5)
    assert 'id="emotion-plot"' in page and page.count('<polyline class="series"') == 2
    assert 'id="player"' in page and 'src="/api/calls/call1/audio"' in page
    assert "balance" in page and "goodbye" in page  # intents
    assert 'class="event call_ended"' in page
    empty = client.get("/calls/hostile").text
    assert 'id="emotion-empty"' in empty and 'id="no-audio"' in empty
    audio = client.get("/api/calls/call1/audio")
    assert audio.status_code == 200 and audio.headers["content-type"] == "audio/wav"
    assert audio.content == (tmp_path / "call1.wav").read_bytes()
    part = client.get("/api/calls/call1/audio", headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and part.content == audio.content[:100]
    assert part.headers["content-range"] == f"bytes 0-99/{len(audio.content)}"
    peaks = client.get("/api/calls/call1/peaks").json()
    assert peaks["channels"] == ["caller", "agent"] and peaks["duration_s"] == pytest.approx(3.0)
    left, right = peaks["peaks"]
    assert max(left[: len(left) // 3]) > 0.4 and max(left[-len(left) // 3:]) == 0.0
    assert max(right[-len(right) // 3:]) > 0.4
    assert client.get("/api/calls/nope/audio").status_code == 404
    assert client.get("/api/calls/hostile/audio").status_code == 404
    actions = [(e["user_name"], e["action"], e["call_id"]) for e in app.state.store.audit_log()]
    assert ("sam", "open", "call1") in actions and ("sam", "listen", "call1") in actions


def test_export_has_json_and_audio(app, tmp_path):
    client, _ = login(app, "sam")
    response = client.get("/api/calls/call1/export")
    assert response.status_code == 200 and "attachment" in response.headers["content-disposition"]
    z = zipfile.ZipFile(io.BytesIO(response.content))
    assert sorted(z.namelist()) == ["call.json", "recording.wav"]
    assert z.read("recording.wav") == (tmp_path / "call1.wav").read_bytes()
    assert '"speaker": "caller"' in z.read("call.json").decode()
    assert ("sam", "export") in [(e["user_name"], e["action"]) for e in app.state.store.audit_log()]


def test_admin_manages_users(app):
    client, _ = login(app, "ada")
    csrf = csrf_of(client)
    r = client.post("/admin/users", data={"csrf": csrf, "username": "tia", "role": "supervisor",
                                          "password": "a long password"})
    assert r.status_code == 303 and "created" in client.get(r.headers["location"]).text
    tia, response = login(app, "tia", "a long password")
    assert response.status_code == 303 and tia.get("/calls").status_code == 200
    short = client.post("/admin/users", data={"csrf": csrf, "username": "x", "role": "admin", "password": "short"})
    assert "at least" in client.get(short.headers["location"]).text
    kept = client.post("/admin/users/tia/delete", data={"csrf": csrf})  # not confirmed: nothing happens
    assert "confirm first" in client.get(kept.headers["location"]).text and tia.get("/calls").status_code == 200
    assert client.post("/admin/users/tia/delete", data={"csrf": csrf, "confirm": "yes"}).status_code == 303
    assert tia.get("/calls").status_code == 303  # the deleted user's session ended with it
    assert "you cannot delete yourself" in client.get(
        client.post("/admin/users/ada/delete", data={"csrf": csrf}).headers["location"]).text
    audit = client.get("/admin/audit").text
    assert "user-create" in audit and "user-delete" in audit


def test_live_view_streams_active_calls(app):
    client, _ = login(app, "sam")
    assert "active" in client.get("/live").text
    with client.stream("GET", "/api/live", params={"once": "1"}) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        body = "".join(response.iter_text())
    assert body.startswith("event: calls\ndata: ") and '"id": "active"' in body
    assert '"last_text": "hello is anyone there"' in body and "call1" not in body


def test_adduser_cli(tmp_path):
    import os
    import subprocess
    import sys
    env = {**os.environ, "IVR_DB_URL": f"sqlite:///{tmp_path}/u.db", "IVR_DATA_DIR": str(tmp_path / "d"),
           "IVR_RECORDING_KEY": "00" * 32, "IVR_NEW_PASSWORD": "a long password"}
    run = subprocess.run([sys.executable, "-m", "ivr", "console", "adduser", "boss", "--role", "admin"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0 and "boss (admin) created" in run.stdout, run.stderr
    again = subprocess.run([sys.executable, "-m", "ivr", "console", "adduser", "boss"], capture_output=True,
                           text=True, env=env, timeout=120)
    assert again.returncode == 1 and "exists already" in again.stderr


def test_metrics_count_requests_by_route_template_without_a_login(app):
    client = client_for(app)
    for call_id in ("call1", "hostile", "nope"):
        client.get(f"/api/calls/{call_id}")  # 401: not logged in
    reply = client.get("/metrics")
    assert reply.status_code == 200
    families = {f.name: f for f in text_string_to_metric_families(reply.text)}
    counts = {tuple(sorted(s.labels.items())): s.value for s in families["ivr_console_requests"].samples
              if s.name == "ivr_console_requests_total"}
    key = (("method", "GET"), ("route", "/api/calls/{call_id}"), ("status", "401"))
    assert counts[key] >= 3  # one series for every call: the template, never the call id
    assert not any("call1" in dict(k)["route"] for k in counts)
    assert "ivr_console_request_seconds" in families
