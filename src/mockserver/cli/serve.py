"""`itsocr-mock serve`: run the mock server (gunicorn).

Every start-up mistake (an option out of range, the port in use, a fixture directory or a
state that cannot be used) ends in one line, ``itsocr-mock: error: ...``, and exit code 2,
before gunicorn starts. Once serving, SIGTERM stops the server gracefully (in-flight requests
finish; exit 0) and SIGINT (Ctrl-C) at once (exit 130); every request's changes to the state
are committed whole or not at all either way.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from mockserver.cli.common import (
    EXIT_USAGE,
    CommandError,
    check_address,
    fail,
    refuse_an_open_control_api,
)
from mockserver.settings import ENVIRONMENT, Settings
from mockserver.store import StateError, UnusableState, describe_state

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a program stopped by Ctrl-C


def add_serve_command(commands: Any) -> None:
    """Add the ``serve`` subcommand to `commands`, the subparsers of `itsocr-mock`."""
    serve = commands.add_parser("serve", help="run the mock server (gunicorn)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument(
        "--port", type=_port, default=8080, help="port (default 8080; 0 = any free one)"
    )
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    serve.add_argument(
        "--state",
        metavar="PATH",
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
        metavar="DIR",
        help="a directory of user fixtures: NAME.png + NAME.txt (repeatable; env "
        f"{ENVIRONMENT['fixtures']}, directories separated by ':')",
    )
    serve.add_argument(
        "--admin-token",
        metavar="TOKEN",
        help=f"require this bearer token on /_mock (env {ENVIRONMENT['admin_token']})",
    )
    serve.add_argument(
        "--no-control",
        action="store_true",
        help=f"serve no /_mock control API and ignore Prefer (env {ENVIRONMENT['control']}=0)",
    )
    serve.add_argument(
        "--log-level",
        type=str.upper,
        choices=LOG_LEVELS,
        help=f"default INFO; WARNING drops the access lines (env {ENVIRONMENT['log_level']})",
    )
    serve.add_argument(
        "--client-timeout",
        type=float,
        metavar="SECONDS",
        help="seconds an upload's body may take to arrive before the connection is cut "
        f"(default 30; env {ENVIRONMENT['client_timeout']})",
    )
    serve.set_defaults(handler=serve_command)


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"expected 0 to 65535, got {port}")
    return port


def serve_command(args: argparse.Namespace) -> int:
    """`itsocr-mock serve`."""
    # The address first, before the heavy imports: gunicorn would retry for five seconds.
    check_address(args.host, args.port)
    settings = _settings(args)
    from mockserver.errors import StateUnavailable
    from mockserver.fixtures import FixtureError
    from mockserver.logs import configure_logging, stop_logging
    from mockserver.serving import MockServer

    server = MockServer(settings, args.host, args.port, args.workers)
    configure_logging(settings.log_level)
    try:
        server.run()  # loads the app (and the fixtures) before any worker starts
    except FixtureError as failure:
        return fail(f"{failure} (check it with `itsocr-mock fixtures verify --fixtures DIR`)")
    # Redis down or refusing the password; a state file that cannot be created or written,
    # or that is not a usable state (each message names the state and what to do).
    except (StateUnavailable, UnusableState) as failure:
        return fail(str(failure))
    except StateError as failure:  # a Redis URL without the redis package, or a malformed one
        return fail(f"--state {describe_state(settings.state)}: {failure}")
    except SystemExit:  # gunicorn's way out, after any stop signal
        if not server.interrupted:
            raise
    finally:
        stop_logging()
    return EXIT_INTERRUPTED if server.interrupted else 0


def _settings(args: argparse.Namespace) -> Settings:
    """The settings from the environment and the command line, or a CommandError."""
    try:
        settings = Settings.from_environment(
            state=args.state,
            fixtures=tuple(Path(p) for p in args.fixtures) if args.fixtures else None,
            admin_token=args.admin_token,
            control=False if args.no_control else None,
            log_level=args.log_level,
            client_timeout=args.client_timeout,
            state_prefix=args.state_prefix,
            journal_limit=args.journal_limit,
        )
    except ValueError as failure:  # a malformed environment variable
        raise CommandError(str(failure), EXIT_USAGE) from None
    if settings.log_level not in LOG_LEVELS:
        problem = f"{ENVIRONMENT['log_level']} must be one of {', '.join(LOG_LEVELS)}"
        raise CommandError(f"{problem}, not {settings.log_level!r}", EXIT_USAGE)
    if args.workers < 1:
        raise CommandError("--workers must be at least 1", EXIT_USAGE)
    if settings.journal_limit < 1:
        raise CommandError("--journal-limit must be at least 1", EXIT_USAGE)
    if not settings.state_prefix:
        raise CommandError("--state-prefix must not be empty", EXIT_USAGE)
    if not 0 < settings.client_timeout < math.inf:  # nan and inf too
        raise CommandError("--client-timeout must be a positive number of seconds", EXIT_USAGE)
    if settings.in_memory and args.workers > 1:
        raise CommandError(
            "an in-memory state cannot be shared by several workers; use --state PATH",
            EXIT_USAGE,
        )
    if settings.control:
        refuse_an_open_control_api(args.host, settings.admin_token, or_else="--no-control")
    return settings
