"""Errors of the line: audio that cannot be read or does not fit, SIP settings that are wrong."""

from models.errors import AgentError


class TelephonyError(AgentError):
    """Base of the errors of `telephony` (a bad setting, a port in use, an unreadable script)."""


class AudioFileError(TelephonyError):
    """An audio file that cannot be read: missing, empty, not audio, or undecodable."""


class FrameError(TelephonyError):
    """Audio frames that do not fit together (mixed sample rates, odd byte counts)."""
