"""The gunicorn worker: gthread, giving a connection a thread only once its request has arrived.

gunicorn's threaded worker hands every new connection to a thread, which then waits for the
request head for as long as the client cares to send it: eight sockets trickling a header line
a second stop a default mock (eight threads) completely, and forty sockets that send nothing
hold each thread for five seconds in turn. Here the worker's main loop (its selector, no
thread) reads what a connection sends until the request head is complete -- and, for a body of up to
`PREBUFFER_BODY` bytes, the body too, so that a small request (an upload of a few KB, every
control request) never waits for its client in a thread at all -- and only then hands it to a
thread. A connection whose head is not complete within `HEAD_TIMEOUT` seconds is answered 408
(when it sent something) and closed. Once the head is in, such a small body has the client
timeout (`body_timeout`, ``--client-timeout``) to arrive; past it, the connection's reading
side is shut, as the body deadline's watchdog would (connection.py), and a thread answers the
request at once: the endpoint sees the body end short, its deadline expired. The rest of a
larger body is read in the thread, under that same deadline. Kept-alive connections wait in
the selector between requests, as in gunicorn, for `keepalive` seconds.
"""

from __future__ import annotations

import contextlib
import errno
import re
import selectors
import time
from collections import deque
from functools import partial
from typing import Any

from mockserver.balancing import BalancedWorker
from mockserver.connection import cut_reading_side, hand_over

HEAD_TIMEOUT = 10.0  # seconds for a request head (and the start of its body) to arrive
PREBUFFER_BODY = 64 * 1024  # body bytes read before a thread takes the request
MAX_HEAD = 64 * 1024  # past this, gunicorn's parser is left to refuse the head (431)
_RECV = 64 * 1024
_HEAD_END = b"\r\n\r\n"
_CONTENT_LENGTH = re.compile(rb"^content-length[ \t]*:[ \t]*(\d{1,18})[ \t]*\r?$", re.I | re.M)
_EXPECT = re.compile(rb"^expect[ \t]*:", re.I | re.M)
_TRANSFER_ENCODING = re.compile(rb"^transfer-encoding[ \t]*:", re.I | re.M)
_TIMED_OUT = (
    b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 21\r\n\r\nrequest head too slow"
)


def _split(received: bytes | bytearray) -> tuple[bytes, int] | None:
    """The request head in `received` and how many body bytes follow it; None before the
    head's end."""
    end = received.find(_HEAD_END)
    if end < 0:
        return None
    return bytes(received[:end]), len(received) - end - len(_HEAD_END)


def request_ready(received: bytes | bytearray) -> bool:
    """True once `received` holds a whole request head and, if it is no larger than
    `PREBUFFER_BODY`, its body; or more than `MAX_HEAD` bytes without a head's end."""
    split = _split(received)
    if split is None:
        return len(received) > MAX_HEAD
    head, body = split
    if _EXPECT.search(head):  # the client waits for "100 Continue" before sending its body
        return True
    length = _CONTENT_LENGTH.search(head)
    # A small body is waited for whole. A larger one is not: the endpoint may answer from the
    # head alone (401, 429, "File too large" from Content-Length) to a client that waits for
    # that answer before it sends anything, and reads the rest under its body deadline.
    wanted = int(length.group(1)) if length else 0
    return wanted > PREBUFFER_BODY or body >= wanted


def body_complete(received: bytes | bytearray) -> bool:
    """True when `received` holds a request head with a Content-Length (and no
    Transfer-Encoding) and at least that many bytes of body after it."""
    split = _split(received)
    if split is None:
        return False
    head, body = split
    length = _CONTENT_LENGTH.search(head)
    if length is None or _TRANSFER_ENCODING.search(head):
        return False
    return body >= int(length.group(1))


def head_complete(received: bytes | bytearray) -> bool:
    """True once `received` holds the end of a request head."""
    return received.find(_HEAD_END) >= 0


class HeadFirstWorker(BalancedWorker):
    """gunicorn's gthread worker; a connection gets a thread once its request has arrived, and
    a new connection goes to the worker that holds the fewest (balancing.py)."""

    body_timeout = 30.0  # Settings.client_timeout, set by serving.MockServer before the fork

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.arriving: deque[Any] = deque()  # connections whose request is on its way

    def accept(self, listener: Any) -> None:
        """A new connection: wait in the selector for its request (gunicorn's hook)."""
        from gunicorn.workers.gthread import TConn

        try:
            sock, address = listener.accept()
        except OSError as failure:
            if failure.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        self._await_request(TConn(self.cfg, sock, address, listener.getsockname()))

    def on_client_socket_readable(self, conn: Any, client: Any) -> None:
        """A kept-alive connection sends again: wait for the whole request (gunicorn's hook)."""
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self._await_request(conn)

    def _await_request(self, conn: Any) -> None:
        conn.sock.setblocking(False)
        conn.received = bytearray()
        conn.head_deadline = time.monotonic() + HEAD_TIMEOUT
        self.arriving.append(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_data, conn))

    def _on_data(self, conn: Any, sock: Any) -> None:
        try:
            data = sock.recv(_RECV)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the client closed (or reset) the connection, or only its sending side
            if head_complete(conn.received):  # a request, if short: the endpoint answers it
                self._dispatch(conn)
                return
            self._forget(conn)
            conn.close()
            return
        waiting_for_head = not head_complete(conn.received)
        conn.received += data
        if request_ready(conn.received):
            self._dispatch(conn)
        elif waiting_for_head and head_complete(conn.received):
            conn.head_deadline = time.monotonic() + self.body_timeout  # now the body's

    def _dispatch(self, conn: Any) -> None:
        self._forget(conn, closing=False)
        conn.data_ready = True
        self.enqueue_req(conn)

    def _forget(self, conn: Any, *, closing: bool = True) -> None:
        with contextlib.suppress(OSError, KeyError, ValueError):
            self.poller.unregister(conn.sock)
        with contextlib.suppress(ValueError):
            self.arriving.remove(conn)
        if closing:
            self.nr_conns -= 1

    def handle(self, conn: Any) -> Any:
        """Serve the request that arrived (gunicorn's hook, in a thread): the bytes read in the
        selector go back in front of the connection's parser."""
        received, conn.received = getattr(conn, "received", None), None
        # A body all read here is read by the app without waiting: it keeps its turn (turns.py).
        hand_over(conn.sock, whole_body=received is not None and body_complete(received))
        if received:
            conn.sock.setblocking(True)
            conn.init()
            conn.parser.unreader.unread(bytes(received))
        return super().handle(conn)

    def wait_for_and_dispatch_events(self, timeout: float) -> None:
        """Wait for events, no later than the next deadline of an arriving request (gunicorn's
        hook: it waits a second at most, and deadlines are checked after each wait)."""
        if self.arriving:
            soonest = min(conn.head_deadline for conn in self.arriving) - time.monotonic()
            timeout = max(0.0, min(timeout, soonest))
        super().wait_for_and_dispatch_events(timeout)

    def murder_pending(self) -> None:
        """Close connections whose request did not arrive in time (gunicorn's hook)."""
        super().murder_pending()
        now = time.monotonic()
        for conn in [conn for conn in self.arriving if conn.head_deadline <= now]:
            if head_complete(conn.received):  # the body is late: the endpoint says so
                cut_reading_side(conn.sock)
                self._dispatch(conn)
                continue
            self._forget(conn)
            if conn.received:  # it sent something: tell it why, if it listens
                with contextlib.suppress(OSError):
                    conn.sock.send(_TIMED_OUT)
            conn.close()
