"""Start-up configuration of the agent, as frozen dataclasses, loadable from a YAML file."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ivr.errors import IvrError
from telephony.yamlfile import read_yaml


@dataclass(frozen=True)
class CallConfig:
    sample_rate_hz: int = 8000
    """Rate of the caller's line (8000 for G.711 telephony)."""
    vad: str = "webrtc"
    """Voice activity detector: 'webrtc' or 'silero'."""
    end_of_turn_silence_ms: int = 500
    """Silence after speech that ends the caller's turn."""
    decode_ahead_ms: int = 100
    """A pause this long inside a turn has the turn so far decoded ahead, so its transcript is ready if
    the caller does not go on (0: decode only once the turn has ended)."""
    complete_timeout_ms: int = 300
    """Silence that ends a turn whose words, decoded ahead, already settle what the node asks (VoiceXML's
    complete timeout; ivr.call.recognition.settled); others wait end_of_turn_silence_ms. 0: off."""
    settled_confidence: float = 0.7
    """A turn settles the node only when no word of it was recognized with a lower probability."""
    barge_in: bool = True
    """Whether caller speech (or a key press) stops an interruptible prompt."""
    max_call_ms: int = 600_000
    """Longest call; the flow then closes it (transfer or goodbye)."""
    record_digits: bool = False
    """Keep keyed digits in the event log; off by default (they are often account numbers)."""


SILENCE_ONLY: dict[str, Any] = {"decode_ahead_ms": 0, "complete_timeout_ms": 0}
"""The `call:` settings of the agent before it decoded turns ahead: every turn ended by its silence and
decoded then (the benchmarks measure them beside the defaults)."""


@dataclass(frozen=True)
class AsrConfig:
    """How caller turns are recognized beyond the model (see README, "Recognizing callers")."""

    window: str = "fit"
    """Whisper's encoder window per turn: 'fit' (10 s for a turn of up to 4 s, else 30 s: a short turn
    costs a sixth) or 'full' (always 30 s, as Whisper was trained)."""
    prompts: bool = True
    """Prompt Whisper by what the node expects (a digit string, yes/no, a menu: asr.bias)."""
    digit_grammar: bool = False
    """In a node collecting digits, decode only digits, digit words and the flow's one-word global keywords."""
    alternatives: int = 2
    """Next-best hypotheses per turn (beam search of 1 + this width); the first one the node can act on
    is taken (ivr.call.recognition); 0: greedy, one hypothesis."""
    phonetic: bool = True
    """Recover a node's keywords by sound when no hypothesis names one (asr.phonetic)."""


@dataclass(frozen=True)
class AgentConfig:
    asr_backend: str = "whisper"
    """'whisper' (faster-whisper) or 'vosk'."""
    asr_model: str = "tiny.en"
    """Whisper: 'tiny.en' (packaged) or a CTranslate2 model directory; Vosk: a model directory or 'ko'."""
    asr_fallback: str = ""
    """Optional second backend as 'backend:model' used when the first fails."""
    tts_engine: str = "piper"
    """'piper', 'espeak-ng' or 'coqui'."""
    tts_voice: str = ""
    """Engine's voice: empty for its default (Piper: en_US-joe-medium)."""
    tts_cache_dir: str = "~/.cache/ivr/prompts"
    """On-disk prompt cache; empty to turn it off."""
    flow: str = ""
    """Call flow YAML; empty for the bundled bank flow."""
    call: CallConfig = field(default_factory=CallConfig)
    asr: AsrConfig = field(default_factory=AsrConfig)


_NESTED: dict[str, type] = {"call": CallConfig, "asr": AsrConfig}


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise IvrError(f"{where}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(known)}")
    values: dict[str, Any] = {}
    for name, value in data.items():
        if name in _NESTED:
            if not isinstance(value, dict):
                raise IvrError(f"{where}: '{name}' must be a mapping")
            values[name] = _build(_NESTED[name], value, f"{where}: {name}")
        else:
            values[name] = value
    return cls(**values)


def load_config(path: str | Path | None) -> AgentConfig:
    """Defaults, overridden by a YAML file when one is given."""
    if path is None:
        return AgentConfig()
    p = Path(path)
    data = read_yaml(p, "config") or {}
    if not isinstance(data, dict):
        raise IvrError(f"{p}: the config must be a mapping of settings")
    config: AgentConfig = _build(AgentConfig, data, str(p))
    return config
