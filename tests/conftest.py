"""pytest fixtures shared by the kit's own tests.

The server
- `mock_server`: one in-process mock (``:memory:`` state) for the whole session, reset before
  each test that asks for it (the one reset path, `Backend.reset`); `backend`, `api_url` and
  `ocr_url` are views of it; `images_used(account_id)` reads an account's usage this month.
- `demo_tokens` / `demo_token`: the documented demo tokens, by plan / Free's.
- `redis_server`: a real `redis-server` (Debian's) for the session, on a free port in a temporary
  directory; `redis_prefix` a key prefix of the test's own in it, so tests share it safely.

Requests -- every response to a documented operation is validated against openapi.yaml
- `http`: a `requests.Session`; `api_client`: the strict one for API tests (an undocumented URL
  must be declared with ``api_client.off_contract()``); `post_ocr(...)`: POST /api/v1/ocr on it.
- `multipart` + `raw_http`: hand-built bodies sent with http.client; `wire`: raw bytes on a
  socket (a Content-Length that lies, headers without a body).
- `make_image(media_type)`: real images of every allowed type (Pillow; HEIC/HEIF via pillow-heif).

Assertions
- `assert_api_error(response, status, message)`, `assert_ocr_success(response, **fields)`: the
  live response to the byte, with ``Content-Type: application/json`` and the CORS headers.

The contract suite (contract_tests/) has its own conftest and never uses these.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from http.client import HTTPConnection, HTTPResponse
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from requests.structures import CaseInsensitiveDict

from contract_tests import images
from contract_tests.forms import Part  # one multipart builder, the suite's
from contract_tests.forms import multipart as build_multipart
from mockserver.backend import DEMO_ACCOUNTS, Backend
from mockserver.clock import period_of
from mockserver.contract import cors_headers
from mockserver.settings import Settings
from mockserver.testing import InProcessServer, RedisServer
from mockserver.validation import Level, assert_matches_contract, find_operation

PILLOW_FORMATS = images.PILLOW_FORMATS  # the allowed types this kit can draw


# -- `pytest --base-url URL` in a checkout ----------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    """`pytest --base-url URL`, typed in a checkout with no test paths, runs the contract suite
    against URL (as `pytest --pyargs contract_tests --base-url URL` does), not the kit's own
    tests, which would ignore the URL: the kit is advertised as "pytest --base-url against
    production". Given paths (``pytest tests/ --base-url URL``) are left alone."""
    if (
        config.getoption("base_url", None)
        and config.args_source == pytest.Config.ArgsSource.TESTPATHS
    ):
        config.args[:] = ["contract_tests"]
        config.option.pyargs = True


# -- child processes -------------------------------------------------------------------------


@pytest.fixture(scope="session", autouse=True)
def _children_share_compiled_modules(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Under PYTHONDONTWRITEBYTECODE (set in many containers),
    every Python process the tests start (servers, CLI commands, contract-suite runs) compiles
    the modules it imports afresh, and every child pytest rewrites the asserts of ~350 plugin
    modules (Hypothesis, Schemathesis, Faker, this kit): 2 s of CPU each, more than most such
    runs then spend testing. The session's children share one cache instead, in the session's
    temporary directory (PYTHONPYCACHEPREFIX), so that the checkout and site-packages stay free
    of .pyc files as the variable asks. Without the variable, Python's own caches serve."""
    if not sys.dont_write_bytecode:
        yield
        return
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):  # .../pytest-N/popen-gwK: one cache per session
        base = base.parent
    saved = {
        name: os.environ.get(name) for name in ("PYTHONPYCACHEPREFIX", "PYTHONDONTWRITEBYTECODE")
    }
    os.environ["PYTHONPYCACHEPREFIX"] = str(base / "pycache")
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# -- the server ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
def redis_prefix() -> str:
    """A key prefix no other test uses: tests share the session's Redis without a flush."""
    return f"test-{uuid.uuid4().hex[:12]}:"


@pytest.fixture(scope="session")
def mock_server_session() -> Iterator[InProcessServer]:
    """The one in-process mock of the session; prefer `mock_server`, which resets it."""
    with InProcessServer(Settings(state=":memory:")) as server:
        yield server


@pytest.fixture
def mock_server(mock_server_session: InProcessServer) -> InProcessServer:
    """The session's in-process mock, reset to a fresh state (demo accounts only)."""
    mock_server_session.backend.reset()
    return mock_server_session


@pytest.fixture
def backend(mock_server: InProcessServer) -> Backend:
    """The running mock's backend: its state and rules, to arrange a test without HTTP."""
    return mock_server.backend


@pytest.fixture
def api_url(mock_server: InProcessServer) -> str:
    """The API base URL of the running mock, e.g. ``http://127.0.0.1:49152/api/v1``."""
    return mock_server.base_url


@pytest.fixture
def ocr_url(api_url: str) -> str:
    """The URL of `POST /api/v1/ocr` on the running mock."""
    return api_url + "/ocr"


@pytest.fixture(scope="session")
def demo_tokens() -> dict[str, str]:
    """The demo token of each plan: ``{"free": ..., "pro": ..., "enterprise": ...}``."""
    return {demo.plan: demo.token for demo in DEMO_ACCOUNTS}


@pytest.fixture(scope="session")
def demo_token(demo_tokens: dict[str, str]) -> str:
    """The Free plan's demo token."""
    return demo_tokens["free"]


# -- images ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def make_image() -> Callable[..., bytes]:
    """``make_image(media_type="image/png", *, width=96, height=32, text="itsOCR")`` -> bytes.

    The kit's one image maker (`contract_tests.images.make_image`): a real, decodable image of
    an allowed type, drawn with Pillow (cached: same arguments, same bytes). `text` changes the
    pixels, hence the SHA-256, when a test needs distinct images.
    """
    return images.make_image


# -- HTTP clients that check the contract ----------------------------------------------------


class ContractSession(requests.Session):
    """A `requests.Session` validating every response to an operation of `openapi.yaml`.

    Responses to paths the spec does not document (the control API, a redirect, a 404) are not
    validated; in `strict` mode they fail the test unless sent inside `off_contract()`, so that
    an API test cannot reach an undocumented URL by mistake and skip validation silently.
    """

    def __init__(self, *, strict: bool = False) -> None:
        super().__init__()
        self.strict = strict
        self.validated = 0
        self.level: Level = "observed"
        self._off_contract = False
        self.hooks["response"].append(self._validate)

    @contextmanager
    def documented_only(self) -> Iterator[None]:
        """Validate at the documented level inside the block: for a response a test makes
        differ from the live service on purpose (a fault rule's own message)."""
        self.level, previous = "documented", self.level
        try:
            yield
        finally:
            self.level = previous

    @contextmanager
    def off_contract(self) -> Iterator[None]:
        """Allow requests to undocumented paths inside the block (strict mode)."""
        self._off_contract, previous = True, self._off_contract
        try:
            yield
        finally:
            self._off_contract = previous

    def _validate(self, response: requests.Response, *_: Any, **__: Any) -> None:
        request = response.request
        operation = find_operation(str(request.method), str(request.url))
        if operation is None:
            if self.strict and not self._off_contract:
                raise AssertionError(
                    f"{request.method} {request.url} is not an operation of openapi.yaml; "
                    "send it inside `with api_client.off_contract():` if that is intended"
                )
            return
        assert_matches_contract(response, operation=operation, level=self.level)
        self.validated += 1


@pytest.fixture
def http() -> Iterator[ContractSession]:
    """A `requests.Session`; responses to documented operations are validated against the spec."""
    with ContractSession() as session:
        yield session


@pytest.fixture
def api_client() -> Iterator[ContractSession]:
    """The strict `http`: any undocumented URL must be declared with ``off_contract()``."""
    with ContractSession(strict=True) as session:
        yield session


class Multipart:
    """Builds multipart/form-data bodies byte by byte, for the cases `requests` cannot express."""

    Part = Part
    boundary = "itsocr-mock-test-boundary"

    def body(self, *parts: Part) -> bytes:
        """The body holding `parts` in order, closed by the final boundary."""
        return build_multipart(parts, self.boundary)

    @property
    def content_type(self) -> str:
        """The request's Content-Type header for `body`."""
        return f"multipart/form-data; boundary={self.boundary}"


@pytest.fixture(scope="session")
def multipart() -> Multipart:
    """A multipart body builder: ``multipart.body(multipart.Part("file", data, "a.png", ...))``."""
    return Multipart()


@dataclass(frozen=True)
class RawResponse:
    """A response read with http.client, shaped like `requests.Response` where it matters."""

    status_code: int
    raw_headers: list[tuple[str, str]]  # as sent, in order, repeated headers kept
    content: bytes

    @property
    def headers(self) -> CaseInsensitiveDict[str]:
        """The headers by case-insensitive name (the last one wins when repeated)."""
        return CaseInsensitiveDict(self.raw_headers)

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.content)


RawHttp = Callable[..., RawResponse]


@pytest.fixture
def raw_http() -> RawHttp:
    """``raw_http(method, url, body=b"", headers={})`` -> RawResponse, via http.client.

    Sends exactly the given headers and body (http.client adds Host, Accept-Encoding and a
    Content-Length for a non-empty body) -- for requests that `requests` cannot express. A
    response to a documented operation is validated against the spec.
    """

    def send(
        method: str, url: str, body: bytes = b"", headers: Mapping[str, str] | None = None
    ) -> RawResponse:
        parts = urlsplit(url)
        connection = HTTPConnection(parts.hostname or "", parts.port, timeout=30)
        try:
            connection.request(method, parts.path, body=body or None, headers=dict(headers or {}))
            answer = connection.getresponse()
            response = RawResponse(answer.status, answer.getheaders(), answer.read())
        finally:
            connection.close()
        operation = find_operation(method, url)
        if operation is not None:
            assert_matches_contract(response, operation=operation)
        return response

    return send


@pytest.fixture
def wire() -> Callable[..., RawResponse]:
    """``wire(url, request_bytes, *, half_close=False)`` -> RawResponse: bytes on a socket.

    Sends `request_bytes` verbatim (request line, headers and as much body as given) to the
    origin of `url`, optionally shuts down the sending side, and reads one response. For what
    no HTTP client will send: a Content-Length that lies, headers with no body at all.
    """

    def send(url: str, request: bytes, *, half_close: bool = False) -> RawResponse:
        origin = urlsplit(url)
        with socket.create_connection((origin.hostname, origin.port), timeout=10) as sock:
            sock.sendall(request)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
            answer = HTTPResponse(sock)
            answer.begin()
            response = RawResponse(answer.status, answer.getheaders(), answer.read())
        method, target = request.split(b" ", 2)[:2]
        target_url = f"{origin.scheme}://{origin.netloc}{target.decode()}"
        operation = find_operation(method.decode(), target_url)
        if operation is not None:
            assert_matches_contract(response, operation=operation)
        return response

    return send


# -- the API under test ----------------------------------------------------------------------


Reply = requests.Response | RawResponse


@pytest.fixture
def post_ocr(
    api_client: ContractSession, ocr_url: str, demo_token: str
) -> Callable[..., requests.Response]:
    """``post_ocr(token=<free demo>, authorization=None, **requests_kwargs)`` -> the response.

    Posts to `/api/v1/ocr` through `api_client` (so the response is validated against the
    spec). `authorization` sends that exact header value instead of ``Bearer <token>``;
    ``token=None`` sends no Authorization header at all.
    """

    def post(
        *, token: str | None = demo_token, authorization: str | None = None, **kwargs: Any
    ) -> requests.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        if authorization is not None:
            headers["Authorization"] = authorization
        elif token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return api_client.post(ocr_url, headers=headers, **kwargs)

    return post


@pytest.fixture
def images_used(backend: Backend) -> Callable[[str], int]:
    """``images_used(account_id)`` -> the account's stored usage in the mock's current month."""

    def used(account_id: str) -> int:
        return backend.store.usage(account_id, period_of(backend.now()))[0]

    return used


def _check_json_reply(response: Reply, status: int) -> Any:
    assert response.status_code == status, (status, response.status_code, response.content)
    # Exactly `application/json` (no charset) and the CORS headers, as on the live service.
    assert response.headers.get("Content-Type") == "application/json"
    for name, value in cors_headers().items():
        assert response.headers.get(name) == value, name
    for name in ("Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining", "RateLimit"):
        assert name not in response.headers
    return json.loads(response.content)


@pytest.fixture(scope="session")
def assert_api_error() -> Callable[[Reply, int, str], None]:
    """``assert_api_error(response, status, message)``: exactly the live error response.

    Status, the body byte for byte (``{"error":...,"success":false}``, compact, keys in the live
    order), ``Content-Type: application/json`` and the CORS headers.
    """

    def check(response: Reply, status: int, message: str) -> None:
        body = _check_json_reply(response, status)
        assert body == {"error": message, "success": False}
        expected = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        assert response.content == expected

    return check


@pytest.fixture(scope="session")
def assert_ocr_success() -> Callable[..., dict[str, Any]]:
    """``assert_ocr_success(response, **fields)`` -> body: a live-shaped 200 with those fields.

    `fields` are compared with the body's (``fileName="a.png", mimeType="image/png"``...).
    """

    def check(response: Reply, **fields: object) -> dict[str, Any]:
        body: dict[str, Any] = _check_json_reply(response, 200)
        assert list(body) == [
            "id",
            "text",
            "processingTimeMs",
            "fileName",
            "fileSize",
            "mimeType",
            "success",
        ]
        assert {key: body[key] for key in fields} == fields
        return body

    return check
