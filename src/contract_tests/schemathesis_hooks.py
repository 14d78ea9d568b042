"""Schemathesis hooks for the itsOCR contract, loaded by the repository's `schemathesis.toml`.

``schemathesis run openapi.yaml --url .../api/v1 --header "Authorization: Bearer ..."`` from
the repository root reads `schemathesis.toml`, whose ``hooks`` setting imports this module
(the kit installs it; from another directory, ``schemathesis --config-file PATH run ...``).
The same module serves the run of `openapi-control.yaml` against ``/_mock``.

What it adds to Schemathesis's own checks, read from `openapi.yaml` by the suite's
`mockserver.contract` and judged by its `contract_tests.oracle` (the suite's own reading):

- Real images: each allowed media type gets the suite's Pillow strategy, so a generated
  ``file`` part is a decodable image of its declared type, and a correct server answers 200.
- ``itsocr_ocr_answer``: every answer of ``POST /ocr`` is the one the contract gives for the
  bytes actually sent (status and exact message), whatever the case was labelled.
- ``itsocr_method_not_allowed``: the refused methods answer exactly the documented 405.
- Failures that judge a case by its label instead of its bytes are dropped
  (``filter_failure``): the documented 500 of the OCR step for bytes that are not a decodable
  image (any other 500 stays a "server error"), and a "negative" multipart case whose fields,
  once serialised, are a valid form (a ``prompt`` mutated into ``null`` goes out as the text
  ``null``).
"""

from __future__ import annotations

import json
from typing import Any

import requests
import schemathesis
from jsonschema import Draft202012Validator
from schemathesis.core.failures import AcceptedNegativeData, Failure, ServerError

from contract_tests import oracle
from contract_tests.checks import preview
from contract_tests.images import image_strategy
from mockserver import contract as spec
from mockserver.plans import plans

__all__ = ["filter_case", "filter_failure", "itsocr_method_not_allowed", "itsocr_ocr_answer"]

OCR_PATH = "/ocr"
FORM = "multipart/form-data"
# Answers that depend on the token and its account, not on what was sent: ``ignored_auth``
# and the documented statuses judge them.
ACCOUNT_STATUSES = (401, 429)
# The mock's HTTP server (gunicorn) answers a longer request line with its own HTML 414, a
# limit of the transport that no document describes; generated queries stay under it, with
# room for the base path.
MAX_PATH_AND_QUERY = 4094 - 200

for _media_type in spec.allowed_media_types():
    schemathesis.openapi.media_type(_media_type, image_strategy(_media_type))


def _is_ocr(case: Any) -> bool:
    """True for ``/ocr`` of `openapi.yaml` (the same hooks serve the control API's run)."""
    title = case.operation.schema.raw_schema.get("info", {}).get("title")
    return bool(title == spec.load_spec()["info"]["title"] and case.operation.path == OCR_PATH)


def _sent(response: Any) -> tuple[str | None, bytes]:
    """The Content-Type and body of the request as it went on the wire."""
    request = response.request
    body = request.body
    content = body.encode() if isinstance(body, str) else body if isinstance(body, bytes) else b""
    content_type = request.headers.get("Content-Type")
    return (str(content_type) if content_type else None), content


def _outcomes(response: Any) -> list[oracle.Outcome]:
    """What the contract allows for this request, on each plan (the token's is not known)."""
    content_type, body = _sent(response)
    return [oracle.predict(content_type, body, plan) for plan in plans().values()]


def _error(response: Any) -> object:
    try:
        return json.loads(response.content).get("error")
    except (ValueError, AttributeError):
        return None


def _matches(response: Any, outcome: oracle.Outcome) -> bool:
    if response.status_code not in outcome.statuses:
        return False
    return not outcome.errors or _error(response) in outcome.errors


# -- checks ---------------------------------------------------------------------------------


@schemathesis.check
def itsocr_ocr_answer(ctx: Any, response: Any, case: Any) -> None:
    """``POST /ocr`` answers what the contract gives for the bytes sent (status and message)."""
    if not _is_ocr(case) or case.method.upper() != "POST":
        return
    if response.status_code in ACCOUNT_STATUSES:
        return
    outcomes = _outcomes(response)
    if any(_matches(response, outcome) for outcome in outcomes):
        return
    content_type, body = _sent(response)
    allowed = {f"{s} {e}".strip() for o in outcomes for s in o.statuses for e in o.errors or ("",)}
    raise AssertionError(
        f"Sent: {oracle.describe(content_type, body)}\n"
        f"Received: {response.status_code} {preview(response.content)}\n"
        f"The contract's answer: {' | '.join(sorted(allowed))}"
    )


@schemathesis.check
def itsocr_method_not_allowed(ctx: Any, response: Any, case: Any) -> None:
    """A method other than POST and OPTIONS gets the documented 405: status, Allow, text and
    no Content-Type."""
    method = case.method.upper()
    if not _is_ocr(case) or method in ("POST", "OPTIONS"):
        return
    allow = (response.headers.get("allow") or [None])[0]
    expected_allow = spec.method_not_allowed_allow()
    expected_text = spec.method_not_allowed_text(method)
    text = response.content.decode("utf-8", "replace")
    problems = []
    if response.status_code != 405:
        problems.append(f"status {response.status_code}, expected 405")
    if allow != expected_allow:
        problems.append(f"Allow {allow!r}, expected {expected_allow!r}")
    if "content-type" in response.headers:  # the live 405 has none at all
        problems.append(f"Content-Type {response.headers['content-type'][0]!r}, expected none")
    if text != expected_text:
        problems.append(f"body {preview(response.content)}, expected {expected_text!r}")
    if problems:
        raise AssertionError(f"{method} {OCR_PATH}: " + "; ".join(problems))


# -- hooks ----------------------------------------------------------------------------------


@schemathesis.hook
def filter_case(context: Any, case: Any) -> bool:
    """Leave out requests whose path and query exceed the mock's HTTP request-line limit."""
    if not case.query:
        return True
    prepared = requests.Request(
        case.method, "http://mock" + case.formatted_path, params=case.query
    ).prepare()
    return len(prepared.path_url) <= MAX_PATH_AND_QUERY


@schemathesis.hook
def filter_failure(context: Any, failure: Failure, case: Any, response: Any) -> bool:
    """Keep every failure but those that judge a case by its label instead of its bytes."""
    if isinstance(failure, ServerError) and _is_ocr(case):
        return not _documented_ocr_failure(response)
    if isinstance(failure, AcceptedNegativeData):
        if _is_ocr(case):
            return not _valid_upload(response)
        return not _valid_form(case, response)
    return True


def _documented_ocr_failure(response: Any) -> bool:
    """The 500 the contract gives when the bytes sent are not a decodable image."""
    return _error(response) == spec.example_message(500, "ocrFailed") and all(
        500 in outcome.statuses and _matches(response, outcome) for outcome in _outcomes(response)
    )


def _valid_upload(response: Any) -> bool:
    """What was sent is a valid upload, and got the contract's 200 for it."""
    return all(
        200 in outcome.statuses and _matches(response, outcome) for outcome in _outcomes(response)
    )


def _valid_form(case: Any, response: Any) -> bool:
    """The multipart form sent is valid for the operation's schema, read field by field as the
    server reads it: text fields as strings, files as parts with a filename."""
    body = case.operation.definition.raw.get("requestBody", {})
    schema = body.get("content", {}).get(FORM, {}).get("schema")
    parts = oracle.form_parts(*_sent(response))
    if not isinstance(schema, dict) or "$ref" in schema or parts is None:
        return False
    properties: dict[str, Any] = schema.get("properties", {})
    names = [part.name for part in parts]
    if len(set(names)) != len(names) or not set(schema.get("required", [])) <= set(names):
        return False
    for part in parts:
        declared = properties.get(part.name)
        if declared is None:
            if schema.get("additionalProperties", True) is False:
                return False
            continue
        if declared.get("format") == "binary":
            if part.filename is None:
                return False
            continue
        try:
            text = part.content.decode("utf-8")
        except UnicodeDecodeError:
            return False
        if part.filename is not None or not Draft202012Validator(declared).is_valid(text):
            return False
    return True
