"""Speech synthesis backends, sentence streaming and the on-disk prompt cache.

Backends are imported lazily: `from tts.factory import load_synthesizer`.
"""

from tts.base import SpeechAudio, Synthesizer, TtsCapabilities
from tts.sentences import split_sentences

__all__ = ["SpeechAudio", "Synthesizer", "TtsCapabilities", "split_sentences"]
