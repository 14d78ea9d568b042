"""`itsocr-mock proxy`: forward to the real service, validate its answers, record fixtures."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from mockserver.cli.common import (
    check_address,
    count_argument,
    fail,
    refuse_an_open_control_api,
)
from mockserver.settings import ENVIRONMENT
from mockserver.store import MEMORY

STATE_FILE = "proxy-state.sqlite3"


def add_proxy_command(commands: Any) -> None:
    """Add the ``proxy`` subcommand to `commands`, the subparsers of `itsocr-mock`."""
    proxy = commands.add_parser(
        "proxy",
        help="forward to the real service, validate its answers, record them as fixtures",
        description="Forward /api/v1/ to the upstream, streaming; validate each answer against "
        "openapi.yaml (journal and access log); with --record, write each 200 answer as a "
        "fixture `serve --fixtures DIR` loads. Never writes a token or a header to disk.",
    )
    proxy.add_argument(
        "--upstream",
        default="https://itsocr.com",
        help="the service to forward to (default https://itsocr.com)",
    )
    proxy.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    proxy.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 = any free)")
    proxy.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    proxy.add_argument(
        "--record", type=Path, metavar="DIR", help="record each 200 answer as a fixture in DIR"
    )
    proxy.add_argument(
        "--budget",
        type=count_argument,
        metavar="N",
        help="forward at most N requests that can consume quota (a POST with a token); "
        "then answer 503 without contacting the upstream",
    )
    proxy.add_argument(
        "--state",
        help="SQLite file for the journal and the budget's count (default: a temporary file, "
        "removed at exit)",
    )
    proxy.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        help="seconds to connect to the upstream and to wait for each of its replies; past it "
        "the client gets a 502 (default 60)",
    )
    proxy.add_argument(
        "--admin-token",
        help=f"require this bearer token on /_mock (env {ENVIRONMENT['admin_token']})",
    )
    proxy.add_argument(
        "--log-level", help=f"DEBUG, INFO (default), WARNING... (env {ENVIRONMENT['log_level']})"
    )
    proxy.set_defaults(handler=proxy_command)


def proxy_command(args: argparse.Namespace) -> int:
    """`itsocr-mock proxy`."""
    from mockserver.proxy.app import ProxySettings
    from mockserver.settings import Settings

    check_address(args.host, args.port)  # as serve does; gunicorn would retry for five seconds
    problem = _check(args) or _check_state(args.state)
    if problem:
        return fail(problem)
    environment = Settings.from_environment(admin_token=args.admin_token, log_level=args.log_level)
    refuse_an_open_control_api(args.host, environment.admin_token)  # a proxy always serves one
    scratch = None if args.state else tempfile.mkdtemp(prefix="itsocr-mock-proxy-")
    settings = ProxySettings(
        state=args.state or str(Path(scratch or ".") / STATE_FILE),
        upstream=args.upstream,
        record=args.record,
        budget=args.budget,
        timeout=args.timeout,
        admin_token=environment.admin_token,
        log_level=environment.log_level,
    )
    master = os.getpid()
    try:
        return _run(settings, args)
    finally:
        # gunicorn's workers leave through this frame too (they were forked inside `run`):
        # only the process that started the proxy reports and cleans up.
        if os.getpid() == master and scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def _check(args: argparse.Namespace) -> str | None:
    if not args.upstream.startswith(("http://", "https://")):
        return f"--upstream must be an http:// or https:// URL, not {args.upstream!r}"
    if args.workers < 1:
        return "--workers must be at least 1"
    if args.timeout <= 0:
        return "--timeout must be a positive number of seconds"
    if args.state is not None and (args.state == MEMORY or "://" in args.state):
        return "the proxy's state must be a SQLite file (its workers and the exit count share it)"
    if args.record is not None:
        try:
            args.record.mkdir(parents=True, exist_ok=True)
        except OSError as failure:
            return f"cannot record in {args.record}: {failure.strerror or failure}"
    return None


def _check_state(state: str | None) -> str | None:
    """Why the --state file cannot be used, told before gunicorn starts (opening it creates a
    new one, brings an older one up to date, and refuses any other without changing it)."""
    if state is None:
        return None
    from mockserver.errors import StateUnavailable
    from mockserver.store import StateError, Store

    try:
        Store(state).close()
    except (StateError, StateUnavailable) as failure:
        return str(failure)
    return None


def _run(settings: Any, args: argparse.Namespace) -> int:
    from mockserver.logs import configure_logging, stop_logging
    from mockserver.proxy.serving import ProxyServer, forwarded_count

    configure_logging(settings.log_level)
    server = ProxyServer(settings, args.host, args.port, args.workers)
    master = os.getpid()
    try:
        server.run()
    finally:
        if os.getpid() == master:
            stop_logging()
            budget = f" (budget {settings.budget})" if settings.budget is not None else ""
            print(
                f"itsocr-mock proxy: forwarded {forwarded_count(settings)} requests that can "
                f"consume quota{budget}",
                file=sys.stderr,
                flush=True,
            )
    return 0
