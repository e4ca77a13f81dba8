"""Conversation tests: whole simulated calls from scenario files, checked against what must happen (`ivr test`).

scenario: the file format and its loader; voices: the simulated callers' voices (cached); caller: the
reactive caller; runner: runs scenarios on the shared models; expect: what happened and the checks;
report: table, JSON, JUnit; cli: the `ivr test` command. The line simulation is telephony.line.
"""
