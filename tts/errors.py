"""Errors of speech synthesis."""

from models.errors import AgentError


class TtsError(AgentError):
    """Base of the errors of `tts` (an engine or voice that cannot speak)."""
