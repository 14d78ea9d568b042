"""`itsocr-mock requests`: the journal of API requests the mock received, through the control
API of a target (see `mockserver.cli.target`)."""

from __future__ import annotations

import argparse
from typing import Any

from mockserver.cli.common import count_argument
from mockserver.cli.target import add_command, emit, open_target, table


def add_journal_command(commands: Any) -> None:
    """Add ``requests [--account ID] [--status N] [--limit N]`` to `commands`."""
    journal = add_command(
        commands,
        "requests",
        requests_command,
        "the API requests the mock received, oldest first",
    )
    journal.add_argument("--account", metavar="ACCOUNT", help="only this account's requests")
    journal.add_argument(
        "--status", type=count_argument, metavar="STATUS", help="only those answered so"
    )
    journal.add_argument("--limit", type=_positive, metavar="N", help="only the newest N")


def _positive(text: str) -> int:
    value = count_argument(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected 1 or more, got {value}")
    return value


def requests_command(args: argparse.Namespace) -> int:
    """`itsocr-mock requests [--account ID] [--status N] [--limit N]`."""
    with open_target(args) as target:
        entries = target.control.requests(
            account=args.account, status=args.status, limit=args.limit
        )
    return emit(args, entries, table([_row(e) for e in entries], _HEADER))


_HEADER = ("TIME", "STATUS", "ACCOUNT", "TOKEN", "FILE", "SIZE", "FIXTURE", "ERROR")


def _row(entry: dict[str, Any]) -> tuple[object, ...]:
    return (
        entry["time"],
        entry["status"],
        entry["account"],
        entry["tokenPrefix"],
        entry["fileName"],
        entry["fileSize"],
        entry["fixture"],
        entry["error"],
    )
