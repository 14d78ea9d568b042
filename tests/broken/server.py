"""Serving a broken implementation: any WSGI app on a free loopback port, from a thread.

`mockserver.testing.ServedApp`, quiet: a suite run sends hundreds of requests, and the app is
not the faithful mock's (a backend with one rule changed, or the mock wrapped in a middleware).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mockserver.testing import ServedApp


class Served(ServedApp):
    """`app` served on ``127.0.0.1:<free port>`` until `stop`, without an access log."""

    def __init__(
        self, app: Any, *, name: str = "itsocr-broken", close: Callable[[], None] | None = None
    ) -> None:
        super().__init__(app, name=name, close=close, access_log=False)
