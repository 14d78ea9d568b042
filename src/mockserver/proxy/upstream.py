"""One request forwarded to the upstream itsOCR service, streaming both ways (the proxy's client).

The request body is read from the client and sent upstream chunk by chunk, and the answer's body
comes back the same way: an upload never sits in memory whole. Hop-by-hop headers (RFC 9110
7.6.1) are the connection's, not the message's: they are left out in both directions, as every
HTTP proxy does, and so are the `Date` and `Server` headers of the answer, which the serving
layer (gunicorn) writes itself. Everything else passes unchanged.

A failure before the upstream answered is an `UpstreamFailure` saying which: the upstream could
not be reached, it did not answer in time, or it closed the connection without an answer.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Literal, Protocol

import certifi
import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    MaxRetryError,
    ReadTimeoutError,
    SSLError,
)
from urllib3.util import SKIP_HEADER

CHUNK_SIZE = 64 * 1024
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
# The upstream's own Host is sent instead; Expect is between the client and the proxy's server.
_NOT_FORWARDED = HOP_BY_HOP | {"host", "expect"}
# Headers urllib3 would add of its own when the client sent none: sent only if the client did.
_NOT_ADDED = ("User-Agent", "Accept-Encoding")
_SERVER_WRITTEN = frozenset({"date", "server"})  # gunicorn writes these on every answer

FailureKind = Literal["unreachable", "timeout", "dropped"]


class Readable(Protocol):
    """A request body being received: what forwarding needs of it."""

    def read(self, size: int, /) -> bytes: ...  # noqa: D102


class UpstreamFailure(Exception):
    """The upstream gave no answer: `kind` says why, the message in words."""

    def __init__(self, kind: FailureKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class ClientGone(Exception):
    """The client's request body stopped arriving (it disconnected or sent less than declared)."""


@dataclass
class Answer:
    """The upstream's answer: status, headers to pass on, and the body as it streams in."""

    status: int
    headers: list[tuple[str, str]]
    body: Iterator[bytes]  # raises UpstreamFailure("dropped") when the upstream cuts it short
    release: Callable[[bool], None]  # once done: reuse the connection if the body was all read


class BodyReader:
    """The client's body as urllib3 reads it: `read(size)`, with each chunk passed to `tap`.

    A failure to read the client's body is a `ClientGone`, so that it is not mistaken for a
    failure of the upstream.
    """

    def __init__(self, stream: Readable, length: int | None, tap: Callable[[bytes], None]) -> None:
        self._stream = stream
        self._left = length
        self._tap = tap
        self.client_gone = False

    def read(self, size: int = CHUNK_SIZE) -> bytes:
        """At most `size` bytes of the body; b"" at its end."""
        if self._left is not None:
            size = min(size if size > 0 else CHUNK_SIZE, self._left)
            if size == 0:
                return b""
        try:
            chunk = self._stream.read(size if size > 0 else CHUNK_SIZE)
        except Exception as problem:  # gunicorn raises its own errors for a vanished client
            self.client_gone = True
            raise ClientGone(f"the client's body stopped arriving ({problem})") from problem
        if self._left is not None:
            if not chunk:
                self.client_gone = True
                raise ClientGone("the client's body ended before its Content-Length")
            self._left -= len(chunk)
        self._tap(chunk)
        return chunk

    def chunks(self) -> Iterator[bytes]:
        """The body chunk by chunk, for a body sent without a length (chunked upstream too)."""
        while chunk := self.read(CHUNK_SIZE):
            yield chunk


def _release(response: urllib3.BaseHTTPResponse, whole: bool) -> None:
    # A connection whose answer was not read to its end cannot carry another request.
    if not whole:
        response.close()
    response.release_conn()


class Upstream:
    """The upstream origin (e.g. ``https://itsocr.com``) and a connection pool to it.

    `timeout` bounds connecting and each wait for the upstream (its first byte, every chunk).
    One pool per process: it is created on first use, after gunicorn forked its workers.
    """

    def __init__(self, origin: str, timeout: float, connections: int) -> None:
        self.origin = origin.rstrip("/")
        self.timeout = timeout
        self._connections = connections
        self._pool: urllib3.PoolManager | None = None
        self._lock = threading.Lock()

    def _manager(self) -> urllib3.PoolManager:
        with self._lock:
            if self._pool is None:
                self._pool = urllib3.PoolManager(
                    num_pools=2,
                    maxsize=self._connections,
                    block=False,
                    ca_certs=certifi.where(),
                )
            return self._pool

    def send(
        self,
        method: str,
        path_and_query: str,
        headers: Iterable[tuple[str, str]],
        body: BodyReader | None,
        length: int | None,
    ) -> Answer:
        """Forward a request; the upstream's answer, its body still to be read.

        Raises UpstreamFailure when there is no answer, ClientGone when the client's body
        stopped arriving.
        """
        sent = urllib3.HTTPHeaderDict(
            [(name, value) for name, value in headers if name.lower() not in _NOT_FORWARDED]
        )
        for name in _NOT_ADDED:
            if name not in sent:
                sent[name] = SKIP_HEADER
        payload: object = None
        if body is not None:
            payload = body if length is not None else body.chunks()
        try:
            response = self._manager().urlopen(
                method,
                self.origin + path_and_query,
                body=payload,
                headers=sent,
                chunked=body is not None and length is None,
                redirect=False,
                retries=False,
                preload_content=False,
                decode_content=False,
                timeout=urllib3.Timeout(connect=self.timeout, read=self.timeout),
            )
        except ClientGone:
            raise
        except HTTPError as problem:
            if body is not None and body.client_gone:
                raise ClientGone("the client's body stopped arriving") from problem
            raise self._failure(problem) from problem
        passed = [
            (name, value)
            for name, value in response.headers.iteritems()
            if name.lower() not in HOP_BY_HOP | _SERVER_WRITTEN
        ]
        return Answer(response.status, passed, self._stream(response), partial(_release, response))

    def _stream(self, response: urllib3.BaseHTTPResponse) -> Iterator[bytes]:
        try:
            yield from response.stream(CHUNK_SIZE, decode_content=False)
        except HTTPError as problem:
            response.close()  # a connection cut mid-answer is not reused
            raise self._failure(problem, mid_body=True) from problem

    def _failure(self, problem: Exception, *, mid_body: bool = False) -> UpstreamFailure:
        reason: object = problem.reason if isinstance(problem, MaxRetryError) else problem
        where = self.origin
        if isinstance(reason, ReadTimeoutError):
            return UpstreamFailure(
                "timeout", f"the upstream {where} did not answer within {self.timeout:g} s"
            )
        # urllib3's NewConnectionError (refused, no route, unknown name) is a ConnectTimeoutError.
        if isinstance(reason, (ConnectTimeoutError, SSLError)):
            return UpstreamFailure("unreachable", f"cannot reach the upstream {where}: {reason}")
        part = "in the middle of its answer" if mid_body else "without answering"
        return UpstreamFailure("dropped", f"the upstream {where} closed the connection {part}")
