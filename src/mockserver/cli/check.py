"""`itsocr-mock check URL`: run the contract suite against a URL and print the clause table."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from mockserver.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, CommandError, _count


def add_check_command(commands: Any) -> None:
    """Add the ``check`` subcommand to `commands`, the subparsers of `itsocr-mock`."""
    check = commands.add_parser(
        "check",
        usage="itsocr-mock check [options] URL [-- PYTEST_ARGS...]",
        epilog="Arguments after -- go to pytest as they are, e.g. -- -x -k quota.",
        help="run the contract suite against URL and print the clause table",
        description="Run the contract suite (contract_tests) against the implementation at URL "
        "and print the clause table: passed, failed, skipped and why. Against a target without "
        "the mock's control API, only what --token allows runs, within --budget billable "
        "requests. Exit code 0 when the contract holds, 1 when a clause fails, 2 on bad usage.",
    )
    check.add_argument(
        "url", metavar="URL", help="the target's origin or API base, e.g. https://itsocr.com/api/v1"
    )
    check.add_argument(
        "--token", help="an API token of the target (env ITSOCR_TOKEN); its requests may be billed"
    )
    check.add_argument("--plan", help="the plan of --token's account (default free)")
    check.add_argument(
        "--level",
        help="documented: what the vendor docs promise; observed: every observed behaviour "
        "(default observed on a mock, documented otherwise)",
    )
    check.add_argument(
        "--budget", type=_count, metavar="N", help="at most N billable requests (default 10)"
    )
    check.add_argument(
        "--admin-token", help="the mock's admin token, if its control API requires one"
    )
    check.add_argument(
        "--json",
        action="store_true",
        help="print the clause table as JSON (pytest's output goes to stderr)",
    )
    check.set_defaults(handler=check_command)


def check_command(args: argparse.Namespace) -> int:
    """`itsocr-mock check URL`: `pytest --pyargs contract_tests --base-url URL ...`."""
    import tempfile
    from contextlib import nullcontext, redirect_stdout

    import pytest

    if not args.url.startswith(("http://", "https://")):
        raise CommandError(
            f"URL must be http(s), e.g. https://itsocr.com/api/v1 (got {args.url!r})", EXIT_USAGE
        )
    with tempfile.TemporaryDirectory(prefix="itsocr-check-") as scratch:
        report = Path(scratch) / "clauses.json"
        argv = suite_arguments(args, Path(scratch), report if args.json else None)
        argv += args.pytest_args
        # Hypothesis keeps caches in ./.hypothesis: not in the caller's directory.
        os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", str(Path(scratch) / "hypothesis"))
        with redirect_stdout(sys.stderr) if args.json else nullcontext():
            code = pytest.main(argv)
        if args.json and report.exists():
            print(report.read_text(encoding="utf-8"))
    return _check_exit(int(code))


def suite_arguments(args: argparse.Namespace, scratch: Path, report: Path | None) -> list[str]:
    """The pytest command line that runs the installed contract suite against ``args.url``.

    The suite runs the same from any directory: its own options plugin is loaded explicitly
    (whether or not the kit is pip-installed), and the caller's pytest configuration, conftest
    files and cache directory are kept out of it (an empty ini file in `scratch` stands for
    the configuration).
    """
    import importlib.util

    spec = importlib.util.find_spec("contract_tests")
    if spec is None or not spec.submodule_search_locations:
        raise CommandError("the contract suite (contract_tests) is not installed with the kit")
    rootdir = Path(next(iter(spec.submodule_search_locations))).parent
    options = {
        "--itsocr-token": args.token,
        "--itsocr-plan": args.plan,
        "--itsocr-level": args.level,
        "--itsocr-budget": args.budget,
        "--itsocr-admin-token": args.admin_token,
        "--itsocr-report": report,
    }
    argv = ["--pyargs", "contract_tests", "--base-url", args.url, "-q"]
    ini = scratch / "pytest.ini"
    ini.write_text("[pytest]\n", encoding="utf-8")
    argv += ["-c", str(ini), "--rootdir", str(rootdir), "-p", "no:cacheprovider"]
    argv += ["-p", "no:itsocr_contract", "-p", "contract_tests.plugin"]
    for option, value in options.items():
        if value is not None:
            argv += [option, str(value)]
    return argv


def _check_exit(pytest_code: int) -> int:
    import pytest

    if pytest_code == pytest.ExitCode.OK:
        return EXIT_OK
    if pytest_code == pytest.ExitCode.USAGE_ERROR:
        return EXIT_USAGE
    if pytest_code == pytest.ExitCode.INTERRUPTED:
        return 130
    if pytest_code != pytest.ExitCode.TESTS_FAILED:
        print(
            f"itsocr-mock: error: the contract suite did not run to the end (pytest exit code "
            f"{pytest_code}); the contract is not verified",
            file=sys.stderr,
        )
    return EXIT_FAILED
