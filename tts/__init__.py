"""Speech synthesis backends, sentence streaming and the on-disk prompt cache."""
