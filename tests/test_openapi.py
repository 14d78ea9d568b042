"""The contract itself: a valid OpenAPI 3.1 document that agrees with the mock's code."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from mockserver import errors
from mockserver.backend import TOKEN_LENGTH, TOKEN_PREFIX
from mockserver.contract import allowed_media_types, load_spec, max_file_size
from mockserver.plans import MIB, plans

SPEC = load_spec()
OCR = SPEC["paths"]["/ocr"]["post"]


def _registry() -> Registry:
    resource: Resource[Any] = Resource.from_contents(SPEC, default_specification=DRAFT202012)
    return Registry().with_resource("urn:itsocr", resource)


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = _registry().resolver("urn:itsocr").lookup("urn:itsocr" + node["$ref"]).contents
    return node


def _examples() -> Iterator[tuple[str, str, str, Any, dict[str, Any]]]:
    for path, item in SPEC["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                response = _resolve(response)
                for media, content in response.get("content", {}).items():
                    for name, example in content.get("examples", {}).items():
                        yield f"{method} {path} {status} {name}", status, media, example, content


def _validator(schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(
        {"$ref": "urn:itsocr" + schema["$ref"]} if "$ref" in schema else schema,
        registry=_registry(),
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    )


def test_spec_is_valid_openapi_3_1() -> None:
    assert SPEC["openapi"].startswith("3.1")
    validate(dict(SPEC))


def test_server_is_the_vendors_base_url() -> None:
    assert [server["url"] for server in SPEC["servers"]] == ["https://itsocr.com/api/v1"]


@pytest.mark.parametrize(("label", "status", "media", "example", "content"), list(_examples()))
def test_every_example_validates_against_its_schema(
    label: str, status: str, media: str, example: dict[str, Any], content: dict[str, Any]
) -> None:
    errors_found = [e.message for e in _validator(content["schema"]).iter_errors(example["value"])]
    assert not errors_found, f"{label}: {errors_found}"


def _messages_of(status: str) -> list[str]:
    return [
        example["value"]["error"]
        for _, example_status, media, example, _ in _examples()
        if example_status == status and media == "application/json"
    ]


def _as_pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"\{[a-z]+\}", template)
    return re.compile("^" + ".+".join(re.escape(part) for part in parts) + "$")


@pytest.mark.parametrize("error", errors.API_ERRORS, ids=lambda cls: cls.__name__)
def test_every_error_class_message_is_an_example_of_its_status(
    error: type[errors.ApiError],
) -> None:
    pattern = _as_pattern(error.message)
    documented = _messages_of(str(error.status))
    assert any(pattern.match(message) for message in documented), (
        f"{error.__name__} ({error.status} {error.message!r}) is not among the spec's "
        f"{error.status} examples: {documented}"
    )


def test_every_example_message_belongs_to_an_error_class() -> None:
    patterns = {(str(cls.status), _as_pattern(cls.message)) for cls in errors.API_ERRORS}
    for status in ("400", "401", "429", "500"):
        for message in _messages_of(status):
            assert any(s == status and p.match(message) for s, p in patterns), message


def test_plan_table_in_code_is_the_spec_table() -> None:
    table = SPEC["x-itsocr-plans"]
    assert list(plans()) == ["free", "pro", "enterprise"]
    for name, plan in plans().items():
        assert plan.images_per_month == table[name]["imagesPerMonth"]
        assert plan.max_file_size == table[name]["maxFileSizeBytes"]


def test_plan_table_is_the_vendor_docs_table() -> None:
    """Free 10 images / 5 MB, Pro 500 / 20 MB, Enterprise unlimited / 50 MB ("MB" = MiB)."""
    rows = {name: (p.images_per_month, p.max_file_size) for name, p in plans().items()}
    assert rows == {"free": (10, 5 * MIB), "pro": (500, 20 * MIB), "enterprise": (None, 50 * MIB)}
    assert max_file_size() == 50 * MIB


def test_allowed_types_are_the_encoding_and_the_message_order() -> None:
    encoding = OCR["requestBody"]["content"]["multipart/form-data"]["encoding"]["file"]
    declared = [part.strip() for part in encoding["contentType"].split(",")]
    assert tuple(declared) == allowed_media_types()
    success = _resolve(SPEC["components"]["schemas"]["OcrResult"])
    assert tuple(success["properties"]["mimeType"]["enum"]) == allowed_media_types()
    assert errors.UnsupportedFileType("x/y").error.endswith(", ".join(allowed_media_types()))


def test_success_object_has_exactly_the_seven_documented_keys() -> None:
    schema = SPEC["components"]["schemas"]["OcrResult"]
    keys = {"success", "id", "text", "processingTimeMs", "fileName", "fileSize", "mimeType"}
    assert set(schema["properties"]) == keys == set(schema["required"])
    assert schema["additionalProperties"] is False
    assert schema["properties"]["success"] == {"const": True}
    error = SPEC["components"]["schemas"]["Error"]
    assert set(error["properties"]) == {"success", "error"} == set(error["required"])
    assert error["properties"]["success"] == {"const": False}


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ({"success": False, "error": "x"}, True),
        ({"success": True, "error": "x"}, False),
        ({"success": False, "error": "x", "extra": 1}, False),
        ({"success": False}, False),
    ],
)
def test_error_schema_is_precise(value: dict[str, Any], valid: bool) -> None:
    assert _validator(SPEC["components"]["schemas"]["Error"]).is_valid(value) is valid


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("id", "not-a-uuid"),
        ("id", "550e8400-e29b-11d4-a716-446655440000"),
        ("fileSize", -1),
        ("fileSize", "12"),
        ("processingTimeMs", 1.5),
        ("mimeType", "image/jpg"),
    ],
)
def test_success_schema_rejects_wrong_fields(field: str, value: object) -> None:
    examples = OCR["responses"]["200"]["content"]["application/json"]["examples"]
    example = dict(examples["document"]["value"])
    assert _validator(SPEC["components"]["schemas"]["OcrResult"]).is_valid(example)
    example[field] = value
    assert not _validator(SPEC["components"]["schemas"]["OcrResult"]).is_valid(example)


def test_security_scheme_states_the_token_format() -> None:
    scheme = SPEC["components"]["securitySchemes"]["bearerAuth"]
    assert scheme["type"] == "http"
    assert scheme["scheme"] == "bearer"
    assert "itsocr_" in scheme["description"]
    assert "[A-Za-z0-9]" in scheme["description"]
    assert len(TOKEN_PREFIX) + 32 == TOKEN_LENGTH


def test_cors_preflight_and_405_are_described() -> None:
    preflight = SPEC["paths"]["/ocr"]["options"]["responses"]["204"]["headers"]
    assert preflight["Access-Control-Max-Age"]["schema"]["const"] == "86400"
    assert {
        "Access-Control-Allow-Origin",
        "Access-Control-Allow-Methods",
        "Access-Control-Allow-Headers",
    } <= set(preflight)
    not_allowed = SPEC["components"]["responses"]["MethodNotAllowed"]
    assert not_allowed["headers"]["Allow"]["schema"]["const"] == "POST, OPTIONS"
    # No Content-Type is sent with the 405's body, so it has no `content` (Schemathesis would
    # demand the header): the body is described beside it, and its example fits its schema.
    assert "content" not in not_allowed
    untyped = not_allowed["x-itsocr-untyped-body"]
    assert _validator(untyped["schema"]).is_valid(untyped["example"])
    assert not _validator(untyped["schema"]).is_valid("Method Not Allowed")
    for status in ("200", "400", "401", "429", "500"):
        headers = OCR["responses"][status]["headers"]
        assert "Access-Control-Allow-Origin" in headers, status
        assert list(OCR["responses"][status]["content"]) == ["application/json"], status
