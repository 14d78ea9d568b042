"""Pointers to the spec's operations and responses, and its JSON Schemas compiled once: what
the validator reads.

`openapi.yaml` is addressed as JSON pointers (``/paths/~1ocr/post/responses/401``), read and
their local `$ref`s followed by `contract.resolve` and `contract.follow`; a schema anywhere in
it is compiled once (JSON Schema Draft 2020-12, formats checked, `$ref`s resolved within the
spec) and its first error is the shallowest one.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from mockserver.contract import load_spec, resolve

SPEC_URI = "urn:itsocr-mock:openapi.yaml"


def escape(token: str) -> str:
    """`token` as one step of a JSON pointer (``/`` and ``~`` escaped)."""
    return token.replace("~", "~0").replace("/", "~1")


def operation_pointer(method: str, path: str) -> str:
    """The pointer of operation `method` `path`; ValueError naming the known ones if none."""
    paths = load_spec()["paths"]
    if path not in paths or method not in paths[path]:
        known = ", ".join(
            f"{m.upper()} {p}" for p, item in paths.items() for m in item if not m.startswith("x-")
        )
        raise ValueError(f"openapi.yaml has no operation {method.upper()} {path}; known: {known}")
    return f"/paths/{escape(path)}/{method}"


def response_pointer(operation: str, status: int) -> str | None:
    """The response `operation` documents for `status`: the exact code, then its range
    (``4XX``), then ``default``; None when none applies."""
    responses = resolve(operation).get("responses", {})
    for key in (str(status), f"{str(status)[0]}XX", f"{str(status)[0]}xx", "default"):
        if key in responses:
            return f"{operation}/responses/{escape(key)}"
    return None


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


def schema_ref(schema_pointer: str) -> str:
    """The schema's own name (its `$ref`) when it has one, for a message; else the pointer."""
    node = resolve(schema_pointer)
    if isinstance(node, Mapping) and isinstance(node.get("$ref"), str):
        return str(node["$ref"]).lstrip("#")
    return schema_pointer


def first_error(schema_pointer: str, instance: object) -> ValidationError | None:
    """The shallowest way `instance` breaks the schema at `schema_pointer`, or None."""
    errors = sorted(_validator(schema_pointer).iter_errors(instance), key=_error_order)
    return errors[0] if errors else None


def _error_order(error: ValidationError) -> tuple[int, str]:
    # The shallowest error first: "missing property" reads better than a nested consequence.
    return len(error.path), str(list(error.path))


def forget_compiled() -> None:
    """Drop the compiled schemas, for a caller that swapped the spec (the kit's own tests)."""
    _registry.cache_clear()
    _validator.cache_clear()
