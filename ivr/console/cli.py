"""`ivr console`: serve the supervisor web app; `ivr console adduser NAME --role admin` manages users."""

from __future__ import annotations

import argparse
import getpass
import os
import signal
import sys
from types import FrameType
from typing import Any

from ivr.cliargs import add_model_args, add_webhook_args
from ivr.errors import IvrError
from ivr.store.cli import add_store_args, open_store

WS_MAX_BYTES = 65536
"""A WebSocket message larger than this is refused by the server itself (close 1009) before the chat reads it
(which refuses anything over ivr.chat.protocol.MAX_FRAME_BYTES with an error)."""


def register(subparsers: Any) -> None:
    console = subparsers.add_parser("console", help="the supervisor web app: calls, recordings, transcripts")
    console.add_argument("--bind", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    console.add_argument("--port", type=int, default=8080, help="HTTP port (default 8080)")
    console.add_argument("--secure-cookies", action="store_true",
                         help="mark cookies Secure (when a TLS proxy is in front; automatic with --tls-cert)")
    console.add_argument("--tls-cert", help="serve HTTPS with this certificate (PEM)")
    console.add_argument("--tls-key", help="the certificate's private key (PEM)")
    add_web_call_args(console)
    console.add_argument("--chat-flow", help="the flow the text chat runs (default: the bundled bank flow)")
    console.add_argument("--no-chat", action="store_true",
                         help="no text chat: /chat/ws and /api/chat answer 'unavailable' (no models loaded)")
    console.add_argument("--chat-origin", metavar="URL", action="append", default=[],
                         help="a site whose pages may use the chat (https://bank.example; repeat for more); "
                              "default: any site")
    add_webhook_args(console, "the chats' and web calls' events (call.started, call.ended, call.transferred "
                     "with channel chat, call.callback_requested with channel web, ...) through the store's "
                     "outbox, as ivr serve --webhook does")
    console.add_argument("--webhook-console-url", metavar="URL", default="",
                         help="the console's public base URL, for the events' call_url links")
    add_store_args(console)
    add_model_args(console)
    console.add_argument("--models-dir", help="intent model versions the admin's Models page lists, accepts and "
                         "rolls back (default $IVR_MODELS_DIR, else models/intents under the store's data directory)")
    console.set_defaults(func=cmd_console)
    sub = console.add_subparsers(dest="console_command")

    add = sub.add_parser("adduser", help="create a console user (password from a prompt or $IVR_NEW_PASSWORD)")
    add.add_argument("name")
    add.add_argument("--role", choices=["admin", "supervisor"], default="supervisor")
    add_store_args(add)
    add.set_defaults(func=cmd_adduser)

    passwd = sub.add_parser("passwd", help="set a user's password (and unlock the account)")
    passwd.add_argument("name")
    add_store_args(passwd)
    passwd.set_defaults(func=cmd_passwd)


def _new_password() -> str:
    env = os.environ.get("IVR_NEW_PASSWORD")
    if env:
        return env
    if not sys.stdin.isatty():
        raise IvrError("give the password in $IVR_NEW_PASSWORD or run in a terminal")
    first = getpass.getpass("password: ")
    if first != getpass.getpass("again: "):
        raise IvrError("the passwords differ")
    return first


def cmd_adduser(args: argparse.Namespace) -> int:
    from ivr.console.auth import Users

    password = _new_password()
    with open_store(args) as store:
        user = Users(store).add(args.name, args.role, password)
        store.audit("cli", "user-create", None, f"{user.name} ({user.role})")
    print(f"user {user.name} ({user.role}) created")
    return 0


def cmd_passwd(args: argparse.Namespace) -> int:
    from ivr.console.auth import Users

    password = _new_password()
    with open_store(args) as store:
        if not Users(store).reset_password(args.name, password):
            raise IvrError(f"no user {args.name}")
        store.audit("cli", "user-reset", None, args.name)
    print(f"password of {args.name} set")
    return 0


def cmd_console(args: argparse.Namespace) -> int:
    """Serve until SIGTERM or Ctrl-C (SIGINT), then stop gracefully, close the store and exit 0."""
    import uvicorn

    from ivr.console.app import create_app

    if bool(args.tls_cert) != bool(args.tls_key):
        raise IvrError("--tls-cert and --tls-key go together")
    store = open_store(args)
    outbox = None
    try:
        options, outbox = _console_webhooks(args, store)
        webcalls = web_calls(args, store, options)
        app = create_app(store, secure_cookies=args.secure_cookies or bool(args.tls_cert),
                         chat_hub=_chat_hub(args, store, options), webcalls=webcalls, models_dir=args.models_dir)
        if args.preload_agent:
            webcalls.preload()
        scheme = "https" if args.tls_cert else "http"
        print(f"ivr console: {scheme}://{args.bind}:{args.port}/ (database {store.engine.url.render_as_string()})",
              flush=True)
        # no access log: URLs carry search words and caller numbers from the filters
        server = uvicorn.Server(uvicorn.Config(app, host=args.bind, port=args.port, access_log=False,
                                               log_level="warning", ssl_certfile=args.tls_cert,
                                               ssl_keyfile=args.tls_key, ws_max_size=WS_MAX_BYTES))
        if not _serve(server) and not server.started:
            raise IvrError(f"the console did not start on {args.bind}:{args.port}")
    finally:
        if outbox is not None:
            outbox.stop()
        store.close()
    return 0


def add_web_call_args(p: argparse.ArgumentParser) -> None:
    """The web call page's options (`web_calls` reads them, `cmd_console` --preload-agent)."""
    p.add_argument("--preload-agent", action="store_true",
                   help="load the agent's models at start for the web call page (default: on the first web call)")
    p.add_argument("--web-calls-dir", default="calls/web",
                   help="web calls' folders until the store has them (default calls/web)")
    p.add_argument("--max-web-calls", type=int, default=2, help="web calls at once (default 2)")
    p.add_argument("--keep-call-files", action="store_true",
                   help="keep each web call's plain folder after the store has it (a privacy risk)")


def web_calls(args: argparse.Namespace, store: Any, webhooks: Any) -> Any:
    """The web call page's agent: the models of the model arguments, calls stored with source "web" (and their
    events put in the webhook outbox when there is one)."""
    from pathlib import Path

    from ivr.call.services import Services
    from ivr.cliargs import agent_config
    from ivr.store.hook import SipStoreObserver
    from ivr.webcall.calls import WebCalls
    from ivr.webcall.runner import WebCallSettings

    keep = args.keep_call_files or store.config.keep_call_files
    settings = WebCallSettings(out_dir=Path(args.web_calls_dir), max_calls=args.max_web_calls, keep_call_files=keep,
                               webhook_url=args.webhook or "")
    config = agent_config(args)
    observer = SipStoreObserver(store, keep_files=keep, source="web")
    observer.webhooks = webhooks
    return WebCalls(settings, lambda: Services.load(config, presynthesize=True), observers=[observer])


def _chat_hub(args: argparse.Namespace, store: Any, webhooks: Any) -> Any:
    """The text chat's hub, its flow and models loaded now (not on the first visitor), unless --no-chat."""
    from ivr.chat.brain import ChatBrain
    from ivr.chat.hub import ChatHub, ChatLimits, chat_off

    if args.no_chat:
        return ChatHub(store, chat_off)
    brain = ChatBrain.load(args.chat_flow)
    print(f"ivr console: text chat ready (flow {brain.machine.flow.name}, {brain.load_s:.1f} s)", flush=True)
    return ChatHub(store, brain, ChatLimits(origins=tuple(o.rstrip("/") for o in args.chat_origin)), webhooks=webhooks)


def _console_webhooks(args: argparse.Namespace, store: Any) -> tuple[Any, Any]:
    """(the chats' and web calls' webhook options, the started outbox worker that delivers them), or (None, None)."""
    from ivr.store.hookevents import WebhookOptions
    from ivr.store.outbox import OutboxWorker

    if not args.webhook:
        return None, None
    secret = None
    if args.webhook_secret_env:
        value = os.environ.get(args.webhook_secret_env, "")
        if not value:
            raise IvrError(f"the environment variable {args.webhook_secret_env} (--webhook-secret-env) is not set")
        secret = value.encode("utf-8")
    worker = OutboxWorker(store, args.webhook, secret)
    worker.start()
    return WebhookOptions(console_url=args.webhook_console_url, wake=worker.wake), worker


def _serve(server: Any) -> bool:
    """Run a uvicorn server with SIGINT and SIGTERM as requests to stop; True when one of them stopped it.

    uvicorn handles them while it runs, and afterwards raises the signal again for the handler that
    was there before it: here that is ours (asking a stopped server to stop again does nothing) rather
    than the default, which would kill the process (exit 143, or KeyboardInterrupt) before the store is
    closed.
    """
    stopped: list[int] = []

    def stop(sig: int, frame: FrameType | None) -> None:
        stopped.append(sig)
        server.handle_exit(sig, frame)  # before uvicorn's own handlers are in place: stop as soon as started

    before = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.run()
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
    return bool(stopped)
