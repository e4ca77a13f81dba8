"""Errors that reach a user as one clear line (the CLI prints `str(error)`, never a traceback)."""


class IvrError(Exception):
    """Base of every error the agent reports to a user."""


class AudioFileError(IvrError):
    """An audio file that cannot be read: missing, empty, not audio, or undecodable."""


class ModelMissingError(IvrError):
    """A model that is not installed; the message says what to install or where to put it."""


class FlowError(IvrError):
    """A call flow that is invalid: unknown state, bad YAML, missing field."""


class FrameError(IvrError):
    """Audio frames that do not fit together (mixed sample rates, odd byte counts)."""
