"""The kit's one response validator (`mockserver.validation`): passes real responses of the mock,
fails each clause with a message that says what was received and what the contract expected, at
the documented and the observed level; and it is the one the suite and the proxy use."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from mockserver import contract, schemas, validation
from mockserver.backend import DEMO_ACCOUNTS
from mockserver.contract import cors_headers
from mockserver.validation import assert_matches_contract, find_operation, find_violations

FREE = DEMO_ACCOUNTS[0]
OK_BODY = {
    "id": "550e8400-e29b-41d4-a716-446655440000",
    "text": "Extracted text",
    "processingTimeMs": 12,
    "fileName": "document.jpg",
    "fileSize": 102400,
    "mimeType": "image/jpeg",
    "success": True,
}
JSON_HEADERS = {**cors_headers(), "Content-Type": "application/json"}


def failure_of(
    response: Any, operation: tuple[str, str] = ("post", "/ocr"), level: Any = "observed"
) -> str:
    with pytest.raises(AssertionError) as failed:
        assert_matches_contract(response, operation=operation, level=level)
    return str(failed.value)


# -- real responses pass ---------------------------------------------------------------------


def test_real_responses_of_every_kind_pass(
    api_client: requests.Session, ocr_url: str, make_image: Callable[..., bytes]
) -> None:
    auth = {"Authorization": f"Bearer {FREE.token}"}
    responses = {
        ("post", "/ocr"): [
            api_client.post(
                ocr_url, headers=auth, files={"file": ("a.png", make_image(), "image/png")}
            ),
            api_client.post(ocr_url, headers=auth, json={}),
            api_client.post(ocr_url),
            api_client.post(ocr_url, headers=auth, files={"file": ("a.png", b"x", "image/png")}),
        ],
        ("options", "/ocr"): [api_client.options(ocr_url)],
        ("get", "/ocr"): [api_client.get(ocr_url)],
        ("delete", "/ocr"): [api_client.delete(ocr_url)],
    }
    for operation, received in responses.items():
        for response in received:
            assert_matches_contract(response, operation=operation)
    assert [r.status_code for r in responses["post", "/ocr"]] == [200, 400, 401, 500]


def test_the_api_client_validates_every_response_and_refuses_undocumented_urls(
    api_client: Any, ocr_url: str, mock_server: Any
) -> None:
    api_client.post(ocr_url)
    api_client.options(ocr_url)
    assert api_client.validated == 2
    with pytest.raises(AssertionError, match=r"is not an operation of openapi\.yaml"):
        api_client.get(mock_server.url + "/api/v1/nope")
    with api_client.off_contract():
        assert api_client.get(mock_server.url + "/api/v1/nope").status_code == 404
    assert api_client.validated == 2


def test_triples_with_a_mapping_or_pairs_and_bytes_or_text_pass() -> None:
    body = json.dumps(OK_BODY)
    assert_matches_contract((200, JSON_HEADERS, body))
    assert_matches_contract((200, list(JSON_HEADERS.items()), body.encode()))
    lower = {name.lower(): value for name, value in JSON_HEADERS.items()}
    assert_matches_contract((200, lower, body))  # header names are case-insensitive


def test_a_charset_on_json_keeps_the_documented_contract_not_the_observed_one() -> None:
    charset = {**JSON_HEADERS, "Content-Type": "application/json; charset=utf-8"}
    assert_matches_contract((200, charset, json.dumps(OK_BODY)), level="documented")
    message = failure_of((200, charset, json.dumps(OK_BODY)))
    assert "the live service sends exactly 'application/json'" in message


def test_the_preflight_and_405_pass() -> None:
    preflight = {**cors_headers(), "Access-Control-Max-Age": "86400"}
    assert_matches_contract((204, preflight, b""), operation=("options", "/ocr"))
    allow = {"Allow": "POST, OPTIONS"}  # and no Content-Type, as the live service sends it
    assert_matches_contract((405, allow, "PUT method not allowed"), operation=("put", "/ocr"))


def test_a_405_with_a_content_type_fails() -> None:
    typed = {"Allow": "POST, OPTIONS", "Content-Type": "text/plain; charset=utf-8"}
    message = failure_of((405, typed, "PUT method not allowed"), operation=("put", "/ocr"))
    assert "the contract sends this body without one" in message
    # The docs say nothing of the 405's type: only the observed level holds a server to it.
    assert_matches_contract(
        (405, typed, "PUT method not allowed"), operation=("put", "/ocr"), level="documented"
    )


# -- each clause fails with a readable message ---------------------------------------------------


def test_an_undocumented_status_fails() -> None:
    message = failure_of((422, JSON_HEADERS, '{"detail": "x"}'))
    assert "status 422 is not documented (documented: 200, 400, 401, 429, 500, 405)" in message
    assert "status: 422" in message


def test_a_missing_required_header_fails() -> None:
    headers = {k: v for k, v in JSON_HEADERS.items() if k != "Access-Control-Allow-Origin"}
    message = failure_of((400, headers, '{"error":"x","success":false}'))
    assert "required header Access-Control-Allow-Origin is missing" in message


def test_a_header_with_the_wrong_value_fails() -> None:
    headers = {**JSON_HEADERS, "Access-Control-Allow-Methods": "POST"}
    message = failure_of((400, headers, '{"error":"x","success":false}'))
    assert "header Access-Control-Allow-Methods: 'POST' does not match its schema" in message
    assert "'POST, OPTIONS' was expected" in message


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [(None, "Content-Type is missing"), ("text/html", "Content-Type is 'text/html'")],
)
def test_a_wrong_content_type_fails(content_type: str | None, expected: str) -> None:
    headers = {k: v for k, v in JSON_HEADERS.items() if k != "Content-Type"}
    if content_type:
        headers["Content-Type"] = content_type
    message = failure_of((400, headers, "<h1>Bad Request</h1>"))
    assert f"{expected}, expected application/json" in message
    assert "<h1>Bad Request</h1>" in message


def test_a_body_that_is_not_json_fails() -> None:
    message = failure_of((500, JSON_HEADERS, "Internal Server Error"))
    assert "the body is not valid JSON" in message


@pytest.mark.parametrize(
    ("change", "location", "error"),
    [
        ({"id": "not-a-uuid"}, "$.id", "does not match"),
        ({"fileSize": "102400"}, "$.fileSize", "is not of type 'integer'"),
        ({"processingTimeMs": -1}, "$.processingTimeMs", "less than the minimum"),
        ({"mimeType": "image/jpg"}, "$.mimeType", "is not one of"),
        ({"success": False}, "$.success", "True was expected"),
        ({"extra": 1}, "$", "Additional properties are not allowed"),
    ],
)
def test_a_body_against_the_schema_fails_with_the_path(
    change: dict[str, Any], location: str, error: str
) -> None:
    message = failure_of((200, JSON_HEADERS, json.dumps({**OK_BODY, **change})))
    assert "the body does not match the schema at #/components/schemas/OcrResult" in message
    assert (f"error at {location}: " if location != "$" else "error: ") in message
    assert error in message
    assert '"fileName": "document.jpg"' in message  # the body, pretty-printed


def test_a_missing_property_is_reported_first() -> None:
    body = {key: value for key, value in OK_BODY.items() if key != "id"}
    body["fileSize"] = "wrong too"
    message = failure_of((200, JSON_HEADERS, json.dumps(body)))
    assert "error: 'id' is a required property" in message


def test_an_error_body_with_success_true_fails() -> None:
    message = failure_of((401, JSON_HEADERS, '{"error":"Invalid API token","success":true}'))
    assert "#/components/schemas/Error" in message
    assert "error at $.success: False was expected" in message


def test_a_body_on_a_response_without_content_fails() -> None:
    preflight = {**cors_headers(), "Access-Control-Max-Age": "86400"}
    message = failure_of((204, preflight, b"{}"), operation=("options", "/ocr"))
    assert "a 204 response has no body in the contract" in message


def test_a_plain_text_405_must_name_the_method() -> None:
    allow = {"Allow": "POST, OPTIONS"}
    message = failure_of((405, allow, "Method Not Allowed"), operation=("get", "/ocr"))
    assert "does not match '^[A-Z]+ method not allowed$'" in message


def test_a_long_non_json_body_is_shortened() -> None:
    message = failure_of((400, {**cors_headers(), "Content-Type": "text/html"}, "x" * 10_000))
    assert "... (10000 bytes in all)" in message
    assert len(message) < 5_000


def test_headers_are_observed_level_only() -> None:
    headers = {"Content-Type": "application/json"}  # no CORS headers
    body = '{"error":"Invalid API token","success":false}'
    assert_matches_contract((401, headers, body), level="documented")
    found = find_violations((401, headers, body))
    assert [str(v) for v in found] == [
        f"required header {name} is missing" for name in contract.cors_headers()
    ]


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (401, "Invalid API token"),
        (429, "Monthly limit reached. You have used 500 of 500 images this month."),
        (400, "File too large for your plan. Maximum size: 20MB"),
        (
            400,
            "Unsupported file type: application/pdf. "
            + contract.example_message(400, "unsupportedType").split(". ", 1)[1],
        ),
        (500, "OCR processing failed. Please try again."),
    ],
)
def test_documented_messages_pass_with_their_variable_parts(status: int, message: str) -> None:
    assert_matches_contract(
        (status, JSON_HEADERS, json.dumps({"error": message, "success": False}))
    )


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (401, "Unauthorized"),
        (429, "Monthly limit reached. You have used many images this month."),
        (400, "File too large for your plan. Maximum size: 7MB"),
        (500, "Internal Server Error"),
    ],
)
def test_an_undocumented_message_breaks_the_observed_contract_only(
    status: int, message: str
) -> None:
    body = json.dumps({"error": message, "success": False})
    assert_matches_contract((status, JSON_HEADERS, body), level="documented")
    failure = failure_of((status, JSON_HEADERS, body))
    assert f"error {message!r} is not a message openapi.yaml documents for {status}" in failure


def test_every_violation_is_listed() -> None:
    headers = {"Content-Type": "application/json; charset=utf-8"}
    found = find_violations((401, headers, '{"error":"Nope","success":false}'))
    assert len(found) == 5  # three CORS headers, the charset, the message
    message = failure_of((401, headers, '{"error":"Nope","success":false}'))
    assert message.count("\n  also: ") == 4


def test_an_unknown_level_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="level must be one of documented, observed"):
        find_violations((200, JSON_HEADERS, "{}"), level="strict")  # type: ignore[arg-type]


# -- what the spec may say that openapi.yaml does not use yet ------------------------------------


@pytest.fixture
def problems_spec(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """openapi.yaml plus ``GET /problems``: a range and a default response, a ``+json`` type and
    an integer header, as a future version of the contract may write them."""
    spec = copy.deepcopy(dict(contract.load_spec()))
    problem = {"type": "object", "required": ["title"], "properties": {"title": {"type": "string"}}}
    spec["paths"] = {
        **spec["paths"],
        "/problems": {
            "get": {
                "responses": {
                    "200": {
                        "description": "ok",
                        "headers": {
                            "X-Count": {
                                "required": True,
                                "schema": {"type": "integer", "minimum": 1},
                            }
                        },
                        "content": {"application/problem+json": {"schema": problem}},
                    },
                    "4XX": {"description": "a client error", "content": {"text/*": {}}},
                    "default": {"description": "anything else"},
                }
            }
        },
    }
    for reader in (contract, validation, schemas):
        monkeypatch.setattr(reader, "load_spec", lambda name="openapi.yaml": spec)
    schemas.forget_compiled()
    yield
    schemas.forget_compiled()


@pytest.mark.usefixtures("problems_spec")
@pytest.mark.parametrize(
    ("response", "violations"),
    [
        ((200, {"X-Count": "3", "Content-Type": "application/problem+json"}, '{"title": "t"}'), []),
        (
            (200, {"X-Count": "0", "Content-Type": "application/problem+json"}, '{"title": "t"}'),
            ["header X-Count: '0' does not match its schema: 0 is less than the minimum of 1"],
        ),
        (
            (200, {"X-Count": "3", "Content-Type": "application/problem+json"}, "{}"),
            [
                "the body does not match the schema at #/paths/~1problems/get/responses/200"
                "/content/application~1problem+json/schema: 'title' is a required property"
            ],
        ),
        ((404, {"Content-Type": "text/plain"}, "gone"), []),
        (
            (418, {"Content-Type": "application/json"}, "{}"),
            ["Content-Type is 'application/json', expected text/*"],
        ),
        ((503, {}, b""), []),
        ((503, {}, b"busy"), ["a 503 response has no body in the contract"]),
    ],
)
def test_ranges_default_json_suffixes_and_integer_headers(
    response: Any, violations: list[str]
) -> None:
    found = find_violations(response, operation=("get", "/problems"))
    assert [str(v) for v in found] == violations


# -- one validator, one spec reader ---------------------------------------------------------


def test_the_validator_and_the_spec_reader_know_nothing_of_the_mock() -> None:
    """The policy of `mockserver.validation`: the suite may share them because they read the spec
    and nothing else -- neither loads the mock's backend, views or Flask."""
    code = (
        "import sys, mockserver.validation, mockserver.contract, mockserver.plans; "
        "print(' '.join(sorted(m for m in sys.modules if m.startswith(('mockserver', 'flask')))))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert loaded == [
        "mockserver",
        "mockserver.contract",
        "mockserver.plans",
        "mockserver.resources",
        "mockserver.schemas",
        "mockserver.validation",
    ]


def test_the_suite_validates_with_the_kits_validator() -> None:
    """The contract suite's replies carry `find_violations`' findings: no second validator."""
    import contract_tests.harness as harness

    assert harness.find_violations is validation.find_violations
    assert harness.spec is contract


def test_an_unknown_operation_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"no operation POST /upload; known: POST /ocr"):
        assert_matches_contract((200, JSON_HEADERS, "{}"), operation=("post", "/upload"))


# -- finding the operation of a URL -------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "url", "operation"),
    [
        ("POST", "http://127.0.0.1:8080/api/v1/ocr", ("post", "/ocr")),
        ("options", "https://itsocr.com/api/v1/ocr?x=1", ("options", "/ocr")),
        ("POST", "/api/v1/ocr", ("post", "/ocr")),
        ("POST", "/ocr", ("post", "/ocr")),
        ("POST", "http://127.0.0.1:8080/ocr", None),
        ("POST", "http://127.0.0.1:8080/api/v1/ocr/", None),
        ("HEAD", "http://127.0.0.1:8080/api/v1/ocr", None),
        ("GET", "http://127.0.0.1:8080/_mock/health", None),
    ],
)
def test_find_operation(method: str, url: str, operation: tuple[str, str] | None) -> None:
    assert find_operation(method, url) == operation
