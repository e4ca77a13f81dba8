"""Start-up settings of the SIP server (`ivr serve`), from built-in defaults, a YAML file and flags."""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from telephony.errors import TelephonyError
from telephony.yamlfile import read_yaml

DEFAULT_SIP_PORT = 5060
DEFAULT_TLS_PORT = 5061
SRTP_MODES = ("off", "optional", "mandatory")
CALLBACK_PROMPT = ("I'm sorry, none of our agents can take your call right now. We have noted your call, "
                   "and an agent will call you back as soon as possible. Goodbye.")


@dataclass(frozen=True)
class SipConfig:
    bind: str = "127.0.0.1"
    """Address the SIP transports (UDP and TCP) and RTP bind to."""
    port: int = DEFAULT_SIP_PORT
    """SIP port for UDP and TCP."""
    rtp_port: int = 4000
    """First RTP port."""
    rtp_port_range: int = 200
    """RTP and RTCP ports used from rtp_port on: pjsua wraps around inside [rtp_port, rtp_port + range),
    so the ports in use stay bounded however many calls come and go. 0: no bound (pjsua's own)."""
    out_dir: Path = Path("calls")
    """Each call writes recording.wav, events.jsonl and sip.json under out_dir/CALL_ID/."""
    max_calls: int = 3
    """Concurrent calls; above it a new INVITE gets 503 with Retry-After. At most 3 in one process
    (pjsua2-python's wheels have 4 call slots; see telephony.sip.endpoint)."""
    retry_after_s: int = 30
    """Retry-After of the 503 sent above max_calls."""
    remote_workers: tuple[str, ...] = ()
    """Workers on other machines (sip:HOST:PORT, each an `ivr serve --allow FRONT/32` there) that the Kamailio
    front spreads calls over besides its local ones; probed with OPTIONS, failed over like local ones."""
    admit_budget_ms: float = 0.0
    """Admission by measured headroom: with a call up, a new INVITE gets 503 when the recent replies'
    voice-to-voice p95 is over this budget or the CPU is over admit_max_cpu (ivr.serve.headroom). 0: off."""
    admit_max_cpu: float = 0.9
    """With admit_budget_ms set: the CPU busy fraction (all cores) above which no new call is taken."""
    transaction_timeout_s: float = 5.0
    """pjsip's 64*T1 transaction timeout (RFC 3261's 32 s): an answered INVITE whose ACK has not come, or
    a BYE nobody answers, frees its call slot after this long, so spoofed or broken INVITEs cannot keep
    the server full. Retransmission timing (T1, T2) is unchanged. The session starts only once the call
    is confirmed by the caller's ACK."""
    user_agent: str = "ivr-agent"
    """User-Agent and Server header."""
    pjsip_log_level: int = 1
    """pjsip's own console log level (0-6); above 3 it prints whole SIP messages, caller numbers included."""
    allow: tuple[str, ...] = ()
    """Trunk source addresses (CIDRs) whose INVITEs are answered; others get 403. Empty: any source."""
    transfer_targets: dict[str, str] = field(default_factory=dict)
    """The flow's transfer targets (e.g. sip:queue@agents) mapped to dialable SIP URIs of humans."""
    transfer_default: str = ""
    """Where a transfer goes when the flow's target is not in transfer_targets (empty: the flow's
    target itself if it is a SIP URI)."""
    refer_timeout_s: float = 15.0
    """How long a REFER may take to report the transferred call answered before the bridged fallback."""
    bridge_timeout_s: float = 20.0
    """How long the human's phone may ring on a bridged transfer before the caller is offered a callback."""
    callback_prompt: str = CALLBACK_PROMPT
    """Said to the caller when neither REFER nor a bridged transfer reached a human."""
    webhook_url: str = ""
    """A URL that receives the call events (call.started, call.ended, call.transferred with the transfer's
    context, call.escalated, dialog.failed) as signed JSON POSTs (a CRM, a ticket system). With the call
    store they go through its outbox (kept across restarts, retried); without one, retried in memory."""
    webhook_timeout_s: float = 3.0
    """One webhook POST's time limit; a failed webhook is retried and never holds up the call."""
    webhook_secret_env: str = ""
    """Name of the environment variable holding the webhook signing secret (never the secret itself);
    empty: the POSTs are not signed."""
    webhook_retry_s: float = 5.0
    """The first retry's wait; each next one doubles, up to webhook_retry_max_s."""
    webhook_retry_max_s: float = 3600.0
    """The longest wait between two attempts."""
    webhook_max_attempts: int = 12
    """Attempts before an event is dead-lettered (listed in the console; `ivr store outbox retry`)."""
    webhook_console_url: str = ""
    """The console's base URL (e.g. https://console.example.com) for the call links in the events."""
    rtp_timeout_s: float = 30.0
    """A call with no RTP from the caller for this long (and not on hold) is ended; 0: never."""
    shutdown_grace_s: float = 30.0
    """On SIGTERM/SIGINT: new calls get 503, live calls may go on for this long before a hangup
    (a second signal hangs up at once)."""

    register: str = ""
    """Address of record to REGISTER with a registrar/trunk, e.g. sip:agent@pbx.example.com (empty: no
    registration). The registrar is the URI's host (and port, and ;transport= parameter)."""
    auth_user: str = ""
    """Digest user name for the registrar (default: the user part of `register`)."""
    auth_password_env: str = ""
    """Name of the environment variable that holds the digest password (never the password itself)."""
    register_interval_s: int = 300
    """Registration lifetime asked for (Expires); pjsua re-registers before it runs out."""
    tls_cert: str = ""
    """PEM certificate for a SIP TLS transport (with tls_key); empty: no TLS."""
    tls_key: str = ""
    """PEM private key of tls_cert."""
    tls_port: int = DEFAULT_TLS_PORT
    """SIP TLS port (on `bind`)."""
    srtp: str = "off"
    """SRTP (SDES keys in SDP): off, optional (SRTP when the caller offers it, else RTP) or mandatory
    (an offer of plain RTP/AVP gets 488)."""

    def __post_init__(self) -> None:
        if self.srtp not in SRTP_MODES:
            raise TelephonyError(f"srtp: {self.srtp!r} is not one of {', '.join(SRTP_MODES)}")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise TelephonyError("TLS needs both a certificate (tls_cert) and its private key (tls_key)")
        if self.register:
            if not self.register.startswith(("sip:", "sips:")) or "@" not in self.register:
                raise TelephonyError(f"register: {self.register!r} is not a sip:user@registrar URI")
            if self.register_interval_s < 60:
                raise TelephonyError("register_interval_s must be at least 60")
        elif self.auth_user or self.auth_password_env:
            raise TelephonyError("auth_user / auth_password_env need register (a sip:user@registrar URI)")
        if self.auth_password_env and not self.auth_password_env.replace("_", "").isalnum():
            raise TelephonyError("auth_password_env is the NAME of an environment variable (letters, digits, _), "
                           "not the password")
        if self.webhook_secret_env and not self.webhook_secret_env.replace("_", "").isalnum():
            raise TelephonyError("webhook_secret_env is the NAME of an environment variable (letters, digits, _), "
                                 "not the secret")
        if self.webhook_secret_env and not self.webhook_url:
            raise TelephonyError("webhook_secret_env needs webhook_url")
        if not (0 < self.webhook_retry_s <= self.webhook_retry_max_s) or self.webhook_max_attempts < 1:
            raise TelephonyError("webhook retries: 0 < webhook_retry_s <= webhook_retry_max_s and "
                                 "webhook_max_attempts >= 1")
        if self.rtp_port_range < 0 or self.rtp_port_range and self.rtp_port_range < 8:
            raise TelephonyError("rtp_port_range must be 0 (no bound) or at least 8 ports")
        if not 2.0 <= self.transaction_timeout_s <= 32.0:
            raise TelephonyError("transaction_timeout_s must be between 2 and 32 seconds")
        for cidr in self.allow:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise TelephonyError(f"allow: {cidr!r} is not an address or CIDR (e.g. 203.0.113.0/24)") from None
        for name, uri in self.transfer_targets.items():
            if not uri.startswith(("sip:", "sips:")):
                raise TelephonyError(f"transfer_targets: {name}: {uri!r} is not a sip: URI")
        if self.transfer_default and not self.transfer_default.startswith(("sip:", "sips:")):
            raise TelephonyError(f"transfer_default: {self.transfer_default!r} is not a sip: URI")

    @property
    def registrar_uri(self) -> str:
        """The registrar to send REGISTER to: `register` without its user part."""
        scheme, rest = self.register.split(":", 1)
        return f"{scheme}:{rest.rsplit('@', 1)[1]}"

    @property
    def digest_user(self) -> str:
        if self.auth_user:
            return self.auth_user
        return self.register.split(":", 1)[1].rsplit("@", 1)[0].split(";", 1)[0]

    def auth_password(self) -> str:
        """The digest password from the environment ('' without auth_password_env)."""
        if not self.auth_password_env:
            return ""
        password = os.environ.get(self.auth_password_env, "")
        if not password:
            raise TelephonyError(f"the environment variable {self.auth_password_env} (auth_password_env) is not set")
        return password

    def webhook_secret(self) -> bytes | None:
        """The webhook signing secret from the environment (None without webhook_secret_env)."""
        if not self.webhook_secret_env:
            return None
        secret = os.environ.get(self.webhook_secret_env, "")
        if not secret:
            raise TelephonyError(f"the environment variable {self.webhook_secret_env} (webhook_secret_env) is not set")
        return secret.encode("utf-8")

    def resolve_transfer(self, target: str) -> str:
        """The dialable URI for a flow's transfer target, or '' when there is none."""
        if target in self.transfer_targets:
            return self.transfer_targets[target]
        if self.transfer_default:
            return self.transfer_default
        return target if target.startswith(("sip:", "sips:")) else ""


def load_sip_config(path: str | Path | None, **overrides: Any) -> SipConfig:
    """Defaults, then the `sip:` section (or the whole mapping) of a YAML file, then flags (None: unset)."""
    values: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        data = read_yaml(p, "SIP config") or {}
        if isinstance(data, dict) and isinstance(data.get("sip"), dict):
            data = data["sip"]
        if not isinstance(data, dict):
            raise TelephonyError(f"{p}: the SIP config must be a mapping of settings")
        known = {f.name for f in dataclasses.fields(SipConfig)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise TelephonyError(f"{p}: unknown SIP setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        values.update(data)
    values.update({k: v for k, v in overrides.items() if v is not None})
    if "out_dir" in values:
        values["out_dir"] = Path(values["out_dir"])
    for name in ("allow", "remote_workers"):
        if name in values:
            items = values[name]
            values[name] = tuple([items] if isinstance(items, str) else items)
    if "transfer_targets" in values:
        if not isinstance(values["transfer_targets"], dict):
            raise TelephonyError("transfer_targets must map flow targets to SIP URIs")
        values["transfer_targets"] = {str(k): str(v) for k, v in values["transfer_targets"].items()}
    return SipConfig(**values)
