"""Start-up settings of the SIP server (`ivr serve`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_SIP_PORT = 5060


@dataclass(frozen=True)
class SipConfig:
    bind: str = "127.0.0.1"
    """Address the SIP transports (UDP and TCP) and RTP bind to."""
    port: int = DEFAULT_SIP_PORT
    """SIP port for UDP and TCP."""
    rtp_port: int = 0
    """First RTP port (0: pjsua's default, 4000)."""
    out_dir: Path = Path("calls")
    """Each call writes recording.wav, events.jsonl and sip.json under out_dir/CALL_ID/."""
    max_calls: int = 8
    """Concurrent calls; above it a new INVITE gets 503 with Retry-After."""
    retry_after_s: int = 30
    """Retry-After of the 503 sent above max_calls."""
    user_agent: str = "ivr-agent"
    """User-Agent and Server header."""
    pjsip_log_level: int = 1
    """pjsip's own console log level (0-6); above 3 it prints whole SIP messages, caller numbers included."""
