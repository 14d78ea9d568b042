"""The server's log is written off the request path: a stalled reader of stderr never stalls a
request; what cannot be queued is dropped, counted and reported (mockserver/logs.py)."""

from __future__ import annotations

import http.client
import io
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mockserver import logs

LOG = logging.getLogger("itsocr_mock.access")


@pytest.fixture
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    switches = ("logThreads", "logMultiprocessing", "_srcfile")
    saved = {name: getattr(logging, name) for name in switches}
    yield
    for name, value in saved.items():
        setattr(logging, name, value)
    logs.stop_logging()
    logs._active = None
    for handler in root.handlers[:]:
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


class Recording(io.StringIO):
    """A stream that keeps each write, with the name of the thread that made it."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[tuple[str, str]] = []

    def write(self, text: str) -> int:
        self.writes.append((threading.current_thread().name, text))
        return len(text)


def test_lines_are_formatted_and_written_by_the_listener_thread(
    restore_root_logger: None,
) -> None:
    stream = Recording()
    logs.configure_logging("INFO", stream)
    LOG.info("POST %s %d", "/api/v1/ocr", 200)
    logging.getLogger("itsocr_mock").debug("below the level: not written")
    logs.stop_logging()

    lines = [write for write in stream.writes if "itsocr_mock" in write[1]]
    assert len(lines) == 1
    thread, text = lines[0]
    assert thread != threading.current_thread().name  # not the request's thread
    assert text.endswith("itsocr_mock.access POST /api/v1/ocr 200\n")


def test_a_burst_of_lines_is_written_in_a_few_calls_not_one_per_line(
    restore_root_logger: None,
) -> None:
    stream = Recording()
    logs.configure_logging("INFO", stream)
    for n in range(200):  # a burst, as under load: one wake-up of the listener for many lines
        LOG.info("request %03d", n)
    logs.stop_logging()

    writes = [text for _, text in stream.writes]
    lines = "".join(writes).splitlines()
    assert [line.rsplit(" ", 1)[-1] for line in lines] == [f"{n:03d}" for n in range(200)]
    assert len(writes) <= 20  # batches (one, unless this machine paused the test for long)


def test_a_full_queue_drops_and_counts_instead_of_waiting(
    restore_root_logger: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logs, "QUEUE_SIZE", 5)
    monkeypatch.setattr(logs, "STOP_TIMEOUT", 0.2)
    release = threading.Event()
    written: list[str] = []

    class Stalled(io.StringIO):  # a reader of stderr that stopped reading
        def write(self, text: str) -> int:
            release.wait(10)
            written.append(text)
            return len(text)

    logs.configure_logging("INFO", Stalled())
    started = time.monotonic()
    for n in range(100):
        LOG.info("request %d", n)
    assert time.monotonic() - started < 5.0  # never waited for the writer (10 s)
    release.set()
    active = logs._active
    assert active is not None
    while not active.listener.queue.empty():  # the reader is back: the listener catches up
        time.sleep(0.01)
    LOG.info("after the stall")
    logs.stop_logging()

    text = "".join(written)
    assert "after the stall" in text
    assert "log lines dropped: stderr was not read fast enough" in text
    dropped = int(text.split(" log lines dropped:")[0].rsplit(" ", 1)[-1])
    kept = text.count("request ")
    assert dropped + kept == 100
    # The queue's five, and at most one batch (the queue's five, taken before the stall
    # began) the writer held.
    assert dropped >= 100 - 2 * 5


def _serve(tmp_path: Path) -> tuple[subprocess.Popen[bytes], int]:
    process = subprocess.Popen(
        [sys.executable, "-m", "mockserver.cli", "serve", "--port", "0",
         "--state", str(tmp_path / "state.sqlite3")],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
        env={**os.environ, "ITSOCR_MOCK_STATE": "", "ITSOCR_MOCK_LOG_LEVEL": ""},
        # Unbuffered: readline takes the banner and nothing after it. A buffered pipe could
        # read the next lines into its buffer too, where communicate(), reading the pipe
        # itself, never looks ("Booting worker" went missing when the worker was quick).
        bufsize=0,
    )  # fmt: skip
    assert process.stderr is not None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if line.startswith(b"itsOCR mock listening on http://127.0.0.1:"):
            return process, int(line.rsplit(b":", 1)[1])
    process.kill()
    raise RuntimeError("itsocr-mock serve did not start")


def test_a_stderr_nobody_reads_never_stalls_the_server(tmp_path: Path) -> None:
    process, port = _serve(tmp_path)  # from here on, nobody reads its stderr
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        # Each refused request writes an access line of ~150 bytes: 2,000 of them are several
        # times what a pipe holds (64 KiB), so a server writing from the request would block.
        started = time.monotonic()
        for _ in range(2000):
            connection.request("POST", "/api/v1/ocr", body=b"", headers={"Authorization": "x"})
            response = connection.getresponse()
            response.read()
            assert response.status == 401
        assert time.monotonic() - started < 60
        connection.close()
    finally:
        process.terminate()
        _, err = process.communicate(timeout=30)
    assert "Logging error" not in err.decode()  # gunicorn's own lines format as before
    assert "Booting worker with pid: " in err.decode()
    access = [line for line in err.decode().splitlines() if "itsocr_mock.access" in line]
    assert len(access) == 2000  # the queue held them all; the listener wrote them once read
