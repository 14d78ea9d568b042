"""Serving the app on gunicorn, the production WSGI server (never Werkzeug's dev server)."""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter

from mockserver.api import OCR_PATH
from mockserver.app import create_app
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
    comparison). With several workers, each listens on a socket of its own (SO_REUSEPORT): the
    kernel then spreads connections evenly, where workers racing to accept on one shared socket
    let one of them take every connection of a burst -- half the throughput, as measured with
    16 keep-alive connections on two workers. Reserve the port first (`reserve_port`)."""
    return {
        "reuse_port": workers > 1 and hasattr(socket, "SO_REUSEPORT"),
        "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "workers": workers,
        # gthread, with a thread per request rather than per connection (worker.py).
        "worker_class": "mockserver.worker.HeadFirstWorker",
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


def reserve_port(host: str, port: int) -> socket.socket:
    """Hold `host:port` (port 0: a free one) for workers that each listen on it.

    The socket is bound, never listening: it takes no connection, only the port. Raises
    OSError when the address is in use -- by a program of any kind, including another mock
    with workers of its own, which SO_REUSEPORT alone would let share it.
    """
    family, kind, _, _, address = socket.getaddrinfo(
        host.strip("[]"), port, type=socket.SOCK_STREAM
    )[0]
    with socket.socket(family, kind) as probe:  # without SO_REUSEPORT: fails if taken at all
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(address)
        address = probe.getsockname()
    held = socket.socket(family, kind)
    held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    held.bind(address)
    return held


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
        options = gunicorn_options(host, port, workers, settings.log_level)
        self.reserved: socket.socket | None = None
        if options["reuse_port"]:  # workers listen on their own sockets, on one port
            self.reserved = reserve_port(host, port)
            port = self.reserved.getsockname()[1]
            options = gunicorn_options(host, port, workers, settings.log_level)
        self.base_url = f"http://{f'[{host}]' if ':' in host else host}:{port}"
        self.options: dict[str, Any] = {
            **options,
            "when_ready": self._when_ready,
            "post_worker_init": self._post_worker_init,
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
        if not server.LISTENERS:
            return  # the workers listen on their own sockets: the first one tells (below)
        host, port = server.LISTENERS[0].sock.getsockname()[:2]
        host = f"[{host}]" if ":" in host else host
        self._ready(f"http://{host}:{port}")

    def _post_worker_init(self, worker: Any) -> None:
        # With a socket per worker, the server takes connections once the first worker listens.
        if self.reserved is not None and worker.age == 1:
            self._ready(self.base_url)

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
