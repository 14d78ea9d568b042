"""The web page's server side, over plain HTTP: what is served, to whom, and what is not in it.

What the page does in a browser is tested in test_ui_browser.py (Playwright, slow).
"""

from __future__ import annotations

import re
from importlib import resources

import pytest
import requests

from mockserver.backend import DEMO_ACCOUNTS
from mockserver.serving import banner
from mockserver.settings import Settings
from mockserver.testing import InProcessServer
from mockserver.ui import CONTENT_SECURITY_POLICY

PAGES = ("", "accounts", "faults", "try")
ADMIN_TOKEN = "s3cret-admin-token"


@pytest.fixture(scope="module")
def guarded() -> InProcessServer:
    with InProcessServer(Settings(state=":memory:", admin_token=ADMIN_TOKEN)) as server:
        yield server


@pytest.mark.parametrize("page", PAGES)
def test_each_page_is_html_locked_down_and_holds_no_token(
    mock_server: InProcessServer, page: str
) -> None:
    response = requests.get(f"{mock_server.url}/_mock/ui/{page}", timeout=10)

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    # No secret and no state inline: the demo tokens come from the control API at run time.
    for demo in DEMO_ACCOUNTS:
        assert demo.token not in response.text
        assert demo.token[:12] not in response.text
    assert "<script>" not in response.text  # no inline script (the CSP would block it anyway)
    assert "style=" not in response.text


def test_every_asset_the_pages_use_is_served_from_the_package(mock_server: InProcessServer) -> None:
    assets: set[str] = set()
    for page in PAGES:
        html = requests.get(f"{mock_server.url}/_mock/ui/{page}", timeout=10).text
        assets.update(re.findall(r'(?:src|href)="(/_mock/ui/static/[^"?]+)', html))
    static = resources.files("mockserver.ui") / "static"
    for script in (p for p in static.iterdir() if p.name.endswith(".js")):  # module imports
        assets.update(
            f"/_mock/ui/static/{name}"
            for name in re.findall(r'from "\./([\w.]+)"', script.read_text(encoding="utf-8"))
        )
    assert {"/_mock/ui/static/ui.css", "/_mock/ui/static/common.js"} <= assets
    for asset in sorted(assets):
        response = requests.get(mock_server.url + asset, timeout=10)
        assert response.status_code == 200, asset
        expected = "text/css" if asset.endswith(".css") else "javascript"
        if asset.endswith(".svg"):
            expected = "image/svg+xml"
        assert expected in response.headers["Content-Type"], asset


def test_nothing_is_loaded_from_another_origin() -> None:
    """No CDN: every file of the page ships in the wheel, and none names another host."""
    root = resources.files("mockserver.ui")
    files = [*(root / "templates").iterdir(), *(root / "static").iterdir()]
    assert {f.name for f in files} >= {"base.html", "requests.html", "ui.css", "requests.js"}
    for file in files:
        text = file.read_text(encoding="utf-8")
        assert not re.search(r"(?:src|href|url)\s*[=(]\s*[\"']?(?:https?:)?//", text), file.name
        assert "import(" not in text, file.name


def test_the_page_loads_without_the_admin_token_but_its_data_does_not(
    guarded: InProcessServer,
) -> None:
    page = requests.get(f"{guarded.url}/_mock/ui/", timeout=10)
    assert page.status_code == 200
    assert ADMIN_TOKEN not in page.text

    data = requests.get(f"{guarded.url}/_mock/requests", timeout=10)
    assert data.status_code == 401
    given = requests.get(
        f"{guarded.url}/_mock/requests",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=10,
    )
    assert given.status_code == 200


def test_no_page_without_the_control_api() -> None:
    with InProcessServer(Settings(state=":memory:", control=False)) as server:
        for page in PAGES:
            response = requests.get(f"{server.url}/_mock/ui/{page}", timeout=10)
            assert response.status_code == 404, page
        assert requests.get(f"{server.url}/_mock/ui/static/ui.css", timeout=10).status_code == 404


def test_the_banner_names_the_page_only_with_the_control_api() -> None:
    url = "http://127.0.0.1:8080"
    assert f"  web page: {url}/_mock/ui/" in banner(url, Settings(state=":memory:"))
    off = banner(url, Settings(state=":memory:", control=False))
    assert "/_mock/ui" not in off


def test_the_page_follows_the_control_apis_host_rule(
    mock_server: InProcessServer, guarded: InProcessServer
) -> None:
    """Without an admin token, only loopback names (no DNS rebinding); with one, any name:
    the page then shows nothing until it is given the token."""
    rebound = {"Host": "attacker.example"}
    refused = requests.get(f"{mock_server.url}/_mock/ui/", headers=rebound, timeout=10)
    assert refused.status_code == 403
    assert "loopback" in refused.json()["error"]
    assert requests.get(f"{guarded.url}/_mock/ui/", headers=rebound, timeout=10).status_code == 200
