"""`itsocr-mock clock show|set|real`: the mock's clock (months, quotas and token expiry
follow it), through the control API of a target (see `mockserver.cli.target`)."""

from __future__ import annotations

import argparse
from typing import Any

from mockserver.cli.common import instant_argument
from mockserver.cli.target import add_command, emit, open_target


def add_clock_commands(commands: Any) -> None:
    """Add ``clock show|set|real`` to `commands`."""
    clock = commands.add_parser("clock", help="show, freeze or release the mock's clock")
    actions = clock.add_subparsers(dest="action", required=True, metavar="ACTION")
    add_command(actions, "show", clock_show, "the mock's time, and whether it is frozen")
    freeze = add_command(
        actions,
        "set",
        clock_set,
        "freeze the clock at WHEN (months, quotas and token expiry follow it)",
    )
    freeze.add_argument(
        "when", metavar="WHEN", type=instant_argument, help="e.g. 2030-01-31T23:59:59Z"
    )
    add_command(actions, "real", clock_real, "back to real time")


def _describe(clock: dict[str, Any]) -> str:
    return f"{clock['now']} ({'frozen' if clock['frozen'] else 'real time'})"


def clock_show(args: argparse.Namespace) -> int:
    """`itsocr-mock clock show`."""
    with open_target(args) as target:
        clock = target.control.get_clock()
    return emit(args, clock, _describe(clock))


def clock_set(args: argparse.Namespace) -> int:
    """`itsocr-mock clock set WHEN`."""
    with open_target(args) as target:
        clock = target.control.set_clock(args.when)
    return emit(args, clock, _describe(clock))


def clock_real(args: argparse.Namespace) -> int:
    """`itsocr-mock clock real`."""
    with open_target(args) as target:
        target.control.reset_clock()
        clock = target.control.get_clock()
    return emit(args, clock, _describe(clock))
