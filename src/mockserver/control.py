"""The control API, `/_mock`: thin views that parse JSON, call the backend and serialise.

Its contract is `openapi-control.yaml`. Bodies are JSON objects declared ``application/json``
(at most 1 MiB, within the client timeout; see control_access.py for who may send them),
unknown fields are refused so that a typo cannot pass for a
setting, and every client mistake is a 4xx ``{"error": ...}`` saying what was expected. Times
are ISO-8601 in UTC with a ``Z``. Control requests are never journalled nor counted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from datetime import datetime, timedelta
from typing import Any, TypeVar

from flask import Blueprint, Response, current_app, request
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import ClientDisconnected, HTTPException, RequestEntityTooLarge

from mockserver import __version__
from mockserver.api import MULTIPART_OVERHEAD, UNREADABLE_BODY
from mockserver.clock import format_instant, parse_instant
from mockserver.connection import body_deadline
from mockserver.contract import max_file_size
from mockserver.errors import BadControlRequest, ControlError
from mockserver.faults import FaultRule
from mockserver.plans import plans
from mockserver.state import RegisteredFixture, Usage
from mockserver.store import AccountRow, FaultRow, JournalEntry, TokenRow
from mockserver.tokens import DEMO_ACCOUNTS
from mockserver.web import current_backend, json_response

T = TypeVar("T")

control = Blueprint("control", __name__, url_prefix="/_mock")

MAX_JSON_BODY = 1024 * 1024  # a control request's JSON body: settings, never data


class PayloadTooLarge(ControlError):
    """A control request body over `MAX_JSON_BODY`."""

    status = 413


_FAULT_FIELDS = ("status", "error", "delayMs", "times", "account", "drop", "countsUsage")
_FIXTURE_FIELDS = ("image", "text", "prompt", "name")


@control.after_request
def no_store(response: Response) -> Response:
    """State changes under the client's feet: no answer of the control API may be cached."""
    response.headers["Cache-Control"] = "no-store"
    return response


# -- the mock as a whole ------------------------------------------------------------------------


@control.get("/health")
def health() -> Response:
    """Whether this is a running itsOCR mock, and what it serves."""
    body = _public_health()
    body["state"] = current_backend().store.path
    body["demoAccounts"] = [
        {"id": demo.id, "plan": demo.plan, "token": demo.token} for demo in DEMO_ACCOUNTS
    ]
    return json_response(body)


# With the control API off (`--no-control`), a production-like mock still answers its health
# check, so that docker-compose or CI has something to poll -- read-only, and without what a
# client could use against it: no tokens, no state path. The rest of /_mock stays a 404.
health_only = Blueprint("health_only", __name__, url_prefix="/_mock")
health_only.after_request(no_store)


@health_only.get("/health")
def public_health() -> Response:
    """The health check of a mock without a control API."""
    return json_response(_public_health())


def _public_health() -> dict[str, object]:
    return {
        "status": "ok",
        "version": __version__,
        "control": current_app.config["ITSOCR_SETTINGS"].control,
        "clock": _clock_json(),
        "plans": {
            plan.name: {
                "title": plan.title,
                "imagesPerMonth": plan.images_per_month,
                "maxFileSizeBytes": plan.max_file_size,
            }
            for plan in plans().values()
        },
    }


@control.post("/reset")
def reset() -> Response:
    """Back to a fresh state (`Backend.reset`, the one reset path)."""
    _json_body(())
    current_backend().reset()
    return _no_content()


# -- accounts and tokens ------------------------------------------------------------------------


@control.get("/accounts")
def list_accounts() -> Response:
    """Every account, oldest first."""
    return json_response([_account_json(row) for row in current_backend().accounts()])


@control.post("/accounts")
def create_account() -> Response:
    """A new account (Free unless told) with one fresh token."""
    body = _json_body(("plan",))
    plan = _required(_string(body, "plan"), "plan") if "plan" in body else "free"
    account, token = current_backend().create_account(plan)
    created = {
        "id": account.id,
        "plan": account.plan,
        "token": token.token,
        "tokenId": token.row.id,
    }
    return json_response(created, 201)


@control.get("/accounts/<account_id>")
def get_account(account_id: str) -> Response:
    """One account and its tokens."""
    return json_response(_account_json(current_backend().account(account_id)))


@control.patch("/accounts/<account_id>")
def change_plan(account_id: str) -> Response:
    """Move an account to another plan."""
    body = _json_body(("plan",), required=("plan",))
    plan = _required(_string(body, "plan"), "plan")
    return json_response(_account_json(current_backend().change_plan(account_id, plan)))


@control.delete("/accounts/<account_id>")
def delete_account(account_id: str) -> Response:
    """Delete an account; its tokens then answer "User not found"."""
    current_backend().delete_account(account_id)
    return _no_content()


@control.post("/accounts/<account_id>/tokens")
def create_token(account_id: str) -> Response:
    """Another token of the account, optionally with an expiry (past ones included)."""
    body = _json_body(("expiresAt",))
    expires = body.get("expiresAt")
    expiry = None if expires is None else _instant(expires, "expiresAt")
    new = current_backend().create_token(account_id, expiry)
    token = {
        "id": new.row.id,
        "token": new.token,
        "prefix": new.row.prefix,
        "createdAt": new.row.created_at,
        "expiresAt": new.row.expires_at,
    }
    return json_response(token, 201)


@control.delete("/tokens/<token_id>")
def revoke_token(token_id: str) -> Response:
    """Revoke a token; it then answers "API token has been revoked"."""
    current_backend().revoke_token(token_id)
    return _no_content()


# -- usage and clock ----------------------------------------------------------------------------


@control.get("/accounts/<account_id>/usage")
def get_usage(account_id: str) -> Response:
    """The account's usage in the current month of the mock's clock."""
    return json_response(_usage_json(current_backend().usage(account_id)))


@control.put("/accounts/<account_id>/usage")
def set_usage(account_id: str) -> Response:
    """Set the images used in the current month."""
    body = _json_body(("imagesUsed",), required=("imagesUsed",))
    images_used = _required(_integer(body, "imagesUsed"), "imagesUsed")
    usage = current_backend().set_usage(account_id, images_used)
    return json_response(_usage_json(usage))


@control.get("/clock")
def get_clock() -> Response:
    """The mock's time, and whether it is frozen."""
    return json_response(_clock_json())


@control.put("/clock")
def set_clock() -> Response:
    """Freeze the mock's clock at an instant."""
    body = _json_body(("now",), required=("now",))
    current_backend().freeze_clock(_instant(body["now"], "now"))
    return json_response(_clock_json())


@control.delete("/clock")
def real_clock() -> Response:
    """Back to real time."""
    current_backend().real_clock()
    return _no_content()


# -- faults -------------------------------------------------------------------------------------


@control.get("/faults")
def list_faults() -> Response:
    """The fault rules, in the order they apply."""
    return json_response([_fault_json(row) for row in current_backend().faults()])


@control.post("/faults")
def add_fault() -> Response:
    """A fault rule for the next OCR requests."""
    body = _json_body(_FAULT_FIELDS)
    rule = FaultRule(
        status=_integer(body, "status"),
        error=_string(body, "error"),
        delay_ms=_integer(body, "delayMs") or 0,
        times=_integer(body, "times"),
        account_id=_string(body, "account"),
        drop=bool(_boolean(body, "drop")),
        counts_usage=bool(_boolean(body, "countsUsage")),
    )
    return json_response(_fault_json(current_backend().add_fault(rule)), 201)


@control.delete("/faults")
def clear_faults() -> Response:
    """Delete every fault rule."""
    current_backend().clear_faults()
    return _no_content()


@control.delete("/faults/<fault_id>")
def delete_fault(fault_id: str) -> Response:
    """Delete one fault rule."""
    current_backend().delete_fault(fault_id)
    return _no_content()


# -- fixtures -----------------------------------------------------------------------------------


@control.get("/fixtures")
def list_fixtures() -> Response:
    """The fixtures registered at run time."""
    return json_response([_fixture_json(fixture) for fixture in current_backend().fixtures()])


@control.post("/fixtures")
def add_fixture() -> Response:
    """Register the text OCR returns for an image: multipart `image` and `text` (+ `prompt`,
    `name`)."""
    if request.mimetype != "multipart/form-data":
        raise BadControlRequest(
            "send multipart/form-data with an `image` file part and a `text` field"
        )
    request.max_content_length = max_file_size() + MULTIPART_OVERHEAD
    try:
        form, files = request.form, request.files
    except RequestEntityTooLarge:
        limit = max_file_size() + MULTIPART_OVERHEAD
        raise PayloadTooLarge(
            f"the form is over {limit} bytes, the most POST /_mock/fixtures takes (an image "
            f"of up to {max_file_size()} bytes, the largest any plan accepts, and "
            f"{MULTIPART_OVERHEAD} bytes for the rest of the form)"
        ) from None
    unknown = sorted((set(form) | set(files)) - set(_FIXTURE_FIELDS))
    if unknown:
        raise BadControlRequest(f"unknown field {unknown[0]!r}; expected image, text, prompt, name")
    repeated = [field for field in _FIXTURE_FIELDS if _sent(form, field) + _sent(files, field) > 1]
    if repeated:
        # A form field is one string: taking the first or the last copy would register a
        # text the client may not have meant.
        raise BadControlRequest(f"field {repeated[0]!r} was sent more than once; send it once")
    image = files.get("image")
    if image is None:
        raise BadControlRequest("send the image as a file part named `image`")
    if "text" not in form:
        raise BadControlRequest("send the OCR text as a field named `text`")
    name = form.get("name") or image.filename or "image"
    fixture = current_backend().add_fixture(
        image.stream,
        form["text"],
        name=name,
        prompt=form.get("prompt", ""),
        media_type=image.mimetype or None,
    )
    return json_response(_fixture_json(fixture), 201)


def _sent(multidict: MultiDict[str, Any], field: str) -> int:
    """How many times ``field`` is in a parsed form."""
    return len(multidict.getlist(field))


# -- the journal --------------------------------------------------------------------------------


@control.get("/requests")
def list_requests() -> Response:
    """The API requests received, oldest first; ``?account=``, ``?status=``, ``?limit=``."""
    status = _query_integer("status", 0, 999)
    limit = _query_integer("limit", 1, None)
    entries = current_backend().journal(request.args.get("account"), status, limit)
    return json_response([entry_json(entry) for entry in entries])


@control.delete("/requests")
def clear_requests() -> Response:
    """Empty the journal."""
    current_backend().clear_journal()
    return _no_content()


# -- reading requests ---------------------------------------------------------------------------


def _json_body(allowed: Collection[str], *, required: Collection[str] = ()) -> dict[str, Any]:
    """The request's JSON object (an empty body is ``{}``), with only `allowed` fields."""
    raw = _read_body()
    if not raw.strip():
        body: object = {}
    else:
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError) as failure:
            raise BadControlRequest(f"the body is not valid JSON: {failure}") from None
    if not isinstance(body, dict):
        raise BadControlRequest(f"the body must be a JSON object, got {_kind(body)}")
    _check_text(body)
    for name in body:
        if name not in allowed:
            expected = ", ".join(allowed) if allowed else "no fields"
            raise BadControlRequest(f"unknown field {name!r}; expected {expected}")
    for name in required:
        if name not in body:
            raise BadControlRequest(f"missing field {name!r}")
    return body


def _read_body() -> bytes:
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


def _check_text(value: object) -> None:
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
            _check_text(key)
            _check_text(item)
    elif isinstance(value, list):
        for item in value:
            _check_text(item)


def _required(value: T | None, name: str) -> T:
    if value is None:
        raise BadControlRequest(f"{name} must not be null")
    return value


def _string(body: Mapping[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None or isinstance(value, str):
        return value
    raise BadControlRequest(f"{name} must be a string, got {_kind(value)}")


def _integer(body: Mapping[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if isinstance(value, float) and value.is_integer():  # 3.0 is an integer to JSON Schema
        return int(value)
    raise BadControlRequest(f"{name} must be an integer, got {_kind(value)}")


def _boolean(body: Mapping[str, Any], name: str) -> bool | None:
    value = body.get(name)
    if value is None or isinstance(value, bool):
        return value
    raise BadControlRequest(f"{name} must be true or false, got {_kind(value)}")


_LEAP_SECOND = re.compile(r"(T\d\d:\d\d):60")


def _instant(value: object, name: str) -> datetime:
    """An ISO-8601 date-time (RFC 3339 included: a lower-case t or z, a leap second)."""
    if not isinstance(value, str):
        raise BadControlRequest(f"{name} must be an ISO-8601 date-time string, got {_kind(value)}")
    text, leap = _LEAP_SECOND.subn(r"\1:59", value.strip().upper())
    try:
        instant = parse_instant(text) + timedelta(seconds=leap)
        format_instant(instant)  # a year past 9999 in UTC fails here, not later
    except (ValueError, OverflowError):
        raise BadControlRequest(
            f"{name} must be an ISO-8601 date-time such as 2030-01-31T23:59:59Z, got {value!r}"
        ) from None
    return instant


def _query_integer(name: str, minimum: int, maximum: int | None) -> int | None:
    text = request.args.get(name)
    if text is None:
        return None
    if not re.fullmatch(r"\d{1,15}", text) or not minimum <= int(text) <= (maximum or 10**15):
        bound = f"between {minimum} and {maximum}" if maximum else f"{minimum} or more"
        raise BadControlRequest(f"?{name}= must be an integer {bound}, got {text!r}")
    return int(text)


def _kind(value: object) -> str:
    if value is None:
        return "null"
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
    names.update({list: "an array", dict: "an object"})
    return names.get(type(value), type(value).__name__)


# -- writing answers ----------------------------------------------------------------------------


def _no_content() -> Response:
    response = Response(status=204)
    del response.headers["Content-Type"]
    return response


def _account_json(account: AccountRow) -> dict[str, object]:
    tokens = current_backend().tokens(account.id)
    return {
        "id": account.id,
        "plan": account.plan,
        "createdAt": account.created_at,
        "tokens": [_token_json(token) for token in tokens],
    }


def _token_json(token: TokenRow) -> dict[str, object]:
    return {
        "id": token.id,
        "prefix": token.prefix,
        "createdAt": token.created_at,
        "expiresAt": token.expires_at,
        "revokedAt": token.revoked_at,
    }


def _usage_json(usage: Usage) -> dict[str, object]:
    return {
        "period": usage.period,
        "imagesUsed": usage.images_used,
        "limit": usage.limit,
        "bytesProcessed": usage.bytes_processed,
    }


def _clock_json() -> dict[str, object]:
    backend = current_backend()
    return {"now": format_instant(backend.now()), "frozen": backend.clock_is_frozen()}


def _fault_json(fault: FaultRow) -> dict[str, object]:
    return {
        "id": fault.id,
        "status": fault.status,
        "error": fault.error,
        "delayMs": fault.delay_ms,
        "times": fault.remaining,
        "account": fault.account_id,
        "drop": fault.drop_connection,
        "countsUsage": fault.counts_usage,
        "createdAt": fault.created_at,
    }


def _fixture_json(fixture: RegisteredFixture) -> dict[str, object]:
    return {
        "name": fixture.name,
        "sha256": fixture.sha256,
        "prompt": fixture.prompt or None,
        "mediaType": fixture.media_type,
        "text": fixture.text,
    }


def entry_json(entry: JournalEntry) -> dict[str, object]:
    """A journal entry as the control API shows it (the mock's and the proxy's)."""
    shown: dict[str, object] = {
        "time": entry.time,
        "method": entry.method,
        "path": entry.path,
        "status": entry.status,
        "account": entry.account_id,
        "tokenPrefix": entry.token_prefix,
        "fileName": entry.file_name,
        "mimeType": entry.mime_type,
        "fileSize": entry.file_size,
        "sha256": entry.sha256,
        "fixture": entry.fixture,
        "prompt": entry.prompt,
        "error": entry.error,
        "hint": entry.hint,
        "durationMs": entry.duration_ms,
    }
    if entry.violations is not None:  # a proxy's journal: how the upstream's answer broke the spec
        shown["violations"] = list(entry.violations)
    return shown
