"""Choosing a backend by name, and the errors a user sees when one cannot be loaded."""

from __future__ import annotations

import importlib.util

import pytest

from models.errors import AgentError, ModelMissingError
from tts.factory import ENGINES, load_synthesizer

HAVE_COQUI = importlib.util.find_spec("TTS") is not None


def test_unknown_engine_lists_the_valid_ones() -> None:
    with pytest.raises(AgentError, match="unknown TTS engine 'festival'") as info:
        load_synthesizer("festival")
    for engine in ENGINES:
        assert engine in str(info.value)


def test_missing_piper_voice_path_says_what_to_do(tmp_path) -> None:
    with pytest.raises(ModelMissingError, match=r"Piper voice not found at .*nope\.onnx.*pip install"):
        load_synthesizer("piper", str(tmp_path / "nope.onnx"))


def test_piper_voice_without_its_config_says_so(tmp_path) -> None:
    onnx = tmp_path / "voice.onnx"
    onnx.write_bytes(b"\x00")
    with pytest.raises(ModelMissingError, match=r"Piper voice config not found at .*voice\.onnx\.json"):
        load_synthesizer("piper", str(onnx))


def test_coqui_needs_a_model_path() -> None:
    with pytest.raises(AgentError, match="coqui engine needs a voice"):
        load_synthesizer("coqui")


def test_coqui_missing_model_path(tmp_path) -> None:
    with pytest.raises(ModelMissingError, match="Coqui TTS model not found"):
        load_synthesizer("coqui", str(tmp_path / "missing.pth"))


@pytest.mark.skipif(HAVE_COQUI, reason="coqui-tts is installed, so there is no install error to show")
def test_coqui_not_installed_names_the_install_commands(tmp_path) -> None:
    (tmp_path / "model.pth").write_bytes(b"\x00")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelMissingError, match=r"pip install 'ivr-agent\[coqui\]'") as info:
        load_synthesizer("coqui", str(tmp_path / "model.pth"))
    assert "torch" in str(info.value)


@pytest.mark.models
@pytest.mark.skipif(not HAVE_COQUI, reason="coqui-tts is not installed (pip install 'ivr-agent[coqui]')")
def test_coqui_synthesizes_from_a_local_model() -> None:
    import os
    model = os.environ.get("IVR_COQUI_MODEL")
    if not model:
        pytest.skip("set IVR_COQUI_MODEL to a local Coqui TTS checkpoint (config.json beside it)")
    synth = load_synthesizer("coqui", model)
    audio = synth.synthesize("Thank you for calling.")
    assert synth.engine == "coqui"
    assert audio.sample_rate_hz == synth.capabilities.sample_rate_hz
    assert audio.samples.size > 0 and abs(audio.samples.astype(float)).mean() > 100


@pytest.mark.models
def test_factory_wraps_with_a_cache_when_asked(tmp_path) -> None:
    from tts.cache import CachedSynthesizer
    synth = load_synthesizer("piper", cache_dir=tmp_path / "cache")
    assert isinstance(synth, CachedSynthesizer)
    assert synth.engine == "piper" and synth.voice == "en_US-joe-medium"
    assert synth.capabilities.sample_rate_hz == 22050
    assert (tmp_path / "cache").is_dir()


@pytest.mark.models
def test_espeak_alias() -> None:
    import shutil
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    assert load_synthesizer("espeak").engine == "espeak-ng"
