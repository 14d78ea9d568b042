"""Schemathesis's own CLI on the contract: `schemathesis.toml` and the kit's hooks (issue 15).

Users run, from the repository root, with no other flags than the target and the token::

    schemathesis run openapi.yaml --url http://127.0.0.1:PORT/api/v1 \\
      --header "Authorization: Bearer ..."
    schemathesis run openapi-control.yaml --url http://127.0.0.1:PORT/_mock

- Default run: the configuration as the installed Schemathesis reads it, and each hook of
  `contract_tests.schemathesis_hooks` on real answers of the mock (and of a broken 405): the
  documented 500 is dropped and an undocumented one kept, a "negative" case whose bytes are a
  valid form is not "invalid data accepted", the 405s are checked for what they are.
- ``-m slow``: the real `schemathesis` command, as users type it, against the mock served by
  ``itsocr-mock serve`` (every phase, zero failures) and against broken implementations of
  `tests/broken` (failures found, each by the check that should).
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import schemathesis
from broken import DEFECTS, FAITHFUL
from schemathesis.core.failures import AcceptedNegativeData, ServerError

from contract_tests.images import make_image, undecodable_bytes
from mockserver.backend import DEMO_ACCOUNTS
from mockserver.testing import InProcessServer, ServerProcess

ROOT = Path(__file__).resolve().parents[1]
HOOKS = "contract_tests.schemathesis_hooks"
TOKEN = next(demo.token for demo in DEMO_ACCOUNTS if demo.plan == "enterprise")
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CLI_TIMEOUT = 900.0  # seconds; a run takes 10-150 s, but a hung target must not hang the tests


@pytest.fixture(scope="module")
def hooks() -> Iterator[ModuleType]:
    """The kit's hooks module, imported; what it registers process-wide (hooks, checks, media
    types) is taken back afterwards, so that no other test of this process runs with it."""
    from schemathesis.checks import CHECKS
    from schemathesis.core.media_types import MEDIA_TYPE_STRATEGIES
    from schemathesis.hooks import GLOBAL_HOOK_DISPATCHER
    from schemathesis.transport.requests import REQUESTS_TRANSPORT

    strategies = dict(MEDIA_TYPE_STRATEGIES)
    serializers = dict(REQUESTS_TRANSPORT._serializers)
    sys.modules.pop(HOOKS, None)
    module = importlib.import_module(HOOKS)
    try:
        yield module
    finally:
        GLOBAL_HOOK_DISPATCHER.unregister(module.filter_case)
        GLOBAL_HOOK_DISPATCHER.unregister(module.filter_failure)
        for check in ("itsocr_ocr_answer", "itsocr_method_not_allowed"):
            CHECKS.unregister(check)
        MEDIA_TYPE_STRATEGIES.clear()
        MEDIA_TYPE_STRATEGIES.update(strategies)
        REQUESTS_TRANSPORT._serializers.clear()
        REQUESTS_TRANSPORT._serializers.update(serializers)
        sys.modules.pop(HOOKS, None)


@pytest.fixture(scope="module")
def api(hooks: ModuleType) -> Any:
    """`openapi.yaml` loaded with the repository's `schemathesis.toml`, as the CLI loads it."""
    config = schemathesis.Config.from_path(str(ROOT / "schemathesis.toml"))
    return schemathesis.openapi.from_path(str(ROOT / "openapi.yaml"), config=config)


@pytest.fixture(scope="module")
def control_api(hooks: ModuleType) -> Any:
    """`openapi-control.yaml` loaded with the repository's `schemathesis.toml`."""
    config = schemathesis.Config.from_path(str(ROOT / "schemathesis.toml"))
    return schemathesis.openapi.from_path(str(ROOT / "openapi-control.yaml"), config=config)


def upload(api: Any, content: bytes, media_type: str = "image/png", **fields: Any) -> Any:
    """A hand-made ``POST /ocr`` case: `content` as the file part, declared `media_type`."""
    return api["/ocr"]["POST"].Case(
        body={"file": content, **fields},
        media_type="multipart/form-data",
        multipart_content_types={"file": media_type},
    )


def server_error(case: Any) -> ServerError:
    return ServerError(operation=case.operation.label, status_code=500)


def accepted_negative(case: Any) -> AcceptedNegativeData:
    return AcceptedNegativeData(
        operation=case.operation.label, message="", status_code=200, expected_statuses=["4xx"]
    )


# -- the configuration ------------------------------------------------------------------------


def test_the_configuration_names_the_kits_hooks_and_is_read_per_document(
    api: Any, control_api: Any
) -> None:
    post, get = api["/ocr"]["POST"], api["/ocr"]["GET"]
    assert api.config.hooks == HOOKS
    # The token comes from --header: no generated Authorization for the API...
    generation = api.config.generation_for(operation=post, phase="fuzzing")
    assert generation.with_security_parameters is False
    # ... a valid upload is a 2xx (a 429 is a finding: nothing was tested), a refused method a 405.
    checks = api.config.checks_config_for(operation=post, phase="fuzzing")
    assert checks.positive_data_acceptance.expected_statuses == ["2xx"]
    checks = api.config.checks_config_for(operation=get, phase="fuzzing")
    assert checks.positive_data_acceptance.expected_statuses == ["405"]
    # The control API's run keeps Schemathesis's defaults: its admin token is optional.
    health = control_api["/health"]["GET"]
    assert control_api.config.generation_for(
        operation=health, phase="fuzzing"
    ).with_security_parameters


# -- the hooks on real answers -------------------------------------------------------------


def test_a_documented_500_for_undecodable_bytes_is_not_a_server_error(
    hooks: ModuleType, api: Any, mock_server: InProcessServer
) -> None:
    case = upload(api, undecodable_bytes())
    response = case.call(base_url=mock_server.base_url, headers=AUTH)
    assert response.status_code == 500
    hooks.itsocr_ocr_answer(None, response, case)  # the contract's answer: no failure
    assert hooks.filter_failure(None, server_error(case), case, response) is False


def test_a_500_for_a_real_image_stays_a_server_error(
    hooks: ModuleType, api: Any, mock_server: InProcessServer
) -> None:
    # The mock's per-request override answers 500 (the OCR failure's message) for a good image.
    case = upload(api, make_image("image/png"))
    response = case.call(base_url=mock_server.base_url, headers={**AUTH, "Prefer": "code=500"})
    assert response.status_code == 500
    assert hooks.filter_failure(None, server_error(case), case, response) is True
    with pytest.raises(AssertionError, match=r"Received: 500 .*\n.*contract's answer: 200"):
        hooks.itsocr_ocr_answer(None, response, case)


def test_a_negative_case_whose_bytes_are_a_valid_upload_may_be_accepted(
    hooks: ModuleType, api: Any, mock_server: InProcessServer
) -> None:
    # Schemathesis mutates `prompt` into an object; on the wire it is the text of its JSON.
    case = upload(api, make_image("image/gif"), "image/gif", prompt={"a": [1]})
    response = case.call(base_url=mock_server.base_url, headers=AUTH)
    assert response.status_code == 200
    assert hooks.filter_failure(None, accepted_negative(case), case, response) is False


def test_a_negative_case_that_is_invalid_on_the_wire_stays_a_finding(
    hooks: ModuleType, api: Any, mock_server: InProcessServer
) -> None:
    case = api["/ocr"]["POST"].Case(body={"prompt": "no file"}, media_type="multipart/form-data")
    response = case.call(base_url=mock_server.base_url, headers=AUTH)
    assert response.status_code == 400
    assert hooks.filter_failure(None, accepted_negative(case), case, response) is True


def test_a_control_form_is_judged_by_what_was_sent(
    hooks: ModuleType, control_api: Any, mock_server: InProcessServer
) -> None:
    operation = control_api["/fixtures"]["POST"]
    url = mock_server.url + "/_mock"
    # `null` for the name goes out as the text "null": a valid form, rightly accepted.
    valid = operation.Case(
        body={"image": make_image("image/png"), "text": "hello", "name": None},
        media_type="multipart/form-data",
    )
    response = valid.call(base_url=url)
    assert response.status_code == 201
    assert hooks.filter_failure(None, accepted_negative(valid), valid, response) is False
    # Without the required `text`, a 201 would be a real finding: the failure is kept.
    invalid = operation.Case(
        body={"image": make_image("image/png")}, media_type="multipart/form-data"
    )
    response = invalid.call(base_url=url)
    assert hooks.filter_failure(None, accepted_negative(invalid), invalid, response) is True


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
def test_the_refused_methods_are_checked_for_their_405(
    hooks: ModuleType, api: Any, mock_server: InProcessServer, method: str
) -> None:
    case = api["/ocr"][method].Case()
    hooks.itsocr_method_not_allowed(None, case.call(base_url=mock_server.base_url), case)


def test_a_405_without_allow_is_a_finding(hooks: ModuleType, api: Any) -> None:
    case = api["/ocr"]["DELETE"].Case()
    with DEFECTS["no-allow-on-405"].build() as server:
        response = case.call(base_url=server.base_url)
    with pytest.raises(AssertionError, match=r"DELETE /ocr: Allow None, expected 'POST, OPTIONS'"):
        hooks.itsocr_method_not_allowed(None, response, case)


def test_queries_beyond_the_servers_request_line_limit_are_not_generated(
    hooks: ModuleType, control_api: Any
) -> None:
    operation = control_api["/requests"]["GET"]
    assert hooks.filter_case(None, operation.Case(query={"limit": 5})) is True
    assert hooks.filter_case(None, operation.Case(query={"status": [400] * 2000})) is False


# -- the real CLI ----------------------------------------------------------------------------


def schemathesis_run(document: str, url: str, *headers: str) -> subprocess.CompletedProcess[str]:
    """``schemathesis run DOCUMENT --url URL [--header H]...`` from the repository root, with
    this environment's Schemathesis and nothing else that would steer it."""
    program = Path(sys.executable).with_name("schemathesis")
    command = [str(program) if program.exists() else "schemathesis", "run", document]
    command += ["--url", url]
    for header in headers:
        command += ["--header", header]
    env = {name: value for name, value in os.environ.items() if "SCHEMATHESIS" not in name}
    return subprocess.run(
        command,
        cwd=ROOT,
        env={**env, "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        check=False,
    )


def assert_clean(run: subprocess.CompletedProcess[str], phases: tuple[str, ...]) -> None:
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-6000:]
    assert "No issues found" in output, output[-6000:]
    assert "Configuration:    " + str(ROOT / "schemathesis.toml") in output
    summary = output[output.index("Test Phases:") :]
    for phase in phases:
        assert f"✅ {phase}" in summary, summary


@pytest.mark.slow
def test_the_cli_passes_the_mock_with_zero_failures() -> None:
    with ServerProcess() as mock:
        run = schemathesis_run("openapi.yaml", mock.base_url, f"Authorization: Bearer {TOKEN}")
    assert_clean(run, ("Examples", "Coverage", "Fuzzing"))


@pytest.mark.slow
def test_the_cli_passes_the_control_api_with_zero_failures() -> None:
    with ServerProcess() as mock:
        run = schemathesis_run("openapi-control.yaml", mock.url + "/_mock")
    assert_clean(run, ("Examples", "Coverage", "Fuzzing", "Stateful"))


# Broken implementations, and what of the CLI's output must name the defect.
CAUGHT = {
    "auth-not-enforced": "ST401 API accepts requests without authentication",
    "no-allow-on-405": "Custom check failed: `itsocr_method_not_allowed`",
    "html-errors": "ST105 Undocumented Content-Type",
    "file-size-string": "ST108 Response violates schema",
    "cors-headers-missing": "ST107 Missing required response headers",
    "not-multipart-is-missing-file": "Custom check failed: `itsocr_ocr_answer`",
}


@pytest.mark.slow
@pytest.mark.parametrize("defect", sorted(CAUGHT))
def test_the_cli_finds_a_broken_implementation(defect: str) -> None:
    with DEFECTS[defect].build() as server:
        run = schemathesis_run("openapi.yaml", server.base_url, f"Authorization: Bearer {TOKEN}")
    output = run.stdout + run.stderr
    assert run.returncode == 1, output[-6000:]
    assert CAUGHT[defect] in output, output[-6000:]


@pytest.mark.slow
def test_the_faithful_mock_served_like_the_broken_ones_passes() -> None:
    """The broken implementations' serving (in-process, threaded) is not what fails them."""
    with FAITHFUL.build() as server:
        run = schemathesis_run("openapi.yaml", server.base_url, f"Authorization: Bearer {TOKEN}")
    assert_clean(run, ("Examples", "Coverage", "Fuzzing"))
