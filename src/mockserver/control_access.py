"""Who may use the control API (`/_mock`): the developer's own tools, not the web pages they open.

With the default set-up -- loopback, no admin token -- anything that can reach the port could
arm faults, reset the state or read the tokens `POST /_mock/accounts` returns. That includes
the web pages a developer has open: a page can send "simple" cross-site requests (a text/plain
or form body, no preflight), and a DNS-rebinding page (its own name pointed at 127.0.0.1) can
even read the answers. So, before any control view runs:

- **The Host decides, unless an admin token does.** Without an admin token, `/_mock` answers
  only requests addressed to a loopback name (``localhost``, ``127.0.0.1``, ``[::1]``): a
  rebinding page's requests carry its own name. With an admin token, the token decides (a mock
  reached by another name needs one anyway: ``serve`` refuses a non-loopback host without it).
- **No cross-site state changes.** A POST, PUT, PATCH or DELETE with an ``Origin`` other than
  the mock's own, or a ``Sec-Fetch-Site`` other than ``same-origin`` (or ``none``), is refused:
  browsers send them, other clients don't. The kit's own page (``/_mock/ui/``) is same-origin.
- **JSON bodies are JSON.** A body must be declared ``application/json``, which a cross-site
  page cannot send without a preflight the mock never grants (``POST /_mock/fixtures`` takes
  ``multipart/form-data``). An empty body needs no type: ``curl -X POST .../_mock/reset``.

The OCR API itself keeps the live service's CORS: it is not guarded here.
"""

from __future__ import annotations

import hmac
import ipaddress
from urllib.parse import urlsplit

from flask import Request, Response

from mockserver import errors
from mockserver.settings import Settings
from mockserver.web import json_response

CONTROL_PREFIX = "/_mock"
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SAME_SITE_FETCHES = frozenset({"same-origin", "none"})
MULTIPART_PATHS = frozenset({CONTROL_PREFIX + "/fixtures"})


class Forbidden(errors.ControlError):
    """A control request from where the control API does not take requests."""

    status = 403


class UnsupportedMediaType(errors.ControlError):
    """A control request body of another type than the route takes."""

    status = 415


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_control_path(path: str) -> bool:
    """True for `/_mock` and the paths under it."""
    return path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/")


def guard(request: Request, settings: Settings) -> Response | None:
    """The refusal for a control request the mock must not take; None to let it through."""
    if settings.admin_token:
        refused = _admin_token_refusal(request, settings.admin_token)
        if refused is not None:
            return refused
    else:
        _check_host(request)
    if request.method in STATE_CHANGING:
        _check_same_origin(request)
        _check_media_type(request)
    return None


def _admin_token_refusal(request: Request, expected: str) -> Response | None:
    scheme, _, given = request.headers.get("Authorization", "").strip().partition(" ")
    given = given.strip()
    if scheme.lower() == "bearer" and hmac.compare_digest(given.encode(), expected.encode()):
        return None
    error = (
        "wrong admin token"
        if given
        else "this mock's control API requires `Authorization: Bearer <admin token>` "
        "(it was started with --admin-token)"
    )
    response = json_response(errors.Unauthorized(error).to_json(), errors.Unauthorized.status)
    response.headers["WWW-Authenticate"] = 'Bearer realm="itsocr-mock control API"'
    return response


def _check_host(request: Request) -> None:
    host = request.environ.get("HTTP_HOST")
    if host is None:  # HTTP/1.0 without a Host header: no browser sends that
        return
    name = urlsplit("//" + host).hostname or ""
    if not is_loopback(name):
        raise Forbidden(
            f"the control API answers only requests addressed to a loopback name such as "
            f"127.0.0.1 or localhost, not {host!r} (a page rebinding its DNS name to the mock "
            "looks like this); to reach it by another name, start the mock with --admin-token"
        )


def _check_same_origin(request: Request) -> None:
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None and fetch_site.lower() not in SAME_SITE_FETCHES:
        raise Forbidden(
            f"the control API takes no state change from another site "
            f"(Sec-Fetch-Site: {fetch_site}): a web page may not arm faults or reset the mock"
        )
    origin = request.headers.get("Origin")
    if origin is not None and origin.rstrip("/") != request.host_url.rstrip("/"):
        raise Forbidden(
            f"the control API takes no state change from another origin (Origin: {origin}); "
            f"only {request.host_url.rstrip('/')} itself may send them from a browser"
        )


def _check_media_type(request: Request) -> None:
    has_body = bool(request.content_length) or "chunked" in request.headers.get(
        "Transfer-Encoding", ""
    )
    declared = request.headers.get("Content-Type")
    if not has_body and not declared:
        return
    expected = "multipart/form-data" if request.path in MULTIPART_PATHS else "application/json"
    if request.mimetype != expected:
        raise UnsupportedMediaType(
            f"send the body as {expected} (Content-Type: {declared or 'none'}); with curl: "
            + (
                "-F image=@FILE -F text=..."
                if expected.startswith("multipart")
                else "-H 'Content-Type: application/json' -d '{...}'"
            )
        )
