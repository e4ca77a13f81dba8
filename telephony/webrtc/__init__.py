"""The browser's line: WebRTC (aiortc) as a CallTransport. Opus at 48 kHz at the edge, the session's rate
inside; keys and page messages over a data channel. aiortc is an optional extra: `pip install
'ivr-agent[webrtc]'`; `telephony.webrtc.require_aiortc()` says so when it is missing."""

from __future__ import annotations

from telephony.errors import TelephonyError

INSTALL_HINT = "WebRTC calls need aiortc: pip install 'ivr-agent[webrtc]' (or pip install aiortc)"


class OfferError(TelephonyError):
    """The page's offer cannot be answered (not an offer, no audio, SDP aiortc cannot use)."""


def require_aiortc() -> None:
    """Raises TelephonyError naming the install command when aiortc is not installed."""
    try:
        import aiortc  # noqa: F401
    except ImportError as exc:
        raise TelephonyError(INSTALL_HINT) from exc
