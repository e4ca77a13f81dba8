# Two commands for a fresh machine: `make run` and `make test` (see README.md).
VENV ?= .venv

.PHONY: setup run demo test bench lint

setup:
	scripts/setup.sh

run: setup
	$(VENV)/bin/ivr serve

demo: setup
	$(VENV)/bin/ivr call --script examples/balance.yaml --fast --out calls/demo

test:
	scripts/test.sh

bench: setup
	$(VENV)/bin/ivr bench

lint:
	$(VENV)/bin/ruff check . && $(VENV)/bin/mypy ivr asr tts dialog telephony models
