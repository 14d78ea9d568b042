"""`assert_matches_contract`: passes real responses of the mock, and fails each clause with a
message that says what was received and what the contract expected."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import requests

from mockserver.backend import DEMO_ACCOUNTS
from mockserver.validation import assert_matches_contract, find_operation
from mockserver.web import cors_headers

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


def failure_of(response: Any, operation: tuple[str, str] = ("post", "/ocr")) -> str:
    with pytest.raises(AssertionError) as failed:
        assert_matches_contract(response, operation=operation)
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
    charset = {**JSON_HEADERS, "Content-Type": "application/json; charset=utf-8"}
    assert_matches_contract((200, charset, body))


def test_the_preflight_and_405_pass() -> None:
    preflight = {**cors_headers(), "Access-Control-Max-Age": "86400"}
    assert_matches_contract((204, preflight, b""), operation=("options", "/ocr"))
    allow = {"Allow": "POST, OPTIONS"}  # and no Content-Type, as the live service sends it
    assert_matches_contract((405, allow, "PUT method not allowed"), operation=("put", "/ocr"))


def test_a_405_with_a_content_type_fails() -> None:
    typed = {"Allow": "POST, OPTIONS", "Content-Type": "text/plain; charset=utf-8"}
    message = failure_of((405, typed, "PUT method not allowed"), operation=("put", "/ocr"))
    assert "the contract sends this body without one" in message


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
