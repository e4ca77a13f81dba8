"""The root of the errors a user sees as one line, and the models' own errors.

Every package has its own error base (`asr.errors.AsrError`, `tts.errors.TtsError`,
`dialog.errors.DialogError`, `telephony.errors.TelephonyError`, `ivr.errors.IvrError`); all derive from
`AgentError`, so the `ivr` command prints any of them as one line that names the part that failed
(`ivr: speech recognition: MESSAGE`, `ivr: model: MESSAGE`, ...; `ivr.cli.error_line`), never a traceback.
"""


class AgentError(Exception):
    """Base of every error the agent reports to a user (the message is the whole report)."""


class ModelError(AgentError):
    """A model that cannot be found or loaded."""


class ModelMissingError(ModelError):
    """A model that is not installed; the message says what to install or where to put it."""
