"""What the mock does with a client's connection beyond HTTP itself: two policies for bodies.

- **A deadline for the request body.** gunicorn's threaded worker waits for a body as long as
  the client cares to send it, so a client trickling its upload would hold a worker thread
  for ever. The body of an OCR request must arrive within `Settings.client_timeout` seconds
  (30 by default; ``--client-timeout``, ``ITSOCR_MOCK_CLIENT_TIMEOUT``) from the moment the
  endpoint starts reading it. At the deadline a watchdog thread shuts the reading side of the
  connection: the read in progress returns at once, the request is answered 400 and the
  connection ends. Other clients are served meanwhile by the worker's other threads.
- **A lingering close for a body left unread.** Like the live service, the mock answers 401,
  429 or "File too large" (from Content-Length) without reading the body. A client that reads
  nothing until it has sent everything (http.client, and many SDKs) would then hit a
  connection reset instead of the answer: gunicorn drains at most 64 KiB of an unread body
  before closing, and closing a socket with unread data resets it. So after an error response
  the rest of the body is read and thrown away -- never stored, never parsed -- for at most
  `LINGER_SECONDS` and `LINGER_BYTES`, and the client finds the JSON error waiting when it
  starts reading. (curl reads while it sends, and python-requests reads the answer after a
  reset: both get it either way.)
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import math
import os
import socket
import threading
import time
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from mockserver.multipart import Readable

LINGER_SECONDS = 5.0  # the longest an unread body is drained after its response (as gunicorn)
LINGER_BYTES = 256 * 1024 * 1024  # and the most bytes drained (60 MiB uploads fit, 4 times)
_DRAIN_CHUNK = 64 * 1024  # gunicorn reads ahead up to 1 MiB whatever is asked


def client_socket(environ: Mapping[str, Any]) -> socket.socket | None:
    """The connection's socket, under gunicorn or Werkzeug's server (None elsewhere)."""
    for key in ("gunicorn.socket", "werkzeug.socket"):
        sock = environ.get(key)
        if isinstance(sock, socket.socket):
            return sock
    return None


# -- the body deadline -----------------------------------------------------------------------


@dataclass(order=True)
class Deadline:
    """One body being read: expires at `at` (monotonic) unless cancelled first."""

    at: float
    seq: int
    sock: socket.socket | None = field(compare=False)
    expired: bool = field(default=False, compare=False)

    def cancel(self) -> None:
        """The body was read in time (or the request ended): forget the socket."""
        self.sock = None


class Watchdog:
    """One thread per process that cuts the reading side of connections past their deadline.

    A socket timeout cannot do it: gunicorn's body reader loops on recv() until it has the
    size asked for, so a client sending a byte a second never trips a per-recv timeout.
    """

    def __init__(self) -> None:
        self._heap: list[Deadline] = []
        self._changed = threading.Condition()
        self._seq = itertools.count()
        self._pid = 0  # threads do not survive fork(): each worker starts its own
        self._wake_at = math.inf  # when the thread looks at the heap next, unless notified

    def watch(self, sock: socket.socket, seconds: float) -> Deadline:
        """Cut `sock`'s reading side in `seconds` unless the returned deadline is cancelled."""
        deadline = Deadline(time.monotonic() + seconds, next(self._seq), sock)
        with self._changed:
            self._start()
            while self._heap and self._heap[0].sock is None:  # cancelled: drop them early
                heapq.heappop(self._heap)
            heapq.heappush(self._heap, deadline)
            # Wake the thread only if it would sleep past this deadline. Deadlines are set
            # `seconds` ahead, so under load each new one falls after the one the thread
            # already waits for: waking it for every request would cost a thread switch each.
            if deadline.at < self._wake_at:
                self._changed.notify()
        return deadline

    def _start(self) -> None:
        if self._pid != os.getpid():
            self._pid = os.getpid()
            threading.Thread(target=self._run, name="itsocr-mock-deadlines", daemon=True).start()

    def _run(self) -> None:
        with self._changed:
            while True:
                while self._heap and self._heap[0].sock is None:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._wake_at = math.inf
                    self._changed.wait()
                    continue
                self._wake_at = self._heap[0].at
                wait = self._wake_at - time.monotonic()
                if wait > 0:
                    self._changed.wait(wait)
                    continue
                self._expire(heapq.heappop(self._heap))

    @staticmethod
    def _expire(deadline: Deadline) -> None:
        sock, deadline.sock = deadline.sock, None
        if sock is None:
            return
        deadline.expired = True
        # Ends the recv() blocked on it (it returns b"", as at the end of the body); the
        # response can still be written.
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RD)


_watchdog = Watchdog()
_cut: weakref.WeakSet[socket.socket] = weakref.WeakSet()  # reading side shut before the app ran
_in_hand: weakref.WeakSet[socket.socket] = weakref.WeakSet()  # whole body read before the app ran


def hand_over(sock: socket.socket, *, whole_body: bool) -> None:
    """Say whether the server read the whole body of the request it hands the app on `sock`
    (worker.py): reading it then never waits for the client."""
    if whole_body:
        _in_hand.add(sock)
    else:
        _in_hand.discard(sock)


def cut_reading_side(sock: socket.socket) -> None:
    """Shut `sock`'s reading side for a body that is late, before the app reads it (the server
    does this, see worker.py); the app's body deadline then counts as expired."""
    _cut.add(sock)
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RD)


@contextlib.contextmanager
def body_deadline(environ: Mapping[str, Any], seconds: float) -> Iterator[Deadline | None]:
    """Within the block, the request body must arrive in `seconds`; yields the deadline
    (``.expired`` tells, after a short read, that the deadline rather than the client ended
    the body), or None when the server gives no access to the socket or read the whole body
    before the app ran (worker.py): reading it then cannot wait for the client."""
    sock = client_socket(environ)
    if sock is None or sock in _in_hand:
        yield None
        return
    deadline = _watchdog.watch(sock, seconds)
    if sock in _cut:  # the server already waited the client timeout for this body
        deadline.expired = True
    try:
        yield deadline
    finally:
        deadline.cancel()


# -- the lingering close ---------------------------------------------------------------------


def discard_body(stream: Readable, environ: Mapping[str, Any]) -> int:
    """Read what is left of a request body and throw it away, within the linger limits.

    Returns how many bytes were discarded. Never raises: a client that stops sending or
    closes ends the drain, and the server then closes the connection as it would have.
    """
    sock = client_socket(environ)
    deadline = _watchdog.watch(sock, LINGER_SECONDS) if sock is not None else None
    drained = 0
    try:
        while drained < LINGER_BYTES:
            chunk = stream.read(_DRAIN_CHUNK)
            if not chunk:
                break
            drained += len(chunk)
    except Exception:  # noqa: S110 - reset, the deadline, a stream that refuses: all end it
        pass
    finally:
        if deadline is not None:
            deadline.cancel()
    return drained
