"""Serving the app on gunicorn, the production WSGI server (never Werkzeug's dev server)."""

from __future__ import annotations

import ipaddress
import logging
import sys
from collections.abc import Callable
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication

from mockserver.app import create_app
from mockserver.backend import DEMO_ACCOUNTS
from mockserver.settings import Settings

# Threads per worker: a client trickling its upload holds one thread, not the whole worker.
THREADS_PER_WORKER = 8
# Seconds a worker may stay silent before gunicorn replaces it (a stuck request).
WORKER_TIMEOUT = 60
# Seconds a client may take to send its request before the connection is cut.
CLIENT_TIMEOUT = 30


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def banner(base_url: str, settings: Settings) -> str:
    """The start-up banner: where the mock listens, its demo tokens and its state."""
    lines = [
        f"itsOCR mock listening on {base_url}",
        f"  OCR endpoint: {base_url}/api/v1/ocr",
        f"  state: {settings.state}",
        "  demo tokens:",
        *(f"    {demo.plan:<10} {demo.token}" for demo in DEMO_ACCOUNTS),
    ]
    if settings.control:
        lines.append(f"  control API: {base_url}/_mock" + (" (admin token required)" if settings.admin_token else ""))
    lines.append(f'  try: curl -H "Authorization: Bearer {DEMO_ACCOUNTS[0].token}" -F "file=@image.png;type=image/png" {base_url}/api/v1/ocr')
    return "\n".join(lines)


class MockServer(BaseApplication):  # type: ignore[misc]
    """gunicorn running `create_app(settings)` with the kit's choice of worker settings."""

    def __init__(self, settings: Settings, host: str, port: int, workers: int,
                 on_ready: Callable[[str], None] | None = None) -> None:
        self.settings = settings
        self.options: dict[str, Any] = {
            "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
            "workers": workers,
            "worker_class": "gthread",
            "threads": THREADS_PER_WORKER,
            "timeout": WORKER_TIMEOUT,
            "graceful_timeout": 5,
            "keepalive": 5,
            "preload_app": True,
            "accesslog": None,
            "loglevel": settings.log_level.lower(),
            "when_ready": self._when_ready,
        }
        self.on_ready = on_ready
        self.application: Flask | None = None
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        if self.application is None:
            self.application = create_app(self.settings)
            # Connections must not cross fork(): each worker opens its own.
            self.application.extensions["itsocr_mock"].store.close()
        return self.application

    def _when_ready(self, server: Any) -> None:
        host, port = server.LISTENERS[0].sock.getsockname()[:2]
        host = f"[{host}]" if ":" in host else host
        base_url = f"http://{host}:{port}"
        print(banner(base_url, self.settings), file=sys.stderr, flush=True)
        if self.on_ready:
            self.on_ready(base_url)


def configure_logging(level: str) -> None:
    """Log lines to stderr: the access log and the hints about client mistakes."""
    logging.basicConfig(
        level=level.upper(), stream=sys.stderr, format="%(asctime)s %(name)s %(message)s"
    )
