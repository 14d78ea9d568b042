"""What the contract says a `POST /ocr` must answer, judged from the bytes actually sent.

Generated cases are labelled positive or negative by the schema, but what matters is the wire:
a "negative" `prompt` that is a number is still a valid text field once serialised, and a
"negative" file part may still be a file of an allowed type. `predict` reads the request as the
service does -- multipart body, first `file` entry, declared type, sizes -- and returns the
statuses and exact message the live service gives for it (the documented order of checks).
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from typing import Any

from mockserver import contract as spec
from mockserver.imaging import is_decodable
from mockserver.plans import Plan

_PARAM = r'{name}="((?:[^"\\]|\\.)*)"'
URLENCODED = "application/x-www-form-urlencoded"
_UNQUOTED_NAME = re.compile(r'(?:^|;)\s*name=(?!")', re.IGNORECASE)
_EXTENDED_FILENAME = re.compile(r"(?:^|;)\s*filename\*=", re.IGNORECASE)


@dataclass(frozen=True)
class Outcome:
    """The answers the contract allows for one request."""

    statuses: tuple[int, ...]
    errors: tuple[str, ...] = ()  # allowed `error` messages (observed level); empty: any
    fields: dict[str, object] = field(default_factory=dict)  # fields of the 200 body
    reaches_ocr: bool = False  # the request could be billed

    @property
    def error(self) -> str | None:
        """The one exact message, when the contract allows exactly one."""
        return self.errors[0] if len(self.errors) == 1 else None


@dataclass(frozen=True)
class WirePart:
    """A part of a multipart body as it was sent."""

    name: str
    filename: str | None
    content_type: str | None
    content: bytes
    runtime_dependent: bool = False  # headers only some runtimes' parsers accept


# A body whose part headers one runtime's parser refuses and another's reads (see
# `_runtime_dependent`): any of the statuses a reading could give, any message, any fields.
RUNTIME_DEPENDENT = Outcome((200, 400, 500), reaches_ocr=True)


class Malformed(ValueError):
    """The body is not well-formed multipart/form-data."""


def predict(content_type: str | None, body: bytes, plan: Plan) -> Outcome:
    """The contract's answer to a body sent with `content_type` by an account on `plan`."""
    invalid, missing = (
        spec.example_message(400, "invalidBody"),
        spec.example_message(400, "missingFile"),
    )
    if _media_type(content_type) == URLENCODED:
        return Outcome((400,), (missing,))  # a form, read as one: it has no file part
    boundary = _boundary(content_type)
    if boundary is None:
        return Outcome((400,), (invalid,))
    try:
        parts = parse(body, boundary)
    except Malformed:
        # Parsers differ on how far they read a broken body; both answers keep the contract.
        return Outcome((400,), (invalid, missing))
    if any(part.runtime_dependent for part in parts):
        return RUNTIME_DEPENDENT
    first = next((part for part in parts if part.name == "file"), None)
    if first is None or first.filename is None:
        return Outcome((400,), (missing,))
    return _judge_file(first, plan)


def _judge_file(part: WirePart, plan: Plan) -> Outcome:
    # No Content-Type header reads as text/plain; a present but empty one is the empty type.
    declared = "text/plain" if part.content_type is None else part.content_type.lower()
    if declared not in spec.allowed_media_types():
        return Outcome((400,), (spec.unsupported_type_message(declared),))
    size = len(part.content)
    if size > spec.max_file_size():
        return Outcome((400,), (spec.example_message(400, "fileTooLarge"),))
    if size > plan.max_file_size:
        return Outcome((400,), (spec.plan_too_large_message(plan.max_file_size_mb),))
    if not decodable(part.content):
        return Outcome((500,), (spec.example_message(500, "ocrFailed"),), reaches_ocr=True)
    fields: dict[str, object] = {"fileName": part.filename, "fileSize": size, "mimeType": declared}
    return Outcome((200,), fields=fields, reaches_ocr=True)


def _media_type(content_type: str | None) -> str:
    return (content_type or "").partition(";")[0].strip().lower()


def form_parts(content_type: str | None, body: bytes) -> list[WirePart] | None:
    """The parts of a multipart/form-data body, or None when it is not a well-formed one."""
    boundary = _boundary(content_type)
    if boundary is None:
        return None
    try:
        return parse(body, boundary)
    except Malformed:
        return None


def _boundary(content_type: str | None) -> str | None:
    if not content_type:
        return None
    params = content_type.partition(";")[2]
    if _media_type(content_type) != "multipart/form-data":
        return None
    found = re.search(r'boundary=(?:"([^"]+)"|([^;\s]+))', params, re.IGNORECASE)
    if found is None:
        return None
    return str(found.group(1) or found.group(2))


def parse(body: bytes, boundary: str) -> list[WirePart]:
    """The parts of a multipart body (RFC 7578); Malformed when it is not well-formed."""
    delimiter = b"--" + boundary.encode("latin-1")
    if not body.startswith(delimiter):
        raise Malformed("the body does not start with the boundary")
    parts = []
    rest = body[len(delimiter) :]
    while not rest.startswith(b"--"):
        if not rest.startswith(b"\r\n"):
            raise Malformed("a boundary is not followed by CRLF")
        end = rest.find(b"\r\n" + delimiter)
        if end < 0:
            raise Malformed("the body ends before the closing boundary")
        parts.append(_part(rest[2:end]))
        rest = rest[end + 2 + len(delimiter) :]
    return parts


def _part(raw: bytes) -> WirePart:
    head, separator, content = raw.partition(b"\r\n\r\n")
    if not separator:
        raise Malformed("a part has no blank line after its headers")
    headers: dict[str, str] = {}
    for line in head.decode("utf-8", "replace").split("\r\n"):
        name, colon, value = line.partition(":")
        if not colon:
            raise Malformed(f"a part header is not `name: value`: {line!r}")
        headers[name.strip().lower()] = value.strip()
    disposition = headers.get("content-disposition", "")
    field_name, filename = _param(disposition, "name"), _param(disposition, "filename")
    runtime_dependent = _runtime_dependent(disposition, filename)
    if not disposition.lower().startswith("form-data") or (
        field_name is None and not runtime_dependent
    ):
        raise Malformed("a part is not form-data with a name")
    return WirePart(
        field_name or "",
        filename,
        headers.get("content-type"),
        content,
        runtime_dependent=runtime_dependent,
    )


def _runtime_dependent(disposition: str, filename: str | None) -> bool:
    """Part headers the live service's parser refuses under one runtime and may read under
    another: an unquoted ``name=``, a backslash-escaped quote in a quoted value, a file named
    only by ``filename*=``. The contract holds no answer for them."""
    return (
        _UNQUOTED_NAME.search(disposition) is not None
        or '\\"' in disposition
        or (filename is None and _EXTENDED_FILENAME.search(disposition) is not None)
    )


def _param(disposition: str, name: str) -> str | None:
    found = re.search(r"(?:^|;)\s*" + _PARAM.format(name=name), disposition)
    if found is None:
        return None
    # HTML5 form encoding (urllib3, browsers): quotes as %22, backslashes escaped.
    return found.group(1).replace("%22", '"').replace("\\\\", "\\")


def decodable(content: bytes) -> bool:
    """True when the bytes are an image the OCR model reads: the mock's own definition
    (`mockserver.imaging`: an allowed format, decoded in full, within the decode budgets), so
    that the suite never predicts a 200 that a faithful implementation answers 500."""
    return is_decodable(io.BytesIO(content))


def describe(content_type: str | None, body: Any) -> str:
    """The request body in a few words, for failure messages."""
    boundary = _boundary(content_type)
    if boundary is None or not isinstance(body, bytes):
        return f"body {content_type or 'without Content-Type'}, {len(body or b'')} bytes"
    try:
        parts = parse(body, boundary)
    except Malformed as problem:
        return f"malformed multipart ({problem}), {len(body)} bytes"
    described = [
        f"{part.name!r} "
        + (
            f"file {part.filename!r} {part.content_type or 'no type'}"
            if part.filename is not None
            else "field"
        )
        + f" {len(part.content)} bytes"
        for part in parts[:6]
    ]
    more = f" and {len(parts) - 6} more" if len(parts) > 6 else ""
    return "multipart: " + (", ".join(described) or "no parts") + more
