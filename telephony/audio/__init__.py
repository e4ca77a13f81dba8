"""The audio of the line: frames, the PCM conversion, resampling, audio files, the recorder, G.711."""
