"""Validate a real HTTP response against `openapi.yaml`.

`assert_matches_contract(response)` checks, in this order, that

1. the status is documented for the operation,
2. every required response header is present and its value matches its schema (the CORS ``const``
   values, ``Allow``, ``Access-Control-Max-Age``),
3. the Content-Type is one the operation documents for that status (or the body is empty when
   none is documented, as for the 204 preflight; or, for a body the spec describes under
   ``x-itsocr-untyped-body`` like the 405's, there is no Content-Type at all),
4. the body validates against the documented schema (JSON Schema Draft 2020-12, formats checked).

A failure raises AssertionError naming the clause, the status, the schema error and the body
received. Validators are compiled once per schema location and cached.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, NoReturn, Protocol
from urllib.parse import urlsplit

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from mockserver.contract import load_spec

__all__ = ["ContractResponse", "assert_matches_contract", "find_operation"]

SPEC_URI = "urn:itsocr-mock:openapi.yaml"
UNTYPED_BODY = "x-itsocr-untyped-body"  # a response body sent without a Content-Type
_BODY_PREVIEW_LIMIT = 4000  # characters of a non-JSON body shown in a failure message


class ContractResponse(Protocol):
    """What `assert_matches_contract` reads from a response: `requests.Response` fits."""

    @property
    def status_code(self) -> int: ...  # noqa: D102

    @property
    def headers(self) -> Mapping[str, str]: ...  # noqa: D102

    @property
    def content(self) -> bytes: ...  # noqa: D102


Triple = tuple[int, Mapping[str, str] | Iterable[tuple[str, str]], bytes | str | None]


@dataclass(frozen=True)
class _Received:
    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes


def assert_matches_contract(
    response: ContractResponse | Triple, *, operation: tuple[str, str] = ("post", "/ocr")
) -> None:
    """Assert that `response` is one the contract allows for `operation`.

    `response` is a `requests.Response` (or anything with ``status_code``, ``headers`` and
    ``content``), or a ``(status, headers, body)`` triple whose headers are a mapping or a list of
    pairs and whose body is bytes or text. `operation` is ``(method, path)`` as the spec writes
    it, e.g. ``("options", "/ocr")``.

    Raises AssertionError, with a readable account of what was received and which clause of the
    contract failed, when the response does not match; ValueError when the spec has no such
    operation.
    """
    method, path = operation[0].lower(), operation[1]
    received = _received(response)
    pointer = _operation_pointer(method, path)
    where = f"{method.upper()} {path}"
    response_pointer = _response_pointer(pointer, received.status)
    if response_pointer is None:
        documented = ", ".join(_operation(pointer).get("responses", {}))
        _fail(
            where,
            received,
            f"status {received.status} is not documented (documented: {documented})",
        )
    response_pointer, declared = _follow(response_pointer)
    _check_headers(where, received, response_pointer, declared)
    _check_body(where, received, response_pointer, declared)


def find_operation(method: str, url: str) -> tuple[str, str] | None:
    """The spec operation ``(method, path)`` a request to `url` targets, or None if undocumented.

    An absolute URL's path must start with the path of a documented server (``/api/v1``):
    ``http://127.0.0.1:8080/api/v1/ocr`` finds ``("post", "/ocr")``, ``http://127.0.0.1:8080/ocr``
    finds nothing. A bare path is also tried as a spec path, so ``/ocr`` finds the operation.
    """
    parts = urlsplit(url)
    request_path = parts.path or "/"
    paths = load_spec()["paths"]
    bases = _server_paths() if parts.netloc else (*_server_paths(), "")
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


# -- finding things in the spec --------------------------------------------------------------


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _resolve(pointer: str) -> Any:
    node: Any = load_spec()
    for token in pointer.lstrip("/").split("/") if pointer else []:
        node = node[token.replace("~1", "/").replace("~0", "~")]
    return node


def _follow(pointer: str) -> tuple[str, Mapping[str, Any]]:
    """Follow local `$ref`s from `pointer`; the pointer and object finally reached."""
    node = _resolve(pointer)
    while isinstance(node, Mapping) and "$ref" in node:
        reference = str(node["$ref"])
        if not reference.startswith("#"):
            raise ValueError(f"only local $refs are supported in openapi.yaml, not {reference!r}")
        pointer = reference[1:]
        node = _resolve(pointer)
    return pointer, node


def _operation(pointer: str) -> Mapping[str, Any]:
    operation: Mapping[str, Any] = _resolve(pointer)
    return operation


def _operation_pointer(method: str, path: str) -> str:
    paths = load_spec()["paths"]
    if path not in paths or method not in paths[path]:
        known = ", ".join(
            f"{m.upper()} {p}" for p, item in paths.items() for m in item if not m.startswith("x-")
        )
        raise ValueError(f"openapi.yaml has no operation {method.upper()} {path}; known: {known}")
    return f"/paths/{_escape(path)}/{method}"


def _response_pointer(operation_pointer: str, status: int) -> str | None:
    responses = _operation(operation_pointer).get("responses", {})
    for key in (str(status), f"{str(status)[0]}XX", f"{str(status)[0]}xx", "default"):
        if key in responses:
            return f"{operation_pointer}/responses/{_escape(key)}"
    return None


@cache
def _server_paths() -> tuple[str, ...]:
    servers = load_spec().get("servers", [])
    paths = {urlsplit(server["url"]).path.rstrip("/") for server in servers}
    return tuple(sorted(paths, key=len, reverse=True))


@cache
def _registry() -> Registry[Any]:
    resource: Resource[Any] = Resource.from_contents(load_spec(), default_specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource(SPEC_URI, resource)
    return registry


@cache
def _validator(schema_pointer: str) -> Draft202012Validator:
    """A compiled validator for the schema at `schema_pointer`, `$ref`s resolved in the spec."""
    schema = {"$ref": f"{SPEC_URI}#{schema_pointer}"}
    return Draft202012Validator(
        schema, registry=_registry(), format_checker=Draft202012Validator.FORMAT_CHECKER
    )


# -- the clauses -----------------------------------------------------------------------------


def _check_headers(
    where: str, received: _Received, response_pointer: str, declared: Mapping[str, Any]
) -> None:
    for name in declared.get("headers", {}):
        header_pointer, header = _follow(f"{response_pointer}/headers/{_escape(name)}")
        value = received.headers.get(name.lower())
        if value is None:
            if header.get("required", False):
                _fail(where, received, f"required header {name} is missing")
            continue
        if "schema" in header:
            failure = _first_error(f"{header_pointer}/schema", _header_value(value, header))
            if failure is not None:
                _fail(
                    where, received, f"header {name}: {value!r} does not match its schema", failure
                )


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


def _check_body(
    where: str, received: _Received, response_pointer: str, declared: Mapping[str, Any]
) -> None:
    content: Mapping[str, Any] = declared.get("content", {})
    if not content and UNTYPED_BODY in declared:
        _check_untyped_body(where, received, f"{response_pointer}/{UNTYPED_BODY}/schema")
        return
    if not content:
        if received.body:
            _fail(where, received, f"a {received.status} response has no body in the contract")
        return
    header = received.headers.get("content-type")
    media_type = _media_type(header or "")
    key = _matching_media_type(media_type, content) if media_type else None
    if key is None:
        expected = " or ".join(content)
        found = repr(header) if header else "missing"
        _fail(where, received, f"Content-Type is {found}, expected {expected}")
    if "schema" not in content[key]:
        return
    schema_pointer = f"{response_pointer}/content/{_escape(key)}/schema"
    if _is_json(media_type):
        try:
            body: object = json.loads(received.body)
        except ValueError as problem:
            _fail(where, received, f"the body is not valid JSON ({problem})")
    elif media_type.startswith("text/"):
        try:
            body = received.body.decode("utf-8")
        except UnicodeDecodeError:
            _fail(where, received, "the text body is not valid UTF-8")
    else:
        return  # binary content: nothing a JSON Schema can say about its bytes
    failure = _first_error(schema_pointer, body)
    if failure is not None:
        _fail(
            where,
            received,
            f"the body does not match the schema at #{_schema_ref(schema_pointer)}",
            failure,
        )


def _check_untyped_body(where: str, received: _Received, schema_pointer: str) -> None:
    # A body the service sends without any media type (the 405): no Content-Type may come
    # with it, and the text must match the schema given beside the response.
    header = received.headers.get("content-type")
    if header is not None:
        _fail(
            where, received, f"Content-Type is {header!r}, the contract sends this body without one"
        )
    try:
        text = received.body.decode("utf-8")
    except UnicodeDecodeError:
        _fail(where, received, "the text body is not valid UTF-8")
    failure = _first_error(schema_pointer, text)
    if failure is not None:
        _fail(where, received, f"the body does not match the schema at #{schema_pointer}", failure)


def _schema_ref(schema_pointer: str) -> str:
    node = _resolve(schema_pointer)
    if isinstance(node, Mapping) and isinstance(node.get("$ref"), str):
        return str(node["$ref"]).lstrip("#")
    return schema_pointer


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
    return media_type == "application/json" or media_type.endswith("+json")


def _first_error(schema_pointer: str, instance: object) -> ValidationError | None:
    errors = sorted(_validator(schema_pointer).iter_errors(instance), key=_error_order)
    return errors[0] if errors else None


def _error_order(error: ValidationError) -> tuple[int, str]:
    # The shallowest error first: "missing property" reads better than a nested consequence.
    return len(error.path), str(list(error.path))


# -- reporting -------------------------------------------------------------------------------


def _fail(
    where: str, received: _Received, clause: str, error: ValidationError | None = None
) -> NoReturn:
    lines = [
        f"response does not match openapi.yaml for {where}: {clause}",
        f"  status: {received.status}",
        f"  content-type: {received.headers.get('content-type', '(none)')}",
    ]
    if error is not None:
        location = "".join(
            f"[{part}]" if isinstance(part, int) else f".{part}" for part in error.absolute_path
        )
        lines += [
            f"  error at ${location}: {error.message}" if location else f"  error: {error.message}",
            f"  schema rule: {'/'.join(str(part) for part in error.absolute_schema_path)}",
        ]
    lines += ["  received body:", _indent(_pretty(received.body))]
    raise AssertionError("\n".join(lines))


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
