"""The contract, `openapi.yaml`, loaded once and read in one place.

Every number, list, header value and message the kit takes from the spec is read here (the plan
table by `mockserver.plans`): the mock's rules, `mockserver.validation`, the contract suite and
the proxy all read the same functions, so no copy can drift from the spec or from another copy.
This module only reads the document; it knows nothing of how the mock behaves.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from typing import Any
from urllib.parse import urlsplit

import yaml

from mockserver.resources import data_path

try:  # the C loader parses the spec several times faster; fall back where libyaml is absent
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

UNTYPED_BODY = "x-itsocr-untyped-body"  # a response body the spec describes as sent untyped
# The parts of documented messages that vary per request: each example's sample text and the
# pattern any instance of it matches (the message templates of `monthly_limit_message` & co.).
_MONTHLY_USAGE = r"used \d+ of \d+"
_PLAN_SIZE = r"\d+MB"
_SAMPLE_TYPE = "text/plain"  # the unsupportedType example's declared type


@cache
def load_spec(name: str = "openapi.yaml") -> Mapping[str, Any]:
    """Return the parsed OpenAPI document (`openapi.yaml` or `openapi-control.yaml`)."""
    with data_path(name).open(encoding="utf-8") as handle:
        spec: Mapping[str, Any] = yaml.load(handle, Loader=_Loader)
    return spec


def resolve(pointer: str) -> Any:
    """The part of the spec at JSON pointer `pointer` (``""`` is the whole spec); KeyError if
    none."""
    node: Any = load_spec()
    for token in pointer.lstrip("/").split("/") if pointer else []:
        node = node[token.replace("~1", "/").replace("~0", "~")]
    return node


def follow(pointer: str) -> tuple[str, Mapping[str, Any]]:
    """Follow local `$ref`s from `pointer`; the pointer and object finally reached."""
    node = resolve(pointer)
    while isinstance(node, Mapping) and "$ref" in node:
        pointer = _local(node["$ref"])
        node = resolve(pointer)
    return pointer, node


def deref(node: Mapping[str, Any]) -> Mapping[str, Any]:
    """Follow a local ``$ref`` (``#/components/...``) of `openapi.yaml` to what it names."""
    return follow(_local(node["$ref"]))[1] if "$ref" in node else node


def _local(reference: object) -> str:
    """The JSON pointer of a local ``$ref``; ValueError for any other."""
    text = str(reference)
    if not text.startswith("#"):
        raise ValueError(f"only local $refs are supported in openapi.yaml, not {text!r}")
    return text[1:]


@cache
def server_paths() -> tuple[str, ...]:
    """The path of each documented server (``/api/v1``), longest first."""
    servers = load_spec().get("servers", [])
    paths = {urlsplit(server["url"]).path.rstrip("/") for server in servers}
    return tuple(sorted(paths, key=len, reverse=True))


def api_prefix() -> str:
    """Where the spec's paths live on an implementation's origin: ``/api/v1``."""
    return server_paths()[0]


def allowed_media_types() -> tuple[str, ...]:
    """The declared types the service accepts, in the order its error message lists them."""
    return tuple(load_spec()["x-itsocr-limits"]["allowedMediaTypes"])


def max_file_size() -> int:
    """The global ceiling in bytes, whatever the plan (50 MiB)."""
    return int(load_spec()["x-itsocr-limits"]["maxFileSizeBytes"])


@cache
def cors_headers() -> Mapping[str, str]:
    """The CORS headers every JSON response of the API carries, with their values."""
    declared = load_spec()["components"]["headers"]
    return {
        "Access-Control-Allow-Origin": declared["AccessControlAllowOrigin"]["schema"]["const"],
        "Access-Control-Allow-Methods": declared["AccessControlAllowMethods"]["schema"]["const"],
        "Access-Control-Allow-Headers": declared["AccessControlAllowHeaders"]["schema"]["const"],
    }


# -- messages, from the examples of each documented response -------------------------------


def _examples(status: int, operation: tuple[str, str] = ("post", "/ocr")) -> Mapping[str, Any]:
    method, path = operation
    responses = load_spec()["paths"].get(path, {}).get(method, {}).get("responses", {})
    if str(status) not in responses:
        return {}
    content = deref(responses[str(status)]).get("content", {})
    examples: Mapping[str, Any] = content.get("application/json", {}).get("examples", {})
    return examples


def example_message(status: int, example: str) -> str:
    """The `error` of the named example of a `POST /ocr` response, e.g. (401, "missingHeader")."""
    return str(_examples(status)[example]["value"]["error"])


def monthly_limit_message(used: int, limit: int) -> str:
    """The 429 message for an account at `used` of `limit` images."""
    return re.sub(_MONTHLY_USAGE, f"used {used} of {limit}", example_message(429, "monthlyLimit"))


def unsupported_type_message(media_type: str) -> str:
    """The 400 message for a declared type that is not allowed (the example's is text/plain)."""
    return example_message(400, "unsupportedType").replace(_SAMPLE_TYPE, media_type, 1)


def plan_too_large_message(max_file_size_mb: int) -> str:
    """The 400 message for a file over a plan's limit of `max_file_size_mb` ("MB" = MiB)."""
    example = example_message(400, "fileTooLargeForPlan")
    return re.sub(_PLAN_SIZE, f"{max_file_size_mb}MB", example, count=1)


def method_not_allowed_allow() -> str:
    """The ``Allow`` header of a 405."""
    response = deref(load_spec()["components"]["responses"]["MethodNotAllowed"])
    return str(deref(response["headers"]["Allow"])["schema"]["const"])


def method_not_allowed_text(method: str) -> str:
    """The 405 body for `method` (plain text, sent without a Content-Type)."""
    response = deref(load_spec()["components"]["responses"]["MethodNotAllowed"])
    return str(response[UNTYPED_BODY]["example"]).replace("GET", method)


@cache
def documented_messages(
    status: int, operation: tuple[str, str] = ("post", "/ocr")
) -> tuple[re.Pattern[str], ...]:
    """Patterns of every JSON `error` message the spec documents for `status` of `operation`.

    Each example's message, with its variable part (usage counts, a plan's size, the declared
    type) standing for any value; empty when the status documents no messages.
    """
    sizes = "|".join(str(size // (1024 * 1024)) for size in _plan_sizes())
    variable = {  # example name -> (its sample value, the pattern of any value)
        "monthlyLimit": (_MONTHLY_USAGE, r"used \d+ of \d+"),
        "fileTooLargeForPlan": (_PLAN_SIZE, f"(?:{sizes})MB"),
        "unsupportedType": (re.escape(_SAMPLE_TYPE), ".*"),  # the empty type too
    }
    patterns = []
    for name, example in _examples(status, operation).items():
        value = example.get("value")
        if not isinstance(value, Mapping) or "error" not in value:
            continue  # a success example
        message = str(value["error"])
        pattern = re.escape(message)
        if name in variable:
            sample, any_value = variable[name]
            found = re.search(sample, message)
            if found is not None:
                pattern = re.escape(message[: found.start()]) + any_value
                pattern += re.escape(message[found.end() :])
        patterns.append(re.compile(pattern, re.DOTALL))
    return tuple(patterns)


def _plan_sizes() -> list[int]:
    return [int(row["maxFileSizeBytes"]) for row in load_spec()["x-itsocr-plans"].values()]
