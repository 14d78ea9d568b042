"""Broken HTTP skins: the faithful mock wrapped in a WSGI middleware that answers one thing wrong.

`Rewrite` runs the mock, then hands each response under ``/api/v1`` to a `change` function
(or answers a request itself first, with `intercept`, or alters the request the mock sees, with
`prepare`). The control API (``/_mock``) passes through untouched, so the contract suite still
drives the state.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Iterable
from html import escape
from typing import Any

from werkzeug.http import parse_options_header
from werkzeug.test import run_wsgi_app
from werkzeug.wrappers import Request, Response

from mockserver import errors
from mockserver.contract import cors_headers

API_PREFIX = "/api/v1"
Change = Callable[[Request, Response], None]
Intercept = Callable[[Request], Response | None]
Prepare = Callable[[dict[str, Any]], None]


class Rewrite:
    """A WSGI app: `app` with `change` applied to its API responses, after `intercept` had the
    chance to answer a request in its place and `prepare` to alter the request's environ."""

    def __init__(
        self,
        app: Any,
        change: Change | None = None,
        intercept: Intercept | None = None,
        prepare: Prepare | None = None,
    ) -> None:
        self.app = app
        self.change = change
        self.intercept = intercept
        self.prepare = prepare

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if not environ.get("PATH_INFO", "").startswith(API_PREFIX):
            return self.app(environ, start_response)  # type: ignore[no-any-return]
        if self.prepare is not None:
            self.prepare(environ)
        request = Request(environ, shallow=True)  # shallow: the mock still reads the body
        answer = self.intercept(request) if self.intercept else None
        if answer is None:
            app_iter, status, headers = run_wsgi_app(self.app, environ, buffered=True)
            typed = "Content-Type" in headers
            answer = Response(app_iter, status, headers)
            if not typed:  # the 405: Response adds its default type to a response without one
                del answer.headers["Content-Type"]
            if self.change is not None:
                self.change(request, answer)
        return answer(environ, start_response)


def json_body(response: Response) -> dict[str, Any] | None:
    """The response's JSON object, or None when it is not one."""
    if response.mimetype != "application/json":
        return None
    body = json.loads(response.get_data())
    return body if isinstance(body, dict) else None


def set_json(response: Response, body: dict[str, Any]) -> None:
    """Replace the body, serialised as the mock serialises it."""
    response.set_data(json.dumps(body, ensure_ascii=False, separators=(",", ":")))


def on_success(edit: Callable[[dict[str, Any]], None]) -> Change:
    """A change that edits the JSON body of every 200."""

    def change(_: Request, response: Response) -> None:
        body = json_body(response)
        if response.status_code == 200 and body is not None:
            edit(body)
            set_json(response, body)

    return change


def on_error(edit: Callable[[Response, dict[str, Any]], None]) -> Change:
    """A change that rewrites every JSON error response (given the response and its body)."""

    def change(_: Request, response: Response) -> None:
        body = json_body(response)
        if response.status_code >= 400 and body is not None and "error" in body:
            edit(response, body)

    return change


# -- the 200 body -------------------------------------------------------------------------


def drop_id(body: dict[str, Any]) -> None:
    """No `id` in the success body."""
    del body["id"]


def id_not_uuid(body: dict[str, Any]) -> None:
    """An `id` of the implementation's own format, not a UUID."""
    body["id"] = "ocr_" + str(body["id"]).replace("-", "")[:16]


def file_size_as_string(body: dict[str, Any]) -> None:
    """`fileSize` as a string of digits."""
    body["fileSize"] = str(body["fileSize"])


def processing_time_unrounded(body: dict[str, Any]) -> None:
    """`processingTimeMs` as fractional milliseconds (a float), not an integer."""
    body["processingTimeMs"] = body["processingTimeMs"] + 0.375


# -- errors -------------------------------------------------------------------------------


def html_errors(response: Response, body: dict[str, Any]) -> None:
    """Errors as a framework's HTML page."""
    status = response.status  # e.g. "400 BAD REQUEST"
    response.set_data(
        f"<!doctype html><html><head><title>{status}</title></head>"
        f"<body><h1>{status}</h1><p>{escape(body['error'])}</p></body></html>"
    )
    response.mimetype = "text/html"


def plain_text_errors(response: Response, body: dict[str, Any]) -> None:
    """Errors as the bare message in text/plain."""
    response.set_data(body["error"])
    response.mimetype = "text/plain"


def success_true_on_errors(response: Response, body: dict[str, Any]) -> None:
    """`success: true` in error bodies."""
    body["success"] = True
    set_json(response, body)


def missing_file_is_422(response: Response, body: dict[str, Any]) -> None:
    """422 Unprocessable Content instead of 400 for a missing `file`."""
    if body["error"] == errors.MissingFile.message:
        response.status_code = 422


# -- HTTP ---------------------------------------------------------------------------------


def drop_cors_headers(request: Request, response: Response) -> None:
    """No CORS headers on the POST responses (the preflight keeps them)."""
    if request.method == "POST":
        for name in cors_headers():
            response.headers.pop(name, None)


def preflight_requires_auth(request: Request) -> Response | None:
    """The authentication layer runs before CORS: a preflight without a token is a 401."""
    if request.method != "OPTIONS" or request.headers.get("Authorization"):
        return None
    response = Response(status=401, mimetype="application/json", headers=dict(cors_headers()))
    set_json(response, {"error": errors.MissingAuthorizationHeader.message, "success": False})
    return response


def unknown_path_unauthorized(request: Request) -> Response | None:
    """A gateway that authenticates every path: an unknown one is a 401, not a 404."""
    if request.path.rstrip("/") == API_PREFIX + "/ocr":
        return None
    response = Response(status=401, mimetype="application/json")
    set_json(response, {"error": errors.MissingAuthorizationHeader.message, "success": False})
    return response


def no_allow_on_405(_: Request, response: Response) -> None:
    """405 without the `Allow` header."""
    if response.status_code == 405:
        response.headers.pop("Allow", None)


def max_age_missing(request: Request, response: Response) -> None:
    """The preflight without `Access-Control-Max-Age`."""
    if request.method == "OPTIONS":
        response.headers.pop("Access-Control-Max-Age", None)


def trailing_slash_not_found(_: Request, response: Response) -> None:
    """``/ocr/`` is a 404 instead of a redirect to ``/ocr``."""
    if response.status_code == 308:
        response.status_code = 404
        response.headers.pop("Location", None)
        response.set_data("404 Not Found")
        response.mimetype = "text/plain"


def retry_after_on_429(_: Request, response: Response) -> None:
    """A `Retry-After` header on the monthly limit's 429 (the live service sends none)."""
    if response.status_code == 429:
        response.headers["Retry-After"] = "3600"


def limit_message_shows_the_limit(response: Response, body: dict[str, Any]) -> None:
    """The 429 message says "used {limit} of {limit}" instead of the stored usage."""
    if response.status_code == 429:
        body["error"] = re.sub(r"used \d+ of (\d+)", r"used \1 of \1", body["error"])
        set_json(response, body)


def id_reused(body: dict[str, Any]) -> None:
    """The same `id` for every request."""
    body["id"] = "6f1c2a9e-8a7b-4c1d-9e2f-0a1b2c3d4e5f"


# -- the request --------------------------------------------------------------------------


def last_field_wins(name: str) -> Prepare:
    """Of several parts named `name`, the last is used: the earlier ones are cut from the body
    before the mock (where the first wins) reads it."""

    def prepare(environ: dict[str, Any]) -> None:
        kind, options = parse_options_header(environ.get("CONTENT_TYPE", ""))
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if kind != "multipart/form-data" or not options.get("boundary") or not length:
            return
        body = environ["wsgi.input"].read(length)
        delimiter = b"--" + options["boundary"].encode("latin-1")
        parts = body.split(delimiter)  # preamble, b"\r\n" headers b"\r\n\r\n" content, ..., b"--"
        named = [number for number, part in enumerate(parts) if _is_named(part, name)]
        body = delimiter.join(part for number, part in enumerate(parts) if number not in named[:-1])
        environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(body), str(len(body))

    return prepare


def _is_named(part: bytes, name: str) -> bool:
    headers = part.split(b"\r\n\r\n", 1)[0]
    return f'name="{name}"'.encode() in headers


def typed_405(_: Request, response: Response) -> None:
    """The 405 with a `Content-Type` (the live service sends its body without one)."""
    if response.status_code == 405:
        response.headers["Content-Type"] = "text/plain; charset=utf-8"


def urlencoded_is_an_invalid_body(request: Request, response: Response) -> None:
    """A urlencoded body answered "Invalid request body" (the live service reads it as a form
    without a file)."""
    if request.mimetype == "application/x-www-form-urlencoded" and response.status_code == 400:
        set_json(response, {"error": errors.InvalidRequestBody.message, "success": False})


def merge_slashes(environ: dict[str, Any]) -> None:
    """A server that merges repeated slashes: `//api/v1/ocr` reaches the endpoint."""
    for key in ("RAW_URI", "REQUEST_URI"):
        if key in environ:
            environ[key] = re.sub("/{2,}", "/", environ[key])
