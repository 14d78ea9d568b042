"""The Flask application factory: one app per `Settings`, nothing created at import time."""

from __future__ import annotations

import contextlib
import logging
import socket
from urllib.parse import urlsplit

from flask import Flask, Response, current_app, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.wrappers import Response as BaseResponse

from mockserver import errors
from mockserver.api import OCR_PATH, UNREADABLE_BODY, api
from mockserver.backend import Backend
from mockserver.connection import client_socket, discard_body
from mockserver.control import control, health_only
from mockserver.control_access import guard, is_control_path
from mockserver.fixtures import FixtureCatalogue
from mockserver.settings import Settings
from mockserver.store import open_store
from mockserver.ui import ui
from mockserver.web import EXTENSION_KEY, current_backend, json_response

log = logging.getLogger("itsocr_mock")


def create_app(settings: Settings | None = None, backend: Backend | None = None) -> Flask:
    """Build the mock server's WSGI app.

    `backend` lets an in-process caller (the pytest plugin) share one backend with the app;
    otherwise one is built from `settings` and seeded with the demo accounts if the state is new.
    """
    settings = settings or Settings()
    app = Flask("mockserver")
    app.config["ITSOCR_SETTINGS"] = settings
    if backend is None:
        store = open_store(
            settings.state, prefix=settings.state_prefix, journal_limit=settings.journal_limit
        )
        backend = Backend(store, FixtureCatalogue.load(settings.fixtures))
        backend.ensure_initialised()
    app.extensions[EXTENSION_KEY] = backend
    # Paths are matched as sent, as on the live service: `//api/v1/ocr` is an unknown path,
    # not the endpoint. Werkzeug's router would otherwise redirect to the merged path.
    app.url_map.merge_slashes = False
    app.before_request(_path_as_sent)  # before the blueprints' hooks: no redirect, no auth
    app.register_blueprint(api)
    if settings.control:
        app.register_blueprint(control)
        app.register_blueprint(ui)
        app.before_request(_guard_control)
    else:
        app.register_blueprint(health_only)
    _register_error_handlers(app)
    app.after_request(_linger_on_unread_body)
    return app


def _linger_on_unread_body(response: Response) -> Response:
    # An error answered before the body was read (401, 429, "File too large"): once the answer
    # is sent, read and discard the rest of the body, so that a client still sending it
    # receives the answer instead of a reset (see connection.py). Success read it all.
    if request.environ.get(UNREADABLE_BODY):
        sock = client_socket(request.environ)
        if sock is not None:  # nothing more is read: the server then closes the connection
            response.call_on_close(lambda: _shut_reading(sock))
        return response
    if response.status_code >= 400 and (
        request.content_length or "chunked" in request.headers.get("Transfer-Encoding", "")
    ):
        try:
            stream = request.stream
        except HTTPException:  # a declared length over a limit set on the request
            return response
        environ = request.environ
        response.call_on_close(lambda: discard_body(stream, environ))
    return response


def _path_as_sent() -> None:
    """404 for a request whose path, as sent, has an empty segment (``//api/v1/ocr``).

    The WSGI path may have lost it: Python's http.server (under Werkzeug's server) collapses
    leading slashes, and Werkzeug's server rebuilds the path from a parsed URL. The request
    line's target, which both servers keep in ``RAW_URI``, is what the client sent.
    """
    target = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or ""
    path = target.split("?", 1)[0]
    if not path.startswith("/"):  # the absolute form a proxy sends: scheme://host/path
        path = urlsplit(path).path
    if "//" in path:
        raise NotFound()


def _shut_reading(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RD)


def _is_control_request() -> bool:
    """True for a request to the control API (none exists when it is switched off)."""
    on = bool(current_app.config["ITSOCR_SETTINGS"].control)
    return on and is_control_path(request.path)


def _guard_control() -> Response | None:
    # Only /_mock is guarded: the API itself keeps answering exactly as the live service.
    if not is_control_path(request.path):
        return None
    settings: Settings = current_app.config["ITSOCR_SETTINGS"]
    if request.blueprint == ui.name and settings.admin_token:
        # The web page's own files hold no state and no secret, and a browser cannot send a
        # header with a navigation: the page asks for the token and sends it with each control
        # request it makes (see mockserver.ui), which this guard checks like any other.
        return None
    return guard(request, settings)


def _register_error_handlers(app: Flask) -> None:
    app.register_error_handler(errors.ApiError, _api_error)
    app.register_error_handler(errors.ControlError, _control_error)
    app.register_error_handler(errors.ConnectionDropped, _drop_connection)
    app.register_error_handler(errors.StateUnavailable, _state_unavailable)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)


def _api_error(failure: errors.ApiError) -> Response:
    return json_response(failure.to_json(), failure.status)


def _control_error(failure: errors.ControlError) -> Response:
    return json_response(failure.to_json(), failure.status)


def _http_error(failure: HTTPException) -> BaseResponse:
    if failure.code == 405 and request.path == OCR_PATH:
        # The live service answers other methods in plain text, naming the method, and
        # without any Content-Type (its framework builds that body without one).
        refused = Response(
            f"{request.method} method not allowed", status=405, headers={"Allow": "POST, OPTIONS"}
        )
        del refused.headers["Content-Type"]
        return refused
    if _is_control_request():
        return _control_http_error(failure)
    response = failure.get_response()
    response.set_data(f"{failure.code} {failure.name}")
    response.mimetype = "text/plain"
    return response


def _control_http_error(failure: HTTPException) -> Response:
    where = f"{request.method} {request.path}"
    if isinstance(failure, MethodNotAllowed):
        allowed = ", ".join(failure.valid_methods or ())
        response = json_response({"error": f"{where} is not allowed; allowed: {allowed}"}, 405)
        response.headers["Allow"] = allowed
        return response
    if failure.code == 404:
        error = f"the control API has no {request.path}; see openapi-control.yaml"
        return json_response({"error": error}, 404)
    return json_response({"error": f"{where}: {failure.description}"}, failure.code or 500)


def _drop_connection(_: errors.ConnectionDropped) -> Response:
    # Close the client's socket under the server's feet: the client sees the connection end
    # with no response, as when the live service's process dies mid-request.
    # The status below is never sent: the server's write fails on the closed socket, which
    # both Werkzeug and gunicorn's threaded worker take as a client gone (tested with each).
    sock = client_socket(request.environ)
    if sock is not None:
        with contextlib.suppress(OSError):  # the client may have gone first
            sock.shutdown(socket.SHUT_RDWR)
    return Response(status=500)


def _state_unavailable(failure: errors.StateUnavailable) -> Response:
    # Outside Backend.ocr (which answers its own): the control API, `Prefer: code=`.
    log.warning("%s %s: %s", request.method, request.path, failure)
    if _is_control_request():
        return json_response({"error": f"{failure}; retry when it is back"}, 503)
    return _api_error(errors.OcrFailed())


def _unexpected(failure: Exception) -> Response:
    log.exception("unexpected error handling %s %s", request.method, request.path)
    if _is_control_request():
        return json_response({"error": f"internal error: {failure!r}"}, 500)
    return _api_error(errors.UnexpectedError())


__all__ = ["create_app", "current_backend"]
