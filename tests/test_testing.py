"""The servers the tests (and the kit's users) start: they must fail loudly and in time, and
never release what a live request still uses."""

from __future__ import annotations

import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable
from typing import Any

import pytest

from mockserver.testing import ServedApp, ServerProcess


def test_a_serve_that_hangs_before_its_banner_fails_within_the_start_up_timeout() -> None:
    silent = (sys.executable, "-c", "import time; time.sleep(60)")
    server = ServerProcess(program=silent, startup_timeout=1.0)
    began = time.monotonic()
    with pytest.raises(RuntimeError, match="did not start within 1 s"):
        server.start()
    assert time.monotonic() - began < 10  # 1 s, then SIGTERM
    assert server.process is not None
    assert server.process.poll() is not None  # and it was stopped


def test_a_serve_that_exits_before_its_banner_fails_at_once_with_its_output() -> None:
    failing = (sys.executable, "-c", "import sys; sys.exit('itsocr-mock: error: bad state')")
    began = time.monotonic()
    with pytest.raises(RuntimeError, match="itsocr-mock: error: bad state"):
        ServerProcess(program=failing, startup_timeout=30.0).start()
    assert time.monotonic() - began < 10


def test_stop_waits_for_a_live_request_before_closing_what_it_uses() -> None:
    closed = threading.Event()
    answered: list[bytes] = []

    def slow(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        time.sleep(0.5)
        body = b"closed" if closed.is_set() else b"open"
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]

    served = ServedApp(slow, close=closed.set, access_log=False).start()
    url = served.url
    client = threading.Thread(
        target=lambda: answered.append(urllib.request.urlopen(url, timeout=10).read())
    )
    client.start()
    time.sleep(0.1)  # the request is in flight
    served.stop()
    client.join(10)
    assert answered == [b"open"]  # the store was still there for the request
    assert closed.is_set()  # and released once it was answered
