"""`itsocr-mock proxy`: forwarding (streamed, unchanged), validation of every upstream answer
with the kit's one validator, recording fixtures a fresh `serve` replays, the budget, and the
502s of an upstream that is unreachable, silent or drops the connection -- all over real HTTP."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from pytest_httpserver import HTTPServer
from werkzeug import Response

from mockserver.backend import DEMO_ACCOUNTS
from mockserver.contract import cors_headers
from mockserver.proxy.app import ProxySettings, create_proxy_app
from mockserver.testing import InProcessServer, ServedApp

FREE, PRO, ENTERPRISE = DEMO_ACCOUNTS
SECRET_HEADER = ("X-Client-Secret", "do-not-write-me-anywhere-42")
OK_BODY = {
    "success": True,
    "id": "550e8400-e29b-41d4-a716-446655440000",
    "text": "Extracted text",
    "processingTimeMs": 12,
    "fileName": "scan.png",
    "fileSize": 3,
    "mimeType": "image/png",
}
JSON_HEADERS = {**cors_headers(), "Content-Type": "application/json"}


def auth(token: str = FREE.token) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", SECRET_HEADER[0]: SECRET_HEADER[1]}


class InProcessProxy(ServedApp):
    """The proxy's app on `settings`, served from a thread of the test process."""

    def __init__(self, settings: ProxySettings) -> None:
        self.settings = settings
        app = create_proxy_app(settings)
        self.proxy = app.extensions["itsocr_mock_proxy"]
        super().__init__(app, name="itsocr-mock-proxy", close=self.proxy.store.close)

    def journal(self) -> list[dict[str, Any]]:
        response = requests.get(self.url + "/_mock/requests", timeout=10)
        assert response.status_code == 200
        entries: list[dict[str, Any]] = response.json()
        return entries


@pytest.fixture
def start_proxy(tmp_path: Path) -> Iterator[Callable[..., InProcessProxy]]:
    started: list[InProcessProxy] = []

    def start(upstream: str, **options: Any) -> InProcessProxy:
        state = str(tmp_path / f"proxy-{len(started)}.sqlite3")
        proxy = InProcessProxy(ProxySettings(state=state, upstream=upstream, **options)).start()
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        proxy.stop()


def post(url: str, image: bytes, *, token: str = FREE.token, prompt: str | None = None) -> Any:
    data = {"prompt": prompt} if prompt is not None else None
    files = {"file": ("scan.png", image, "image/png")}
    return requests.post(
        url + "/api/v1/ocr", headers=auth(token), files=files, data=data, timeout=60
    )


def verdicts(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "itsocr_mock.proxy"]


# -- forwarding and validation, the mock as upstream ---------------------------------------------


def test_answers_pass_unchanged_and_keep_the_contract(
    start_proxy: Callable[..., InProcessProxy],
    mock_server: InProcessServer,
    make_image: Callable[..., bytes],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="itsocr_mock.proxy")
    proxy = start_proxy(mock_server.url)
    image = make_image()
    replies = [
        post(proxy.url, image),
        requests.post(proxy.url + "/api/v1/ocr", timeout=10),
        requests.options(proxy.url + "/api/v1/ocr", timeout=10),
        requests.get(proxy.url + "/api/v1/ocr", timeout=10),
    ]
    direct = [
        post(mock_server.url, image),
        requests.post(mock_server.url + "/api/v1/ocr", timeout=10),
        requests.options(mock_server.url + "/api/v1/ocr", timeout=10),
        requests.get(mock_server.url + "/api/v1/ocr", timeout=10),
    ]
    for through, straight in zip(replies, direct, strict=True):
        assert through.status_code == straight.status_code
        assert _comparable(through.content) == _comparable(straight.content)
        for name in ("Content-Type", *cors_headers(), "Allow", "Access-Control-Max-Age"):
            assert through.headers.get(name) == straight.headers.get(name), name
    journal = proxy.journal()
    assert [(e["method"], e["status"], e["violations"]) for e in journal] == [
        ("POST", 200, []),
        ("POST", 401, []),
        ("OPTIONS", 204, []),
        ("GET", 405, []),
    ]
    assert journal[0]["tokenPrefix"] == FREE.token[:12]
    assert journal[0]["fileName"] == "scan.png"
    assert journal[1]["error"] == "Missing Authorization header"
    lines = verdicts(caplog)
    assert len(lines) == 4
    assert all(line.endswith("contract=ok") for line in lines), lines


def _comparable(body: bytes) -> Any:
    # A 200's id and processing time differ per request; everything else must be equal.
    try:
        loaded = json.loads(body)
    except ValueError:
        return body
    if isinstance(loaded, dict):
        loaded.pop("id", None)
        loaded.pop("processingTimeMs", None)
    return loaded


# -- an upstream that breaks the contract ----------------------------------------------------------


BROKEN = [
    pytest.param(
        200,
        JSON_HEADERS,
        {"ok": True, "text": "x"},
        "the body does not match the schema",
        id="wrong JSON shape",
    ),
    pytest.param(
        200,
        {**cors_headers(), "Content-Type": "text/html"},
        "<h1>OK</h1>",
        "Content-Type is 'text/html', expected application/json",
        id="text/html success",
    ),
    pytest.param(
        400,
        {"Content-Type": "application/json"},
        {"success": False, "error": "Missing required field: file"},
        "required header Access-Control-Allow-Origin is missing",
        id="no CORS headers",
    ),
    pytest.param(
        401,
        JSON_HEADERS,
        {"success": False, "error": "Unauthorized"},
        "error 'Unauthorized' is not a message openapi.yaml documents for 401",
        id="wrong message",
    ),
    pytest.param(
        422,
        JSON_HEADERS,
        {"success": False, "error": "x"},
        "status 422 is not documented",
        id="undocumented status",
    ),
]


@pytest.mark.parametrize(("status", "headers", "body", "violation"), BROKEN)
def test_each_way_of_breaking_the_contract_shows_in_the_journal_and_the_log(
    start_proxy: Callable[..., InProcessProxy],
    httpserver: HTTPServer,
    make_image: Callable[..., bytes],
    caplog: pytest.LogCaptureFixture,
    status: int,
    headers: dict[str, str],
    body: Any,
    violation: str,
) -> None:
    caplog.set_level(logging.INFO, logger="itsocr_mock.proxy")
    text = body if isinstance(body, str) else json.dumps(body)
    httpserver.expect_request("/api/v1/ocr", method="POST").respond_with_response(
        Response(text, status=status, headers=headers)
    )
    proxy = start_proxy(httpserver.url_for("/"))
    reply = post(proxy.url, make_image())
    assert (reply.status_code, reply.text) == (status, text)  # passed on unchanged
    assert reply.headers.get("Content-Type") == headers.get("Content-Type")
    [entry] = proxy.journal()
    assert entry["violations"], entry
    assert violation in entry["violations"][0]
    [line] = verdicts(caplog)
    assert line.endswith(f"contract=violated: {entry['violations'][0]}")


# -- no answer from the upstream: 502, saying which -----------------------------------------------


@pytest.fixture
def silent_upstream() -> Iterator[tuple[str, list[socket.socket]]]:
    """An upstream that accepts connections and never answers (read what is sent, say nothing)."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            accepted.append(connection)

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}", accepted
    listener.close()
    for connection in accepted:
        connection.close()


def test_a_silent_upstream_is_a_502_within_the_timeout(
    start_proxy: Callable[..., InProcessProxy],
    silent_upstream: tuple[str, list[socket.socket]],
    make_image: Callable[..., bytes],
) -> None:
    proxy = start_proxy(silent_upstream[0], timeout=1.0)
    started = time.monotonic()
    reply = post(proxy.url, make_image())
    assert time.monotonic() - started < 10  # 1 s, with room for a loaded machine
    assert reply.status_code == 502
    assert reply.json() == {
        "success": False,
        "error": f"itsocr-mock proxy: the upstream {silent_upstream[0]} did not answer within 1 s",
    }
    [entry] = proxy.journal()
    assert (entry["status"], entry["violations"]) == (502, [])


def test_an_upstream_that_drops_the_connection_is_a_502(
    start_proxy: Callable[..., InProcessProxy],
    silent_upstream: tuple[str, list[socket.socket]],
    make_image: Callable[..., bytes],
) -> None:
    url, accepted = silent_upstream

    def drop() -> None:  # read the request, then close without a word
        deadline = time.monotonic() + 10
        while not accepted and time.monotonic() < deadline:
            time.sleep(0.01)
        if accepted:
            accepted[0].recv(65536)
            accepted[0].close()

    threading.Thread(target=drop, daemon=True).start()
    proxy = start_proxy(url, timeout=30.0)
    started = time.monotonic()
    reply = post(proxy.url, make_image())
    assert time.monotonic() - started < 10
    assert reply.status_code == 502
    assert reply.json()["error"] == (
        f"itsocr-mock proxy: the upstream {url} closed the connection without answering"
    )


def test_an_unreachable_upstream_is_a_502(
    start_proxy: Callable[..., InProcessProxy], make_image: Callable[..., bytes]
) -> None:
    with socket.socket() as reserved:  # a port nothing listens on
        reserved.bind(("127.0.0.1", 0))
        port = reserved.getsockname()[1]
    proxy = start_proxy(f"http://127.0.0.1:{port}", timeout=5.0)
    reply = post(proxy.url, make_image())
    assert reply.status_code == 502
    error = reply.json()["error"]
    assert error.startswith(f"itsocr-mock proxy: cannot reach the upstream http://127.0.0.1:{port}")


# -- the budget --------------------------------------------------------------------------------


def test_the_budget_forwards_at_most_n_requests_that_can_consume_quota(
    start_proxy: Callable[..., InProcessProxy],
    httpserver: HTTPServer,
    make_image: Callable[..., bytes],
) -> None:
    httpserver.expect_request("/api/v1/ocr").respond_with_json(OK_BODY, headers=cors_headers())
    proxy = start_proxy(httpserver.url_for("/"), budget=2)
    image = make_image()
    assert [post(proxy.url, image).status_code for _ in range(2)] == [200, 200]
    refused = post(proxy.url, image)
    assert refused.status_code == 503
    assert refused.json() == {
        "success": False,
        "error": "itsocr-mock proxy: the budget of 2 requests that can consume quota (--budget) "
        "is spent; nothing was sent upstream",
    }
    # No token, or not a POST: nothing that could consume quota, still forwarded.
    assert requests.post(proxy.url + "/api/v1/ocr", timeout=10).status_code == 200
    assert len(httpserver.log) == 3
    health = requests.get(proxy.url + "/_mock/health", timeout=10).json()
    assert health["budget"] == {"limit": 2, "forwarded": 2}
    assert [e["status"] for e in proxy.journal()] == [200, 200, 503, 200]


# -- the control API --------------------------------------------------------------------------


def test_the_control_api_offers_health_requests_and_reset_only(
    start_proxy: Callable[..., InProcessProxy], httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/api/v1/ocr").respond_with_json(OK_BODY, headers=cors_headers())
    proxy = start_proxy(httpserver.url_for("/"))
    health = requests.get(proxy.url + "/_mock/health", timeout=10).json()
    assert (health["status"], health["mode"], health["control"]) == ("ok", "proxy", False)
    assert health["upstream"] == httpserver.url_for("/").rstrip("/")
    requests.post(proxy.url + "/api/v1/ocr", timeout=10)
    assert len(proxy.journal()) == 1
    assert requests.post(proxy.url + "/_mock/reset", timeout=10).status_code == 204
    assert proxy.journal() == []
    requests.post(proxy.url + "/api/v1/ocr", timeout=10)
    assert requests.delete(proxy.url + "/_mock/requests", timeout=10).status_code == 204
    assert proxy.journal() == []
    for path in ("/_mock/accounts", "/_mock/clock", "/_mock/faults"):
        missing = requests.get(proxy.url + path, timeout=10)
        assert missing.status_code == 404
        assert "offers health, requests and reset" in missing.json()["error"]


def test_a_state_file_from_before_the_proxy_gains_the_violations_column(tmp_path: Path) -> None:
    import contextlib
    import sqlite3

    from mockserver.store import JournalEntry, Store

    path = tmp_path / "old.sqlite3"
    with contextlib.closing(sqlite3.connect(path)) as old:  # a state of schema 1
        old.executescript((Path(__file__).parent / "data" / "state-v1.sql").read_text("utf-8"))
    store = Store(path)
    try:
        store.record(JournalEntry(time="t", method="POST", path="/api/v1/ocr", status=200))
        store.record(JournalEntry(time="t", method="POST", path="/", status=401, violations=("x",)))
        # The old state's entry, then the two new ones.
        assert [e.violations for e in store.journal()] == [None, None, ("x",)]
    finally:
        store.close()
