"""The contract suite's pytest fixtures and hooks (active only when the suite is collected).

- `suite` (session): the options, the target -- the mock started in-process when no
  ``--base-url`` is given --, its control API if it has one, the run's level and the budget.
- `contract` (autouse): the running test's view of the suite, bound to its clause
  (``@pytest.mark.clause(id, level=...)``); observed-level clauses skip at the documented level.
- Hooks keep the clause ledger, mask tokens in failures, run the clauses that may use up a
  quota last, and print the clause table (and write it with ``--itsocr-report``).
"""

from __future__ import annotations

import fnmatch
import os
import tempfile
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import requests
from hypothesis.configuration import set_hypothesis_home_dir

from contract_tests.budget import Budget, race_left
from contract_tests.clauses import LEVELS, Ledger, Violation, keep_secret, mask
from contract_tests.harness import Contract, Suite
from contract_tests.plugin import SuiteOptions
from contract_tests.target import PROBE_TIMEOUT, Target
from mockserver.plans import plans

if TYPE_CHECKING:
    from mockserver.testing import InProcessServer

LEDGER = pytest.StashKey[Ledger]()
SUITE = pytest.StashKey[Suite]()
OUTCOME = pytest.StashKey[tuple[str, str | None]]()
_SEVERITY = {"passed": 0, "skipped": 1, "failed": 2}


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    """Register the options plugin when it is not installed as an entry point (a checkout run
    as `pytest contract_tests`); pytest calls this for the conftest of a path it was given."""
    from contract_tests import plugin

    if not pluginmanager.is_registered(plugin):
        pluginmanager.register(plugin, "contract_tests.plugin")


def pytest_configure(config: pytest.Config) -> None:
    """Register the suite's markers and its clause ledger."""
    # The suite keeps no Hypothesis examples (database=None), but Hypothesis still caches what
    # it learns of the code in `.hypothesis/` of the working directory: keep the user's clean.
    if not os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
        set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "itsocr-contract-hypothesis")
    config.addinivalue_line(
        "markers",
        "clause(id, level='documented'): the contract clause a test checks; observed-level "
        "clauses run only with --itsocr-level observed",
    )
    config.addinivalue_line(
        "markers",
        "exhausts(order=1): may use up the token's monthly quota; runs after the other clauses, "
        "lowest order first",
    )
    config.addinivalue_line(
        "markers",
        "costly: spends many billable requests; runs after the clauses that need one or two, so "
        "that a small --itsocr-budget goes to those first",
    )
    config.stash[LEDGER] = Ledger()


# -- pytest fixtures -----------------------------------------------------------------------


@pytest.fixture(scope="session")
def suite(pytestconfig: pytest.Config, base_url: str | None) -> Iterator[Suite]:
    """The session: target, control API, level, budget (the mock in-process without --base-url)."""
    options = SuiteOptions.from_config(pytestconfig)
    for token in (options.itsocr_token, options.itsocr_revoked_token, options.itsocr_expired_token):
        if token:
            keep_secret(token)
    server = None
    if not base_url:
        server = _start_mock()
        base_url = server.url
    session = requests.Session()
    target = Target.locate(base_url, options)
    _reachable(target, session)
    target.in_process = server is not None
    level = options.itsocr_level or ("observed" if target.is_mock else "documented")
    budget = _budget(target, options)
    if budget.limit is not None and hasattr(pytestconfig, "workerinput"):
        # Each pytest-xdist worker would count on its own: the cap would not hold.
        pytest.exit("run the contract suite against a live target without -n (pytest-xdist)", 4)
    suite = Suite(
        options, target, session, budget, level == "observed", ledger=pytestconfig.stash[LEDGER]
    )
    pytestconfig.stash[SUITE] = suite
    try:
        yield suite
    finally:
        session.close()
        if server is not None:
            server.stop()


def _budget(target: Target, options: SuiteOptions) -> Budget:
    """The run's budget: none on a mock; else ``--itsocr-budget`` and the token's quota."""
    if target.is_mock:
        return Budget(None)
    quota = plans()[options.itsocr_plan].images_per_month
    concurrency = options.itsocr_concurrency or 0
    racing = options.itsocr_allow_exhaust and concurrency >= 2
    return Budget(options.itsocr_budget, quota, race_left(concurrency) if racing else 1)


def _start_mock() -> InProcessServer:
    # The one place the suite imports the mock: to run it when no --base-url is given.
    try:
        from mockserver.testing import InProcessServer

        return InProcessServer().start()
    except Exception as error:  # one clear line instead of an error in every test
        pytest.exit(f"no --base-url given and the mock could not start in-process: {error!r}", 3)


def _reachable(target: Target, session: requests.Session) -> None:
    try:
        session.options(target.ocr_url, timeout=PROBE_TIMEOUT)
    except requests.RequestException as error:
        pytest.exit(f"the target {target.api_url} cannot be reached: {error}", 3)


@pytest.fixture(autouse=True)
def contract(request: pytest.FixtureRequest, suite: Suite) -> Iterator[Contract]:
    """The running test's view of the suite, bound to its clause."""
    marker = request.node.get_closest_marker("clause")
    if marker is None:
        raise pytest.UsageError(f"{request.node.nodeid} declares no @pytest.mark.clause")
    clause, level = _clause_of(request.node)
    if level == "observed" and not suite.observed:
        pytest.skip("observed-level clause: run with --itsocr-level observed")
    bound = Contract(suite, clause)
    try:
        yield bound
        if request.node.stash.get(OUTCOME, ("passed", None))[0] == "passed":
            bound.finish()  # after a failure, its message is the one that matters
    finally:
        bound.release()


def _clause_of(item: pytest.Item) -> tuple[str, str]:
    marker = item.get_closest_marker("clause")
    assert marker is not None
    level = marker.kwargs.get("level", "documented")
    if level not in LEVELS:
        raise pytest.UsageError(f"{item.nodeid}: clause level {level!r} is not one of {LEVELS}")
    return str(marker.args[0]), level


# -- hooks ---------------------------------------------------------------------------------


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep the clauses asked for; run the costly ones late and those that may use up a quota
    last (a stable sort)."""
    wanted = SuiteOptions.from_config(config).itsocr_clauses
    if wanted:
        patterns = [pattern.strip() for pattern in wanted.split(",") if pattern.strip()]
        kept: list[pytest.Item] = []
        dropped: list[pytest.Item] = []
        for item in items:
            clause = item.get_closest_marker("clause")
            unwanted = clause is not None and not any(
                fnmatch.fnmatchcase(str(clause.args[0]), pattern) for pattern in patterns
            )
            (dropped if unwanted else kept).append(item)
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = kept
    items.sort(key=_stage)


def _stage(item: pytest.Item) -> tuple[int, int]:
    """Where `item` runs: the costly clauses late, those that may use up a quota last, in the
    order their ``exhausts(order=N)`` gives (the race needs images left: it goes first)."""
    exhausts = item.get_closest_marker("exhausts")
    if exhausts is not None:
        return 2, int(exhausts.kwargs.get("order", 1))
    return (1 if item.get_closest_marker("costly") is not None else 0), 0


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Mask tokens in failures; fold each test's phases into its clause's result."""
    report: pytest.TestReport = yield
    if item.get_closest_marker("clause") is None:
        return report
    if report.failed and report.longrepr is not None:
        text = str(report.longrepr)
        if mask(text) != text:
            report.longrepr = mask(text)
    outcome = _outcome(report, call)
    previous = item.stash.get(OUTCOME, ("passed", None))
    if _SEVERITY[outcome[0]] > _SEVERITY[previous[0]]:
        item.stash[OUTCOME] = outcome
    if report.when == "teardown":
        clause, level = _clause_of(item)
        summary = (getattr(item, "function", None).__doc__ or "").strip().splitlines()
        row = item.config.stash[LEDGER].declare(clause, level, summary[0] if summary else "")
        row.add(*item.stash.get(OUTCOME, ("passed", None)))
    return report


def _outcome(report: pytest.TestReport, call: pytest.CallInfo[None]) -> tuple[str, str | None]:
    if report.skipped:
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        return "skipped", reason.removeprefix("Skipped: ")
    if report.failed:
        error = call.excinfo.value if call.excinfo else None
        if isinstance(error, Violation) and error.problems:
            return "failed", error.problems[0]
        headline = str(error).strip().splitlines()[0] if error and str(error).strip() else ""
        return "failed", headline or (type(error).__name__ if error else "failed")
    return "passed", None


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    """Print the clause table, the requests sent and the quota spent (and write the report)."""
    ledger, suite = config.stash.get(LEDGER, None), config.stash.get(SUITE, None)
    if ledger is None or suite is None:
        return  # the suite did not run in this session
    if suite.options.itsocr_report:
        ledger.write_json(Path(suite.options.itsocr_report), _totals(suite))
    kind = (
        "mock (in-process)"
        if suite.target.in_process
        else ("mock" if suite.target.is_mock else "no control API")
    )
    terminalreporter.write_sep(
        "=", f"itsOCR contract clauses: {suite.target.api_url}, {kind}, level {suite.level}"
    )
    for line in ledger.table():
        terminalreporter.write_line(line)
    terminalreporter.write_line(_totals_line(suite))
    _write_fidelity(terminalreporter, suite)


def _write_fidelity(terminalreporter: pytest.TerminalReporter, suite: Suite) -> None:
    if not suite.fidelity:
        return
    if suite.target.is_mock:  # exact text was required: one line is enough
        terminalreporter.write_line(
            f"OCR fidelity: {len(suite.fidelity)} fixture request(s) checked"
        )
        return
    for fixture, rate in suite.fidelity:
        terminalreporter.write_line(f"OCR fidelity: {fixture}: character error rate {rate:.3f}")


def _totals(suite: Suite) -> dict[str, object]:
    budget = suite.budget
    return {
        "target": suite.target.api_url,
        "mock": suite.target.is_mock,
        "level": suite.level,
        "requestsSent": suite.requests_sent,
        "requestsWithToken": budget.requests,
        "quotaSpent": budget.spent,
        "imagesLeft": budget.images_left(),
        "quotaUsedUp": budget.used_up_reason if budget.used_up else None,
        "budget": budget.limit,
        "fidelity": [{"fixture": name, "cer": rate} for name, rate in suite.fidelity],
    }


def _totals_line(suite: Suite) -> str:
    budget = suite.budget
    if budget.limit is None:
        cap = "budget not applied: the suite used accounts of its own on the mock"
    else:
        cap = f"budget {budget.committed} of {budget.limit} committed"
    return (
        f"requests sent: {suite.requests_sent}; with your token: {budget.requests}; "
        f"quota spent: {budget.spent} ({cap}); {_images_left(suite)}"
    )


def _images_left(suite: Suite) -> str:
    """What the run knows of the images the token has left."""
    budget, plan = suite.budget, suite.options.itsocr_plan
    if budget.limit is None:
        return "images left: the mock's accounts are the suite's own"
    if budget.used_up is not None:
        return f"images left: 0 ({budget.used_up_reason})"
    if budget.quota is None:
        return f"images left: unlimited (the {plan} plan)"
    most = max(budget.quota - budget.spent, 0)
    return f"images left: at most {most} of the {plan} plan's {budget.quota} this month"
