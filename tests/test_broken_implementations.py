"""The contract suite catches broken implementations, and passes the faithful one (issue 7).

Each defect of `broken.DEFECTS` -- the mock with one rule or one HTTP detail done wrong, its
control API intact -- is served on a free port, and the suite is run against it as a user runs
it, ``python -m pytest --pyargs contract_tests --base-url URL``, in a child process. The run
must fail, and every clause the defect breaks must be reported failed, with a failure message
that names it. The same command against the mock itself passes.

- Default run: a few representative defects, each against the clauses of its own area
  (``--itsocr-clauses 'quota.*'``...), and the mock against those areas.
- ``-m slow``: every defect against the whole suite, and the mock against the whole suite.

The runs start together on a thread pool (one child process each) when the module's first test
asks for one; the table "defect -> caught by which clause" is printed at the end of the session.
"""

from __future__ import annotations

import os
import re
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from broken import DEFECTS, FAITHFUL, Defect
from broken.runner import Runs, SuiteRun

SHOWN = 6  # other failed clauses listed per defect in the table
EXAMPLES = 5  # Hypothesis examples per generated clause: no defect here needs more
WORKERS = max(2, os.cpu_count() or 2)
# Four defects, from four areas and both levels, whose clauses are cheap (no 50 MiB uploads):
# auth not enforced, a mistyped 200 body, CORS headers missing, a non-atomic quota.
FAST = ("auth-not-enforced", "file-size-string", "cors-headers-missing", "quota-non-atomic")


def area(defects: list[Defect]) -> str:
    """The ``--itsocr-clauses`` globs covering the clauses that catch `defects`."""
    return ",".join(sorted({c.split(".")[0] + ".*" for d in defects for c in d.caught_by}))


FAST_AREA = area([DEFECTS[name] for name in FAST])


@dataclass(frozen=True)
class Job:
    """One suite run: an implementation, and the clauses to run (None: the whole suite)."""

    defect: Defect
    clauses: str | None = None

    @property
    def key(self) -> str:
        """Unique per run, for the table."""
        return f"{self.defect.id} [{self.clauses or 'whole suite'}]"


def _jobs(items: list[pytest.Item]) -> list[Job]:
    """The jobs of this module's tests selected in this session, in order, once each."""
    jobs: dict[Job, None] = {}
    for item in items:
        callspec = getattr(item, "callspec", None)
        module = getattr(item, "module", None)
        if callspec is not None and module is not None and module.__name__ == __name__:
            jobs.setdefault(callspec.params["job"], None)
    return list(jobs)


class Matrix:
    """The session's suite runs, started together, and the table printed at the end."""

    def __init__(self, workers: int) -> None:
        self.runs = Runs(EXAMPLES, workers)
        self.jobs: dict[str, Job] = {}

    def start(self, jobs: list[Job]) -> None:
        """Queue runs for `jobs` (those already queued are kept)."""
        for job in jobs:
            self.jobs.setdefault(job.key, job)
        self.runs.start((job.key, job.defect, job.clauses) for job in jobs)

    def result(self, job: Job) -> SuiteRun:
        """The run of `job`, started now if it was not prefetched (pytest-xdist)."""
        self.start([job])
        return self.runs.result(job.key)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        """Print defect -> the clauses that caught it, for every run that finished."""
        finished = self.runs.finished
        if not finished:
            return
        terminalreporter.write_sep(
            "=",
            f"broken implementations, defect -> caught by which clause: {len(finished)} suite "
            f"run(s), {self.runs.wall_time:.0f} s wall time on {self.runs.workers} workers",
        )
        for line in caught_table([(self.jobs[key], run) for key, run in finished.items()]):
            terminalreporter.write_line(line)


def caught_table(rows: list[tuple[Job, SuiteRun]]) -> list[str]:
    """The table: defect | scope | time | the clauses that caught it (and the others that
    failed), the faithful mock first; then the suite's clauses no defect is meant to break."""
    rows = sorted(rows, key=lambda row: (row[0].defect is not FAITHFUL, row[0].key))
    scopes = [job.clauses or "whole suite" for job, _ in rows]
    width = max(len(job.defect.id) for job, _ in rows)
    scope_width = max(len(scope) for scope in scopes)
    indent = " " * (width + 2)
    lines = [f"{'defect':<{width}}  {'scope':<{scope_width}}  {'time':>5}  caught by"]
    for (job, run), scope in zip(rows, scopes, strict=True):
        head = f"{job.defect.id:<{width}}  {scope:<{scope_width}}  {run.seconds:4.0f}s  "
        verdict, others = _verdict(job.defect, run)
        lines.append(head + verdict)
        lines += _wrap(others, indent)
    targeted = {clause for defect in DEFECTS.values() for clause in defect.caught_by}
    for job, run in rows:
        if job.defect is FAITHFUL and job.clauses is None:
            untargeted = ", ".join(c for c in sorted(run.clauses) if c not in targeted)
            lines += _wrap(f"clauses no defect targets: {untargeted or 'none'}", "")
    return lines


def _wrap(text: str, indent: str) -> list[str]:
    return textwrap.wrap(
        text,
        100,
        initial_indent=indent,
        subsequent_indent=indent + "  ",
        break_on_hyphens=False,
        break_long_words=False,
    )


def _verdict(defect: Defect, run: SuiteRun) -> tuple[str, str]:
    """What the run says about `defect`, and the other clauses that failed."""
    if defect is FAITHFUL:
        return ("passed" if run.returncode == 0 else f"FAILED: {', '.join(run.failed)}"), ""
    caught = [c for c in defect.caught_by if c in run.failed]
    missed = [c for c in defect.caught_by if c not in run.failed]
    others = [c for c in run.failed if c not in defect.caught_by]
    verdict = ", ".join(caught) or "-"
    if missed:
        verdict += f"; MISSED: {', '.join(missed)}"
    if not others:
        return verdict, ""
    more = f" and {len(others) - SHOWN} more" if len(others) > SHOWN else ""
    return verdict, f"also failed: {', '.join(others[:SHOWN])}{more}"


@pytest.fixture(scope="module")
def matrix(request: pytest.FixtureRequest) -> Iterator[Matrix]:
    """Start the suite runs of every selected test of this module at once."""
    built = Matrix(WORKERS)
    request.config.pluginmanager.register(built, f"broken-implementations-{id(built)}")
    if not hasattr(request.config, "workerinput"):  # under pytest-xdist: run what is asked
        built.start(_jobs(request.session.items))
    yield built
    built.runs.close()


def _tail(run: SuiteRun, lines: int = 60) -> str:
    return "\n".join(run.output.splitlines()[-lines:])


def assert_caught(run: SuiteRun, defect: Defect) -> None:
    """The run failed, each clause of `defect.caught_by` failed, and the output names it."""
    assert run.clauses, f"the suite wrote no clause report (exit {run.returncode}):\n{_tail(run)}"
    missed = {
        clause: run.clauses.get(clause, {}).get("result", "not run")
        for clause in defect.caught_by
        if clause not in run.failed
    }
    assert not missed, (
        f"{defect.id} ({defect.description}) was not caught by {missed}; the suite failed "
        f"{run.failed or 'nothing'}:\n{_tail(run)}"
    )
    assert run.returncode == 1, f"exit status {run.returncode}, not 1:\n{_tail(run)}"
    unnamed = [c for c in defect.caught_by if f"[{c}]" not in run.output]
    assert not unnamed, f"no failure message names {unnamed}:\n{_tail(run)}"
    if "(see the requests above)" not in run.output:  # a failure of one reply, not of several
        shown = re.search(r"reproduce: (printf %b '.*' \| )?curl -i -X ", run.output)
        assert shown, f"no failure shows how to reproduce it:\n{_tail(run)}"


def assert_passes(run: SuiteRun, relied_on: set[str]) -> None:
    """The run passed, and every clause a defect relies on ran (was not skipped)."""
    assert run.returncode == 0, f"the suite failed {run.failed} on the mock:\n{_tail(run)}"
    not_run = {c: run.clauses.get(c, {}).get("result", "not run") for c in relied_on}
    assert {c: r for c, r in not_run.items() if r != "passed"} == {}, _tail(run)


# -- the default run: one defect per area, against its area's clauses ------------------------


@pytest.mark.parametrize(
    "job", [pytest.param(Job(DEFECTS[name], area([DEFECTS[name]])), id=name) for name in FAST]
)
def test_suite_catches_defect_in_its_area(matrix: Matrix, job: Job) -> None:
    """The suite, run on the defect's area, fails naming the clause the defect breaks."""
    assert_caught(matrix.result(job), job.defect)


@pytest.mark.parametrize("job", [pytest.param(Job(FAITHFUL, FAST_AREA), id="faithful-mock")])
def test_suite_passes_the_mock_on_those_areas(matrix: Matrix, job: Job) -> None:
    """The same areas of the suite, served the same way, pass against the mock."""
    relied_on = {c for name in FAST for c in DEFECTS[name].caught_by}
    assert_passes(matrix.result(job), relied_on)


# -- -m slow: every defect against the whole suite ----------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("job", [pytest.param(Job(d), id=d.id) for d in DEFECTS.values()])
def test_whole_suite_catches_defect(matrix: Matrix, job: Job) -> None:
    """The whole suite fails on the defect, naming every clause the defect breaks."""
    assert_caught(matrix.result(job), job.defect)


@pytest.mark.slow
@pytest.mark.parametrize("job", [pytest.param(Job(FAITHFUL), id="faithful-mock")])
def test_whole_suite_passes_the_mock(matrix: Matrix, job: Job) -> None:
    """The whole suite passes against the mock served the same way as the defects."""
    relied_on = {c for defect in DEFECTS.values() for c in defect.caught_by}
    assert_passes(matrix.result(job), relied_on)
