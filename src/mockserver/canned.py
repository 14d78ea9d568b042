"""`ItsocrHTTPServer`: a pytest-httpserver answering ``/api/v1/ocr`` with the canned examples
of ``openapi.yaml`` (the object the ``itsocr_httpserver`` pytest fixture gives)."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_httpserver import HTTPServer
    from werkzeug import Request, Response

__all__ = ["ItsocrHTTPServer"]


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
    from mockserver.contract import cors_headers

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
