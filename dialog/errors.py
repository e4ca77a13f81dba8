"""Errors of the dialog core."""

from models.errors import AgentError


class DialogError(AgentError):
    """Base of the errors of `dialog` (bad data for the understanding models, a bad FAQ file)."""


class FlowError(DialogError):
    """A call flow that is invalid: unknown state, bad YAML, missing field."""
