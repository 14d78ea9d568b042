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
the pytest fixtures, when a test asks for them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from mockserver.canned import ItsocrHTTPServer
from mockserver.itsocr_mock import Account, ItsocrMock

if TYPE_CHECKING:
    from mockserver.testing import InProcessServer
    from mockserver.validation import assert_matches_contract as assert_matches_contract

__all__ = ["Account", "ItsocrHTTPServer", "ItsocrMock", "assert_matches_contract"]

URL_OPTION, URL_ENV, URL_INI = "--itsocr-mock-url", "ITSOCR_MOCK_URL", "itsocr_mock_url"
ADMIN_OPTION, ADMIN_ENV = "--itsocr-mock-admin-token", "ITSOCR_MOCK_ADMIN_TOKEN"
URL_MARKER = "itsocr_mock_url"


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--itsocr-mock-url`` and ``--itsocr-mock-admin-token`` (and their ini names)."""
    group = parser.getgroup("itsocr-mock", "itsOCR mock (the itsocr_mock pytest fixture)")
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
        f"{URL_MARKER}(url, admin_token=None): run this test's itsocr_mock pytest fixture "
        "against the already running mock at url",
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


class MockPool:
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
    if health.get("control") is False:
        control.close()
        pytest.fail(
            f"itsocr_mock: the mock at {url} runs without its control API (--no-control, or "
            "ITSOCR_MOCK_CONTROL=0); the itsocr_mock pytest fixture needs it to reset and "
            "arrange the mock",
            pytrace=False,
        )
    demo_tokens = {demo["plan"]: demo["token"] for demo in health["demoAccounts"]}
    return ItsocrMock(url, control, reset or control.reset, demo_tokens)


@pytest.fixture(scope="session")
def itsocr_mock_session(pytestconfig: pytest.Config) -> Iterator[MockPool]:
    """The session's mocks; use `itsocr_mock`, which picks one and resets it."""
    admin_token = pytestconfig.getoption(ADMIN_OPTION) or os.environ.get(ADMIN_ENV)
    mocks = MockPool(admin_token)
    yield mocks
    mocks.close()


@pytest.fixture
def itsocr_mock(request: pytest.FixtureRequest, itsocr_mock_session: MockPool) -> ItsocrMock:
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
