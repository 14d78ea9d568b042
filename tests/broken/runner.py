"""Running the contract suite against a broken implementation, as a user runs it.

`run_suite` serves the defect on a free port and runs ``python -m pytest --pyargs contract_tests
--base-url URL`` in a child process from an empty directory, with the suite's JSON report
(``--itsocr-report``); `SuiteRun` holds what came out. `Runs` fans many of them out over a
thread pool: each run is a child process, so they use every core.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import contract_tests
from broken import Defect

# Where `contract_tests` is importable from: the checkout (or site-packages) this process uses.
SOURCE_ROOT = Path(contract_tests.__file__).resolve().parent.parent
RUN_TIMEOUT = 600.0  # seconds; a run takes ~15 s, but a hung target must not hang the tests


def suite_command(
    base_url: str, report: Path, examples: int, clauses: str | None = None
) -> list[str]:
    """The suite's command line against `base_url`, writing its clause table to `report`;
    `clauses` (``--itsocr-clauses``) narrows it to some clauses."""
    narrowed = ["--itsocr-clauses", clauses] if clauses else []
    return [
        sys.executable,
        "-m",
        "pytest",
        "--pyargs",
        "contract_tests",
        # The options plugin by module name, whether or not the kit's entry point is installed.
        "-p",
        "no:itsocr_contract",
        "-p",
        "no:itsocr_mock",
        "-p",
        "contract_tests.plugin",
        "-p",
        "no:cacheprovider",
        "--base-url",
        base_url,
        "--itsocr-report",
        str(report),
        "--itsocr-examples",
        str(examples),
        *narrowed,
        "-q",
    ]


def suite_environment() -> dict[str, str]:
    """This process's environment without the settings that would steer the suite."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("ITSOCR_", "PYTEST_", "PYTHONPATH"))
    }
    env["PYTHONPATH"] = str(SOURCE_ROOT)
    return env


@dataclass(frozen=True)
class SuiteRun:
    """One run of the suite against one implementation."""

    defect: Defect
    returncode: int
    output: str  # stdout and stderr
    clauses: dict[str, dict[str, Any]]  # clause id -> its row of the JSON report
    seconds: float

    @property
    def failed(self) -> list[str]:
        """The clauses that failed, in id order."""
        return sorted(c for c, row in self.clauses.items() if row["result"] == "failed")

    def reason(self, clause: str) -> str:
        """The first failure headline (or skip reason) recorded for `clause`."""
        reasons = self.clauses.get(clause, {}).get("reasons") or ["-"]
        return str(reasons[0])


def run_suite(defect: Defect, examples: int, clauses: str | None = None) -> SuiteRun:
    """Serve `defect` and run the contract suite (or its `clauses`) against it."""
    with tempfile.TemporaryDirectory(prefix="itsocr-broken-") as workdir, defect.build() as server:
        report = Path(workdir) / "clauses.json"
        started = time.monotonic()
        completed = subprocess.run(
            suite_command(server.base_url, report, examples, clauses),
            cwd=workdir,
            env=suite_environment(),
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
            check=False,
        )
        seconds = time.monotonic() - started
        rows = json.loads(report.read_text("utf-8"))["clauses"] if report.exists() else []
    return SuiteRun(
        defect,
        completed.returncode,
        completed.stdout + completed.stderr,
        {row["clause"]: row for row in rows},
        seconds,
    )


@dataclass
class Runs:
    """Suite runs started together on a thread pool, collected as they are asked for."""

    examples: int
    workers: int
    futures: dict[str, Future[SuiteRun]] = field(default_factory=dict)
    finished: dict[str, SuiteRun] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    _pool: ThreadPoolExecutor | None = None

    def start(self, jobs: Iterable[tuple[str, Defect, str | None]]) -> None:
        """Queue a run per ``(key, defect, clauses)``, in order; keys already queued are kept."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="suite-run")
        for key, defect, clauses in jobs:
            if key not in self.futures:
                self.futures[key] = self._pool.submit(run_suite, defect, self.examples, clauses)

    def result(self, key: str) -> SuiteRun:
        """The run queued under `key` (waits for it)."""
        run = self.futures[key].result()
        self.finished[key] = run
        return run

    @property
    def wall_time(self) -> float:
        """Seconds since the runs were created."""
        return time.monotonic() - self.started

    def close(self) -> None:
        """Wait for the runs still going (a run cannot be cancelled half-way) and stop."""
        if self._pool is not None:
            for future in self.futures.values():
                future.cancel()
            self._pool.shutdown(wait=True)
