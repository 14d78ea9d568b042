"""The contract suite against a live-like target: billing-safe, no false verdicts (issue 22).

The target hides its control API, as the live service does: `itsocr-mock serve --no-control`
on a state file prepared beforehand with the CLI (``usage demo-free --state PATH --set N``),
which is the only honest way to give a token its usage without ``/_mock``; and, for the race,
`broken.LIVE_RACE` (the live service's check-before-OCR, count-after, capped at the limit),
served without a control API either. The suite runs as users run it, in a child process with
the Free demo token, and the assertions read its JSON clause report and the state it left.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from broken import LIVE_RACE
from broken.runner import RUN_TIMEOUT, suite_command, suite_environment

from mockserver.backend import DEMO_ACCOUNTS
from mockserver.testing import ServerProcess

FREE = DEMO_ACCOUNTS[0]
LIMIT = 10  # the Free plan's images a month
BURST = 8
QUOTA_USED_UP = f"the token's monthly quota is used up: {LIMIT} of {LIMIT}"
pytestmark = pytest.mark.slow  # each test is a full suite run or more


@dataclass
class Run:
    """One suite run: its exit status, output and JSON report."""

    returncode: int
    output: str
    report: dict[str, Any]

    @property
    def clauses(self) -> dict[str, dict[str, Any]]:
        """Clause id -> its row of the report."""
        return {row["clause"]: row for row in self.report["clauses"]}

    def result(self, clause: str) -> str:
        """passed, failed or skipped."""
        return str(self.clauses[clause]["result"])

    @property
    def failed(self) -> list[str]:
        """The failed clauses."""
        return sorted(c for c, row in self.clauses.items() if row["result"] == "failed")


def run_suite(base_url: str, workdir: Path, *args: str) -> Run:
    """The suite against `base_url` with the Free demo token and `args`, in a child process."""
    report = workdir / "clauses.json"
    command = suite_command(base_url, report, examples=3)
    completed = subprocess.run(
        [*command, "--itsocr-token", FREE.token, *args],
        cwd=workdir,
        env=suite_environment(),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    output = completed.stdout + completed.stderr
    assert report.exists(), f"no clause report (exit {completed.returncode}):\n{output[-3000:]}"
    return Run(completed.returncode, output, json.loads(report.read_text("utf-8")))


def cli(*args: str) -> str:
    """`itsocr-mock ARGS` in a child process; its standard output."""
    command = [sys.executable, "-m", "mockserver.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


def images_used(state: Path) -> int:
    """The Free demo account's usage this month, read from the state file with the CLI."""
    return int(json.loads(cli("usage", FREE.id, "--state", str(state), "--json"))["imagesUsed"])


@pytest.fixture
def state(tmp_path: Path) -> Path:
    """A fresh state file (the demo accounts at 0 images)."""
    path = tmp_path / "state.sqlite3"
    cli("reset", "--state", str(path))
    return path


def serve(state: Path) -> ServerProcess:
    """`itsocr-mock serve --no-control` on `state`: a target without a control API."""
    return ServerProcess(state=state, args=("--no-control",))


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "run"
    path.mkdir()
    return path


def assert_no_false_verdicts(run: Run) -> None:
    """The run passed; nothing failed on a 429 that the token's usage explains."""
    assert run.returncode == 0, run.output[-4000:]
    assert run.failed == []
    assert "expected 400, received 429" not in run.output


def test_a_fresh_free_token_with_defaults_keeps_an_image(state: Path, workdir: Path) -> None:
    with serve(state) as server:
        run = run_suite(server.url, workdir)
    assert_no_false_verdicts(run)
    assert images_used(state) == run.report["quotaSpent"] <= LIMIT - 1
    assert run.report["quotaUsedUp"] is None
    assert run.result("success.common-types") == "passed"
    assert f"images left: at most {LIMIT - run.report['quotaSpent']}" in run.output


def test_a_token_at_its_limit_passes_with_skips_that_say_why(state: Path, workdir: Path) -> None:
    cli("usage", FREE.id, "--state", str(state), "--set", str(LIMIT), "--json")
    with serve(state) as server:
        run = run_suite(server.url, workdir, "--itsocr-level", "observed")
    assert_no_false_verdicts(run)
    assert run.report["quotaSpent"] == 0
    assert run.report["imagesLeft"] == 0
    assert images_used(state) == LIMIT
    for clause in ("upload.missing-file", "success.common-types", "schema.fuzz-negative"):
        assert run.clauses[clause]["reasons"] == [QUOTA_USED_UP], clause
    assert run.result("quota.before-body") == "passed"  # the 429 is what it checks
    assert run.result("auth.header-format") == "passed"  # 401s come before the quota


@pytest.mark.parametrize("level", ["documented", "observed"])
def test_a_token_one_image_short(state: Path, workdir: Path, level: str) -> None:
    cli("usage", FREE.id, "--state", str(state), "--set", str(LIMIT - 1), "--json")
    with serve(state) as server:
        run = run_suite(server.url, workdir, "--itsocr-level", level)
    assert_no_false_verdicts(run)
    assert run.report["quotaSpent"] == 1
    assert run.report["quotaUsedUp"] == QUOTA_USED_UP
    assert images_used(state) == LIMIT
    skipped = [row for row in run.report["clauses"] if QUOTA_USED_UP in row["reasons"]]
    assert skipped, "the clauses after the last image must skip for the quota"


def test_allow_exhaust_with_a_burst_reaches_the_edge(state: Path, workdir: Path) -> None:
    with serve(state) as server:
        run = run_suite(
            server.url,
            workdir,
            "--itsocr-allow-exhaust",
            "--itsocr-concurrency",
            str(BURST),
            "--itsocr-budget",
            str(LIMIT + BURST),
        )
    assert_no_false_verdicts(run)
    assert run.result("quota.concurrency") == "passed"
    assert run.result("quota.exact-limit") == "passed"
    assert run.report["quotaSpent"] == LIMIT == images_used(state)
    assert run.report["imagesLeft"] == 0


@pytest.fixture
def live_race() -> Iterator[str]:
    """The live service's race, without a control API: its origin."""
    with LIVE_RACE.build() as server:
        yield server.url


def test_the_live_race_is_found_from_what_the_token_received(live_race: str, workdir: Path) -> None:
    run = run_suite(
        live_race,
        workdir,
        "--itsocr-allow-exhaust",
        "--itsocr-concurrency",
        str(BURST),
        "--itsocr-budget",
        str(LIMIT + BURST),
    )
    assert run.returncode == 1, run.output[-4000:]
    assert run.failed == ["quota.concurrency"]
    reason = run.clauses["quota.concurrency"]["reasons"][0]
    assert f"but the free plan allows {LIMIT} images a month" in reason
    assert "the stored count is capped" in run.output
    assert run.report["quotaSpent"] > LIMIT
    assert run.result("quota.exact-limit") == "passed"  # the stored count reads 10 of 10
