"""One call's session, the CLI, config, recording and benchmarks of the IVR agent."""

__version__ = "0.1.0"
