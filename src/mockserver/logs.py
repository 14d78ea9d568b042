"""The server's log, kept off the request path.

A request only hands its log records to a queue (`logging.handlers.QueueHandler`); a
listener thread of the same process formats them and writes them to stderr. So formatting
and writing never happen while a request holds the worker's turn (`turns.py`), and a slow
reader of stderr -- a full pipe, a terminal scrolled back, `| less` -- never stalls a
request: when the queue is full, a record is dropped and counted instead of waiting. The
count is logged as soon as the listener catches up, and again when the process stops.

The listener works in batches: woken by the first record after a quiet spell, it lets
`GATHER_SECONDS` of records pile up, then formats them all and writes them in one call. A
`queue.Queue` would wake it for every record instead: a thread switch per request, and the
listener taking the GIL from the request thread each time that thread waits for SQLite or
its socket -- measured, that cost the default (INFO) configuration a fifth of its
throughput against WARNING, and most of its p99.

Threads do not survive `fork()`: gunicorn's workers each start a listener of their own
(`os.register_at_fork`), with an empty queue.
"""

from __future__ import annotations

import logging
import os
import queue
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from logging.handlers import QueueHandler, QueueListener
from typing import TextIO

FORMAT = "%(asctime)s %(name)s %(message)s"
# Records waiting to be written, per process. At a few hundred bytes a record this bounds
# the memory a stalled stderr can hold (a few MiB); past it, records are dropped.
QUEUE_SIZE = 10_000
# How long stopping waits for the listener to write what is queued: a reader of stderr that
# never reads again must not keep a worker from exiting.
STOP_TIMEOUT = 1.0
# How long the listener lets records pile up once woken: log lines appear this much later,
# and the listener wakes at most 1 / GATHER_SECONDS times a second whatever the load.
GATHER_SECONDS = 0.05
# Lines written in one call at most (a batch larger than this is written in several).
BATCH_LINES = 512

_lock = threading.Lock()
_active: ServerLog | None = None


class _Batches:
    """The records between the handler and the listener: a queue, as QueueHandler and
    QueueListener use it, that wakes its reader once per batch rather than once per record.

    `put_nowait` appends to a deque (no lock) and sets an event only when the reader sleeps;
    `get` hands out what is there, and when nothing is, calls `on_idle` (the writer writes
    what it holds), sleeps until a record arrives, then `GATHER_SECONDS` more.
    """

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._records: deque[logging.LogRecord | None] = deque()
        self._arrived = threading.Event()
        self.on_idle: Callable[[], None] = lambda: None

    def put_nowait(self, record: logging.LogRecord | None) -> None:
        """Queue `record`; queue.Full when `maxsize` records wait already."""
        if len(self._records) >= self.maxsize:
            raise queue.Full
        self._records.append(record)
        if not self._arrived.is_set():  # the reader sleeps: wake it (once per batch)
            self._arrived.set()

    def put(self, record: logging.LogRecord | None, block: bool = True, timeout: float = 0) -> None:
        """Queue `record` even past `maxsize` (the listener's sentinel: it must get in)."""
        self._records.append(record)
        self._arrived.set()

    def get(self, block: bool = True) -> logging.LogRecord | None:
        """The oldest record; without one, write what is held and wait for the next batch."""
        while True:
            try:
                record = self._records.popleft()
            except IndexError:
                if not block:
                    raise queue.Empty from None
            else:
                if record is None:  # the sentinel: the listener stops, nothing held stays
                    self.on_idle()
                return record
            self.on_idle()
            self._arrived.clear()
            if self._records:  # a record came between the pop and the clear
                continue
            self._arrived.wait()
            time.sleep(GATHER_SECONDS)  # let the batch gather: one wake-up for all of it

    def empty(self) -> bool:
        """True when no record waits."""
        return not self._records


class _Dropping(QueueHandler):
    """A QueueHandler that never waits: a full queue drops the record and counts it."""

    def __init__(self, records: _Batches) -> None:
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
            self.count_dropped(1)

    def count_dropped(self, records: int) -> None:
        """Count `records` as dropped (a full queue, or lines the stream refused)."""
        with self._count_lock:
            self.dropped += records

    def unreported(self) -> int:
        """Records dropped since the last call."""
        with self._count_lock:
            count, self._reported = self.dropped - self._reported, self.dropped
        return count


class _Writing(logging.Handler):
    """The listener's side: formats records into a batch, written to the stream in one call
    when the queue runs dry; first a line counting the records dropped before, if any."""

    def __init__(self, stream: TextIO, source: _Dropping) -> None:
        super().__init__()
        self.stream, self.source = stream, source
        self.setFormatter(logging.Formatter(FORMAT))
        self._batch: list[str] = []

    def handle(self, record: logging.LogRecord) -> bool:
        """Add `record`'s line to the batch, after a line counting the records dropped."""
        dropped = self.source.unreported()
        if dropped:
            self.emit(_dropped_record(dropped))
        self.emit(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        """Format `record` into the batch (a record that cannot be formatted is reported as
        logging reports it, on stderr, and the listener goes on)."""
        try:
            self._batch.append(self.format(record) + "\n")
        except Exception:
            self.handleError(record)
        if len(self._batch) >= BATCH_LINES:
            self.flush()

    def flush(self) -> None:
        """Write the batch in one call."""
        if not self._batch:
            return
        text, lines = "".join(self._batch), len(self._batch)
        self._batch.clear()
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # stderr closed or broken: the lines are lost, counted
            self.source.count_dropped(lines)


def _dropped_record(count: int) -> logging.LogRecord:
    return logging.LogRecord(
        "itsocr_mock", logging.WARNING, __file__, 0,
        "%d log lines dropped: stderr was not read fast enough", (count,), None,
    )  # fmt: skip


class ServerLog:
    """The queue, its handler on the root logger and the listener that writes to `stream`."""

    def __init__(self, level: str, stream: TextIO) -> None:
        self.level, self.stream = level.upper(), stream
        self.records = _Batches(QUEUE_SIZE)
        self.handler = _Dropping(self.records)
        self.writer = _Writing(stream, self.handler)
        self.records.on_idle = self.writer.flush
        self.listener = QueueListener(self.records, self.writer)

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
        self.records.put(None)  # the listener's sentinel: it writes what it holds and stops
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
