"""The Kamailio front and a worker's 503 (ivr.serve.kamailio): a worker that is full hands the call to the next
worker, but one that refuses for lack of headroom (the machine is busy) sends the caller its 503 at once, so
an overloaded machine does not squeeze the call in on another of its workers.

The workers here are two small SIP responders on loopback that answer OPTIONS with 200 and every INVITE with
503 and the refusal header; a raw UDP caller places the call through the real Kamailio."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from ivr.serve.bench import free_port_range
from ivr.serve.kamailio import REFUSED_HEADER, dispatcher_list, kamailio_config, sip_ping
from telephony.sip.config import SipConfig
from tests.sip.peer import SipPeer

KAMAILIO = shutil.which("kamailio", path="/usr/sbin:/usr/bin:/sbin")


class RefusingWorker:
    """Answers OPTIONS with 200 and each INVITE with 503, `Retry-After` and REFUSED_HEADER: `kind`."""

    def __init__(self, port: int, kind: str) -> None:
        self.kind = kind
        self.invites = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", port))
        self.sock.settimeout(0.2)
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while self.running:
            try:
                data, source = self.sock.recvfrom(65535)
            except OSError:
                continue
            lines = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
            method = lines[0].split(" ", 1)[0]
            if method not in ("OPTIONS", "INVITE"):
                continue  # the ACK of the 503
            self.invites += method == "INVITE"
            kept = [line for line in lines[1:] if line.split(":", 1)[0].strip().lower()
                    in ("via", "v", "from", "f", "call-id", "i", "cseq")]
            to = next(line for line in lines[1:] if line.lower().startswith(("to:", "t:")))
            status = "200 OK" if method == "OPTIONS" else "503 Service Unavailable"
            extra = [] if method == "OPTIONS" else ["Retry-After: 5", f"{REFUSED_HEADER}: {self.kind}"]
            reply = "\r\n".join([f"SIP/2.0 {status}", *kept, f"{to};tag=w{self.kind}", *extra,
                                 "Content-Length: 0", "", ""])
            self.sock.sendto(reply.encode("latin-1"), source)

    def close(self) -> None:
        self.running = False
        self.thread.join(2)
        self.sock.close()


def _call_through_front(tmp_path: Path, kind: str) -> tuple[int, str, int]:
    """(final status to the caller, its Retry-After, INVITEs the two workers got) with both refusing as `kind`."""
    port = free_port_range(3, tcp=True)
    workers = [RefusingWorker(port + 1, kind), RefusingWorker(port + 2, kind)]
    (tmp_path / "dispatcher.list").write_text(dispatcher_list("127.0.0.1", [port + 1, port + 2]))
    (tmp_path / "k.cfg").write_text(kamailio_config(SipConfig(bind="127.0.0.1", port=port, max_calls=6),
                                                    [port + 1, port + 2], tmp_path))
    assert KAMAILIO is not None
    front = subprocess.Popen([KAMAILIO, "-DD", "-E", "-f", str(tmp_path / "k.cfg"), "-Y", str(tmp_path),
                              "-P", str(tmp_path / "pid"), "-m", "64", "-M", "8"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while sip_ping("127.0.0.1", port, timeout_s=0.2) is None:
            assert time.monotonic() < deadline and front.poll() is None, "Kamailio did not start"
        with SipPeer() as caller:
            caller.invite(port)
            final = caller.final(10.0)
            assert final is not None, "no final answer from the front"
            caller.ack(final, port)
        time.sleep(0.3)
        return final.status, final.header("retry-after"), sum(w.invites for w in workers)
    finally:
        front.terminate()
        front.wait(10)
        for worker in workers:
            worker.close()


@pytest.mark.sip
@pytest.mark.parametrize(("kind", "invites"), [("headroom", 1), ("full", 2)])
def test_only_a_full_worker_passes_the_call_on(tmp_path, kind, invites):
    if KAMAILIO is None:
        pytest.skip("kamailio is not installed (Debian package kamailio; scripts/setup.sh installs it)")
    status, retry_after, got = _call_through_front(tmp_path, kind)
    assert status == 503 and retry_after.isdigit()
    assert got == invites, f"{kind}: the workers got {got} INVITE(s), expected {invites}"
