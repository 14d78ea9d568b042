"""The Flask application factory: one app per `Settings`, nothing created at import time."""

from __future__ import annotations

import logging
import socket

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from mockserver import errors
from mockserver.api import OCR_PATH, api
from mockserver.backend import Backend
from mockserver.fixtures import FixtureCatalogue
from mockserver.settings import Settings
from mockserver.store import Store
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
        backend = Backend(Store(settings.state), FixtureCatalogue.load(settings.fixtures))
        backend.ensure_initialised()
    app.extensions[EXTENSION_KEY] = backend
    app.register_blueprint(api)
    _register_error_handlers(app)
    return app


def _register_error_handlers(app: Flask) -> None:
    app.register_error_handler(errors.ApiError, _api_error)
    app.register_error_handler(errors.ControlError, _control_error)
    app.register_error_handler(errors.ConnectionDropped, _drop_connection)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)


def _api_error(failure: errors.ApiError) -> Response:
    return json_response(failure.to_json(), failure.status)


def _control_error(failure: errors.ControlError) -> Response:
    return json_response(failure.to_json(), failure.status)


def _http_error(failure: HTTPException) -> Response:
    if failure.code == 405 and request.path == OCR_PATH:
        # The live service answers other methods in plain text, naming the method.
        return Response(
            f"{request.method} method not allowed",
            status=405,
            mimetype="text/plain",
            headers={"Allow": "POST, OPTIONS"},
        )
    if request.path.startswith("/_mock"):
        return json_response({"error": failure.description}, failure.code or 500)
    response = failure.get_response()
    response.set_data(f"{failure.code} {failure.name}")
    response.mimetype = "text/plain"
    return response


def _drop_connection(_: errors.ConnectionDropped) -> Response:
    # Close the client's socket under the server's feet: the client sees the connection end
    # with no response, as when the live service's process dies mid-request.
    for key in ("gunicorn.socket", "werkzeug.socket"):
        sock = request.environ.get(key)
        if isinstance(sock, socket.socket):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
    return Response(status=500)


def _unexpected(failure: Exception) -> Response:
    log.exception("unexpected error handling %s %s", request.method, request.path)
    if request.path.startswith("/_mock"):
        return json_response({"error": f"internal error: {failure!r}"}, 500)
    return _api_error(errors.UnexpectedError())


__all__ = ["create_app", "current_backend"]
