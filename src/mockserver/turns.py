"""Turns: in a worker process, one OCR request at a time runs Python; the others wait their turn.

gunicorn's threaded worker gives each connection a thread, so that a slow client holds a
thread, not the worker. But Python runs one thread at a time (the GIL), and threads competing
for it hand it over at every SQLite call and socket operation. Measured under the bench's load
(16 connections, two workers of eight threads): about 250 futex calls a request without turns
and 50 with them (strace), and a quarter more requests a second. So a request computes in its
turn, and gives the turn up while it waits -- for its body to arrive, for a fault rule's
delay, for an image decoder (C code) -- so that a trickling client or a slow fault never
holds the others up.

Only `itsocr-mock serve` takes turns (see serving.py); elsewhere, as in the in-process test
server, `waiting()` does nothing.

Two rules keep this correct; the second is enforced here, in every server:

1. Every call on the OCR path that may block -- reading the body, a fault's delay, an image
   decoder, waiting for the state's writer lock (`store.database.WriterLock`) -- runs inside
   `waiting()`. A call that blocks while holding the turn stalls every request of the
   worker. (Logging queues its records and never blocks: `logs.py`.)
2. Never `waiting()` while holding a lock that another thread may need while it holds the
   turn -- a store transaction above all (`no_waiting()` marks one): this thread would wait
   for the turn while holding the lock, and the turn's holder for the lock. `waiting()`
   raises RuntimeError inside `no_waiting()`, so a test meets a violation before users do.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the store imports this module: Werkzeug stays out of the CLI's start-up
    from mockserver.multipart import Readable

_turn = threading.Lock()
_holder = threading.local()  # .turn: True while this thread holds the turn

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def in_turns(app: WsgiApp, paths: Collection[str]) -> WsgiApp:
    """Wrap a WSGI app so that its calls for `paths` run one at a time in this process.

    Other paths (the control API: rare, and reading bodies the turn would not give way for)
    run as they come. The response is written by the server after the call returns: outside
    the turn.
    """

    def turned(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") not in paths:
            return app(environ, start_response)
        with _turn:
            _holder.turn = True
            try:
                return app(environ, start_response)
            finally:
                _holder.turn = False

    return turned


@contextmanager
def no_waiting() -> Iterator[None]:
    """A block in which this thread must not give the turn up (rule 2: a store transaction)."""
    depth = getattr(_holder, "no_waiting", 0)
    _holder.no_waiting = depth + 1
    try:
        yield
    finally:
        _holder.no_waiting = depth


@contextmanager
def waiting() -> Iterator[None]:
    """Give the turn up for the duration of the block, if this thread holds it."""
    if getattr(_holder, "no_waiting", 0):
        raise RuntimeError("waiting() inside no_waiting(): a deadlock of turns (turns.py rule 2)")
    if not getattr(_holder, "turn", False):
        yield
        return
    _holder.turn = False
    _turn.release()
    try:
        yield
    finally:
        _turn.acquire()
        _holder.turn = True


class GivingWay:
    """A request body whose reads give the turn up: a read may wait for a slow client.

    `length`, the body's Content-Length when it has one, spares the final read its handoff:
    once that many bytes are in, the read that finds the end waits for nothing (the stream
    is limited to that length), and giving the turn up would wake a waiting thread for nothing.
    """

    def __init__(self, stream: Readable, length: int | None = None) -> None:
        self._stream = stream
        self._left = length

    def read(self, size: int, /) -> bytes:
        """Read up to `size` bytes, out of turn unless the body is already all read."""
        if self._left is not None and self._left <= 0:
            return self._stream.read(size)
        with waiting():
            data = self._stream.read(size)
        if self._left is not None:
            self._left -= len(data)
        return data
