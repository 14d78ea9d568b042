"""HTTP around the endpoint: CORS, the preflight, other methods, the trailing slash, 404."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests

from contract_tests.forms import upload
from contract_tests.harness import Contract
from contract_tests.images import make_image
from mockserver import contract as spec

NOT_ALLOWED = ("GET", "PUT", "PATCH", "DELETE")
PREFLIGHT = {
    "Origin": "https://app.example",
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type",
}


def _cors_problems(headers: Mapping[str, str]) -> list[str]:
    found = []
    for name, value in spec.cors_headers().items():
        received = headers.get(name)
        if received != value:
            found.append(f"header {name}: expected {value!r}, received {received!r}")
    return found


@pytest.mark.clause("cors.headers", level="observed")
def test_json_responses_carry_cors_headers(contract: Contract) -> None:
    """A 200, a 400 and a 401 all carry the CORS headers."""
    account = contract.account()
    contract.reserve(account, 1)
    replies = [
        contract.post_ocr(
            account, parts=upload(make_image("image/png"), "image/png"), billable=True
        ),
        contract.post_ocr(account, parts=[]),
        contract.post_ocr(authorization=None, parts=[]),
    ]
    for reply, status in zip(replies, (200, 400, 401), strict=True):
        contract.expect(reply, status)
        problems = _cors_problems(reply.headers)
        if problems:
            contract.fail(reply, *problems)


@pytest.mark.clause("cors.preflight", level="observed")
def test_preflight_needs_no_authorization(contract: Contract) -> None:
    """OPTIONS without a token: 204, empty body, CORS headers and a day of Max-Age."""
    reply = contract.request("OPTIONS", headers=PREFLIGHT, what="CORS preflight, no token")
    contract.expect(reply, 204)
    problems = _cors_problems(reply.headers)
    if reply.response.content:
        problems.append(f"body: expected none, received {len(reply.response.content)} bytes")
    if problems:
        contract.fail(reply, *problems)


@pytest.mark.clause("http.method-not-allowed", level="observed")
@pytest.mark.parametrize("method", NOT_ALLOWED)
def test_other_methods(contract: Contract, method: str) -> None:
    """Any other method: 405, a plain-text body naming it and no Content-Type header, with
    Allow: POST, OPTIONS (the spec check holds the absent Content-Type)."""
    reply = contract.request(method)
    contract.expect(reply, 405)
    expected = spec.method_not_allowed_text(method)
    if reply.response.text != expected:
        contract.fail(reply, f"body: expected {expected!r}, received {reply.response.text!r}")


@pytest.mark.clause("http.trailing-slash", level="observed")
def test_trailing_slash_redirects(contract: Contract) -> None:
    """`/ocr/` redirects permanently (308, method kept) to `/ocr`."""
    reply = contract.post_ocr(path="/ocr/", parts=[])
    reply.checked = True  # not an operation of the spec: checked here
    location = reply.headers.get("Location", "")
    expected = contract.suite.target.ocr_url
    if reply.status != 308 or location not in (expected, urlsplit(expected).path):
        contract.fail(
            reply, f"expected 308 to {expected}, received {reply.status} to {location or 'nowhere'}"
        )


@pytest.mark.clause("http.unknown-path", level="observed")
def test_paths_are_matched_as_sent(contract: Contract) -> None:
    """`//api/v1/ocr` (an empty segment) is an unknown path, not the endpoint: 404. Sent
    without a token, so that a server that merges the slashes answers 401 and bills nothing."""
    api = urlsplit(contract.suite.target.ocr_url)
    url = urlunsplit((api.scheme, api.netloc, "/" + api.path, "", ""))
    reply = contract.send(
        requests.Request("POST", url).prepare(), "/ocr", "POST //…/ocr, no token, no body"
    )
    reply.checked = True  # not an operation of the spec: checked here
    if reply.status != 404:
        contract.fail(
            reply, f"status: expected 404 for {urlsplit(url).path}, received {reply.status}"
        )


@pytest.mark.clause("http.unknown-path", level="observed")
def test_unknown_path(contract: Contract) -> None:
    """A path that is not the API's: 404."""
    reply = contract.request("GET", "/no-such-endpoint")
    if reply.status != 404:
        contract.fail(reply, f"status: expected 404, received {reply.status}")
    reply.checked = True
