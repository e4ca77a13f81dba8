"""`ivr infer --socket PATH`: the shared inference service for the call workers of this machine."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    from ivr.cliargs import add_model_args
    from ivr.infer.admission import START_CALLS

    infer = subparsers.add_parser("infer", help="hold the models once for every call worker of this machine "
                                  "(workers: ivr serve --inference SOCKET)")
    infer.add_argument("--socket", required=True, metavar="PATH",
                       help="unix socket to listen on; its key is written to PATH.key (mode 0600)")
    infer.add_argument("--threads", type=int, default=0,
                       help="requests run at once, nearest deadline first, and Whisper decodes at once, each on its "
                       "share of the cores (default: the CPU count)")
    infer.add_argument("--models-dir", help="intent model versions: the accepted one is used, and one accepted "
                       "later serves the requests after it (as `ivr serve --models-dir`)")
    infer.add_argument("--admit-start-calls", type=int, default=START_CALLS, metavar="N",
                       help="admission by headroom (workers' --admit-budget-ms): the machine's call limit to start "
                       "from; it grows while the replies stay inside the budget, and falls when they do not "
                       f"(default {START_CALLS})")
    infer.add_argument("--admit-max-calls", type=int, default=0, metavar="N",
                       help="a fixed ceiling on the machine's calls under admission by headroom (default: none)")
    add_model_args(infer)
    infer.set_defaults(func=cmd_infer)


def cmd_infer(args: argparse.Namespace) -> int:
    from ivr.call.services import Services
    from ivr.cliargs import agent_config
    from ivr.infer import READY_LINE
    from ivr.infer.admission import Admission
    from ivr.infer.server import InferenceService
    from ivr.learn.watch import watch_models

    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("signal %d: stopping the inference service", signum)
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    threads = args.threads or os.cpu_count() or 2
    services = Services.load(agent_config(args), presynthesize=True, asr_workers=threads)
    models = watch_models(services, args.models_dir)  # the workers' turns get the accepted intent model
    admission = Admission(start_calls=args.admit_start_calls, max_calls=args.admit_max_calls)
    service = InferenceService(services, Path(args.socket), threads=threads, admission=admission)
    print(f"{READY_LINE} on {args.socket}; models loaded in {services.load_s:.1f} s", flush=True)
    service.serve(stop)
    models.stop()
    served = service.scheduler.served
    busy, waits = service.scheduler.busy_s, service.scheduler.waits_by_op
    ops = ", ".join(f"{n} {op} ({1000 * busy[op] / n:.0f} ms each, waited p95 "
                    f"{np.percentile(list(waits[op]), 95) if waits[op] else 0.0:.0f} ms)"
                    for op, n in sorted(served.items()))
    admitted, stats = admission.state(), service.stats()
    print(f"ivr infer: stopped after {sum(served.values())} requests ({ops or 'none'}) from at most "
          f"{service.peak_workers} workers at once; queue wait p50 {stats['wait_p50_ms']:.0f} ms, p95 "
          f"{stats['wait_p95_ms']:.0f} ms; admission: {admitted['admitted']} calls admitted, "
          f"{admitted['refused']} refused, limit {admitted['limit']}", flush=True)
    return 0
