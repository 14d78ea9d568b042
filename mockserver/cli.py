"""The `itsocr-mock` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from mockserver import __version__
from mockserver.settings import ENVIRONMENT, Settings


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `itsocr-mock` and its subcommands."""
    parser = argparse.ArgumentParser(
        prog="itsocr-mock", description="A faithful, controllable mock of the itsOCR API."
    )
    parser.add_argument("--version", action="version", version=f"itsocr-mock {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser("serve", help="run the mock server (gunicorn)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 = any free)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    serve.add_argument(
        "--state",
        help=f"SQLite state file, or :memory: (env {ENVIRONMENT['state']}; "
        "default ~/.local/state/itsocr-mock/state.sqlite3)",
    )
    serve.add_argument(
        "--fixtures", action="append", help="a directory of user fixtures (repeatable)"
    )
    serve.add_argument(
        "--admin-token", help=f"require this bearer token on /_mock (env {ENVIRONMENT['admin_token']})"
    )
    serve.add_argument(
        "--no-control", action="store_true", help="serve no /_mock control API and ignore Prefer"
    )
    serve.add_argument("--log-level", help="DEBUG, INFO (default), WARNING...")
    serve.set_defaults(handler=serve_command)
    return parser


def serve_command(args: argparse.Namespace) -> int:
    """`itsocr-mock serve`."""
    from pathlib import Path

    from mockserver.serving import MockServer, configure_logging, is_loopback

    settings = Settings.from_environment(
        state=args.state,
        fixtures=tuple(Path(p) for p in args.fixtures) if args.fixtures else None,
        admin_token=args.admin_token,
        control=False if args.no_control else None,
        log_level=args.log_level,
    )
    if args.workers < 1:
        return _fail("--workers must be at least 1")
    if settings.in_memory and args.workers > 1:
        return _fail("an in-memory state cannot be shared by several workers; use --state PATH")
    if settings.control and not settings.admin_token and not is_loopback(args.host):
        return _fail(
            f"refusing to serve the control API on {args.host} without protection: "
            "pass --admin-token TOKEN (or set ITSOCR_MOCK_ADMIN_TOKEN), or --no-control"
        )
    configure_logging(settings.log_level)
    MockServer(settings, args.host, args.port, args.workers).run()
    return 0


def _fail(message: str) -> int:
    print(f"itsocr-mock: error: {message}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `itsocr-mock` console script."""
    args = build_parser().parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
