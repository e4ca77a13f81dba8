"""One call: the session, the one driver loop, typed events and their log, privacy, the shared services."""
