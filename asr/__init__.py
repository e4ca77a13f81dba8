"""Voice activity detection, end-of-turn detection and speech recognition backends."""
