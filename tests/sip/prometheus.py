"""A real Prometheus server (Debian package `prometheus`) on loopback that scrapes `ivr serve`, and a
watcher that records every /readyz answer of a server while it starts."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from ivr.serve.bench import free_port_range

SCRAPE_INTERVAL_S = 1


class Prometheus:
    """`prometheus` scraping http://127.0.0.1:<target_port>/metrics every second, its data in `work`."""

    def __init__(self, work: Path, target_port: int) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            raise FileNotFoundError("prometheus is not installed (Debian package prometheus; scripts/setup.sh "
                                    "installs it)")
        work.mkdir(parents=True, exist_ok=True)
        config = work / "prometheus.yml"
        config.write_text(
            f"global:\n  scrape_interval: {SCRAPE_INTERVAL_S}s\n  evaluation_interval: {SCRAPE_INTERVAL_S}s\n"
            "scrape_configs:\n  - job_name: ivr-serve\n"
            f"    static_configs:\n      - targets: ['127.0.0.1:{target_port}']\n", encoding="utf-8")
        self.port = free_port_range(1, tcp=True)
        self.log = (work / "prometheus.log").open("wb")
        self.proc = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={work / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while not self._get("/-/ready"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"prometheus did not start: {(work / 'prometheus.log').read_text()[-2000:]}")
            time.sleep(0.2)

    def _get(self, path: str) -> bytes | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=2) as reply:
                return bytes(reply.read())
        except (OSError, urllib.error.URLError):
            return None

    def query(self, expr: str) -> float | None:
        """The value of an instant query with one result, through the HTTP API; None without a result."""
        body = self._get("/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        if body is None:
            return None
        data = json.loads(body)
        assert data["status"] == "success", data
        result = data["data"]["result"]
        return float(result[0]["value"][1]) if result else None

    def wait_for(self, expr: str, at_least: float, timeout_s: float = 20.0) -> float:
        """Polls the query until its value reaches `at_least`; returns it (fails after timeout_s)."""
        deadline = time.monotonic() + timeout_s
        value = None
        while time.monotonic() < deadline:
            value = self.query(expr)
            if value is not None and value >= at_least:
                return value
            time.sleep(0.5)
        raise AssertionError(f"prometheus: {expr} = {value}, expected at least {at_least}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


class ReadyzWatcher:
    """Asks http://127.0.0.1:<port>/readyz every 50 ms on a thread and keeps each distinct answer in order."""

    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}/readyz"
        self.statuses: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            try:
                with urllib.request.urlopen(self.url, timeout=1) as reply:
                    status = reply.status
            except urllib.error.HTTPError as exc:
                status = exc.code
            except OSError:
                continue  # not listening yet
            if not self.statuses or self.statuses[-1] != status:
                self.statuses.append(status)
            if status == 200:
                return

    def stop(self) -> list[int]:
        self._stop.set()
        self._thread.join(5)
        return self.statuses
