"""Validate a real HTTP response against `openapi.yaml`: the kit's one response validator.

`find_violations(response, operation=..., level=...)` lists every way a response breaks the
contract; `assert_matches_contract` raises them as one readable AssertionError. The mock's
`assert_matches_contract`, the contract suite (every reply it receives) and the proxy (every
upstream answer it forwards) all validate with these functions, at one of two levels:

- ``documented``: the status is documented for the operation (an exact code first, then its
  ``4XX`` range, then ``default``); the Content-Type is one the operation documents for it
  (``+json`` types are JSON, wildcards match) or the body is empty when none is documented, as
  for the 204 preflight (a body the spec describes under ``x-itsocr-untyped-body``, like the
  405's, is text matching the schema given there); the body validates against the documented
  schema (JSON Schema Draft 2020-12, formats checked).
- ``observed`` adds what the live service was observed to do: every documented response
  header is present when required and matches its schema (numbers compared as numbers when
  declared so), a JSON Content-Type is exactly ``application/json``, an untyped body comes
  without a Content-Type at all, and an `error` message is
  one the spec documents for the status (its examples, variable parts standing for any value).

Policy: the contract suite reads the spec through `mockserver.contract` and validates with this
module, on purpose the same code as the mock's testing helpers and the proxy. Neither module is
the mock's behaviour: they read `openapi.yaml` and nothing else (a test keeps them free of the
mock's backend, views and Flask). The suite's independence from the mock lies in its oracle and
its clauses, written from the spec and the vendor's docs, never in a second reading of the spec.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

from jsonschema.exceptions import ValidationError

from mockserver import schemas
from mockserver.contract import (
    UNTYPED_BODY,
    documented_messages,
    follow,
    load_spec,
    resolve,
    server_paths,
)

__all__ = [
    "LEVELS",
    "ContractResponse",
    "Level",
    "Violation",
    "assert_matches_contract",
    "find_operation",
    "find_violations",
]

Level = Literal["documented", "observed"]
LEVELS: tuple[Level, ...] = ("documented", "observed")
_BODY_PREVIEW_LIMIT = 4000  # characters of a non-JSON body shown in a failure message
_JSON = "application/json"


class ContractResponse(Protocol):
    """What the validator reads from a response: `requests.Response` fits."""

    @property
    def status_code(self) -> int: ...  # noqa: D102

    @property
    def headers(self) -> Mapping[str, str]: ...  # noqa: D102

    @property
    def content(self) -> bytes: ...  # noqa: D102


Triple = tuple[int, Mapping[str, str] | Iterable[tuple[str, str]], bytes | str | None]


@dataclass(frozen=True)
class Violation:
    """One way a response breaks the contract: the clause in words, and the schema error behind it.

    ``str(violation)`` is the whole of it in one line (for journals, logs and lists).
    """

    clause: str
    error: ValidationError | None = None

    def __str__(self) -> str:
        if self.error is None:
            return self.clause
        location = _location(self.error)
        return f"{self.clause}: {location + ': ' if location else ''}{self.error.message}"


@dataclass(frozen=True)
class _Received:
    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes


def find_violations(
    response: ContractResponse | Triple,
    *,
    operation: tuple[str, str] = ("post", "/ocr"),
    level: Level = "observed",
) -> list[Violation]:
    """Every way `response` breaks the contract of `operation` at `level`; empty when it keeps it.

    `response` is a `requests.Response` (or anything with ``status_code``, ``headers`` and
    ``content``), or a ``(status, headers, body)`` triple whose headers are a mapping or a list of
    pairs and whose body is bytes or text. `operation` is ``(method, path)`` as the spec writes
    it, e.g. ``("options", "/ocr")``. ValueError when the spec has no such operation or `level`
    is not one of `LEVELS`.
    """
    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}, not {level!r}")
    method, path = operation[0].lower(), operation[1]
    received = _received(response)
    pointer = schemas.operation_pointer(method, path)
    response_pointer = schemas.response_pointer(pointer, received.status)
    if response_pointer is None:
        documented = ", ".join(resolve(pointer).get("responses", {}))
        return [Violation(f"status {received.status} is not documented (documented: {documented})")]
    response_pointer, declared = follow(response_pointer)
    found = []
    if level == "observed":
        found += _header_violations(received, response_pointer, declared)
    found += _body_violations(received, response_pointer, declared, level, (method, path))
    return found


def assert_matches_contract(
    response: ContractResponse | Triple,
    *,
    operation: tuple[str, str] = ("post", "/ocr"),
    level: Level = "observed",
) -> None:
    """Assert that `response` is one the contract allows for `operation` (see `find_violations`).

    The default level is ``observed``: the response must be what the live service answers, down
    to its headers and messages; ``level="documented"`` checks only what the vendor documents.
    Raises AssertionError, with a readable account of what was received and which clause of the
    contract failed, when the response does not match.
    """
    found = find_violations(response, operation=operation, level=level)
    if found:
        where = f"{operation[0].upper()} {operation[1]}"
        raise AssertionError(_report(where, _received(response), found))


def find_operation(method: str, url: str) -> tuple[str, str] | None:
    """The spec operation ``(method, path)`` a request to `url` targets, or None if undocumented.

    An absolute URL's path must start with the path of a documented server (``/api/v1``):
    ``http://127.0.0.1:8080/api/v1/ocr`` finds ``("post", "/ocr")``, ``http://127.0.0.1:8080/ocr``
    finds nothing. A bare path is also tried as a spec path, so ``/ocr`` finds the operation.
    """
    parts = urlsplit(url)
    request_path = parts.path or "/"
    paths = load_spec()["paths"]
    bases = server_paths() if parts.netloc else (*server_paths(), "")
    for base in bases:
        if base and not request_path.startswith(base + "/"):
            continue
        candidate = request_path[len(base) :]
        if candidate in paths and method.lower() in paths[candidate]:
            return method.lower(), candidate
    return None


# -- the response as received ----------------------------------------------------------------


def _received(response: ContractResponse | Triple) -> _Received:
    if isinstance(response, tuple):
        status, headers, body = response
        pairs = headers.items() if isinstance(headers, Mapping) else headers
        raw = body.encode("utf-8") if isinstance(body, str) else (body or b"")
        return _Received(int(status), {k.lower(): v for k, v in pairs}, raw)
    headers = {k.lower(): v for k, v in response.headers.items()}
    return _Received(int(response.status_code), headers, response.content or b"")


# -- the clauses -----------------------------------------------------------------------------


def _header_violations(
    received: _Received, response_pointer: str, declared: Mapping[str, Any]
) -> list[Violation]:
    found = []
    for name in declared.get("headers", {}):
        header_pointer, header = follow(f"{response_pointer}/headers/{schemas.escape(name)}")
        value = received.headers.get(name.lower())
        if value is None:
            if header.get("required", False):
                found.append(Violation(f"required header {name} is missing"))
            continue
        if "schema" in header:
            failure = schemas.first_error(f"{header_pointer}/schema", _header_value(value, header))
            if failure is not None:
                found.append(
                    Violation(f"header {name}: {value!r} does not match its schema", failure)
                )
    return found


def _header_value(value: str, header: Mapping[str, Any]) -> object:
    # Header values are text on the wire; numbers are compared as numbers when so declared.
    kind = header.get("schema", {}).get("type")
    try:
        if kind == "integer":
            return int(value)
        if kind == "number":
            return float(value)
    except ValueError:
        pass
    return value


def _body_violations(
    received: _Received,
    response_pointer: str,
    declared: Mapping[str, Any],
    level: Level,
    operation: tuple[str, str],
) -> list[Violation]:
    content: Mapping[str, Any] = declared.get("content", {})
    if not content and UNTYPED_BODY in declared:
        return _untyped_body_violations(received, f"{response_pointer}/{UNTYPED_BODY}", level)
    if not content:
        if received.body:
            return [Violation(f"a {received.status} response has no body in the contract")]
        return []
    header = received.headers.get("content-type")
    media_type = _media_type(header or "")
    key = _matching_media_type(media_type, content) if media_type else None
    if key is None:
        found = repr(header) if header else "missing"
        return [Violation(f"Content-Type is {found}, expected {' or '.join(content)}")]
    violations = []
    if level == "observed" and media_type == _JSON and header != _JSON:
        # The live service's JSON responses carry exactly this value, without a charset.
        violations.append(
            Violation(f"Content-Type is {header!r}, the live service sends exactly {_JSON!r}")
        )
    if "schema" not in content[key]:
        return violations
    schema_pointer = f"{response_pointer}/content/{schemas.escape(key)}/schema"
    if _is_json(media_type):
        try:
            body: object = json.loads(received.body)
        except ValueError as problem:
            return [*violations, Violation(f"the body is not valid JSON ({problem})")]
    elif media_type.startswith("text/"):
        try:
            body = received.body.decode("utf-8")
        except UnicodeDecodeError:
            return [*violations, Violation("the text body is not valid UTF-8")]
    else:
        return violations  # binary content: nothing a JSON Schema can say about its bytes
    failure = schemas.first_error(schema_pointer, body)
    if failure is not None:
        clause = f"the body does not match the schema at #{schemas.schema_ref(schema_pointer)}"
        return [*violations, Violation(clause, failure)]
    if level == "observed":
        violations += _message_violations(received.status, body, operation)
    return violations


def _untyped_body_violations(received: _Received, pointer: str, level: Level) -> list[Violation]:
    # A body the live service sends without any media type (the 405). The docs say nothing of
    # it: only the observed level holds a server to sending no Content-Type.
    header = received.headers.get("content-type")
    found = []
    if level == "observed" and header is not None:
        found.append(
            Violation(f"Content-Type is {header!r}, the contract sends this body without one")
        )
    try:
        text = received.body.decode("utf-8")
    except UnicodeDecodeError:
        return [*found, Violation("the text body is not valid UTF-8")]
    failure = schemas.first_error(f"{pointer}/schema", text)
    if failure is not None:
        found.append(Violation(f"the body does not match the schema at #{pointer}/schema", failure))
    return found


def _message_violations(status: int, body: object, operation: tuple[str, str]) -> list[Violation]:
    message = body.get("error") if isinstance(body, Mapping) else None
    patterns = documented_messages(status, operation)
    if not isinstance(message, str) or not patterns:
        return []
    if any(pattern.fullmatch(message) for pattern in patterns):
        return []
    return [Violation(f"error {message!r} is not a message openapi.yaml documents for {status}")]


def _media_type(header: str) -> str:
    return header.split(";", 1)[0].strip().lower()


def _matching_media_type(media_type: str, content: Mapping[str, Any]) -> str | None:
    for key in content:
        wanted = key.lower()
        if wanted in (media_type, "*/*") or (
            wanted.endswith("/*") and media_type.startswith(wanted[:-1])
        ):
            return str(key)
    return None


def _is_json(media_type: str) -> bool:
    return media_type == _JSON or media_type.endswith("+json")


# -- reporting -------------------------------------------------------------------------------


def _location(error: ValidationError) -> str:
    path = "".join(
        f"[{part}]" if isinstance(part, int) else f".{part}" for part in error.absolute_path
    )
    return f"${path}" if path else ""


def _report(where: str, received: _Received, found: list[Violation]) -> str:
    first = found[0]
    lines = [
        f"response does not match openapi.yaml for {where}: {first.clause}",
        f"  status: {received.status}",
        f"  content-type: {received.headers.get('content-type', '(none)')}",
    ]
    if first.error is not None:
        location = _location(first.error)
        message = first.error.message
        lines += [
            f"  error at {location}: {message}" if location else f"  error: {message}",
            f"  schema rule: {'/'.join(str(part) for part in first.error.absolute_schema_path)}",
        ]
    lines += [f"  also: {violation}" for violation in found[1:]]
    lines += ["  received body:", _indent(_pretty(received.body))]
    return "\n".join(lines)


def _pretty(body: bytes) -> str:
    if not body:
        return "(empty)"
    try:
        return json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    except ValueError:
        text = body.decode("utf-8", "replace")
        if len(text) > _BODY_PREVIEW_LIMIT:
            return text[:_BODY_PREVIEW_LIMIT] + f"... ({len(body)} bytes in all)"
        return text


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())
