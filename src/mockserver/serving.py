"""Serving the app on gunicorn, the production WSGI server (never Werkzeug's dev server)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter

from mockserver.api import OCR_PATH
from mockserver.app import create_app
from mockserver.balancing import balancing_hooks
from mockserver.logs import stop_logging
from mockserver.settings import Settings
from mockserver.store import describe_state
from mockserver.tokens import DEMO_ACCOUNTS
from mockserver.turns import WsgiApp, in_turns
from mockserver.worker import HeadFirstWorker

# Threads per worker: a request gets one once its head has arrived (worker.py); a client
# trickling a large upload holds it until its body is in (within Settings.client_timeout, see
# connection.py). The threads wait;
# one request at a time computes (turns.py), so more threads cost no speed.
THREADS_PER_WORKER = 8
# Seconds a worker may stay silent before gunicorn replaces it (a stuck request).
WORKER_TIMEOUT = 60


def banner(base_url: str, settings: Settings) -> str:
    """The start-up banner: where the mock listens, its demo tokens and its state."""
    lines = [
        f"itsOCR mock listening on {base_url}",
        f"  OCR endpoint: {base_url}/api/v1/ocr",
        f"  state: {describe_state(settings.state)}",
        "  demo tokens:",
        *(f"    {demo.plan:<10} {demo.token}" for demo in DEMO_ACCOUNTS),
    ]
    if settings.control:
        lines.append(
            f"  control API: {base_url}/_mock"
            + (" (admin token required)" if settings.admin_token else "")
        )
        lines.append(f"  web page: {base_url}/_mock/ui/")
    lines.append(
        f'  try: curl -H "Authorization: Bearer {DEMO_ACCOUNTS[0].token}" '
        f'-F "file=@image.png;type=image/png" {base_url}/api/v1/ocr'
    )
    return "\n".join(lines)


def gunicorn_options(host: str, port: int, workers: int, log_level: str) -> dict[str, Any]:
    """The kit's gunicorn settings (also used by the benchmark's floor, for a like-for-like
    comparison). The workers share one listening socket and take its connections by load
    (balancing.py): a socket per worker (SO_REUSEPORT) let the kernel's address hash put 11
    of 16 keep-alive connections on one worker of two, and workers racing to accept on a
    shared socket with nothing more can let one take every connection of a burst."""
    return {
        "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "workers": workers,
        # gthread, with a thread per request rather than per connection (worker.py), taking
        # connections by load (balancing.py, whose master hooks give each worker its slot).
        "worker_class": "mockserver.worker.HeadFirstWorker",
        **balancing_hooks(workers),
        "threads": THREADS_PER_WORKER,
        "timeout": WORKER_TIMEOUT,
        "graceful_timeout": 5,
        "keepalive": 5,
        "preload_app": True,
        # No proxy is trusted, loopback included: a client's X-Forwarded-* or SCRIPT_NAME
        # header must not change the scheme or the paths the mock sees.
        "forwarded_allow_ips": "",
        "accesslog": None,
        "loglevel": log_level.lower(),
    }


class MockServer(BaseApplication):  # type: ignore[misc]
    """gunicorn running `create_app(settings)` with the kit's choice of worker settings."""

    def __init__(
        self,
        settings: Settings,
        host: str,
        port: int,
        workers: int,
        on_ready: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        HeadFirstWorker.body_timeout = settings.client_timeout  # inherited by the workers
        self.options: dict[str, Any] = {
            **gunicorn_options(host, port, workers, settings.log_level),
            "when_ready": self._when_ready,
            # A worker's queued log lines are written before it exits (logs.py).
            "worker_exit": lambda _arbiter, _worker: stop_logging(),
        }
        self.on_ready = on_ready
        self.application: Flask | None = None
        self.interrupted = False  # set when SIGINT (Ctrl-C) stopped the server
        super().__init__()

    def run(self) -> None:
        """gunicorn's master loop, until a signal stops it (SIGINT: `interrupted` is set)."""
        try:
            _Arbiter(self).run()
        except RuntimeError as failure:  # as gunicorn's own run() reports its start-up errors
            print(f"itsocr-mock: error: {failure}", file=sys.stderr, flush=True)
            sys.exit(1)

    def load_config(self) -> None:
        """gunicorn's hook: the kit's settings (see `gunicorn_options`)."""
        for key, value in self.options.items():
            self.cfg.set(key, value)
        # gunicorn >= 25.1 opens a control socket at a fixed per-user path: two mocks (parallel
        # test runs) would steal it from each other, and `gunicornc` could steer the wrong one.
        if "control_socket_disable" in self.cfg.settings:
            self.cfg.set("control_socket_disable", True)

    def load(self) -> WsgiApp:
        """gunicorn's hook: the app, built once in the master (preloaded) before the fork."""
        if self.application is None:
            self.application = create_app(self.settings)
            # Connections must not cross fork(): each worker opens its own. Not so for an
            # in-memory state: it lives only in its connection, which the one worker inherits.
            if not self.settings.in_memory:
                self.application.extensions["itsocr_mock"].store.close()
        # Threads wait for clients; the OCR requests compute one at a time (turns.py).
        return in_turns(self.application, paths={OCR_PATH})

    def _when_ready(self, server: Any) -> None:
        # The socket listens (port 0: the one the system chose): connections queue until a
        # worker takes them.
        host, port = server.LISTENERS[0].sock.getsockname()[:2]
        host = f"[{host}]" if ":" in host else host
        self._ready(f"http://{host}:{port}")

    def _ready(self, base_url: str) -> None:
        print(banner(base_url, self.settings), file=sys.stderr, flush=True)
        if self.on_ready:
            self.on_ready(base_url)


class _Arbiter(Arbiter):  # type: ignore[misc]
    """gunicorn's master, telling its application when SIGINT stopped it: gunicorn exits 0
    after any stop signal, but a shell expects 130 after Ctrl-C."""

    def handle_int(self) -> None:
        self.app.interrupted = True
        super().handle_int()
