"""`ivr serve` security options: digest-authenticated REGISTER, SIP over TLS, SRTP.

Hermetic: the settings' checks, the flags in --help, a missing password variable failing at once.
With real peers over loopback (one agent for the first three, a second one for the last):
- sipp as a registrar answers the agent's REGISTER with 401 + a digest challenge and verifies the
  second REGISTER's Authorization (200 when valid, 403 and a failed scenario otherwise);
- a Python TLS client (sipp in Debian has no TLS) sends OPTIONS over TLS and gets 200;
- with --srtp mandatory, an INVITE offering plain RTP/AVP gets 488;
- with --srtp optional, the same plain-RTP call is answered and goes on to the caller's BYE.
"""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from models.errors import AgentError
from telephony.sip.config import SipConfig, load_sip_config
from tests.sip import sipp
from tests.sip.rtp_pcap import quiet_pcap
from tests.sip.serve import start_serve, stop_serve

PASSWORD = "Tr0ub4dor-3-secret"


# ---- hermetic ---------------------------------------------------------------------------------------

def test_security_settings_are_checked(monkeypatch):
    config = load_sip_config(None, register="sip:agent@pbx.example.com:5080;transport=tcp",
                             auth_password_env="IVR_TEST_SIP_PW", srtp="optional")
    assert config.registrar_uri == "sip:pbx.example.com:5080;transport=tcp"
    assert config.digest_user == "agent"
    assert SipConfig(register="sip:agent@pbx", auth_user="trunk7").digest_user == "trunk7"
    monkeypatch.delenv("IVR_TEST_SIP_PW", raising=False)
    with pytest.raises(AgentError, match="IVR_TEST_SIP_PW"):
        config.auth_password()
    monkeypatch.setenv("IVR_TEST_SIP_PW", PASSWORD)
    assert config.auth_password() == PASSWORD
    assert SipConfig().auth_password() == ""
    with pytest.raises(AgentError, match="not one of"):
        SipConfig(srtp="always")
    with pytest.raises(AgentError, match="private key"):
        SipConfig(tls_cert="cert.pem")
    with pytest.raises(AgentError, match="sip:user@registrar"):
        SipConfig(register="pbx.example.com")
    with pytest.raises(AgentError, match="need register"):
        SipConfig(auth_password_env="X")
    with pytest.raises(AgentError, match="NAME of an environment variable"):
        SipConfig(register="sip:a@b", auth_password_env="pass word!")


def test_serve_help_lists_the_security_flags_and_a_missing_password_fails_at_once(monkeypatch, capsys):
    from ivr.cli import main

    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    text = capsys.readouterr().out
    for flag in ("--register", "--auth-user", "--auth-password-env", "--tls-cert", "--tls-key", "--tls-port",
                 "--srtp"):
        assert flag in text
    monkeypatch.delenv("IVR_TEST_SIP_PW", raising=False)
    started = time.monotonic()
    assert main(["serve", "--register", "sip:agent@127.0.0.1:9", "--auth-password-env", "IVR_TEST_SIP_PW"]) == 1
    assert time.monotonic() - started < 5  # before any model loads
    assert "IVR_TEST_SIP_PW" in capsys.readouterr().err


# ---- real peers over loopback -----------------------------------------------------------------------

def _serve(log: Path, port: int, extra: list[str]) -> subprocess.Popen[bytes]:
    return start_serve(log, port, ["--rtp-port", str(sipp.free_udp_port(even=True)), *extra],
                       env={"IVR_TEST_SIP_PW": PASSWORD})


def _tls_options(port: int, cafile: Path) -> str:
    """OPTIONS over TLS (the agent's certificate verified against cafile); the response's first line."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False  # the test certificate names 127.0.0.1 as CN only
    context.load_verify_locations(cafile)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            context.wrap_socket(raw) as tls:
        local = tls.getsockname()
        message = (f"OPTIONS sip:ivr@127.0.0.1:{port};transport=tls SIP/2.0\r\n"
                   f"Via: SIP/2.0/TLS {local[0]}:{local[1]};branch=z9hG4bK-tls-{os.getpid()}\r\n"
                   "Max-Forwards: 70\r\n"
                   f"From: <sip:probe@{local[0]}>;tag=probe1\r\n"
                   f"To: <sip:ivr@127.0.0.1:{port}>\r\n"
                   f"Call-ID: tls-probe-{os.getpid()}@127.0.0.1\r\n"
                   "CSeq: 1 OPTIONS\r\n"
                   f"Contact: <sip:probe@{local[0]}:{local[1]};transport=tls>\r\n"
                   "Content-Length: 0\r\n\r\n")
        tls.sendall(message.encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = tls.recv(4096)
            if not chunk:
                break
            data += chunk
    return data.split(b"\r\n", 1)[0].decode(errors="replace")


@pytest.mark.models
@pytest.mark.sip
@pytest.mark.slow
def test_register_with_digest_tls_options_and_mandatory_srtp(tmp_path):
    sipp.require_sipp()
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
                    "-days", "1", "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True,
                   timeout=30)
    registrar_port, port, tls_port = sipp.free_udp_port(), sipp.free_udp_port(), sipp.free_udp_port()
    (tmp_path / "registrar").mkdir()
    registrar = sipp.start_sipp(sipp.render("registrar_digest.xml", tmp_path / "registrar" / "s.xml",
                                            NONCE="f00dcafe1234",
                                  USER="agent", PASSWORD=PASSWORD),
                           None, registrar_port, sipp.free_media_base(), tmp_path / "registrar")
    procs = [registrar]
    log = tmp_path / "serve.log"
    server = None
    try:
        time.sleep(0.3)  # sipp binds its port
        server = _serve(log, port, ["--register", f"sip:agent@127.0.0.1:{registrar_port}",
                                    "--auth-password-env", "IVR_TEST_SIP_PW", "--tls-cert", str(cert),
                                    "--tls-key", str(key), "--tls-port", str(tls_port), "--srtp", "mandatory"])
        code = sipp.finish_sipp(registrar, 20)[0]
        assert code == 0, f"the registrar did not accept the agent's digest: {registrar.stderr}"
        deadline = time.monotonic() + 5
        while "registration: registered" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "registration: registered" in log.read_text()

        assert _tls_options(tls_port, cert) == "SIP/2.0 200 OK"

        plain = sipp.start_call(tmp_path / "plain", "expect_refused.xml", port, STATUS=488)
        procs.append(plain)
        assert sipp.finish_sipp(plain, 20)[0] == 0, "a plain RTP offer was not refused with 488 under --srtp mandatory"
        assert server.poll() is None
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
        if server is not None:
            stop_serve(server)
    assert server.returncode == 0
    assert PASSWORD not in log.read_text(errors="replace")


@pytest.mark.models
@pytest.mark.sip
@pytest.mark.slow
def test_optional_srtp_answers_a_plain_rtp_call(tmp_path):
    sipp.require_sipp()
    quiet_pcap(tmp_path / "quiet.pcap", 4.0)
    port = sipp.free_udp_port()
    server = _serve(tmp_path / "serve.log", port, ["--srtp", "optional"])
    listener = None
    call = None
    try:
        call, listener = sipp.start_caller(tmp_path / "call", "caller_hangs_up.xml", port, PCAP=tmp_path / "quiet.pcap",
                                           INFO_AFTER_MS=1500, INFO_KEY=1, BYE_AFTER_MS=1500)
        assert sipp.finish_sipp(call, 40)[0] == 0, "the plain RTP call failed under --srtp optional"
        assert listener.packets, "the answered call got no RTP"
    finally:
        if call is not None and call.poll() is None:
            call.kill()
            call.wait(5)
        stop_serve(server)
        if listener is not None:
            listener.close()
    assert server.returncode == 0
