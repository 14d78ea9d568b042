"""The `itsocr-mock` command.

``serve`` runs the mock. The control commands (``accounts``, ``usage``, ``tokens``, ``reset``,
``clock``, ``faults``, ``requests``, ``fixtures``) act on a running mock over its control API
(``--url``, env ``ITSOCR_MOCK_URL``) or directly on a state file (``--state``, env
``ITSOCR_MOCK_STATE``; by default the file ``serve`` uses), which a mock serving that file sees
at once. ``check URL`` runs the contract suite.

Exit codes: 0 done, 1 not found / mock unreachable / contract broken, 2 usage error, 130
interrupted. ``--json`` prints the control API's JSON, for scripts. Every mistake is told in one
line on stderr, never a traceback.

One module per command group: `serve`, `accounts` (accounts, usage, tokens, reset), `clock`,
`faults`, `journal` (requests), `fixtures`, `check`; `target` is where the control commands act
and how they print, `common` what every command shares.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from mockserver import __version__
from mockserver.cli.accounts import add_account_commands
from mockserver.cli.check import add_check_command, suite_arguments
from mockserver.cli.clock import add_clock_commands
from mockserver.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    URL_ENV,
    CommandError,
    fail,
)
from mockserver.cli.faults import add_fault_commands
from mockserver.cli.fixtures import add_fixture_commands
from mockserver.cli.journal import add_journal_command
from mockserver.cli.proxy import add_proxy_command
from mockserver.cli.serve import add_serve_command

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "URL_ENV",
    "CommandError",
    "build_parser",
    "main",
    "suite_arguments",
]


class OneLineParser(argparse.ArgumentParser):
    """argparse, telling a usage mistake in one line (where to find the usage, not the usage
    itself, which can run to ten lines and push the mistake out of sight)."""

    def error(self, message: str) -> NoReturn:
        """Print ``PROG: error: MESSAGE (see PROG --help)`` and exit 2."""
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `itsocr-mock` and its subcommands."""
    parser = OneLineParser(
        prog="itsocr-mock", description="A faithful, controllable mock of the itsOCR API."
    )
    parser.add_argument("--version", action="version", version=f"itsocr-mock {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_serve_command(commands)
    add_proxy_command(commands)
    add_account_commands(commands)
    add_clock_commands(commands)
    add_fault_commands(commands)
    add_journal_command(commands)
    add_fixture_commands(commands)
    add_check_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `itsocr-mock` console script."""
    words = list(sys.argv[1:] if argv is None else argv)
    # argparse cannot take another program's options after its positionals: split them off.
    cut = words.index("--") if "--" in words else len(words)
    words, pytest_args = words[:cut], words[cut + 1 :]
    parser = build_parser()
    args = parser.parse_args(words)
    if pytest_args and args.command != "check":
        parser.error("only `check` passes arguments after -- (to pytest)")
    args.pytest_args = pytest_args
    try:
        return int(args.handler(args))
    except CommandError as failure:
        return fail(str(failure), failure.code)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `itsocr-mock fixtures list | head`: the reader left, as is its right
        # Python would complain again when it flushes stdout at exit: point it at /dev/null.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED
