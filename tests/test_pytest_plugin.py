"""The pytest plugin, as a user meets it: fixtures in their own test files, run by pytester.

The plugin is loaded with ``-p mockserver.pytest_plugin`` (and its entry point name blocked, so
that the same holds whether or not the kit is pip-installed).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from mockserver import errors
from mockserver.clock import period_of
from mockserver.contract import cors_headers
from mockserver.pytest_plugin import ItsocrMock, MockPool, assert_matches_contract
from mockserver.settings import Settings
from mockserver.testing import InProcessServer

pytest_plugins = ("pytester",)

PLUGIN = ("-p", "no:itsocr_mock", "-p", "mockserver.pytest_plugin")


# Warnings are errors, except that the plugin module, imported by this file already, cannot be
# assertion-rewritten again (an installed kit's entry point is imported by pytest itself).
WARNINGS = ("-W", "error", "-W", "ignore::pytest.PytestAssertRewriteWarning")


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """Run the user's tests in a fresh pytest session with the plugin, warnings as errors."""
    return pytester.runpytest(*PLUGIN, *WARNINGS, "-p", "no:cacheprovider", *args)


IMAGE = """
import io

from PIL import Image


def png(text="x"):
    image = Image.new("RGB", (40 + len(text), 20), "white")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def post(mock, token, data, media_type="image/png", prompt=None):
    import requests

    return requests.post(
        mock.ocr_url,
        headers={"Authorization": f"Bearer {token}"},
        files={"file": ("a.png", data, media_type)},
        data={"prompt": prompt} if prompt else None,
        timeout=10,
    )
"""


@pytest.fixture
def running_mock() -> Iterator[InProcessServer]:
    """A second mock, standing for one somebody started with `itsocr-mock serve`."""
    with InProcessServer(Settings(state=":memory:")) as server:
        yield server


def test_fixtures_work_in_a_users_test_file(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        IMAGE
        + """
from datetime import datetime

from mockserver.pytest_plugin import Account


def test_demo_tokens_answer(itsocr_mock):
    assert itsocr_mock.base_url == itsocr_mock.url + "/api/v1"
    assert set(itsocr_mock.demo_tokens) == {"free", "pro", "enterprise"}
    response = post(itsocr_mock, itsocr_mock.demo_tokens["free"], png())
    assert response.status_code == 200, response.text
    assert response.json()["fileName"] == "a.png"


def test_new_account_and_quota(itsocr_mock):
    account = itsocr_mock.new_account("pro")
    assert isinstance(account, Account) and account.plan == "pro"
    assert account.token.startswith("itsocr_") and len(account.token) == 39
    itsocr_mock.set_usage(account, 499)
    assert post(itsocr_mock, account.token, png()).status_code == 200
    refused = post(itsocr_mock, account.token, png())
    assert refused.status_code == 429
    assert refused.json()["error"] == (
        "Monthly limit reached. You have used 500 of 500 images this month."
    )
    assert itsocr_mock.usage(account) == 500
    assert itsocr_mock.usage(account.id) == 500


def test_set_clock_moves_the_month(itsocr_mock):
    account = itsocr_mock.new_account("free")
    itsocr_mock.set_clock(datetime(2031, 1, 31, 23, 59, 59))
    itsocr_mock.set_usage(account, 10)
    assert post(itsocr_mock, account.token, png()).status_code == 429
    itsocr_mock.set_clock("2031-02-01T00:00:00Z")
    assert post(itsocr_mock, account.token, png()).status_code == 200
    assert itsocr_mock.usage(account) == 1
    itsocr_mock.set_clock(None)


def test_fail_next(itsocr_mock):
    token = itsocr_mock.demo_tokens["enterprise"]
    itsocr_mock.fail_next(500, times=2)
    failed = [post(itsocr_mock, token, png()) for _ in range(2)]
    assert [r.status_code for r in failed] == [500, 500]
    assert failed[0].json()["error"] == "OCR processing failed. Please try again."
    assert post(itsocr_mock, token, png()).status_code == 200
    assert itsocr_mock.usage("demo-enterprise") == 1


def test_fail_next_with_a_delay(itsocr_mock):
    import time

    token = itsocr_mock.demo_tokens["free"]
    itsocr_mock.fail_next(500, delay_ms=300)
    started = time.perf_counter()
    assert post(itsocr_mock, token, png()).status_code == 500
    assert time.perf_counter() - started >= 0.3
    itsocr_mock.fail_next(200, delay_ms=300)  # slow, not failing
    started = time.perf_counter()
    assert post(itsocr_mock, token, png()).status_code == 200
    assert time.perf_counter() - started >= 0.3
    after = post(itsocr_mock, token, png())  # the delay was for one call only
    assert after.status_code == 200
    assert after.json()["processingTimeMs"] < 300


def test_add_fixture_from_bytes_and_path(itsocr_mock, tmp_path):
    token = itsocr_mock.demo_tokens["free"]
    itsocr_mock.add_fixture(png("one"), "  Hello, fixture  ")
    assert post(itsocr_mock, token, png("one")).json()["text"] == "Hello, fixture"
    path = tmp_path / "two.png"
    path.write_bytes(png("two!"))
    itsocr_mock.add_fixture(path, "with a prompt", prompt="read the total")
    answer = post(itsocr_mock, token, path.read_bytes(), prompt="read the total")
    assert answer.json()["text"] == "with a prompt"


def test_requests_is_the_journal(itsocr_mock):
    account = itsocr_mock.new_account()
    post(itsocr_mock, account.token, png(), media_type="image/jpg")
    post(itsocr_mock, itsocr_mock.demo_tokens["free"], png())
    everything = itsocr_mock.requests()
    assert [entry["status"] for entry in everything] == [400, 200]
    [mine] = itsocr_mock.requests(account=account)
    assert mine["mimeType"] == "image/jpg"
    assert account.token not in str(everything)  # never a whole token
    assert [e["status"] for e in itsocr_mock.requests(status=200)] == [200]
"""
    )
    result = run(pytester)
    result.assert_outcomes(passed=7)


def test_state_is_reset_before_each_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        IMAGE
        + """
import pytest


@pytest.mark.parametrize("round", [1, 2])
def test_starts_fresh(itsocr_mock, round):
    assert itsocr_mock.requests() == []
    assert itsocr_mock.usage("demo-free") == 0
    # Leave a mess behind: usage, a fault rule, a frozen clock, a journal entry, an account.
    itsocr_mock.new_account("pro")
    itsocr_mock.set_usage("demo-free", 10)
    itsocr_mock.set_clock("2030-05-05T00:00:00Z")
    itsocr_mock.fail_next(500, times=5)
    post(itsocr_mock, itsocr_mock.demo_tokens["pro"], png())


def test_after_the_mess(itsocr_mock):
    assert post(itsocr_mock, itsocr_mock.demo_tokens["free"], png()).status_code == 200
    [entry] = itsocr_mock.requests()
    assert not entry["time"].startswith("2030")
"""
    )
    run(pytester).assert_outcomes(passed=3)


def test_url_option_drives_a_running_mock(
    pytester: pytest.Pytester, running_mock: InProcessServer
) -> None:
    pytester.makepyfile(
        f"""
import pathlib


def test_uses_the_running_mock(itsocr_mock):
    assert itsocr_mock.url == {running_mock.url!r}
    account = itsocr_mock.new_account("enterprise")
    itsocr_mock.set_usage(account, 7)
    pathlib.Path("account.txt").write_text(account.id)
"""
    )
    result = run(pytester, "--itsocr-mock-url", running_mock.url + "/")
    result.assert_outcomes(passed=1)
    account_id = (pytester.path / "account.txt").read_text()
    store = running_mock.backend.store
    assert store.get_account(account_id) is not None
    assert store.usage(account_id, period_of(running_mock.backend.now()))[0] == 7
    assert any(f"itsocr-mock: {running_mock.url}" in line for line in result.outlines)


def test_marker_and_environment_select_a_running_mock(
    pytester: pytest.Pytester, running_mock: InProcessServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(
        f"""
import pytest


@pytest.mark.itsocr_mock_url({running_mock.url!r})
def test_marked(itsocr_mock):
    assert itsocr_mock.url == {running_mock.url!r}


def test_from_the_environment(itsocr_mock):
    assert itsocr_mock.url == {running_mock.url!r}
"""
    )
    monkeypatch.setenv("ITSOCR_MOCK_URL", running_mock.url)
    run(pytester, "--strict-markers").assert_outcomes(passed=2)


def test_a_mock_without_its_control_api_is_a_clear_error(pytester: pytest.Pytester) -> None:
    """Its health check answers (--no-control keeps it), but the fixture cannot reset it."""
    pytester.makepyfile("def test_needs_the_mock(itsocr_mock):\n    pass\n")
    with InProcessServer(Settings(state=":memory:", control=False)) as uncontrolled:
        result = run(pytester, "--itsocr-mock-url", uncontrolled.url)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*runs without its control API (--no-control*"])


def test_a_mock_that_is_not_running_is_a_clear_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
def test_needs_the_mock(itsocr_mock):
    pass
"""
    )
    result = run(pytester, "--itsocr-mock-url", "http://127.0.0.1:9")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*no itsOCR mock with a control API answers at http://127.0.0.1:9*itsocr-mock serve*"]
    )


def test_no_report_header_for_the_in_process_mock(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = run(pytester)
    result.assert_outcomes(passed=1)
    assert not any(line.startswith("itsocr-mock:") for line in result.outlines)


@pytest.mark.timing
def test_in_process_mock_is_ready_fast_and_resets_cheaply() -> None:
    mocks = MockPool(admin_token=None)
    try:
        started = time.perf_counter()
        mock = mocks.local()
        ready = time.perf_counter() - started
        started = time.perf_counter()
        for _ in range(20):
            mock = mocks.local()
        reset = (time.perf_counter() - started) / 20
        assert isinstance(mock, ItsocrMock)
        assert requests.get(mock.url + "/_mock/health", timeout=5).status_code == 200
    finally:
        mocks.close()
    # Budgets of the issue: ready in 0.2 s, a reset in a few milliseconds. Doubled here so that
    # a loaded CI machine does not fail the build; the measured values are in the report.
    assert ready < 0.4, ready
    assert reset < 0.02, reset


def test_plugin_module_imports_only_pytest_and_the_standard_library() -> None:
    heavy = ("flask", "werkzeug", "requests", "yaml", "PIL", "jsonschema", "schemathesis")
    code = (
        "import sys, json, mockserver.pytest_plugin\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {heavy!r})))\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('mockserver'))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded, ours = (json.loads(line) for line in done.stdout.splitlines())
    assert loaded == []
    # The fixtures' objects live in modules of their own, as light as the plugin itself.
    light = [
        "mockserver",
        "mockserver.canned",
        "mockserver.itsocr_mock",
        "mockserver.pytest_plugin",
    ]
    assert ours == light


# -- itsocr_httpserver -------------------------------------------------------------------------


def test_itsocr_httpserver_answers_with_the_spec_examples(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
import pytest
import requests

from mockserver.pytest_plugin import assert_matches_contract


def ocr(server):
    response = requests.post(server.base_url + "/ocr", files={"file": ("a.png", b"x")}, timeout=5)
    assert_matches_contract(response)
    return response


def test_default_is_the_docs_success_example(itsocr_httpserver):
    body = ocr(itsocr_httpserver).json()
    assert body["text"] == "Extracted text from the image..."
    assert list(body) == [
        "id", "text", "processingTimeMs", "fileName", "fileSize", "mimeType", "success"
    ]


def test_respond_next_by_status(itsocr_httpserver):
    itsocr_httpserver.respond_next(429)
    itsocr_httpserver.respond_next(401, times=2)
    statuses = [ocr(itsocr_httpserver).status_code for _ in range(5)]
    assert statuses == [429, 401, 401, 200, 200]
    assert len(itsocr_httpserver.log) == 5


def test_respond_with_example_by_name(itsocr_httpserver):
    itsocr_httpserver.respond_with_example("unknownToken")
    response = ocr(itsocr_httpserver)
    assert response.status_code == 401
    assert response.content == b'{"error":"Invalid API token","success":false}'


def test_respond_for_every_call(itsocr_httpserver):
    itsocr_httpserver.respond_with_example("fileTooLargeForPlan", times=None)
    assert {ocr(itsocr_httpserver).status_code for _ in range(3)} == {400}


def test_preflight_and_other_methods(itsocr_httpserver):
    url = itsocr_httpserver.base_url + "/ocr"
    preflight = requests.options(url, timeout=5)
    assert preflight.status_code == 204 and preflight.content == b""
    assert_matches_contract(preflight, operation=("options", "/ocr"))
    refused = requests.get(url, timeout=5)
    assert (refused.status_code, refused.text) == (405, "GET method not allowed")
    assert_matches_contract(refused, operation=("get", "/ocr"))


def test_unknown_names_are_explained(itsocr_httpserver):
    with pytest.raises(ValueError, match="no example 'nope'; it has document, "):
        itsocr_httpserver.respond_with_example("nope")
    with pytest.raises(ValueError, match="no example for status 418"):
        itsocr_httpserver.respond_next(418)


def test_fresh_in_each_test(itsocr_httpserver):
    assert ocr(itsocr_httpserver).status_code == 200
    assert len(itsocr_httpserver.log) == 1
"""
    )
    run(pytester).assert_outcomes(passed=7)


def test_httpserver_examples_are_the_mocks_bytes(
    pytester: pytest.Pytester, mock_server: InProcessServer, demo_token: str
) -> None:
    # The canned 429 must be byte for byte what the mock (hence the live service) sends.
    backend = mock_server.backend
    backend.store.set_images_used("demo-free", period_of(backend.now()), 10)
    live = requests.post(
        mock_server.base_url + "/ocr",
        headers={"Authorization": f"Bearer {demo_token}"},
        files={"file": ("a.png", b"x", "image/png")},
        timeout=5,
    )
    assert live.status_code == 429
    expected = Path(pytester.path / "expected.bin")
    expected.write_bytes(live.content)
    pytester.makepyfile(
        """
import pathlib

import requests


def test_same_bytes(itsocr_httpserver):
    itsocr_httpserver.respond_next(429)
    canned = requests.post(itsocr_httpserver.base_url + "/ocr", timeout=5)
    assert canned.content == pathlib.Path("expected.bin").read_bytes()
    assert canned.headers["Content-Type"] == "application/json"
"""
    )
    run(pytester).assert_outcomes(passed=1)


# -- assert_matches_contract -------------------------------------------------------------------


def test_assert_matches_contract_is_the_validator() -> None:
    from mockserver import validation

    assert assert_matches_contract is validation.assert_matches_contract
    body = json.dumps(errors.InvalidApiToken().to_json()).encode()
    cors = {"Content-Type": "application/json", **cors_headers()}
    assert_matches_contract((401, cors, body))
    with pytest.raises(AssertionError, match="401"):
        assert_matches_contract((401, cors, b'{"error": "x"}'))
    with pytest.raises(AssertionError):
        assert_matches_contract((418, cors, body))
