"""pytest fixtures for testing itsOCR clients (entry point ``itsocr_mock``, loaded with the kit).

- ``itsocr_mock``: the itsOCR mock, reset to a fresh state before each test that asks for it.
  By default one mock per session runs in-process on a free loopback port; with
  ``--itsocr-mock-url URL`` (env ``ITSOCR_MOCK_URL``, ini ``itsocr_mock_url``) or the marker
  ``@pytest.mark.itsocr_mock_url(URL)`` the same object drives an already running mock over its
  control API instead (its state is reset before each test, so do not point it at a mock whose
  state you want to keep).
- ``itsocr_httpserver``: a pytest-httpserver instance answering ``/api/v1/ocr`` with the
  examples of ``openapi.yaml``, for unit tests that need canned answers and nothing else:
  ``itsocr_httpserver.respond_next(429)``.
- ``assert_matches_contract(response)``: assert that a response is one the contract allows.

pytest loads this module into every session once the kit is installed, so it imports only
pytest and the standard library; the server, Flask and the control client are imported inside
the fixtures, when a test asks for them.
"""

from __future__ import annotations

import mimetypes
import os
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pytest_httpserver import HTTPServer
    from werkzeug import Request, Response

    from mockserver.client import MockControl
    from mockserver.testing import InProcessServer
    from mockserver.validation import assert_matches_contract as assert_matches_contract

__all__ = ["Account", "ItsocrHTTPServer", "ItsocrMock", "assert_matches_contract"]

URL_OPTION, URL_ENV, URL_INI = "--itsocr-mock-url", "ITSOCR_MOCK_URL", "itsocr_mock_url"
ADMIN_OPTION, ADMIN_ENV = "--itsocr-mock-admin-token", "ITSOCR_MOCK_ADMIN_TOKEN"
URL_MARKER = "itsocr_mock_url"


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--itsocr-mock-url`` and ``--itsocr-mock-admin-token`` (and their ini names)."""
    group = parser.getgroup("itsocr-mock", "itsOCR mock (the itsocr_mock fixture)")
    group.addoption(
        URL_OPTION,
        metavar="URL",
        help="run itsocr_mock against this already running mock (its origin, e.g. "
        f"http://127.0.0.1:8080) instead of one in-process; its state is reset before each "
        f"test [env {URL_ENV}]",
    )
    group.addoption(
        ADMIN_OPTION,
        metavar="TOKEN",
        help=f"the admin token of that mock's control API, if it requires one [env {ADMIN_ENV}]",
    )
    parser.addini(URL_INI, f"default of {URL_OPTION}", default=None)


def pytest_configure(config: pytest.Config) -> None:
    """Declare the marker, so that ``--strict-markers`` sessions accept it."""
    config.addinivalue_line(
        "markers",
        f"{URL_MARKER}(url, admin_token=None): run this test's itsocr_mock fixture against the "
        "already running mock at url",
    )


def pytest_report_header(config: pytest.Config) -> str | None:
    """Say so when tests will reset someone's running mock rather than an in-process one."""
    url = _configured_url(config)
    return f"itsocr-mock: {url} (reset before each test using itsocr_mock)" if url else None


def _configured_url(config: pytest.Config) -> str | None:
    # Command line > environment > ini, as pytest-base-url does.
    given = config.getoption(URL_OPTION) or os.environ.get(URL_ENV) or config.getini(URL_INI)
    return str(given).rstrip("/") if given else None


def __getattr__(name: str) -> Any:
    # `assert_matches_contract` is `mockserver.validation`'s, imported on first use: loading
    # the spec and jsonschema is not a cost every pytest session should pay.
    if name == "assert_matches_contract":
        from mockserver.validation import assert_matches_contract

        return assert_matches_contract
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# -- itsocr_mock -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Account:
    """An account created on the mock, with its one token (`token_id`: the token's id in the
    control API, e.g. for ``itsocr_mock.control.revoke_token(account.token_id)``)."""

    id: str
    plan: str
    token: str
    token_id: str


class ItsocrMock:
    """The mock a test runs against, and the one-liners to put it into a state.

    Everything goes through the mock's control API (`control`, a `MockControl`), so the same
    calls work against the in-process mock and against a running ``itsocr-mock serve``; only
    the in-process mock's reset calls `Backend.reset` directly (the same code path, no HTTP).
    """

    def __init__(
        self,
        url: str,
        control: MockControl,
        reset: Callable[[], None],
        demo_tokens: Mapping[str, str],
    ) -> None:
        self.url = url
        self.control = control
        self._reset = reset
        self._demo_tokens = dict(demo_tokens)

    def __repr__(self) -> str:
        return f"<ItsocrMock {self.base_url}>"

    @property
    def base_url(self) -> str:
        """The API base URL, e.g. ``http://127.0.0.1:49152/api/v1`` (the docs' base URL)."""
        return self.url + "/api/v1"

    @property
    def ocr_url(self) -> str:
        """The URL of ``POST /api/v1/ocr``."""
        return self.base_url + "/ocr"

    @property
    def demo_tokens(self) -> dict[str, str]:
        """The fixed token of each demo account, by plan: ``{"free": ..., "pro": ..., ...}``."""
        return dict(self._demo_tokens)

    def reset(self) -> None:
        """Back to a fresh state (done before each test already): demo accounts only."""
        self._reset()

    def new_account(self, plan: str = "free") -> Account:
        """A new account on `plan` (``free``, ``pro``, ``enterprise``) with a fresh token."""
        created = self.control.create_account(plan)
        return Account(created["id"], created["plan"], created["token"], created["tokenId"])

    def usage(self, account: Account | str) -> int:
        """Images the account used this month (in the mock's clock)."""
        return int(self.control.get_usage(_account_id(account))["imagesUsed"])

    def set_usage(self, account: Account | str, images_used: int) -> None:
        """Set the account's usage this month, e.g. to its quota to get 429 on the next call."""
        self.control.set_usage(_account_id(account), images_used)

    def set_clock(self, now: datetime | str | None) -> None:
        """Freeze the mock's clock at `now` (ISO-8601, or a datetime: a naive one is UTC);
        None: real time again. Months, usage periods and token expiry follow it."""
        if now is None:
            self.control.reset_clock()
        else:
            self.control.set_clock(now)

    def fail_next(
        self,
        status: int = 500,
        times: int = 1,
        delay_ms: int = 0,
        *,
        account: Account | str | None = None,
        error: str | None = None,
    ) -> None:
        """Make the next `times` OCR calls (of all accounts, or one) fail with `status`.

        They answer the live service's message for that status (or `error`) after `delay_ms`;
        failures never consume quota. ``status=200`` with a delay makes calls slow, not fail.
        """
        self.control.add_fault(
            None if status == 200 else status,  # the control API's "no failure, only a delay"
            error=error,
            delay_ms=delay_ms,
            times=times,
            account=_account_id(account) if account is not None else None,
        )

    def add_fixture(self, image: bytes | Path, text: str, prompt: str | None = None) -> None:
        """Make the mock answer `text` for this image (only with `prompt`, if given).

        The image must decode, as the OCR model needs; an undecodable one is refused here.
        """
        media_type = None
        if isinstance(image, Path):
            media_type = mimetypes.guess_type(image.name)[0]
        self.control.add_fixture(
            image, text, prompt=prompt, media_type=media_type or "application/octet-stream"
        )

    def requests(
        self, account: Account | str | None = None, status: int | None = None
    ) -> list[dict[str, Any]]:
        """The API requests the mock received, oldest first, as the control API's journal
        entries (``status``, ``fileName``, ``mimeType``, ``fileSize``, ``sha256``, ...)."""
        account_id = _account_id(account) if account is not None else None
        return self.control.requests(account=account_id, status=status)


def _account_id(account: Account | str) -> str:
    return account.id if isinstance(account, Account) else account


class _Mocks:
    """The session's mocks: the in-process one, started on first use, and running ones by URL."""

    def __init__(self, admin_token: str | None) -> None:
        self.admin_token = admin_token
        self._server: InProcessServer | None = None
        self._mocks: dict[tuple[str | None, str | None], ItsocrMock] = {}

    def local(self) -> ItsocrMock:
        """The in-process mock, reset; its reset is the backend's own, without HTTP."""
        if (None, None) not in self._mocks:
            from mockserver.settings import Settings
            from mockserver.testing import InProcessServer

            self._server = server = InProcessServer(Settings(state=":memory:")).start()
            self._mocks[None, None] = _connect(server.url, None, server.backend.reset)
        mock = self._mocks[None, None]
        mock.reset()
        return mock

    def remote(self, url: str, admin_token: str | None) -> ItsocrMock:
        """The running mock at `url`, reset over its control API."""
        token = admin_token or self.admin_token
        if (url, token) not in self._mocks:
            self._mocks[url, token] = _connect(url, token, None)
        mock = self._mocks[url, token]
        mock.reset()
        return mock

    def close(self) -> None:
        """Close the control clients and stop the in-process mock."""
        for mock in self._mocks.values():
            mock.control.close()
        self._mocks.clear()
        if self._server is not None:
            self._server.stop()
            self._server = None


def _connect(url: str, admin_token: str | None, reset: Callable[[], None] | None) -> ItsocrMock:
    """An ItsocrMock for the mock at `url`, once its health check answered (`reset`: None to
    reset over the control API)."""
    from mockserver.client import MockControl

    control = MockControl(url, admin_token=admin_token)
    try:
        health = control.health()
    except Exception as failure:  # any failure here means: no usable mock at that URL
        control.close()
        pytest.fail(
            f"itsocr_mock: no itsOCR mock with a control API answers at {url} ({failure}). "
            f"Start one with `itsocr-mock serve`, pass its admin token with {ADMIN_OPTION} if "
            f"it has one, or drop {URL_OPTION} to use an in-process mock.",
            pytrace=False,
        )
    demo_tokens = {demo["plan"]: demo["token"] for demo in health["demoAccounts"]}
    return ItsocrMock(url, control, reset or control.reset, demo_tokens)


@pytest.fixture(scope="session")
def itsocr_mock_session(pytestconfig: pytest.Config) -> Iterator[_Mocks]:
    """The session's mocks; use `itsocr_mock`, which picks one and resets it."""
    admin_token = pytestconfig.getoption(ADMIN_OPTION) or os.environ.get(ADMIN_ENV)
    mocks = _Mocks(admin_token)
    yield mocks
    mocks.close()


@pytest.fixture
def itsocr_mock(request: pytest.FixtureRequest, itsocr_mock_session: _Mocks) -> ItsocrMock:
    """The itsOCR mock, in a fresh state: demo accounts only, no usage, faults or journal."""
    marker = request.node.get_closest_marker(URL_MARKER)
    if marker is not None:
        url = marker.kwargs.get("url") or (marker.args[0] if marker.args else None)
        if not url:
            raise pytest.UsageError(f"@pytest.mark.{URL_MARKER} needs the mock's URL")
        return itsocr_mock_session.remote(str(url).rstrip("/"), marker.kwargs.get("admin_token"))
    url = _configured_url(request.config)
    if url:
        return itsocr_mock_session.remote(url, None)
    return itsocr_mock_session.local()


# -- itsocr_httpserver -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Example:
    name: str
    status: int
    body: Mapping[str, Any]


class ItsocrHTTPServer:
    """A pytest-httpserver serving ``/api/v1/ocr`` from the examples of ``openapi.yaml``.

    ``POST /api/v1/ocr`` answers the docs' 200 example unless told otherwise:
    ``respond_next(429)`` (the first example the spec lists for that status),
    ``respond_with_example("unknownToken")`` (an example by name), either with ``times=N``, or
    ``times=None`` for every call from then on. ``OPTIONS`` answers the CORS preflight and other
    methods 405, as the live service does. Everything else of the underlying
    ``pytest_httpserver.HTTPServer`` (``log``, ``expect_request``...) is reachable on this object.
    """

    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.examples = _spec_examples()
        self._lock = threading.Lock()
        self._queue: deque[_Example] = deque()
        self._default = self.examples["document"]
        path = "/api/v1/ocr"
        server.expect_request(path, method="POST").respond_with_handler(self._answer)
        server.expect_request(path, method="OPTIONS").respond_with_handler(_preflight)
        server.expect_request(path).respond_with_handler(_not_allowed)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.server, name)

    @property
    def url(self) -> str:
        """The origin, e.g. ``http://localhost:49152``."""
        return self.server.url_for("").rstrip("/")

    @property
    def base_url(self) -> str:
        """The API base URL to give the client under test."""
        return self.url + "/api/v1"

    def respond_next(self, status: int, *, times: int | None = 1) -> None:
        """Answer the next `times` OCR calls with the spec's first example for `status`."""
        found = next((ex for ex in self.examples.values() if ex.status == status), None)
        if found is None:
            known = sorted({ex.status for ex in self.examples.values()})
            raise ValueError(f"openapi.yaml has no example for status {status}; it has {known}")
        self._enqueue(found, times)

    def respond_with_example(self, name: str, *, times: int | None = 1) -> None:
        """Answer the next `times` OCR calls with the example called `name` in the spec."""
        if name not in self.examples:
            raise ValueError(
                f"openapi.yaml has no example {name!r}; it has {', '.join(self.examples)}"
            )
        self._enqueue(self.examples[name], times)

    def _enqueue(self, example: _Example, times: int | None) -> None:
        with self._lock:
            if times is None:
                self._queue.clear()
                self._default = example
            elif times < 1:
                raise ValueError("times must be at least 1 (or None for every call)")
            else:
                self._queue.extend([example] * times)

    def _answer(self, _: Request) -> Response:
        from mockserver.web import json_response

        with self._lock:
            example = self._queue.popleft() if self._queue else self._default
        response = json_response(_live_body(example), example.status)
        response.headers.update(_cors())
        return response


def _spec_examples() -> dict[str, _Example]:
    from mockserver.contract import load_spec

    responses = load_spec()["paths"]["/ocr"]["post"]["responses"]
    return {
        name: _Example(name, int(status), example["value"])
        for status, response in responses.items()
        for name, example in response.get("content", {})
        .get("application/json", {})
        .get("examples", {})
        .items()
    }


def _live_body(example: _Example) -> dict[str, object]:
    # The spec lists keys in reading order; the live service writes them in its own order.
    from mockserver.backend import OcrResult
    from mockserver.errors import ApiError

    value = example.body
    if example.status != 200:
        return ApiError(str(value["error"])).to_json()
    return OcrResult(
        id=value["id"],
        text=value["text"],
        processing_time_ms=value["processingTimeMs"],
        file_name=value["fileName"],
        file_size=value["fileSize"],
        mime_type=value["mimeType"],
    ).to_json()


def _cors() -> Mapping[str, str]:
    from mockserver.web import cors_headers

    return cors_headers()


def _preflight(_: Request) -> Response:
    from werkzeug import Response

    from mockserver.api import PREFLIGHT_MAX_AGE

    response = Response(
        status=204, headers={**_cors(), "Access-Control-Max-Age": PREFLIGHT_MAX_AGE}
    )
    del response.headers["Content-Type"]  # no body, so no type, as on the live service
    return response


def _not_allowed(request: Request) -> Response:
    from werkzeug import Response

    from mockserver.contract import load_spec

    allow = load_spec()["components"]["responses"]["MethodNotAllowed"]["headers"]["Allow"]
    response = Response(
        f"{request.method} method not allowed",
        status=405,
        headers={"Allow": allow["schema"]["const"]},
    )
    del response.headers["Content-Type"]  # the live service sends this body without a type
    return response


@pytest.fixture
def itsocr_httpserver(request: pytest.FixtureRequest) -> ItsocrHTTPServer:
    """pytest-httpserver answering ``/api/v1/ocr`` with the spec's examples (cleared per test)."""
    try:
        import pytest_httpserver  # noqa: F401
    except ImportError:
        pytest.fail(
            "itsocr_httpserver needs pytest-httpserver: pip install 'itsocr-mock[test]' "
            "(or pip install pytest-httpserver)",
            pytrace=False,
        )
    return ItsocrHTTPServer(request.getfixturevalue("httpserver"))
