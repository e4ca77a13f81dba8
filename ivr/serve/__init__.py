"""`ivr serve`: the SIP application (server, call runner, transfer), its front, bench-sip and soak."""

DEFAULT_HTTP_PORT = 9470
"""`ivr serve --http-port`: /metrics, /healthz and /readyz (ivr.serve.health)."""
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
"""Where worker processes write their metrics for the supervisor to add up (set before prometheus_client loads)."""
