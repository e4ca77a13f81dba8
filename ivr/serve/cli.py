"""`ivr serve`: the subcommand, registered into the `ivr` CLI by `register(subparsers)`."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import signal
import threading
import time
from pathlib import Path
from typing import Any

from ivr.serve import DEFAULT_HTTP_PORT
from telephony.sip.config import DEFAULT_SIP_PORT, DEFAULT_TLS_PORT, SRTP_MODES, SipConfig, load_sip_config

log = logging.getLogger(__name__)

SIP_STALL_S = 10.0
"""The SIP thread polls every 10 ms; this long without a poll, it hangs and the watchdog pings stop."""


def register(subparsers: Any) -> None:
    from ivr.cliargs import add_model_args, add_webhook_args

    serve = subparsers.add_parser("serve", help="answer SIP calls (UDP, TCP, optionally TLS) with the agent")
    serve.add_argument("--sip-config", help="SIP settings YAML (a `sip:` mapping or the whole file): "
                       "allow, transfer_targets, transfer_default, webhook_url, rtp_timeout_s, ...")
    serve.add_argument("--bind", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help=f"SIP port (default {DEFAULT_SIP_PORT})")
    serve.add_argument("--rtp-port", type=int, help="first RTP port (default 4000)")
    serve.add_argument("--rtp-port-range", type=int, metavar="N", help="RTP/RTCP ports used from --rtp-port on, "
                       "reused in turn (default 200; 0: no bound)")
    serve.add_argument("--transaction-timeout", type=float, metavar="S", help="SIP transaction timeout (RFC "
                       "3261's 64*T1, 32 s): an INVITE never ACKed or a BYE never answered frees its slot after "
                       "S seconds (default 5)")
    serve.add_argument("--out", help="per-call outputs under OUT/CALL_ID/ (default calls)")
    serve.add_argument("--max-calls", type=int, help="concurrent calls; above: 503 (default 3); above 3, worker "
                       "processes behind a Kamailio proxy on --port (workers on the next ports; needs kamailio)")
    serve.add_argument("--remote-worker", action="append", metavar="SIP:HOST:PORT",
                       help="a worker on another machine (an `ivr serve --allow THIS_HOST/32` there) that the "
                       "Kamailio front also sends calls to, probed and failed over like local ones (repeatable); "
                       "with --max-calls 0 this machine is only the front")
    serve.add_argument("--inference", metavar="SOCKET",
                       help="use the models of a shared inference service (`ivr infer --socket SOCKET`) instead "
                       "of loading them in this process")
    serve.add_argument("--shared-inference", action="store_true",
                       help="with worker processes (--max-calls above 3): start one `ivr infer` for all of them")
    serve.add_argument("--admit-budget-ms", type=float, metavar="MS",
                       help="admission by measured headroom: with a call up, refuse new calls (503) while the "
                       "recent replies' voice-to-voice p95 is over MS or the CPU over --admit-max-cpu (default 0: "
                       "off; 1000 keeps admitted callers under a second)")
    serve.add_argument("--admit-max-cpu", type=float, metavar="FRACTION",
                       help="with --admit-budget-ms: CPU busy fraction of all cores above which no call is taken "
                       "(default 0.9)")
    serve.add_argument("--worker-of", metavar="PROXY_ADDR", help=argparse.SUPPRESS)  # set by ivr.serve.front
    serve.add_argument("--allow", action="append", metavar="CIDR",
                       help="trunk source allowed to call (repeatable); others get 403 (default: any)")
    serve.add_argument("--transfer-target", action="append", metavar="FLOW_TARGET=SIP_URI",
                       help="where a flow's transfer target goes, e.g. sip:queue@agents=sip:desk@10.0.0.5 "
                       "(repeatable); a bare SIP URI sets the default for all targets")
    add_webhook_args(serve, "the call events (call.started, call.ended, call.transferred, call.escalated, "
                     "dialog.failed) as signed JSON POSTs, retried from the call store's outbox (see the README's "
                     "Webhooks section)")
    serve.add_argument("--rtp-timeout", type=float, help="end a call after this many seconds without RTP "
                       "(default 30; 0: never)")
    serve.add_argument("--grace", type=float, help="on SIGTERM, let live calls go on for up to this many "
                       "seconds (default 30); a second signal hangs up at once")
    serve.add_argument("--register", metavar="SIP_URI",
                       help="REGISTER this address of record with its registrar/trunk, e.g. sip:agent@pbx.example.com")
    serve.add_argument("--auth-user", help="digest user name for --register (default: the URI's user part)")
    serve.add_argument("--auth-password-env", metavar="VAR",
                       help="environment variable holding the digest password (never the password itself)")
    serve.add_argument("--register-interval", type=int, help="registration lifetime in seconds; "
                       "re-registered before it runs out (default 300)")
    serve.add_argument("--tls-cert", metavar="FILE", help="PEM certificate: also listen for SIP over TLS")
    serve.add_argument("--tls-key", metavar="FILE", help="PEM private key of --tls-cert")
    serve.add_argument("--tls-port", type=int, help=f"SIP TLS port (default {DEFAULT_TLS_PORT})")
    serve.add_argument("--srtp", choices=SRTP_MODES, help="SRTP with SDES keys: off (default), optional (when the "
                       "caller offers it), mandatory (plain RTP offers get 488)")
    serve.add_argument("--keep-call-files", action="store_true",
                       help="keep each call's plain folder (recording.wav, events.jsonl, sip.json) after the call "
                       "store has it encrypted; a privacy risk, for debugging (default: removed once stored)")
    serve.add_argument("--http-port", type=int, default=DEFAULT_HTTP_PORT,
                       help=f"port of /metrics (Prometheus), /healthz and /readyz (default {DEFAULT_HTTP_PORT}; "
                       "0: none); behind the Kamailio front, workers use the next ports")
    serve.add_argument("--http-bind", default="127.0.0.1",
                       help="address of the HTTP port (default 127.0.0.1; a management network, never the trunk)")
    serve.add_argument("--pjsip-log-level", type=int,
                       help="pjsip console log level 0-6 (default 1); above 3 prints SIP messages with caller numbers")
    add_model_args(serve)
    serve.add_argument("--models-dir", help="intent model versions: the accepted one is used, and one accepted "
                       "later serves the calls after it (default $IVR_MODELS_DIR, else models/intents under the "
                       "store's data directory; see `ivr models`)")
    serve.set_defaults(func=cmd_serve)

    bench = subparsers.add_parser("bench-sip", help="voice-to-voice latency and concurrent calls, measured "
                                  "over SIP from the caller's side (needs sipp)")
    bench.add_argument("--calls", type=int, default=4, help="calls one at a time for p50/p95 (default 4)")
    bench.add_argument("--ramp", help="concurrency levels, e.g. 1,2,3 (default 1,2,4,... up to the call limit)")
    bench.add_argument("--max-concurrency", type=int, default=8, help="highest level of the default ramp")
    bench.add_argument("--stagger", type=float, default=0.0, metavar="S",
                       help="in each ramp level, start the i-th call i*S seconds after the first (default 0: all "
                       "at once, so every caller speaks at the same moment: the worst case)")
    bench.add_argument("--serve-log", type=Path, metavar="FILE", help="append the server's output to FILE")
    bench.add_argument("--shared-inference", action="store_true",
                       help="the server's workers share one inference service (ivr serve --shared-inference)")
    bench.add_argument("--admit-budget-ms", type=float, metavar="MS",
                       help="the server admits calls by measured headroom (ivr serve --admit-budget-ms); "
                       "calls it refuses (503) are counted apart, their latency is not")
    bench.add_argument("--no-compare", dest="compare", action="store_false",
                       help="skip the calls one at a time under the old settings (turns ended by 500 ms of "
                       "silence, no prompt cache) that are otherwise measured beside the current ones")
    bench.add_argument("--json", default="bench-results/bench-sip.json", help="where to write the JSON results")
    add_model_args(bench)
    bench.set_defaults(func=cmd_bench_sip)

    soak = subparsers.add_parser("bench-soak", help="many sequential calls through ivr serve beside hostile "
                                 "traffic; the server's open files, threads and memory at the start and end")
    soak.add_argument("--calls", type=int, default=200, help="at least this many sequential calls (default 200)")
    soak.add_argument("--minutes", type=float, default=30.0, help="and at least this long (default 30)")
    soak.add_argument("--call-seconds", type=float, default=30.0,
                      help="each call's length before the caller hangs up (default 30: greeting, question, answer)")
    soak.add_argument("--json", default="bench-results/bench-soak.json", help="where to write the JSON results")
    add_model_args(soak)
    soak.set_defaults(func=cmd_bench_soak)


def cmd_serve(args: argparse.Namespace) -> int:
    from ivr.errors import IvrError
    from ivr.serve.kamailio import remote_uri
    from telephony.sip.endpoint import MAX_ANSWERED_CALLS

    config = _sip_config(args)
    if args.worker_of:  # a worker behind the proxy, which applies the allow-list: only the proxy may call
        config = dataclasses.replace(config, allow=(f"{args.worker_of}/32",))
    elif config.max_calls > MAX_ANSWERED_CALLS or config.remote_workers:
        if config.register or config.tls_cert:
            raise IvrError("--register and --tls-cert work with one process (--max-calls up to "
                           f"{MAX_ANSWERED_CALLS}, no --remote-worker); with more, the Kamailio proxy in front "
                           "takes the calls")
        try:
            config = dataclasses.replace(config, remote_workers=tuple(remote_uri(u) for u in config.remote_workers))
        except ValueError as exc:
            raise IvrError(str(exc)) from None
        return _serve_behind_front(config, args)
    return _serve_here(config, args)


def _sip_config(args: argparse.Namespace) -> SipConfig:
    """The SIP settings from --sip-config and the flags; fails on a missing password or secret variable
    now, before the models load."""
    targets: dict[str, str] = {}
    default = None
    for item in args.transfer_target or []:
        if "=" in item and not item.startswith(("sip:", "sips:")) or item.count("=") == 1 and "=sip" in item:
            name, uri = item.split("=", 1)
            targets[name] = uri
        else:
            default = item
    config = load_sip_config(
        args.sip_config, bind=args.bind, port=args.port, rtp_port=args.rtp_port, out_dir=args.out,
        rtp_port_range=args.rtp_port_range, transaction_timeout_s=args.transaction_timeout,
        max_calls=args.max_calls, pjsip_log_level=args.pjsip_log_level, allow=args.allow,
        webhook_url=args.webhook, webhook_secret_env=args.webhook_secret_env, rtp_timeout_s=args.rtp_timeout,
        shutdown_grace_s=args.grace,
        transfer_default=default, register=args.register, auth_user=args.auth_user,
        auth_password_env=args.auth_password_env, register_interval_s=args.register_interval,
        tls_cert=args.tls_cert, tls_key=args.tls_key, tls_port=args.tls_port, srtp=args.srtp,
        admit_budget_ms=args.admit_budget_ms, admit_max_cpu=args.admit_max_cpu, remote_workers=args.remote_worker)
    config.auth_password()
    config.webhook_secret()
    if targets:
        config = dataclasses.replace(config, transfer_targets={**config.transfer_targets, **targets})
    return config


def _serve_here(config: SipConfig, args: argparse.Namespace) -> int:
    """One process answers the calls: HTTP first (/readyz says 503 meanwhile), the models, the store and
    its webhooks, then SIP; the watchdog loop until a signal; then a graceful stop."""
    from ivr.call.services import Services
    from ivr.cliargs import agent_config
    from ivr.learn.watch import watch_models
    from ivr.serve import metrics
    from ivr.serve.health import HealthServer, Readiness
    from ivr.serve.server import SipServer
    from ivr.serve.webhooks import start_webhooks, stop_webhooks
    from ivr.store.hook import SipStoreObserver, open_store_or_none

    readiness = Readiness("models", "sip", "store", "headroom")
    http = _start_http(args.http_bind, args.http_port, readiness)
    started = time.monotonic()
    services = Services.load(agent_config(args), presynthesize=not args.inference, inference=args.inference)
    # an accepted intent model now, and the ones accepted later (with a shared inference service, it watches)
    models = None if args.inference else watch_models(services, args.models_dir)
    load_s = time.monotonic() - started
    metrics.MODELS_LOAD_SECONDS.set(load_s)
    # with a shared inference service, the models are ready while it can be reached (the front routes new
    # calls elsewhere while it restarts; calls in progress hear the fallbacks)
    readiness.set("models", services.inference.available if services.inference is not None else True)
    server = SipServer(services, config)
    server.observers.append(metrics.CallMetrics(on_reply=server.reply_heard if server.headroom.enabled else None))
    store = open_store_or_none()
    if store is not None:
        store.config.key()  # a new recording key is made (and announced) now, not at the first call
        server.observers.append(SipStoreObserver(store, keep_files=args.keep_call_files
                                                 or store.config.keep_call_files))
    readiness.set("store", store.reachable if store is not None else False)
    webhooks = start_webhooks(config, store, server.observers)
    stop, hurry = _shutdown_signals()
    server.start()
    readiness.set("sip", lambda: server.endpoint.running and not stop.is_set())  # stopping: route no calls here
    readiness.set("headroom", lambda: server.headroom.refusal(server.live_count()) is None)
    tls = f"; TLS on {config.tls_port}" if config.tls_cert else ""
    web = f"; metrics and health on {http.url}" if isinstance(http, HealthServer) else ""
    loaded = (f"models from the inference service (pid {services.inference.hello.pid})"
              if services.inference is not None and services.inference.hello is not None
              else f"models loaded in {load_s:.1f} s")
    print(f"ivr serve: ready: listening on sip:{config.bind}:{config.port} (UDP, TCP{tls}); {loaded}{web}; "
          f"calls in {config.out_dir}/; at most {server.config.max_calls} calls at once", flush=True)
    code = _watch(server, stop)
    if code:
        return code
    if server.live_count():
        print(f"ivr serve: stopping; {server.live_count()} call(s) may finish "
              f"(up to {config.shutdown_grace_s:.0f} s)", flush=True)
    server.stop(config.shutdown_grace_s, hurry)
    if models is not None:
        models.stop()
    stop_webhooks(webhooks)
    if http is not None:
        http.stop()
    print(f"ivr serve: stopped ({server.calls_answered} calls answered, {server.calls_rejected} refused, "
          f"{server.calls_forbidden} forbidden)", flush=True)
    return 0


def _watch(server: Any, stop: threading.Event) -> int:
    """Tells systemd (or the supervisor) that we are ready, then pings its watchdog while the SIP thread
    polls, until `stop`; 1 when the SIP thread stopped, else 0."""
    from ivr.serve.sdnotify import Notifier

    notifier = Notifier()
    notifier.ready(f"answering calls on sip:{server.config.bind}:{server.config.port}")
    stalled = False
    while not stop.wait(0.5):
        if not server.endpoint.running:
            log.error("the SIP thread stopped")
            return 1
        # the watchdog hears from us only while the SIP thread polls: a hung one gets us restarted
        idle_s = time.monotonic() - server.endpoint.last_poll
        if idle_s < SIP_STALL_S:
            notifier.watchdog()
        elif not stalled:
            log.error("the SIP thread has not polled for %.0f s; no more watchdog pings", idle_s)
        stalled = idle_s >= SIP_STALL_S
    notifier.stopping("stopping; live calls may finish")
    return 0


def _start_http(bind: str, port: int, readiness: Any) -> Any:
    """The /metrics, /healthz and /readyz server, started; None with port 0."""
    from ivr.errors import IvrError
    from ivr.serve.health import HealthServer

    if not port:
        return None
    try:
        return HealthServer(bind, port, readiness).start()
    except OSError as exc:
        raise IvrError(f"cannot listen for HTTP on {bind}:{port} ({exc.strerror}): choose another --http-port, "
                       "or 0 for none") from None


def _shutdown_signals() -> tuple[threading.Event, threading.Event]:
    """(stop, hurry): SIGINT or SIGTERM sets `stop` (live calls may finish); a second one also sets
    `hurry` (hang up now)."""
    stop = threading.Event()
    hurry = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        if stop.is_set():
            log.info("signal %d again: hanging up now", signum)
            hurry.set()
        else:
            log.info("signal %d: shutting down (live calls may finish)", signum)
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    return stop, hurry


def _serve_behind_front(config: SipConfig, args: argparse.Namespace) -> int:
    """`ivr serve --max-calls N` above one process's limit: workers behind Kamailio (ivr.serve.front)."""
    import os
    import shutil
    import sys
    import tempfile

    from ivr.serve import MULTIPROC_ENV

    # every worker writes its metrics here and the supervisor's /metrics adds them up; set before
    # prometheus_client is imported (it picks its storage then), so it also holds for the workers
    metrics_dir = tempfile.mkdtemp(prefix="ivr-metrics-") if args.http_port else None
    if metrics_dir is not None:
        os.environ[MULTIPROC_ENV] = metrics_dir
    from ivr.serve.front import TICK_S, Supervisor
    from ivr.serve.health import Readiness
    from ivr.serve.sdnotify import Notifier

    supervisor = Supervisor(config, sys.argv[1:], http_port=args.http_port,
                            inference=_inference_argv(sys.argv[1:], args) if args.shared_inference else None)
    readiness = Readiness("workers")
    readiness.set("workers", supervisor.ready)
    http = _start_http(args.http_bind, args.http_port, readiness)
    notifier = Notifier()
    stop, hurry = _shutdown_signals()
    try:
        supervisor.start()
        local = (f"{len(supervisor.workers)} workers on ports {supervisor.ports[0]}-{supervisor.ports[-1]}"
                 if supervisor.workers else "no local worker")
        remote = f" and {len(config.remote_workers)} remote" if config.remote_workers else ""
        print(f"ivr serve: listening on sip:{config.bind}:{config.port} (UDP, TCP; Kamailio in front of "
              f"{local}{remote}); "
              f"calls in {config.out_dir}/; at most {config.max_calls} calls at once", flush=True)
        status = supervisor.status()
        notifier.ready(status)
        while not stop.wait(TICK_S):  # workers and the proxy are restarted when they stop (Supervisor.tick)
            supervisor.tick()
            notifier.watchdog()
            if supervisor.status() != status:
                status = supervisor.status()
                notifier.status(status)
        notifier.stopping("stopping; live calls may finish")
        print("ivr serve: stopping; live calls may finish", flush=True)
        code = supervisor.stop(config.shutdown_grace_s, hurry)
    finally:
        supervisor.kill()
        if http is not None:
            http.stop()
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    print(f"ivr serve: stopped (exit code {code})", flush=True)
    return code


def _inference_argv(argv: list[str], args: argparse.Namespace) -> list[str]:
    """`ivr infer`'s command line for the supervisor's workers: the global options, then the model options
    that `serve` was given (the same flow, voices and recognizer as the workers would have loaded)."""
    globals_ = argv[:argv.index("serve")] if "serve" in argv else []
    models = [item for flag in ("config", "flow", "asr", "asr_model", "tts", "voice", "vad", "rate", "models_dir")
              if getattr(args, flag, None) is not None
              for item in (f"--{flag.replace('_', '-')}", str(getattr(args, flag)))]
    return [*globals_, "infer", *models]


def cmd_bench_sip(args: argparse.Namespace) -> int:
    from ivr.serve.bench import run_bench_sip

    report = run_bench_sip(args)
    return 0 if report["single"]["completed"] == report["single"]["calls"] else 1


def cmd_bench_soak(args: argparse.Namespace) -> int:
    from ivr.serve.soak import run_bench_soak

    report = run_bench_soak(args)
    return 0 if report["server_alive_at_end"] and report["server_exit_code"] == 0 else 1
