"""`ivr console`: serve the supervisor web app; `ivr console adduser NAME --role admin` manages users."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from typing import Any

from ivr.errors import IvrError
from ivr.store.cli import add_store_args, open_store


def register(subparsers: Any) -> None:
    console = subparsers.add_parser("console", help="the supervisor web app: calls, recordings, transcripts")
    console.add_argument("--bind", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    console.add_argument("--port", type=int, default=8080, help="HTTP port (default 8080)")
    console.add_argument("--secure-cookies", action="store_true",
                         help="mark cookies Secure (when a TLS proxy is in front; automatic with --tls-cert)")
    console.add_argument("--tls-cert", help="serve HTTPS with this certificate (PEM)")
    console.add_argument("--tls-key", help="the certificate's private key (PEM)")
    add_store_args(console)
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
    import uvicorn

    from ivr.console.app import create_app

    if bool(args.tls_cert) != bool(args.tls_key):
        raise IvrError("--tls-cert and --tls-key go together")
    store = open_store(args)
    app = create_app(store, secure_cookies=args.secure_cookies or bool(args.tls_cert))
    scheme = "https" if args.tls_cert else "http"
    print(f"ivr console: {scheme}://{args.bind}:{args.port}/ (database {store.engine.url.render_as_string()})",
          flush=True)
    # no access log: URLs carry search words and caller numbers from the filters
    uvicorn.run(app, host=args.bind, port=args.port, access_log=False, log_level="warning",
                ssl_certfile=args.tls_cert, ssl_keyfile=args.tls_key)
    store.close()
    return 0
