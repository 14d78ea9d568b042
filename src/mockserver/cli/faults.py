"""`itsocr-mock faults add|list|clear`: make the next OCR requests slow, fail or lose their
connection, through the control API of a target (see `mockserver.cli.target`)."""

from __future__ import annotations

import argparse
from typing import Any

from mockserver.cli.common import count_argument
from mockserver.cli.target import add_command, emit, open_target, table


def add_fault_commands(commands: Any) -> None:
    """Add ``faults add|list|clear`` to `commands`."""
    faults = commands.add_parser("faults", help="make the next OCR requests fail or slow")
    actions = faults.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = add_command(
        actions,
        "add",
        faults_add,
        "a fault rule for the next OCR requests",
        description="A fault rule for the next OCR requests that reach the OCR step: wait "
        "--delay-ms, then answer --status with the live message (or --error), or --drop the "
        "connection. A failed request uses no quota.",
    )
    add.add_argument(
        "--status",
        type=int,
        metavar="STATUS",
        # Not argparse choices: the list lives in the backend, too heavy to import for --help.
        help="answer this status (400, 401, 429 or 500) with the live message",
    )
    add.add_argument("--error", help="answer this message instead of the live one (with --status)")
    add.add_argument("--delay-ms", type=count_argument, metavar="MS", help="wait this long first")
    add.add_argument(
        "--times", type=count_argument, metavar="N", help="for N requests (default: all)"
    )
    add.add_argument("--account", metavar="ACCOUNT", help="only this account's requests")
    add.add_argument("--drop", action="store_true", help="close the connection without a response")
    add_command(actions, "list", faults_list, "the fault rules, in the order they apply")
    clear = add_command(actions, "clear", faults_clear, "delete every fault rule, or one")
    clear.add_argument("fault_id", metavar="FAULT_ID", nargs="?", help="only this rule")


def _describe(fault: dict[str, Any]) -> str:
    if fault["drop"]:
        action = "drop the connection"
    else:
        action = f"answer {fault['status']}" if fault["status"] else "succeed"
        if fault["error"]:
            action += f" {fault['error']!r}"
    if fault["delayMs"]:
        action = f"wait {fault['delayMs']} ms, then {action}"
    times = "every OCR request" if fault["times"] is None else f"the next {fault['times']}"
    scope = f" of {fault['account']}" if fault["account"] else ""
    return f"{fault['id']}: {times}{scope}: {action}"


def faults_add(args: argparse.Namespace) -> int:
    """`itsocr-mock faults add [--status S] [--error E] [--delay-ms MS] [--times N] ...`."""
    with open_target(args) as target:
        fault = target.control.add_fault(
            args.status,
            error=args.error,
            delay_ms=args.delay_ms,
            times=args.times,
            account=args.account,
            drop=args.drop,
        )
    return emit(args, fault, "added " + _describe(fault))


def faults_list(args: argparse.Namespace) -> int:
    """`itsocr-mock faults list`."""
    with open_target(args) as target:
        faults = target.control.list_faults()
    rows = [
        (f["id"], f["status"], f["delayMs"], f["times"], f["account"], f["drop"], f["error"])
        for f in faults
    ]
    header = ("ID", "STATUS", "DELAY_MS", "TIMES", "ACCOUNT", "DROP", "ERROR")
    return emit(args, faults, table(rows, header))


def faults_clear(args: argparse.Namespace) -> int:
    """`itsocr-mock faults clear [FAULT_ID]`."""
    with open_target(args) as target:
        if args.fault_id is None:
            target.control.clear_faults()
        else:
            target.control.delete_fault(args.fault_id)
    gone = args.fault_id or "every fault rule"
    return emit(args, {"deleted": args.fault_id or "all"}, f"deleted {gone}")
