"""The proxy's Flask app: `/api/v1/...` forwarded upstream, and its control API under `/_mock`.

The views are a thin skin over `Proxy` (`mockserver.proxy.forwarding`). The control API offers
what a proxy has: ``GET /_mock/health``, ``GET /_mock/requests`` (the journal, each entry with
its `violations`), ``DELETE /_mock/requests`` and ``POST /_mock/reset`` (both empty the
journal). Accounts, clock and faults belong to a mock: a proxy has none.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from dataclasses import dataclass
from pathlib import Path

from flask import Blueprint, Flask, Response, current_app, request
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as BaseResponse

from mockserver import __version__
from mockserver.connection import client_socket
from mockserver.control.journal import entry_json
from mockserver.control_access import CONTROL_PREFIX, guard, is_control_path
from mockserver.proxy.forwarding import Incoming, Proxy, ProxyError
from mockserver.proxy.recording import Recorder
from mockserver.proxy.upstream import ClientGone, Upstream
from mockserver.settings import Settings
from mockserver.store.sqlite import Store
from mockserver.web import json_response

log = logging.getLogger("itsocr_mock.proxy")

PROXY_KEY = "itsocr_mock_proxy"
DEFAULT_UPSTREAM = "https://itsocr.com"
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


@dataclass(frozen=True)
class ProxySettings:
    """Everything `create_proxy_app` needs to know."""

    state: str  # the SQLite state file: the journal and the budget's count, shared by workers
    upstream: str = DEFAULT_UPSTREAM  # an origin; a trailing /api/v1 is the same origin
    record: Path | None = None  # the fixture directory to record 200 answers into
    budget: int | None = None  # requests that can consume quota to forward at most
    timeout: float = 60.0  # seconds to connect upstream, and to wait for each of its replies
    admin_token: str | None = None  # when set, /_mock requires `Authorization: Bearer <it>`
    log_level: str = "INFO"
    connections: int = 8  # upstream connections kept per worker

    @property
    def origin(self) -> str:
        """The upstream origin requests go to (their path is appended as received)."""
        return self.upstream.rstrip("/").removesuffix("/api/v1")

    @property
    def serving(self) -> Settings:
        """The settings the shared serving layer and the control API's guard read."""
        return Settings(
            state=self.state, admin_token=self.admin_token, log_level=self.log_level, control=True
        )


def create_proxy_app(settings: ProxySettings) -> Flask:
    """Build the proxy's WSGI app (one per process; the budget's count starts at zero)."""
    app = Flask("mockserver.proxy")
    app.config["ITSOCR_SETTINGS"] = settings.serving
    proxy = Proxy(
        Upstream(settings.origin, settings.timeout, settings.connections),
        Store(settings.state),
        Recorder(settings.record) if settings.record is not None else None,
        settings.budget,
    )
    proxy.reset_budget()
    app.extensions[PROXY_KEY] = proxy
    app.config["ITSOCR_PROXY_SETTINGS"] = settings
    app.register_blueprint(forwarding)
    app.register_blueprint(control)
    app.before_request(_guard_control)
    app.register_error_handler(ProxyError, _proxy_error)
    app.register_error_handler(ClientGone, _client_gone)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
    return app


def _guard_control() -> Response | None:
    # The mock's rules for who may use /_mock (control_access.py); /api/v1 is not guarded.
    if not is_control_path(request.path):
        return None
    return guard(request, current_app.config["ITSOCR_SETTINGS"])


def current_proxy() -> Proxy:
    """The proxy of the app handling the current request."""
    proxy: Proxy = current_app.extensions[PROXY_KEY]
    return proxy


# -- forwarding ---------------------------------------------------------------------------------

forwarding = Blueprint("forwarding", __name__)


@forwarding.route(
    "/api/v1/", defaults={"rest": ""}, methods=METHODS, provide_automatic_options=False
)
@forwarding.route("/api/v1/<path:rest>", methods=METHODS, provide_automatic_options=False)
def forward(rest: str) -> BaseResponse:
    """Any request under `/api/v1/`: the upstream's answer, streamed through."""
    environ = request.environ
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    target = raw if raw else request.full_path.rstrip("?")
    chunked = "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    length = request.content_length
    incoming = Incoming(
        method=request.method,
        path=request.path,
        target=target,
        headers=list(request.headers.items()),
        body=request.stream if length or chunked else None,
        length=None if chunked else length,
    )
    relay = current_proxy().forward(incoming)
    return _Relayed(relay, status=relay.status, headers=relay.headers, direct_passthrough=True)


class _Relayed(BaseResponse):
    """A response with exactly the upstream's headers: no Content-Type of its own added."""

    default_mimetype = None


# -- the control API: health, journal, reset ----------------------------------------------------

control = Blueprint("proxy_control", __name__, url_prefix=CONTROL_PREFIX)


@control.get("/health")
def health() -> Response:
    """That this is an itsocr-mock proxy, where it forwards to, and its budget."""
    settings: ProxySettings = current_app.config["ITSOCR_PROXY_SETTINGS"]
    proxy = current_proxy()
    return json_response(
        {
            "status": "ok",
            "version": __version__,
            "mode": "proxy",
            # No accounts, clock or faults to drive: the contract suite treats it as a live target.
            "control": False,
            "upstream": settings.origin,
            "state": settings.state,
            "record": str(settings.record) if settings.record is not None else None,
            "budget": {"limit": settings.budget, "forwarded": proxy.forwarded()},
        }
    )


@control.get("/requests")
def list_requests() -> Response:
    """The requests forwarded, oldest first, each with its `violations`; ``?limit=``."""
    limit = request.args.get("limit", type=int)
    if limit is not None and limit < 1:
        return json_response({"error": "limit must be a whole number, at least 1"}, 400)
    entries = current_proxy().store.journal(limit=limit)
    return json_response([entry_json(entry) for entry in entries])


@control.delete("/requests")
def clear_requests() -> Response:
    """Empty the journal."""
    current_proxy().store.clear_journal()
    return Response(status=204)


@control.post("/reset")
def reset() -> Response:
    """A proxy's only state is its journal: empty it (the budget's count stays)."""
    current_proxy().store.clear_journal()
    return Response(status=204)


# -- errors ---------------------------------------------------------------------------------------


def _proxy_error(failure: ProxyError) -> Response:
    return json_response(failure.to_json(), failure.status)


def _client_gone(_: ClientGone) -> Response:
    # The client stopped sending its body: nobody is left to answer. Close its connection.
    sock = client_socket(request.environ)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
    return Response(status=400)


def _http_error(failure: HTTPException) -> BaseResponse:
    if request.path.startswith(CONTROL_PREFIX):
        what = f"{request.method} {request.path}"
        error = (
            f"a proxy's control API has no {what}; it offers health, requests and reset"
            if failure.code in (404, 405)
            else f"{what}: {failure.description}"
        )
        return json_response({"error": error}, failure.code or 500)
    response = failure.get_response()
    response.set_data(f"{failure.code} {failure.name}: the proxy forwards /api/v1/ only")
    response.mimetype = "text/plain"
    return response


def _unexpected(failure: Exception) -> Response:
    log.exception("unexpected error handling %s %s", request.method, request.path)
    error = ProxyError(f"internal error: {failure!r}")
    return json_response(error.to_json(), 500)
