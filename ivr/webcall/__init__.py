"""Web calls: a browser talks to the agent over WebRTC (telephony.webrtc), served by the console.

`calls.WebCalls` loads the agent's models once (lazily, or at start) and answers each page's offer;
`runner.WebCallRunner` drives one call's CallSession with the one driver loop, as a phone call is driven;
`page` turns the call's events into the messages the page shows; `bench` measures voice-to-voice latency
from a Python WebRTC caller (`ivr bench --parts web`).
"""
