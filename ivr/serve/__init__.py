"""`ivr serve`: the SIP application (server, call runner, transfer), its front, bench-sip and soak."""
