"""Where the models come from: the registry of model names, source packages and paths."""
