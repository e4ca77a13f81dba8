"""Transports that carry a call's audio: G.711, the WAV-file transport (and the SIP bridge)."""
