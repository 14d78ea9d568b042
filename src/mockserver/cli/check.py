"""`itsocr-mock check URL`: run the contract suite against a URL and print the clause table."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from mockserver.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, CommandError, count_argument


def add_check_command(commands: Any) -> None:
    """Add the ``check`` subcommand to `commands`, the subparsers of `itsocr-mock`."""
    from mockserver.plans import plans

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
    check.add_argument(
        "--plan", choices=list(plans()), help="the plan of --token's account (default free)"
    )
    check.add_argument(
        "--level",
        choices=("documented", "observed"),
        help="documented: what the vendor docs promise; observed: every observed behaviour "
        "(default observed on a mock, documented otherwise)",
    )
    check.add_argument(
        "--budget",
        type=count_argument,
        metavar="N",
        help="at most N billable requests (default 10)",
    )
    check.add_argument(
        "--allow-exhaust",
        action="store_true",
        default=None,
        help="let the clauses that use up the token's monthly quota run (a token bought for it)",
    )
    check.add_argument(
        "--concurrency",
        type=count_argument,
        metavar="N",
        help="N simultaneous requests at the quota edge (default 16 on a mock, off otherwise; "
        "against a live target with --allow-exhaust and a --budget of the limit + N)",
    )
    check.add_argument("--revoked-token", help="a revoked token of the target, for auth clauses")
    check.add_argument("--expired-token", help="an expired token of the target, for auth clauses")
    check.add_argument(
        "--admin-token", help="the mock's admin token, if its control API requires one"
    )
    check.add_argument("--report", metavar="PATH", help="also write the clause table as JSON")
    check.add_argument(
        "--json",
        action="store_true",
        help="print the clause table as JSON (pytest's output goes to stderr)",
    )
    check.set_defaults(handler=check_command)


def check_command(args: argparse.Namespace) -> int:
    """`itsocr-mock check URL`: `pytest --pyargs contract_tests --base-url URL ...`, in a child
    process of its own (nothing of this one imported into it: no assertion-rewrite warning)."""
    import subprocess
    import tempfile

    if not args.url.startswith(("http://", "https://")):
        raise CommandError(
            f"URL must be http(s), e.g. https://itsocr.com/api/v1 (got {args.url!r})", EXIT_USAGE
        )
    with tempfile.TemporaryDirectory(prefix="itsocr-check-") as scratch:
        report = Path(args.report) if args.report else Path(scratch) / "clauses.json"
        argv = suite_arguments(args, Path(scratch), report) + list(args.pytest_args)
        # Hypothesis keeps caches in ./.hypothesis: not in the caller's directory.
        env = {**os.environ, "HYPOTHESIS_STORAGE_DIRECTORY": str(Path(scratch) / "hypothesis")}
        child = subprocess.run(
            [sys.executable, "-m", "pytest", *argv],
            env=env,
            stdout=sys.stderr if args.json else None,
            check=False,
        )
        failed = _failed_clauses(report)
        if args.json and report.exists():
            print(report.read_text(encoding="utf-8"))
    return _check_exit(child.returncode, failed)


def _failed_clauses(report: Path) -> list[str] | None:
    """The clauses the report says failed; None when the suite wrote no report."""
    import json

    try:
        rows = json.loads(report.read_text(encoding="utf-8"))["clauses"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return [str(row.get("clause")) for row in rows if row.get("result") == "failed"]


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
    given = vars(args)
    options = {
        "--itsocr-token": args.token,
        "--itsocr-plan": args.plan,
        "--itsocr-level": args.level,
        "--itsocr-budget": args.budget,
        "--itsocr-concurrency": given.get("concurrency"),
        "--itsocr-revoked-token": given.get("revoked_token"),
        "--itsocr-expired-token": given.get("expired_token"),
        "--itsocr-admin-token": args.admin_token,
        "--itsocr-report": report,
    }
    argv = ["--pyargs", "contract_tests", "--base-url", args.url, "-q"]
    if given.get("allow_exhaust"):
        argv.append("--itsocr-allow-exhaust")
    ini = scratch / "pytest.ini"
    ini.write_text("[pytest]\n", encoding="utf-8")
    argv += ["-c", str(ini), "--rootdir", str(rootdir), "-p", "no:cacheprovider"]
    argv += ["-p", "no:itsocr_contract", "-p", "contract_tests.plugin"]
    for option, value in options.items():
        if value is not None:
            argv += [option, str(value)]
    return argv


def _check_exit(pytest_code: int, failed: list[str] | None) -> int:
    """0 only when the suite ran to the end and no clause failed."""
    import pytest

    if pytest_code == pytest.ExitCode.USAGE_ERROR:
        return EXIT_USAGE
    if pytest_code in (pytest.ExitCode.INTERRUPTED, -2, 130):  # -2: the child got SIGINT
        return 130
    if pytest_code == pytest.ExitCode.OK and failed == []:
        return EXIT_OK
    if pytest_code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED) or failed is None:
        print(
            f"itsocr-mock: error: the contract suite did not run to the end (pytest exit code "
            f"{pytest_code}); the contract is not verified",
            file=sys.stderr,
        )
    return EXIT_FAILED
