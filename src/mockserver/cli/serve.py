"""`itsocr-mock serve`: run the mock server (gunicorn)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mockserver.cli.common import _fail
from mockserver.settings import ENVIRONMENT, Settings
from mockserver.store import StateError, describe_state


def add_serve_command(commands: Any) -> None:
    """Add the ``serve`` subcommand to `commands`, the subparsers of `itsocr-mock`."""
    serve = commands.add_parser("serve", help="run the mock server (gunicorn)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 = any free)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    serve.add_argument(
        "--state",
        help="SQLite state file, :memory:, or redis://[:PASSWORD@]HOST:PORT/DB (also rediss://) "
        f"shared by several mocks (env {ENVIRONMENT['state']}; "
        "default ~/.local/state/itsocr-mock/state.sqlite3)",
    )
    serve.add_argument(
        "--state-prefix",
        help="the prefix of this mock's keys in a Redis state, one per deployment "
        f"(default itsocr-mock:; env {ENVIRONMENT['state_prefix']})",
    )
    serve.add_argument(
        "--journal-limit",
        type=int,
        help="journal entries kept, the oldest dropped past it "
        f"(default 10000; env {ENVIRONMENT['journal_limit']})",
    )
    serve.add_argument(
        "--fixtures",
        action="append",
        help="a directory of user fixtures: NAME.png + NAME.txt (repeatable; env "
        f"{ENVIRONMENT['fixtures']}, directories separated by ':')",
    )
    serve.add_argument(
        "--admin-token",
        help=f"require this bearer token on /_mock (env {ENVIRONMENT['admin_token']})",
    )
    serve.add_argument(
        "--no-control",
        action="store_true",
        help=f"serve no /_mock control API and ignore Prefer (env {ENVIRONMENT['control']}=0)",
    )
    serve.add_argument(
        "--log-level",
        help=f"DEBUG, INFO (default), WARNING... (env {ENVIRONMENT['log_level']})",
    )
    serve.add_argument(
        "--client-timeout",
        type=float,
        help="seconds an upload's body may take to arrive before the connection is cut "
        f"(default 30; env {ENVIRONMENT['client_timeout']})",
    )
    serve.set_defaults(handler=serve_command)


def serve_command(args: argparse.Namespace) -> int:
    """`itsocr-mock serve`."""
    from mockserver.control_access import is_loopback
    from mockserver.errors import StateUnavailable
    from mockserver.fixtures import FixtureError
    from mockserver.logs import configure_logging, stop_logging
    from mockserver.serving import MockServer

    settings = Settings.from_environment(
        state=args.state,
        state_prefix=args.state_prefix,
        journal_limit=args.journal_limit,
        fixtures=tuple(Path(p) for p in args.fixtures) if args.fixtures else None,
        admin_token=args.admin_token,
        control=False if args.no_control else None,
        log_level=args.log_level,
        client_timeout=args.client_timeout,
    )
    if args.workers < 1:
        return _fail("--workers must be at least 1")
    if settings.journal_limit < 1:
        return _fail("--journal-limit must be at least 1")
    if not settings.state_prefix:
        return _fail("--state-prefix must not be empty")
    if settings.client_timeout <= 0:
        return _fail("--client-timeout must be a positive number of seconds")
    if settings.in_memory and args.workers > 1:
        return _fail("an in-memory state cannot be shared by several workers; use --state PATH")
    if settings.control and not settings.admin_token and not is_loopback(args.host):
        return _fail(
            f"refusing to serve the control API on {args.host} without protection: "
            "pass --admin-token TOKEN (or set ITSOCR_MOCK_ADMIN_TOKEN), or --no-control"
        )
    configure_logging(settings.log_level)
    try:
        server = MockServer(settings, args.host, args.port, args.workers)
    except OSError as failure:  # the port, reserved up front for several workers
        return _fail(f"cannot listen on {args.host}:{args.port}: {failure.strerror or failure}")
    try:
        server.run()  # loads the app (and the fixtures) before any worker starts
    except FixtureError as failure:
        return _fail(f"{failure} (check it with `itsocr-mock fixtures verify --fixtures DIR`)")
    except StateUnavailable as failure:  # Redis down, or refusing the password, at start-up
        return _fail(str(failure))
    except StateError as failure:  # a Redis URL without the redis package, or a malformed one
        return _fail(f"--state {describe_state(settings.state)}: {failure}")
    finally:
        stop_logging()
    return 0
