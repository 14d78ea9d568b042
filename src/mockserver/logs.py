"""The server's log, kept off the request path.

A request only hands its log records to a queue (`logging.handlers.QueueHandler`); a
listener thread of the same process formats them and writes them to stderr. So formatting
and writing never happen while a request holds the worker's turn (`turns.py`), and a slow
reader of stderr -- a full pipe, a terminal scrolled back, `| less` -- never stalls a
request: when the queue is full, a record is dropped and counted instead of waiting. The
count is logged as soon as the listener catches up, and again when the process stops.

Threads do not survive `fork()`: gunicorn's workers each start a listener of their own
(`os.register_at_fork`), with an empty queue.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import sys
import threading
from logging.handlers import QueueHandler, QueueListener
from typing import TextIO

FORMAT = "%(asctime)s %(name)s %(message)s"
# Records waiting to be written, per process. At a few hundred bytes a record this bounds
# the memory a stalled stderr can hold (a few MiB); past it, records are dropped.
QUEUE_SIZE = 10_000
# How long stopping waits for the listener to write what is queued: a reader of stderr that
# never reads again must not keep a worker from exiting.
STOP_TIMEOUT = 1.0

_lock = threading.Lock()
_active: ServerLog | None = None


class _Dropping(QueueHandler):
    """A QueueHandler that never waits: a full queue drops the record and counts it."""

    def __init__(self, records: queue.Queue[logging.LogRecord | None]) -> None:
        super().__init__(records)
        self.dropped = 0
        self._reported = 0
        self._count_lock = threading.Lock()

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        """The record as it is: the listener, in this process, formats it (off the request)."""
        return record

    def enqueue(self, record: logging.LogRecord) -> None:
        """Queue `record`, or count it as dropped when the queue is full."""
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            with self._count_lock:
                self.dropped += 1

    def unreported(self) -> int:
        """Records dropped since the last call."""
        with self._count_lock:
            count, self._reported = self.dropped - self._reported, self.dropped
        return count


class _Reporting(logging.Handler):
    """The listener's side: tells how many records were dropped before writing the next."""

    def __init__(self, target: logging.Handler, source: _Dropping) -> None:
        super().__init__()
        self.target, self.source = target, source

    def handle(self, record: logging.LogRecord) -> bool:
        """Write `record`, after a line counting the records dropped before it, if any."""
        dropped = self.source.unreported()
        if dropped:
            self.target.handle(_dropped_record(dropped))
        if record.levelno >= self.target.level:
            self.target.handle(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:  # pragma: no cover - handle() does it
        self.target.emit(record)


def _dropped_record(count: int) -> logging.LogRecord:
    return logging.LogRecord(
        "itsocr_mock", logging.WARNING, __file__, 0,
        "%d log lines dropped: stderr was not read fast enough", (count,), None,
    )  # fmt: skip


class ServerLog:
    """The queue, its handler on the root logger and the listener that writes to `stream`."""

    def __init__(self, level: str, stream: TextIO) -> None:
        self.level, self.stream = level.upper(), stream
        self.records: queue.Queue[logging.LogRecord | None] = queue.Queue(QUEUE_SIZE)
        records = self.records
        self.handler = _Dropping(records)
        writer = logging.StreamHandler(stream)
        writer.setFormatter(logging.Formatter(FORMAT))
        self.listener = QueueListener(records, _Reporting(writer, self.handler))
        self._thread_started = False

    def install(self) -> None:
        """Route the root logger through this log's queue and start writing."""
        root = logging.getLogger()
        for handler in root.handlers[:]:
            root.removeHandler(handler)
        root.addHandler(self.handler)
        root.setLevel(self.level)
        self.listener.start()

    def stop(self) -> None:
        """Write what is queued (waiting at most STOP_TIMEOUT), then the count of dropped lines."""
        thread = self.listener._thread
        if thread is None:
            return
        with contextlib.suppress(queue.Full):  # the listener's sentinel
            self.records.put(None, timeout=STOP_TIMEOUT)
        thread.join(STOP_TIMEOUT)
        self.listener._thread = None
        if self.handler.dropped:
            _write_now(
                self.stream,
                f"itsocr-mock: {self.handler.dropped} log lines were dropped in process "
                f"{os.getpid()}: stderr was not read fast enough",
            )


def _write_now(stream: TextIO, line: str) -> None:
    try:
        stream.write(line + "\n")
        stream.flush()
    except (OSError, ValueError):
        pass  # stderr closed or broken: nowhere left to say it


def configure_logging(level: str, stream: TextIO | None = None) -> ServerLog:
    """Send the process's log to `stream` (stderr) through a queue: see the module's doc.

    Called once by `itsocr-mock serve` before gunicorn forks; each worker then gets a
    fresh queue and listener of its own.
    """
    global _active
    # Neither our format nor gunicorn's uses these: skipping them makes a record a quarter
    # cheaper to create (the logging HOWTO's "Optimization" section names these switches).
    # gunicorn's format shows the process id, which stays.
    logging.logThreads = logging.logMultiprocessing = False
    logging._srcfile = None
    with _lock:
        if _active is not None:
            _active.stop()
        _active = ServerLog(level, stream or sys.stderr)
        _active.install()
        return _active


def stop_logging() -> None:
    """Flush this process's log and report dropped lines (at a worker's or the server's exit)."""
    with _lock:
        if _active is not None:
            _active.stop()


def _restart_in_child() -> None:
    """After fork: the parent's listener thread is gone; start a log of the child's own."""
    global _active, _lock
    _lock = threading.Lock()
    if _active is not None:
        _active = ServerLog(_active.level, _active.stream)
        _active.install()


os.register_at_fork(after_in_child=_restart_in_child)
