"""Serving a broken implementation: any WSGI app on a free loopback port, from a thread.

The same pattern as `mockserver.testing.InProcessServer`, for an app that is not the faithful
mock's (a backend with one rule changed, or the mock wrapped in a middleware).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server


class QuietRequestHandler(WSGIRequestHandler):
    """Werkzeug's handler without its access log: a suite run sends hundreds of requests."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


class Served:
    """`app` served by werkzeug's threaded server on ``127.0.0.1:<free port>`` until `stop`."""

    host = "127.0.0.1"

    def __init__(
        self, app: Any, *, name: str = "itsocr-broken", close: Callable[[], None] | None = None
    ) -> None:
        self.app = app
        self.name = name
        self._close = close  # releases what the app holds (its store), once stopped
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Served:
        """Bind a free port and serve in a daemon thread."""
        self._server = make_server(
            self.host, 0, self.app, threaded=True, request_handler=QuietRequestHandler
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=self.name, daemon=True
        )
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        """The origin, e.g. ``http://127.0.0.1:49152``."""
        assert self._server is not None, "server not started"
        return f"http://{self.host}:{self._server.server_port}"

    @property
    def base_url(self) -> str:
        """The API base URL, as a user passes it to ``--base-url``."""
        return self.url + "/api/v1"

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._close is not None:
            self._close()
            self._close = None

    def __enter__(self) -> Served:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()
