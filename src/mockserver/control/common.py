"""What the control API's views share: reading a request's JSON and fields, shaping answers.

Bodies are JSON objects declared ``application/json`` (at most `MAX_JSON_BODY`, within the
client timeout; see control_access.py for who may send them). Unknown fields are refused so that
a typo cannot pass for a setting, and every client mistake is a 4xx ``{"error": ...}`` saying
what was expected. Times are ISO-8601 in UTC with a ``Z``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from datetime import datetime, timedelta
from typing import Any, TypeVar

from flask import Response, current_app, request
from werkzeug.exceptions import ClientDisconnected, HTTPException, RequestEntityTooLarge

from mockserver.api import UNREADABLE_BODY
from mockserver.clock import format_instant, parse_instant
from mockserver.connection import body_deadline
from mockserver.errors import BadControlRequest, ControlError

T = TypeVar("T")

MAX_JSON_BODY = 1024 * 1024  # a control request's JSON body: settings, never data


class PayloadTooLarge(ControlError):
    """A control request body over `MAX_JSON_BODY` (or a fixture's form over its limit)."""

    status = 413


def no_store(response: Response) -> Response:
    """State changes under the client's feet: no answer of the control API may be cached."""
    response.headers["Cache-Control"] = "no-store"
    return response


def no_content() -> Response:
    """The control API's 204: no body, and no Content-Type claiming one."""
    response = Response(status=204)
    del response.headers["Content-Type"]
    return response


def json_body(allowed: Collection[str], *, required: Collection[str] = ()) -> dict[str, Any]:
    """The request's JSON object (an empty body is ``{}``), with only `allowed` fields."""
    raw = read_body()
    if not raw:
        # Only a body of no bytes: whitespace alone is not JSON (a form feed, which str.strip
        # would take for a blank, was accepted as `{}` before Schemathesis's fuzzer said so).
        body: object = {}
    else:
        try:
            body = json.loads(raw, object_pairs_hook=_once_each)
        except (ValueError, RecursionError) as failure:
            raise BadControlRequest(f"the body is not valid JSON: {failure}") from None
    if not isinstance(body, dict):
        raise BadControlRequest(f"the body must be a JSON object, got {kind(body)}")
    check_text(body)
    for name in body:
        if name not in allowed:
            expected = ", ".join(allowed) if allowed else "no fields"
            raise BadControlRequest(f"unknown field {name!r}; expected {expected}")
    for name in required:
        if name not in body:
            raise BadControlRequest(f"missing field {name!r}")
    return body


def repeated_field(name: str) -> BadControlRequest:
    """The 400 for a field a body gives more than once: which value was meant is a guess, and
    none is made (a JSON object's name, a form's field)."""
    return BadControlRequest(f"field {name!r} was sent more than once; send it once")


def _once_each(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads's object_pairs_hook: what it raises comes out of json.loads as it is.
    fields: dict[str, Any] = {}
    for name, value in pairs:
        if name in fields:
            raise repeated_field(name)
        fields[name] = value
    return fields


def read_body() -> bytes:
    """The request body, within `MAX_JSON_BODY` and the client timeout (a trickling client
    holds a server thread, as on the OCR endpoint: see connection.py)."""
    declared = request.content_length
    if declared is not None and declared > MAX_JSON_BODY:
        raise PayloadTooLarge(
            f"the body is {declared} bytes; control requests take at most {MAX_JSON_BODY}"
        )
    # A chunked body is cut off one byte past the limit: Werkzeug stops there without a word.
    request.max_content_length = MAX_JSON_BODY + 1
    timeout = current_app.config["ITSOCR_SETTINGS"].client_timeout
    with body_deadline(request.environ, timeout) as deadline:
        try:
            raw = request.get_data(cache=True)
        except RequestEntityTooLarge:
            raise PayloadTooLarge(
                f"the body is over the {MAX_JSON_BODY} bytes control requests take"
            ) from None
        except ClientDisconnected:
            raw = None
        except HTTPException:
            raise
        except Exception:  # the server's own parse errors: a chunk size that is not hex...
            request.environ[UNREADABLE_BODY] = True
            raise BadControlRequest("the body cannot be read: it breaks HTTP's framing") from None
    if raw is not None and len(raw) > MAX_JSON_BODY:
        raise PayloadTooLarge(f"the body is over the {MAX_JSON_BODY} bytes control requests take")
    if raw is None or (deadline is not None and deadline.expired):
        raise BadControlRequest(
            f"the body did not arrive within {timeout:g} s (--client-timeout) or ended early"
        )
    return raw


def check_text(value: object) -> None:
    """400 for a string that is not text: JSON's \\ud800 escapes allow lone surrogates."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise BadControlRequest(
                f"the body holds a string with a lone surrogate, which is not text: {value!a}"[:300]
            ) from None
    elif isinstance(value, dict):
        for key, item in value.items():
            check_text(key)
            check_text(item)
    elif isinstance(value, list):
        for item in value:
            check_text(item)


def required(value: T | None, name: str) -> T:
    """`value`, or a 400 saying that field `name` must not be null."""
    if value is None:
        raise BadControlRequest(f"{name} must not be null")
    return value


def string(body: Mapping[str, Any], name: str) -> str | None:
    """Field `name` of `body` as a string (None when absent or null), or a 400."""
    value = body.get(name)
    if value is None or isinstance(value, str):
        return value
    raise BadControlRequest(f"{name} must be a string, got {kind(value)}")


def integer(body: Mapping[str, Any], name: str) -> int | None:
    """Field `name` of `body` as an integer (None when absent or null), or a 400."""
    value = body.get(name)
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if isinstance(value, float) and value.is_integer():  # 3.0 is an integer to JSON Schema
        return int(value)
    raise BadControlRequest(f"{name} must be an integer, got {kind(value)}")


def boolean(body: Mapping[str, Any], name: str) -> bool | None:
    """Field `name` of `body` as true or false (None when absent or null), or a 400."""
    value = body.get(name)
    if value is None or isinstance(value, bool):
        return value
    raise BadControlRequest(f"{name} must be true or false, got {kind(value)}")


_LEAP_SECOND = re.compile(r"(T\d\d:\d\d):60")


def instant(value: object, name: str) -> datetime:
    """An ISO-8601 date-time (RFC 3339 included: a lower-case t or z, a leap second)."""
    if not isinstance(value, str):
        raise BadControlRequest(f"{name} must be an ISO-8601 date-time string, got {kind(value)}")
    text, leap = _LEAP_SECOND.subn(r"\1:59", value.strip().upper())
    try:
        instant = parse_instant(text) + timedelta(seconds=leap)
        format_instant(instant)  # a year past 9999 in UTC fails here, not later
    except (ValueError, OverflowError):
        raise BadControlRequest(
            f"{name} must be an ISO-8601 date-time such as 2030-01-31T23:59:59Z, got {value!r}"
        ) from None
    return instant


def query_integer(name: str, minimum: int, maximum: int | None) -> int | None:
    """Query parameter ``?name=`` as an integer within bounds (None when absent), or a 400."""
    text = query_text(name)
    if text is None:
        return None
    # ASCII digits only: `\d` and int() would take "٣" (an Arabic-Indic three) for 3.
    if not re.fullmatch(r"[0-9]{1,15}", text) or not minimum <= int(text) <= (maximum or 10**15):
        bound = f"between {minimum} and {maximum}" if maximum else f"{minimum} or more"
        raise BadControlRequest(f"?{name}= must be an integer {bound}, got {text!r}")
    return int(text)


def query_text(name: str) -> str | None:
    """Query parameter ``?name=`` (None when absent), or a 400 when it is given twice: which
    of two values a filter should use is the client's to say."""
    values = request.args.getlist(name)
    if len(values) > 1:
        raise BadControlRequest(f"?{name}= was given {len(values)} times; give it once")
    return values[0] if values else None


def kind(value: object) -> str:
    """What a JSON value is, in words, for an error message ("an array", "null"...)."""
    if value is None:
        return "null"
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
    names.update({list: "an array", dict: "an object"})
    return names.get(type(value), type(value).__name__)
