"""Text chat on the same brain as a call: sessions (session.py), their hub with abuse limits (hub.py), the
JSON protocol (protocol.py) and the models they share (brain.py). Served by the console (routes/chat.py)."""
