"""A small spoken dev set for recognition: bank-flow caller turns, synthetic voices, a telephone line.

Each text of `utterances.yaml` is spoken by several voices (espeak-ng accents and variants, Piper at a
few speeds), then sent down a simulated line: band-limited to 300-3400 Hz, resampled to 8 kHz, G.711
mu-law coded, with light noise on every third turn. The audio is cached as 8 kHz WAV files, so every
recognizer setting hears the very same samples. The `check` split uses other texts and other voices
than `tune`, and is only read to confirm what was chosen on `tune`.
"""

from __future__ import annotations

import argparse
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from telephony.audio.audiofile import read_audio, write_wav
from telephony.audio.pcm import clip_int16
from telephony.audio.resample import resample
from telephony.yamlfile import read_yaml

LINE_RATE_HZ = 8000
BAND_HZ = (300.0, 3400.0)
NOISE_SNR_DB = 20.0
NOISY_EVERY = 3
"""Every third turn (by index in its split) gets white noise at NOISE_SNR_DB."""
PAD_MS = 150
"""Silence around each turn, like the VAD's pre-roll and the tail the session passes on."""
UTTERANCES = Path(__file__).with_name("utterances.yaml")
SPLITS = ("tune", "check")


@dataclass(frozen=True)
class Voice:
    name: str
    engine: str
    """'espeak-ng' or 'piper'."""
    variant: str = ""
    """espeak-ng: voice[+variant]."""
    speed: float = 1.0


VOICES: dict[str, tuple[Voice, ...]] = {
    "tune": (
        Voice("espeak us+m3", "espeak-ng", "en-us+m3"),
        Voice("espeak scotland+m3", "espeak-ng", "en-gb-scotland+m3"),
        Voice("espeak caribbean+f2", "espeak-ng", "en-029+f2", 1.1),
        Voice("espeak rp+f4 slow", "espeak-ng", "en-gb-x-rp+f4", 0.9),
        Voice("piper 1.0", "piper", speed=1.0),
        Voice("piper 1.25", "piper", speed=1.25),
    ),
    "check": (
        Voice("espeak nyc+m5", "espeak-ng", "en-us-nyc+m5"),
        Voice("espeak lancaster+f3", "espeak-ng", "en-gb-x-gbclan+f3", 1.05),
        Voice("espeak westmidlands+m2", "espeak-ng", "en-gb-x-gbcwmd+m2"),
        Voice("piper 0.85", "piper", speed=0.85),
    ),
}


@dataclass(frozen=True)
class Turn:
    split: str
    index: int
    text: str
    node: str
    """menu | anything_else | confirm | digits."""
    means: str
    voice: Voice
    noisy: bool
    path: Path
    """The 8 kHz line audio."""


def load_texts(path: Path = UTTERANCES) -> dict[str, list[dict[str, str]]]:
    data = read_yaml(path, "utterances")
    return {split: [{k: str(v) for k, v in item.items()} for item in data[split]] for split in SPLITS}


def build(cache_dir: Path, splits: tuple[str, ...] = SPLITS) -> list[Turn]:
    """Every (text, voice) turn of the splits, synthesized and put through the line once (cached)."""
    texts = load_texts()
    turns: list[Turn] = []
    synths: dict[Voice, object] = {}
    for split in splits:
        for index, item in enumerate(texts[split]):
            for voice in VOICES[split]:
                noisy = (index + VOICES[split].index(voice)) % NOISY_EVERY == 0
                key = hashlib.sha256(f"{voice}|{item['text']}|{noisy}".encode()).hexdigest()[:16]
                path = cache_dir / split / f"{key}.wav"
                if not path.exists():
                    if voice not in synths:
                        synths[voice] = _synthesizer(voice)
                    audio, rate = _speak(synths[voice], item["text"])
                    seed = int(key[:8], 16)
                    write_wav(path, telephone_line(audio, rate, NOISE_SNR_DB if noisy else None, seed),
                              LINE_RATE_HZ)
                turns.append(Turn(split, index, item["text"], item["node"], item["means"], voice, noisy, path))
    return turns


def _synthesizer(voice: Voice) -> object:
    if voice.engine == "piper":
        from tts.piper_tts import PiperSynthesizer

        return PiperSynthesizer(length_scale=1.0 / voice.speed)
    from tts.espeak import EspeakSynthesizer

    return EspeakSynthesizer(voice.variant, words_per_minute=round(175 * voice.speed))


def _speak(synth: object, text: str) -> tuple[np.ndarray, int]:
    audio = synth.synthesize(text)  # type: ignore[attr-defined]
    return np.asarray(audio.samples, dtype=np.int16), int(audio.sample_rate_hz)


def telephone_line(samples: np.ndarray, rate_hz: int, snr_db: float | None, seed: int) -> np.ndarray:
    """int16 speech at any rate -> int16 8 kHz as heard after a G.711 mu-law telephone line."""
    from scipy.signal import butter, sosfilt

    from telephony.audio.g711 import mulaw_decode, mulaw_encode

    x = samples.astype(np.float64)
    sos = butter(4, BAND_HZ, btype="bandpass", fs=rate_hz, output="sos")
    x = sosfilt(sos, x)
    x = resample(clip_int16(x), rate_hz, LINE_RATE_HZ).astype(np.float64)
    pad = np.zeros(LINE_RATE_HZ * PAD_MS // 1000)
    x = np.concatenate([pad, x, pad])
    if snr_db is not None:
        rng = np.random.default_rng(seed)
        speech_power = float(np.mean(x[x != 0] ** 2)) if np.any(x) else 1.0
        noise = rng.standard_normal(x.size)
        noise = sosfilt(butter(4, BAND_HZ, btype="bandpass", fs=LINE_RATE_HZ, output="sos"), noise)
        noise *= np.sqrt(speech_power / (10 ** (snr_db / 10)) / float(np.mean(noise ** 2)))
        x = x + noise
    pcm = clip_int16(x)
    return mulaw_decode(mulaw_encode(pcm)).astype(np.int16)


def read_turn(turn: Turn) -> np.ndarray:
    return read_audio(turn.path).mono()


def split_parser(prog: str, doc: str | None) -> argparse.ArgumentParser:
    """The options every dev-set evaluation takes: which split, where its audio is cached, a JSON file."""
    p = argparse.ArgumentParser(prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--split", choices=SPLITS, default="tune")
    p.add_argument("--cache", type=Path, default=Path("~/.cache/ivr/asreval").expanduser())
    p.add_argument("--json", type=Path, help="write every row and the table here")
    return p
