"""`openapi.yaml`, the contract, read by the suite: numbers, messages and response validation.

Nothing here restates the contract: plan limits, allowed types, CORS values and every error
message come from the spec (its plan table, its limits and the examples of each response), and
responses are validated against its schemas with jsonschema (Draft 2020-12, formats checked).
This is the suite's own reading of the spec: it shares no code with the mock.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from mockserver.resources import data_path

MIB = 1024 * 1024
API_PREFIX = "/api/v1"  # where the spec's paths live on a target's origin
SPEC_URI = "urn:itsocr-contract:openapi.yaml"
UNTYPED_BODY = "x-itsocr-untyped-body"  # a body the spec describes as sent without a type


@cache
def spec() -> Mapping[str, Any]:
    """The parsed `openapi.yaml`."""
    with data_path("openapi.yaml").open(encoding="utf-8") as handle:
        loaded: Mapping[str, Any] = yaml.safe_load(handle)
    return loaded


@dataclass(frozen=True)
class Plan:
    """A plan of the spec's plan table."""

    name: str
    images_per_month: int | None  # None = unlimited
    max_file_size: int  # bytes, inclusive

    @property
    def max_file_size_mb(self) -> int:
        """The limit as messages write it ("MB" meaning MiB)."""
        return self.max_file_size // MIB


@cache
def plans() -> Mapping[str, Plan]:
    """The plan table, by name."""
    return {
        name: Plan(name, row["imagesPerMonth"], row["maxFileSizeBytes"])
        for name, row in spec()["x-itsocr-plans"].items()
    }


def allowed_media_types() -> tuple[str, ...]:
    """The declared types the service accepts, in the order its message lists them."""
    return tuple(spec()["x-itsocr-limits"]["allowedMediaTypes"])


def max_file_size() -> int:
    """The global ceiling in bytes, whatever the plan."""
    return int(spec()["x-itsocr-limits"]["maxFileSizeBytes"])


def cors_headers() -> dict[str, str]:
    """The CORS headers every JSON response carries, with their values."""
    declared = spec()["components"]["headers"]
    return {
        "Access-Control-Allow-Origin": declared["AccessControlAllowOrigin"]["schema"]["const"],
        "Access-Control-Allow-Methods": declared["AccessControlAllowMethods"]["schema"]["const"],
        "Access-Control-Allow-Headers": declared["AccessControlAllowHeaders"]["schema"]["const"],
    }


# -- messages, from the examples of each documented response -------------------------------


def example_message(status: int, example: str) -> str:
    """The `error` of the named example of a `POST /ocr` response, e.g. (401, "missingHeader")."""
    response = _deref(spec()["paths"]["/ocr"]["post"]["responses"][str(status)])
    return str(response["content"]["application/json"]["examples"][example]["value"]["error"])


def monthly_limit_message(used: int, limit: int) -> str:
    """The 429 message for an account at `used` of `limit` images."""
    return re.sub(
        r"used \d+ of \d+", f"used {used} of {limit}", example_message(429, "monthlyLimit")
    )


def unsupported_type_message(media_type: str) -> str:
    """The 400 message for a declared type that is not allowed (the example's is text/plain)."""
    return example_message(400, "unsupportedType").replace("text/plain", media_type, 1)


def plan_too_large_message(plan: Plan) -> str:
    """The 400 message for a file over `plan`'s limit (the example's is the Free plan's)."""
    return re.sub(
        r"\d+MB", f"{plan.max_file_size_mb}MB", example_message(400, "fileTooLargeForPlan")
    )


def method_not_allowed_allow() -> str:
    """The ``Allow`` header of a 405."""
    response = _deref(spec()["components"]["responses"]["MethodNotAllowed"])
    return str(_deref(response["headers"]["Allow"])["schema"]["const"])


def method_not_allowed_text(method: str) -> str:
    """The plain-text 405 body for `method`."""
    response = _deref(spec()["components"]["responses"]["MethodNotAllowed"])
    return str(response[UNTYPED_BODY]["example"]).replace("GET", method)


# -- response validation --------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    """A response as the validator sees it."""

    status: int
    headers: Mapping[str, str]  # case-insensitive mapping (requests' CaseInsensitiveDict)
    content: bytes


def problems(method: str, path: str, received: Received, *, observed: bool) -> list[str]:
    """Every way `received` breaks the spec for the operation ``method path`` (spec path).

    The documented level checks the status, the media type and the body's schema; the observed
    level adds the documented response headers and the exact Content-Type value.
    """
    operation = spec()["paths"].get(path, {}).get(method.lower())
    if operation is None:
        return [f"{method.upper()} {path} is not an operation of openapi.yaml"]
    responses = operation["responses"]
    if str(received.status) not in responses:
        documented = ", ".join(sorted(responses))
        return [
            f"status {received.status} is not documented for {method.upper()} {path} "
            f"(documented: {documented})"
        ]
    response = _deref(responses[str(received.status)])
    found = _content_problems(response, received, observed=observed)
    if observed:
        found += _header_problems(response, received)
    return found


def _content_problems(
    response: Mapping[str, Any], received: Received, *, observed: bool
) -> list[str]:
    content: Mapping[str, Any] = response.get("content", {})
    header = received.headers.get("Content-Type")
    if not content and UNTYPED_BODY in response:
        return _untyped_body_problems(response[UNTYPED_BODY], received, observed=observed)
    if not content:
        return (
            []
            if not received.content
            else [f"a body ({len(received.content)} bytes) where the spec documents none"]
        )
    media_type = (header or "").split(";")[0].strip().lower()
    if media_type not in content:
        return [f"Content-Type {header!r}, the spec documents {', '.join(content)}"]
    if observed and media_type == "application/json" and header != media_type:
        # The live service's JSON responses carry exactly this value, without a charset.
        return [f"Content-Type {header!r}, the live service sends exactly {media_type!r}"]
    schema = content[media_type].get("schema")
    if schema is None:
        return []
    if media_type == "application/json":
        try:
            body = json.loads(received.content)
        except ValueError:
            return [f"a body that is not JSON: {preview(received.content)}"]
    else:
        body = received.content.decode("utf-8", "replace")
    return [_schema_error(error) for error in _validator(json.dumps(schema)).iter_errors(body)]


def _untyped_body_problems(
    untyped: Mapping[str, Any], received: Received, *, observed: bool
) -> list[str]:
    # A body the live service sends with no media type at all (the 405). The docs say nothing
    # of it: only the observed level holds a server to sending no Content-Type.
    header = received.headers.get("Content-Type")
    found = []
    if observed and header is not None:
        found.append(f"Content-Type {header!r}, the live service sends this body without one")
    body = received.content.decode("utf-8", "replace")
    found += [_schema_error(e) for e in _validator(json.dumps(untyped["schema"])).iter_errors(body)]
    return found


def _header_problems(response: Mapping[str, Any], received: Received) -> list[str]:
    found = []
    for name, declared in response.get("headers", {}).items():
        declared = _deref(declared)
        value = received.headers.get(name)
        if value is None:
            if declared.get("required"):
                found.append(f"header {name} is missing")
            continue
        for error in _validator(json.dumps(declared["schema"])).iter_errors(value):
            found.append(f"header {name}: {value!r}: {error.message}")
    return found


def _schema_error(error: Any) -> str:
    where = "/".join(str(part) for part in error.absolute_path) or "(body)"
    return f"body at {where}: {error.message}"


def _deref(node: Mapping[str, Any]) -> Mapping[str, Any]:
    """Follow a local ``$ref`` (``#/components/...``) of the OpenAPI document."""
    while "$ref" in node:
        target: Any = spec()
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


@cache
def _validator(schema_json: str) -> Draft202012Validator:
    # Keyed by the schema's JSON so that each distinct schema is compiled once.
    resource: Resource[Any] = Resource.from_contents(
        dict(spec()), default_specification=DRAFT202012
    )
    registry: Registry[Any] = Registry().with_resource(SPEC_URI, resource)
    schema = _rebase(json.loads(schema_json))
    return Draft202012Validator(
        schema, registry=registry, format_checker=Draft202012Validator.FORMAT_CHECKER
    )


def _rebase(schema: Any) -> Any:
    """Point the spec's local refs (``#/components/...``) at the registered spec document."""
    if isinstance(schema, dict):
        return {
            key: (SPEC_URI + value if key == "$ref" and value.startswith("#") else _rebase(value))
            for key, value in schema.items()
        }
    if isinstance(schema, list):
        return [_rebase(item) for item in schema]
    return schema


def preview(content: bytes, limit: int = 300) -> str:
    """A short, printable rendering of a body for failure messages."""
    text = content.decode("utf-8", "replace")
    return repr(text if len(text) <= limit else text[:limit] + "…")
