"""The SIP bridge: `ivr serve` answers real calls with pjsua2 and runs a CallSession behind each one."""
