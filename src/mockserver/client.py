"""A small client of the mock's control API (``/_mock``, see `openapi-control.yaml`).

    >>> control = MockControl("http://127.0.0.1:8080")
    >>> account = control.create_account("free")
    >>> control.set_usage(account["id"], 9)  # one image left this month
    >>> control.add_fault(500, times=1)  # the next OCR request fails

Each method is one endpoint and returns the control API's JSON as plain dicts and lists (keys
as on the wire: ``imagesUsed``, ``tokenId``...). A 4xx or 5xx answer raises `ControlApiError`
with its status and the API's ``error`` message; a mock that cannot be reached raises the
`requests.ConnectionError` underneath.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import requests
from requests import PreparedRequest, Response
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

__all__ = ["ControlApiError", "MockControl"]

DEFAULT_TIMEOUT = 30.0  # seconds; a fault's delay applies to OCR requests, never to these


class ControlApiError(Exception):
    """The control API refused a request: `status` and its ``error`` message."""

    def __init__(self, method: str, url: str, status: int, error: str) -> None:
        self.method = method
        self.url = url
        self.status = status
        self.error = error
        super().__init__(f"{method} {url} answered {status}: {error}")


Instant = datetime | str
"""An ISO-8601 date-time string, or a datetime (a naive one is taken as UTC)."""


class MockControl:
    """The control API of the itsOCR mock at `url` (its origin, e.g. ``http://127.0.0.1:8080``).

    `admin_token` is sent as ``Authorization: Bearer <admin token>``, for a mock started with
    ``--admin-token``. The client keeps one HTTP session; close it with `close()` or use it as a
    context manager.
    """

    def __init__(
        self, url: str, admin_token: str | None = None, *, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        origin = url.rstrip("/").removesuffix("/_mock")
        self.url = origin + "/_mock"
        self.timeout = timeout
        self.session = requests.Session()
        if admin_token:
            self.session.headers["Authorization"] = f"Bearer {admin_token}"

    def __repr__(self) -> str:
        return f"<MockControl {self.url}>"

    def close(self) -> None:
        """Close the HTTP session."""
        self.session.close()

    def __enter__(self) -> MockControl:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- the mock as a whole --------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """``{"status": "ok", "version", "state", "clock", "plans", "demoAccounts"}``."""
        return self._object("GET", "/health")

    def reset(self) -> None:
        """Back to a fresh state: demo accounts only, no usage, faults, fixtures or journal,
        real clock."""
        self._call("POST", "/reset")

    # -- accounts and tokens --------------------------------------------------------------

    def create_account(self, plan: str = "free") -> dict[str, Any]:
        """A new account with one token: ``{"id", "plan", "token", "tokenId"}``."""
        return self._object("POST", "/accounts", {"plan": plan})

    def list_accounts(self) -> list[dict[str, Any]]:
        """Every account, oldest first, with its tokens (never the tokens themselves)."""
        return self._list("GET", "/accounts")

    def get_account(self, account_id: str) -> dict[str, Any]:
        """``{"id", "plan", "createdAt", "tokens": [{"id", "prefix", "createdAt", ...}]}``."""
        return self._object("GET", f"/accounts/{_segment(account_id)}")

    def change_plan(self, account_id: str, plan: str) -> dict[str, Any]:
        """Move an account to another plan; returns the account."""
        return self._object("PATCH", f"/accounts/{_segment(account_id)}", {"plan": plan})

    def delete_account(self, account_id: str) -> None:
        """Delete an account; its tokens then answer "User not found"."""
        self._call("DELETE", f"/accounts/{_segment(account_id)}")

    def create_token(self, account_id: str, *, expires_at: Instant | None = None) -> dict[str, Any]:
        """Another token of the account, optionally expiring (past instants included):
        ``{"id", "token", "prefix", "createdAt", "expiresAt"}``."""
        body = {"expiresAt": _instant(expires_at)} if expires_at is not None else {}
        return self._object("POST", f"/accounts/{_segment(account_id)}/tokens", body)

    def revoke_token(self, token_id: str) -> None:
        """Revoke a token by its id; it then answers "API token has been revoked"."""
        self._call("DELETE", f"/tokens/{_segment(token_id)}")

    # -- usage and clock ------------------------------------------------------------------

    def get_usage(self, account_id: str) -> dict[str, Any]:
        """This month's usage: ``{"period", "imagesUsed", "limit", "bytesProcessed"}``."""
        return self._object("GET", f"/accounts/{_segment(account_id)}/usage")

    def set_usage(self, account_id: str, images_used: int) -> dict[str, Any]:
        """Set the images used this month (in the mock's clock); returns the usage."""
        body = {"imagesUsed": images_used}
        return self._object("PUT", f"/accounts/{_segment(account_id)}/usage", body)

    def get_clock(self) -> dict[str, Any]:
        """``{"now", "frozen"}``: the mock's time, and whether it is held."""
        return self._object("GET", "/clock")

    def set_clock(self, now: Instant) -> dict[str, Any]:
        """Freeze the mock's clock at `now`; returns the clock."""
        return self._object("PUT", "/clock", {"now": _instant(now)})

    def reset_clock(self) -> None:
        """Back to real time."""
        self._call("DELETE", "/clock")

    # -- faults ---------------------------------------------------------------------------

    def add_fault(
        self,
        status: int | None = None,
        *,
        error: str | None = None,
        delay_ms: int | None = None,
        times: int | None = None,
        account: str | None = None,
        drop: bool = False,
        counts_usage: bool = False,
        **fields: Any,
    ) -> dict[str, Any]:
        """A fault rule for the next `times` OCR requests (all, or one account's; every one
        until deleted when `times` is None): wait `delay_ms`, then answer `status` with the
        live message (or `error`), or `drop` the connection. With `counts_usage` (status 500 or
        `drop` only), the image is counted first, as the live service may count one and then
        fail. Returns the rule with its id.

        `fields` are sent as they are, in the wire's spelling (``delayMs=250`` works too).
        """
        rule: dict[str, Any] = {
            "status": status,
            "error": error,
            "delayMs": delay_ms,
            "times": times,
            "account": account,
            "drop": drop or None,
            "countsUsage": counts_usage or None,
        }
        body = {key: value for key, value in rule.items() if value is not None}
        return self._object("POST", "/faults", {**body, **fields})

    def list_faults(self) -> list[dict[str, Any]]:
        """The fault rules, in the order they apply (``times`` is what is left of each)."""
        return self._list("GET", "/faults")

    def delete_fault(self, fault_id: str) -> None:
        """Delete one fault rule."""
        self._call("DELETE", f"/faults/{_segment(fault_id)}")

    def clear_faults(self) -> None:
        """Delete every fault rule."""
        self._call("DELETE", "/faults")

    # -- fixtures -------------------------------------------------------------------------

    def add_fixture(
        self,
        image: bytes | Path | IO[bytes],
        text: str,
        *,
        prompt: str | None = None,
        name: str | None = None,
        media_type: str | None = None,
    ) -> dict[str, Any]:
        """Make the mock's OCR answer `text` for this image (only with `prompt`, if given).

        Returns ``{"name", "sha256", "prompt", "mediaType", "text"}``. The image must be one
        that decodes; `name` defaults to the file's name. `media_type` is only recorded.
        """
        if isinstance(image, Path):
            name = name or image.name
            data: IO[bytes] = io.BytesIO(image.read_bytes())
        elif isinstance(image, bytes):
            data = io.BytesIO(image)
        else:
            data = image
        form = {"text": text, **({"prompt": prompt} if prompt is not None else {})}
        part = (
            (name or "image", data) if media_type is None else (name or "image", data, media_type)
        )
        files = {"image": part}
        return self._object("POST", "/fixtures", files=files, data=form)

    def list_fixtures(self) -> list[dict[str, Any]]:
        """The fixtures added at run time (not the built-in catalogue), oldest first."""
        return self._list("GET", "/fixtures")

    # -- the journal ----------------------------------------------------------------------

    def requests(
        self, *, account: str | None = None, status: int | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """The API requests received, oldest first: ``time``, ``status``, ``tokenPrefix``,
        ``fileName``, ``mimeType``, ``fileSize``, ``sha256``, ``fixture``, ``error``...

        Filtered by `account` id and/or `status`; `limit` keeps the newest ones.
        """
        query = {"account": account, "status": status, "limit": limit}
        params = {key: value for key, value in query.items() if value is not None}
        return self._list("GET", "/requests", params=params)

    def clear_requests(self) -> None:
        """Empty the journal."""
        self._call("DELETE", "/requests")

    # -- plumbing -------------------------------------------------------------------------

    def _call(
        self, method: str, path: str, body: Mapping[str, Any] | None = None, **options: Any
    ) -> Any:
        """Send one request; the JSON answer (None for an empty one), or ControlApiError."""
        url = self.url + path
        response = self.session.request(method, url, json=body, timeout=self.timeout, **options)
        if response.status_code >= 400:
            raise ControlApiError(method, url, response.status_code, _error_of(response))
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise ControlApiError(
                method, url, response.status_code, "the answer is not JSON: is this an itsOCR mock?"
            ) from None

    def _object(
        self, method: str, path: str, body: Mapping[str, Any] | None = None, **options: Any
    ) -> dict[str, Any]:
        answer = self._call(method, path, body, **options)
        if not isinstance(answer, dict):
            raise TypeError(f"{method} {self.url}{path}: expected a JSON object, got {answer!r}")
        return answer

    def _list(self, method: str, path: str, **options: Any) -> list[dict[str, Any]]:
        answer = self._call(method, path, **options)
        if not isinstance(answer, list):
            raise TypeError(f"{method} {self.url}{path}: expected a JSON array, got {answer!r}")
        return answer


def _segment(value: str) -> str:
    """An id as one path segment: a slash or a space in it cannot change the URL's path."""
    return quote(value, safe="")


def _instant(value: Instant) -> str:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    return value


def _error_of(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or response.reason or "no body"
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, str) else response.text[:300]


class WsgiAdapter(BaseAdapter):
    """A `requests` transport that hands each request to a WSGI app in this process."""

    def __init__(self, app: Any) -> None:
        super().__init__()
        self.app = app

    def send(self, request: PreparedRequest, *_: Any, **__: Any) -> Response:
        from urllib.parse import urlsplit

        from werkzeug.test import Client

        url = urlsplit(request.url or "")
        body = request.body.encode() if isinstance(request.body, str) else request.body
        answer = Client(self.app).open(
            url.path,
            method=request.method,
            query_string=url.query,
            headers=list(request.headers.items()),
            data=body or b"",
        )
        response = Response()
        response.status_code = answer.status_code
        response.reason = answer.status.partition(" ")[2]
        response.headers = CaseInsensitiveDict(answer.headers.items())
        response.raw = io.BytesIO(answer.get_data())
        response.url, response.request = request.url or "", request
        return response

    def close(self) -> None:
        pass
