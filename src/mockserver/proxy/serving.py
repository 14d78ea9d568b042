"""Serving the proxy on the mock's serving layer (gunicorn, `mockserver.serving.MockServer`)."""

from __future__ import annotations

import sys
from collections.abc import Callable

from mockserver.proxy.app import ProxySettings, create_proxy_app
from mockserver.proxy.forwarding import forwarded
from mockserver.serving import MockServer
from mockserver.store.sqlite import Store
from mockserver.turns import WsgiApp

BANNER = "itsOCR mock proxy listening on"


def proxy_banner(base_url: str, settings: ProxySettings) -> str:
    """The start-up banner: where the proxy listens, where it forwards, what it records."""
    lines = [
        f"{BANNER} {base_url}",
        f"  forwarding {base_url}/api/v1/ to {settings.origin}/api/v1/",
        f"  state: {settings.state}",
        f"  recording fixtures in: {settings.record}" if settings.record else "  not recording",
    ]
    if settings.budget is not None:
        lines.append(f"  budget: {settings.budget} requests that can consume quota")
    lines.append(
        f"  control API: {base_url}/_mock (health, requests, reset)"
        + (" (admin token required)" if settings.admin_token else "")
    )
    return "\n".join(lines)


class ProxyServer(MockServer):
    """gunicorn running the proxy's app, with the mock's worker settings (threads per worker,
    connections shared by load); no turns: a proxy waits on the network, it computes nothing."""

    def __init__(
        self,
        settings: ProxySettings,
        host: str,
        port: int,
        workers: int,
        on_ready: Callable[[str], None] | None = None,
    ) -> None:
        self.proxy_settings = settings
        super().__init__(settings.serving, host, port, workers, on_ready)

    def load(self) -> WsgiApp:
        """gunicorn's hook: the proxy's app, built once in the master before the fork."""
        if self.application is None:
            self.application = create_proxy_app(self.proxy_settings)
            # Connections must not cross fork(): each worker opens its own.
            self.application.extensions["itsocr_mock_proxy"].store.close()
        return self.application

    def _ready(self, base_url: str) -> None:
        print(proxy_banner(base_url, self.proxy_settings), file=sys.stderr, flush=True)
        if self.on_ready:
            self.on_ready(base_url)


def forwarded_count(settings: ProxySettings) -> int:
    """How many requests that can consume quota the proxy on `settings` forwarded."""
    store = Store(settings.state)
    try:
        return forwarded(store)
    finally:
        store.close()
