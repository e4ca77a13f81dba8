"""`ivr serve`: the subcommand, registered into the `ivr` CLI by `register(subparsers)`."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from pathlib import Path
from typing import Any

from telephony.sip.config import DEFAULT_SIP_PORT, SipConfig

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    from ivr.cli import _common_model_args

    serve = subparsers.add_parser("serve", help="answer SIP calls (UDP and TCP) with the agent")
    serve.add_argument("--bind", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=DEFAULT_SIP_PORT, help="SIP port (default 5060)")
    serve.add_argument("--rtp-port", type=int, default=0, help="first RTP port (default 4000)")
    serve.add_argument("--out", default="calls", help="per-call outputs under OUT/CALL_ID/ (default calls)")
    serve.add_argument("--max-calls", type=int, default=8, help="concurrent calls; above: 503 (default 8)")
    serve.add_argument("--pjsip-log-level", type=int, default=1,
                       help="pjsip console log level 0-6; above 3 prints SIP messages with caller numbers")
    _common_model_args(serve)
    serve.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    from ivr.cli import _config
    from ivr.services import Services
    from telephony.sip.server import SipServer

    config = SipConfig(bind=args.bind, port=args.port, rtp_port=args.rtp_port, out_dir=Path(args.out),
                       max_calls=args.max_calls, pjsip_log_level=args.pjsip_log_level)
    services = Services.load(_config(args))
    server = SipServer(services, config)
    from ivr.store.hook import SipStoreObserver, open_store_or_none
    store = open_store_or_none()
    if store is not None:
        server.observers.append(SipStoreObserver(store))
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("signal %d: shutting down", signum)
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    server.start()
    print(f"ivr serve: listening on sip:{config.bind}:{config.port} (UDP, TCP); calls in {config.out_dir}/",
          flush=True)
    while not stop.wait(0.5):
        if not server.endpoint.running:
            log.error("the SIP thread stopped")
            return 1
    server.stop()
    print(f"ivr serve: stopped ({server.calls_answered} calls answered, {server.calls_rejected} refused)",
          flush=True)
    return 0
