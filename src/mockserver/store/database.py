"""The SQLite database under `Store`: a connection per thread, the writer lock, write
transactions, and opening a state file (checked read-only, then brought up to date).

Several worker processes share one state file and see each other's writes at once (WAL mode).
``:memory:`` keeps a private in-memory database instead, for a single process: one connection
behind a lock, since SQLite's shared-cache memory mode does not honour busy timeouts.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from mockserver.errors import StateUnavailable
from mockserver.store.schema import NEW, SCHEMA_VERSION, bring_up_to_date, check_file
from mockserver.turns import no_waiting, waiting

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: one process, the threading lock suffices
    fcntl = None  # type: ignore[assignment]

MEMORY = ":memory:"


class WriterLock:
    """Serialises write transactions across the threads and processes sharing a state file.

    SQLite serialises writers by itself, but a writer that finds the database locked polls it
    with growing sleeps (its busy handler): under load an unlucky request starves for hundreds
    of milliseconds. Waiting here instead, on locks that wake a waiter as soon as they are
    free, keeps each write to its own duration. Threads queue on a threading lock; processes
    (gunicorn workers) on an flock of ``<state file>-lock``, opened once per process.
    """

    def __init__(self, path: str) -> None:
        self.path = path + "-lock"
        self._threads = threading.Lock()
        self._fd = -1
        self._pid = 0  # the process that opened `_fd`: a forked child must open its own

    def __enter__(self) -> None:
        # Free, as it mostly is: taken at once, without giving the turn up (a thread switch).
        if self._acquire(blocking=False):
            return
        with waiting():  # another writer may take a while: the worker serves others meanwhile
            self._acquire(blocking=True)

    def _acquire(self, *, blocking: bool) -> bool:
        if not self._threads.acquire(blocking):
            return False
        try:
            if fcntl is not None:
                fcntl.flock(self._descriptor(), fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:  # another process writes (LOCK_NB only)
            self._threads.release()
            return False
        except BaseException:
            self._threads.release()
            raise
        return True

    def __exit__(self, *_: object) -> None:
        try:
            if fcntl is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()

    def _descriptor(self) -> int:
        # An flock belongs to the open file, which fork() shares: each process opens its own.
        if self._pid != os.getpid():
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._pid = os.getpid()
        return self._fd

    def close(self) -> None:
        """Close this process's lock file (reopened on next use)."""
        with self._threads:  # not under a transaction of another thread
            if self._fd >= 0 and self._pid == os.getpid():
                os.close(self._fd)
            self._fd, self._pid = -1, 0


class Database:
    """A SQLite state file (or ``:memory:``) shared by the threads and processes using it."""

    def __init__(self, path: str | Path = MEMORY) -> None:
        self.path = str(path)
        self._memory = self.path == MEMORY
        self._local = threading.local()
        self._lock: AbstractContextManager[Any] = (
            threading.RLock() if self._memory else nullcontext()
        )
        self._writer = None if self._memory else WriterLock(self.path)
        self._shared: sqlite3.Connection | None = None
        # Every connection this store opened, by the thread it serves: `close()` closes them
        # all, not only the calling thread's (an unclosed one is a ResourceWarning on 3.13).
        self._opened: dict[threading.Thread, sqlite3.Connection] = {}
        self._opened_lock = threading.Lock()
        # A file is looked at read-only first: one that is not a usable state is refused
        # (StateError) before anything in it -- even its journal mode -- is changed.
        version = NEW if self._memory else check_file(self.path)
        if version == SCHEMA_VERSION:
            return
        try:
            with self.transaction() as db:
                bring_up_to_date(db, self.path)
        except (sqlite3.OperationalError, OSError) as failure:  # e.g. a read-only file system
            self.close()
            reason = failure.strerror if isinstance(failure, OSError) else failure
            raise StateUnavailable(
                f"state file {self.path} cannot be written ({reason}): use another --state"
            ) from None

    # -- connections ------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._memory:
            if self._shared is None:
                self._shared = self._open(MEMORY)
            return self._shared
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = self._open(self.path)
            self._adopt(db)
        return db

    def _adopt(self, db: sqlite3.Connection) -> None:
        # Threads come and go (Werkzeug's server starts one per request): a connection whose
        # thread has ended is closed here, so that they do not pile up until `close()`.
        with self._opened_lock:
            ended = [thread for thread in self._opened if not thread.is_alive()]
            for thread in ended:
                self._opened.pop(thread).close()
            self._opened[threading.current_thread()] = db

    @staticmethod
    def _open(path: str) -> sqlite3.Connection:
        # Autocommit mode: reads need no transaction, writes take BEGIN IMMEDIATE explicitly so
        # that concurrent writers queue on the busy timeout instead of failing on upgrade.
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        db.row_factory = sqlite3.Row
        if path != MEMORY:
            db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode stays consistent after a crash (kill -9 included); only an OS
            # crash or power loss could lose the latest commits, acceptable for a mock.
            db.execute("PRAGMA synchronous=NORMAL")
        return db

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: everything inside commits together or not at all."""
        with self._lock, self._writer or nullcontext(), no_waiting():
            db = self._connection()
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                # SQLite may have rolled back already (a full disk does): the original error,
                # not "cannot rollback - no transaction is active", is the one to see.
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._connection().execute(sql, params).fetchall()

    def _read_one(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        rows = self._read(sql, params)
        return rows[0] if rows else None

    def close(self) -> None:
        """Close every connection the store opened, in any thread (it reopens on next use)."""
        with self._opened_lock:
            opened = [*self._opened.values(), *([self._shared] if self._shared else [])]
            self._opened.clear()
            self._shared = None
            self._local = threading.local()
        for db in opened:
            db.close()
        if self._writer is not None:
            self._writer.close()
