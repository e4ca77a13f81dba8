"""Errors of the applications; the `ivr` command prints any `AgentError` as one line naming the part that
failed (`ivr.cli.error_line`), never a traceback."""

from models.errors import AgentError


class IvrError(AgentError):
    """Base of the errors of the applications in `ivr` (a bad argument, a bad config or store)."""
