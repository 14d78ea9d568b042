"""The contract suite's own tests: its options, budget, levels and skips, and full runs.

The suite is run as users run it -- ``pytest --pyargs contract_tests --base-url URL`` -- inside
pytester, against a mock without its control API (what the suite sees of a live service:
one token, a budget), against the in-process mock, and against `itsocr-mock serve`. Every run
writes its clause table with ``--itsocr-report`` and the assertions read it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

import mockserver
from contract_tests.plugin import SuiteOptions
from mockserver.backend import DEMO_ACCOUNTS
from mockserver.clock import period_of
from mockserver.settings import Settings
from mockserver.testing import InProcessServer, RedisServer, ServerProcess

pytest_plugins = ("pytester",)

FREE = DEMO_ACCOUNTS[0]
# The options plugin by module name, whether or not the kit's entry point is installed.
PLUGIN = ("-p", "no:itsocr_contract", "-p", "contract_tests.plugin")
# The suite as a user runs it, with its options plugin loaded explicitly (as when installed).
SUITE = (
    "--pyargs",
    "contract_tests",
    *PLUGIN,
    "-p",
    "no:cacheprovider",
    # In-process runs import modules this session already imported: nothing to rewrite.
    "-W",
    "ignore::pytest.PytestAssertRewriteWarning",
)


# -- options -------------------------------------------------------------------------------


def _options(
    pytester: pytest.Pytester, *args: str, env: dict[str, str] | None = None
) -> SuiteOptions:
    config = pytester.parseconfig(*PLUGIN, *args)
    return SuiteOptions.from_config(config, environ=env or {})


def test_options_resolve_command_line_then_environment_then_ini(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nitsocr_budget = 7\nitsocr_plan = pro\n")
    assert _options(pytester).itsocr_budget == 7
    assert _options(pytester, env={"ITSOCR_BUDGET": "5"}).itsocr_budget == 5
    assert _options(pytester, "--itsocr-budget", "3", env={"ITSOCR_BUDGET": "5"}).itsocr_budget == 3
    assert _options(pytester).itsocr_plan == "pro"
    assert _options(pytester, env={"ITSOCR_TOKEN": "itsocr_x"}).itsocr_token == "itsocr_x"


def test_option_defaults(pytester: pytest.Pytester) -> None:
    options = _options(pytester)
    assert (options.itsocr_budget, options.itsocr_plan, options.itsocr_max_cer) == (
        10,
        "free",
        0.10,
    )
    assert options.itsocr_allow_exhaust is False
    # These depend on the target (mock or not) and are decided by the suite.
    assert options.itsocr_level is options.itsocr_concurrency is options.itsocr_examples is None


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ITSOCR_BUDGET": "ten"}, "ITSOCR_BUDGET='ten': expected an integer"),
        ({"ITSOCR_LEVEL": "strict"}, "expected one of documented, observed"),
    ],
)
def test_a_bad_setting_is_a_usage_error(
    pytester: pytest.Pytester, env: dict[str, str], message: str
) -> None:
    with pytest.raises(pytest.UsageError, match=message.replace("(", r"\(")):
        _options(pytester, env=env)


def test_the_plugin_imports_only_pytest_and_the_standard_library() -> None:
    heavy = ("requests", "hypothesis", "schemathesis", "mockserver", "yaml", "jsonschema", "PIL")
    code = (
        "import sys, contract_tests.plugin; "
        f"print([m for m in sys.modules if m.split('.')[0] in {heavy!r}])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_plugin_does_nothing_in_other_test_sessions(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_unrelated():\n    assert 1 + 1 == 2\n")
    result = pytester.runpytest_inprocess(*PLUGIN, "--itsocr-budget", "1")
    result.assert_outcomes(passed=1)
    assert "itsOCR contract" not in result.stdout.str()


# -- a target without a control API: one token, a budget -----------------------------------


@pytest.fixture(scope="module")
def plain_mock() -> Iterator[InProcessServer]:
    """The mock without its control API: to the suite, a live service."""
    with InProcessServer(Settings(state=":memory:", control=False)) as server:
        yield server


@pytest.fixture
def live(plain_mock: InProcessServer) -> InProcessServer:
    plain_mock.backend.reset()
    return plain_mock


def run_suite(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, dict[str, Any]]:
    """Run the contract suite with `args`; its result and its JSON clause report."""
    report = pytester.path / "clauses.json"
    result = pytester.runpytest_inprocess(*SUITE, "--itsocr-report", str(report), *args)
    return result, json.loads(report.read_text(encoding="utf-8"))


def clauses(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["clause"]: row for row in report["clauses"]}


def images_used(server: InProcessServer, account_id: str) -> int:
    return server.backend.store.usage(account_id, period_of(server.backend.now()))[0]


def test_the_budget_caps_what_the_token_can_spend(
    pytester: pytest.Pytester, live: InProcessServer
) -> None:
    result, report = run_suite(
        pytester,
        "--base-url",
        live.url,
        "--itsocr-token",
        FREE.token,
        "--itsocr-budget",
        "2",
        "--itsocr-level",
        "observed",
    )
    assert result.ret == 0, result.stdout.str()
    assert not report["mock"]
    assert report["budget"] == 2
    assert 1 <= report["quotaSpent"] <= 2
    assert images_used(live, FREE.id) == report["quotaSpent"]
    skipped = [row for row in report["clauses"] if row["result"] == "skipped"]
    assert any("raise --itsocr-budget" in reason for row in skipped for reason in row["reasons"])
    assert "quota spent: " in result.stdout.str()


def test_a_zero_budget_sends_nothing_with_the_token(
    pytester: pytest.Pytester, live: InProcessServer
) -> None:
    result, report = run_suite(
        pytester, "--base-url", live.url, "--itsocr-token", FREE.token, "--itsocr-budget", "0"
    )
    assert result.ret == 0, result.stdout.str()
    assert report["requestsWithToken"] == report["quotaSpent"] == 0
    assert images_used(live, FREE.id) == 0
    rows = clauses(report)
    assert rows["auth.missing-header"]["result"] == "passed"  # needs no token at all


def test_without_a_token_the_skips_name_the_option(
    pytester: pytest.Pytester, live: InProcessServer
) -> None:
    result, report = run_suite(pytester, "--base-url", live.url, "-k", "auth or upload")
    assert result.ret == 0, result.stdout.str()
    rows = clauses(report)
    assert rows["auth.unknown-token"]["result"] == "passed"
    assert rows["upload.not-multipart"]["result"] == "skipped"
    assert any("--itsocr-token" in reason for reason in rows["upload.not-multipart"]["reasons"])


def test_the_level_is_documented_without_a_control_api(
    pytester: pytest.Pytester, live: InProcessServer
) -> None:
    _, report = run_suite(
        pytester, "--base-url", live.url, "--itsocr-token", FREE.token, "-k", "auth or http"
    )
    assert report["level"] == "documented"
    rows = clauses(report)
    assert rows["http.method-not-allowed"]["result"] == "skipped"
    assert rows["http.method-not-allowed"]["reasons"] == [
        "observed-level clause: run with --itsocr-level observed"
    ]
    assert rows["auth.revoked-token"]["result"] == "skipped"  # no control API, no option
    assert any(
        "--itsocr-revoked-token" in reason for reason in rows["auth.revoked-token"]["reasons"]
    )
    _, observed = run_suite(
        pytester,
        "--base-url",
        live.url,
        "--itsocr-token",
        FREE.token,
        "-k",
        "http",
        "--itsocr-level",
        "observed",
    )
    assert clauses(observed)["http.method-not-allowed"]["result"] == "passed"


def test_clauses_can_be_chosen_by_id_or_glob(
    pytester: pytest.Pytester, live: InProcessServer
) -> None:
    result, report = run_suite(
        pytester, "--base-url", live.url, "--itsocr-clauses", "auth.unknown-*, auth.missing-header"
    )
    assert result.ret == 0, result.stdout.str()
    assert set(clauses(report)) == {"auth.unknown-token", "auth.missing-header"}


def test_tokens_in_a_given_state_unlock_their_clauses(
    pytester: pytest.Pytester, live: InProcessServer
) -> None:
    account, _ = live.backend.create_account("free")
    revoked = live.backend.create_token(account.id)
    live.backend.store.revoke_token(revoked.row.id, "2030-01-01T00:00:00.000Z")
    _, report = run_suite(
        pytester, "--base-url", live.url, "--itsocr-revoked-token", revoked.token, "-k", "revoked"
    )
    assert clauses(report)["auth.revoked-token"]["result"] == "passed"


def test_using_up_the_quota_needs_allow_exhaust(
    pytester: pytest.Pytester, live: InProcessServer
) -> None:
    args = ("--base-url", live.url, "--itsocr-token", FREE.token, "-k", "429_after")
    _, refused = run_suite(pytester, *args)
    assert any(
        "--itsocr-allow-exhaust" in r for r in clauses(refused)["quota.exact-limit"]["reasons"]
    )
    assert images_used(live, FREE.id) == 0
    result, report = run_suite(pytester, *args, "--itsocr-allow-exhaust", "--itsocr-budget", "12")
    assert result.ret == 0, result.stdout.str()
    assert clauses(report)["quota.exact-limit"]["result"] == "passed"
    assert images_used(live, FREE.id) == 10 == report["quotaSpent"]


def test_concurrency_is_opt_in_against_a_live_target(
    pytester: pytest.Pytester, live: InProcessServer
) -> None:
    args = ("--base-url", live.url, "--itsocr-token", FREE.token, "-k", "simultaneous")
    _, off = run_suite(pytester, *args)
    assert any("--itsocr-concurrency" in r for r in clauses(off)["quota.concurrency"]["reasons"])
    _, short = run_suite(pytester, *args, "--itsocr-concurrency", "8", "--itsocr-allow-exhaust")
    assert clauses(short)["quota.concurrency"]["reasons"] == [
        "the race needs 15 billable requests (7 to spend the token down to 3 images left, 8 at "
        "once), 10 left: from a fresh token pass --itsocr-budget 18 (the limit + the burst)"
    ]
    assert short["requestsWithToken"] == 0
    # From a fresh token the clause spends it down to 3 images left, then fires 8 at once:
    # a budget of the limit + the burst.
    result, report = run_suite(
        pytester,
        *args,
        "--itsocr-concurrency",
        "8",
        "--itsocr-allow-exhaust",
        "--itsocr-budget",
        "18",
    )
    assert result.ret == 0, result.stdout.str()
    assert clauses(report)["quota.concurrency"]["result"] == "passed"
    assert images_used(live, FREE.id) == 10 == report["quotaSpent"]
    assert report["imagesLeft"] == 0


def test_a_token_at_its_limit_skips_with_one_reason_instead_of_failing(
    pytester: pytest.Pytester, live: InProcessServer
) -> None:
    live.backend.store.set_images_used(FREE.id, period_of(live.backend.now()), 10)
    result, report = run_suite(
        pytester, "--base-url", live.url, "--itsocr-token", FREE.token, "-k", "upload or auth"
    )
    assert result.ret == 0, result.stdout.str()
    rows = clauses(report)
    reason = "the token's monthly quota is used up: 10 of 10"
    for clause in ("upload.missing-file", "upload.not-multipart", "success.common-types"):
        assert rows[clause] == {**rows[clause], "result": "skipped", "reasons": [reason]}
    assert rows["auth.header-format"]["result"] == "passed"  # a 401 comes before the quota
    assert (report["quotaSpent"], report["imagesLeft"]) == (0, 0)
    assert "images left: 0 (the token's monthly quota is used up: 10 of 10)" in result.stdout.str()


def test_the_first_quota_429_is_checked_against_the_contract(
    pytester: pytest.Pytester, httpserver: HTTPServer
) -> None:
    """A 429 that says the limit is reached, but with Retry-After and success: true."""
    httpserver.expect_request("/api/v1/ocr", method="POST").respond_with_json(
        {"success": True, "error": "Monthly limit reached. You have used 10 of 10 images."},
        status=429,
        headers={"Retry-After": "3600"},
    )
    result, report = run_suite(
        pytester,
        "--base-url",
        httpserver.url_for("/api/v1"),
        "--itsocr-token",
        FREE.token,
        "--itsocr-level",
        "observed",
        "-k",
        "test_missing_file or test_not_multipart",
    )
    assert result.ret == 1
    rows = clauses(report)
    failed = [clause for clause, row in rows.items() if row["result"] == "failed"]
    assert len(failed) == 1, rows  # checked once, by the clause that met it first
    assert rows[failed[0]]["failed"] == 1
    assert "Retry-After" in result.stdout.str()
    reason = "the token's monthly quota is used up: 10 of 10"
    assert all(row["reasons"] == [reason] for row in rows.values() if row["result"] == "skipped")


# -- failures name the clause and mask the token --------------------------------------------


def test_a_failure_names_its_clause_and_masks_the_token(
    pytester: pytest.Pytester, httpserver: HTTPServer
) -> None:
    """A target that answers every upload with a 401 of the wrong message."""
    httpserver.expect_request("/api/v1/ocr", method="POST").respond_with_json(
        {"error": "Unauthorized", "success": False}, status=401
    )
    result, report = run_suite(
        pytester,
        "--base-url",
        httpserver.url_for("/api/v1"),
        "--itsocr-token",
        FREE.token,
        "--itsocr-level",
        "observed",
        "-k",
        "unknown_token",
    )
    assert result.ret == 1
    output = result.stdout.str()
    assert "[auth.unknown-token]" in output
    assert "error: expected 'Invalid API token', received 'Unauthorized'" in output
    row = clauses(report)["auth.unknown-token"]
    assert row["result"] == "failed"
    assert row["failed"] == 2


def test_the_token_is_masked_in_failures(pytester: pytest.Pytester, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/v1/ocr", method="POST").respond_with_data(
        "<html>oops</html>", status=200, content_type="text/html"
    )
    result, _ = run_suite(
        pytester,
        "--base-url",
        httpserver.url_for("/api/v1"),
        "--itsocr-token",
        FREE.token,
        "-k",
        "header_format and no-scheme",
    )
    assert result.ret == 1
    output = result.stdout.str()
    assert "[auth.header-format]" in output
    assert "text/html" in output
    assert FREE.token[:11] + "…" in output
    assert FREE.token not in output


# -- full runs ------------------------------------------------------------------------------


def _assert_green(result: pytest.RunResult, report: dict[str, Any]) -> None:
    assert result.ret == 0, result.stdout.str()
    assert report["mock"] is True
    assert report["level"] == "observed"
    failed = [row["clause"] for row in report["clauses"] if row["result"] == "failed"]
    assert failed == []
    skipped = {row["clause"] for row in report["clauses"] if row["result"] == "skipped"}
    assert skipped <= {"ocr.fixture-text"}  # only when the kit has no fixture manifest


def test_green_against_the_mock_in_process(pytester: pytest.Pytester) -> None:
    """The whole suite passes the mock: the default run's one whole-suite run, in-process,
    as it costs no pytest start-up (the README's suite commands run narrowed; the slow run
    adds the whole suite against `serve`, Redis and every broken implementation)."""
    result, report = run_suite(pytester)
    _assert_green(result, report)
    assert report["target"].startswith("http://127.0.0.1:")


@pytest.mark.slow
def test_green_against_itsocr_mock_serve(pytester: pytest.Pytester, tmp_path: Path) -> None:
    # pytester runs in a temporary directory: point the child at this checkout (or install).
    root = str(Path(mockserver.__file__).resolve().parent.parent)
    path = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    with ServerProcess(state=tmp_path / "state.sqlite3", env={"PYTHONPATH": path}) as server:
        result, report = run_suite(pytester, "--base-url", server.url)
    _assert_green(result, report)
    assert report["target"] == server.url + "/api/v1"


@pytest.mark.slow
def test_pytest_base_url_in_a_checkout_runs_the_contract_suite(tmp_path: Path) -> None:
    """`pytest --base-url URL` typed at the root of the checkout: the suite, against URL."""
    root = Path(__file__).resolve().parents[1]
    report = tmp_path / "clauses.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ITSOCR_", "PYTEST_"))}
    with InProcessServer(Settings(state=":memory:", control=False)) as server:
        command = [sys.executable, "-m", "pytest", "--base-url", server.url]
        done = subprocess.run(
            [*command, "--itsocr-clauses", "auth.missing-header", "--itsocr-report", str(report)],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert f"itsOCR contract clauses: {server.base_url}, no control API" in done.stdout
        assert clauses(json.loads(report.read_text()))["auth.missing-header"]["result"] == "passed"
        # With test paths given, the kit's own tests run as asked.
        own = subprocess.run(
            [*command, "tests/test_budget.py", "-q"],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert own.returncode == 0, own.stdout[-3000:]
    assert "itsOCR contract clauses" not in own.stdout


@pytest.mark.slow
def test_green_against_a_redis_backed_mock(
    pytester: pytest.Pytester, redis_server: RedisServer, redis_prefix: str
) -> None:
    root = str(Path(mockserver.__file__).resolve().parent.parent)
    path = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    args = ["--workers", "2", "--state-prefix", redis_prefix]
    with ServerProcess(state=redis_server.url, args=args, env={"PYTHONPATH": path}) as server:
        result, report = run_suite(pytester, "--base-url", server.url)
    _assert_green(result, report)
    assert report["target"] == server.url + "/api/v1"
