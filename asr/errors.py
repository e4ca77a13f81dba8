"""Errors of speech recognition."""

from models.errors import AgentError


class AsrError(AgentError):
    """Base of the errors of `asr` (a bad setting, a recognizer that fails)."""
