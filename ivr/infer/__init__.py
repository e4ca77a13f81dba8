"""Shared inference: one process per machine holds the models (ASR, TTS, emotion, NLU) for every call worker.

`ivr infer --socket PATH` loads the models once and answers requests from the workers over a local unix
socket (`multiprocessing.connection`, authenticated with a key file beside the socket). A worker started with
`ivr serve --inference PATH` loads no model of its own: its `Services` hold proxies (`ivr.infer.client`)
with the same interfaces, so the call code does not change. The service runs the request whose deadline is
nearest first (a caller turn before a presynthesis, the NLU's few milliseconds before a long decode).

When the service is gone, a worker's proxies fail fast and the call degrades as it does when a model fails:
the caller hears a re-prompt (recognition), the local espeak-ng voice (TTS), no emotion, keywords only (NLU),
and a transfer after repeated failures. The proxies reconnect on their next request.
"""

from dataclasses import dataclass
from typing import Any

KEY_SUFFIX = ".key"
"""The service writes its authentication key to SOCKET + KEY_SUFFIX (mode 0600); clients read it there."""
READY_LINE = "ivr infer: ready"


@dataclass(frozen=True)
class Hello:
    """What the service holds, sent to each worker that connects: the proxies copy these attributes."""

    asr_name: str
    asr_capabilities: Any
    tts_engine: str
    tts_voice: str
    tts_capabilities: Any
    emotion: bool
    nlu: bool
    pid: int
