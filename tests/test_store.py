"""The SQLite store's own duties: the connections it opens in every thread are its to close."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import pytest

from mockserver.store import Store

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="counts open files in /proc/self/fd"
)


def open_files(path: Path) -> int:
    """How many of this process's file descriptors are open on the database file `path`
    (one per connection; its WAL and lock files are not counted)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed since listed
            continue
        count += target == str(path)
    return count


def use_in_threads(
    store: Store, threads: int, *, keep_alive: threading.Event | None
) -> list[threading.Thread]:
    """Read the store from `threads` threads at once (each opens its own connection)."""
    opened = threading.Barrier(threads + 1)

    def read() -> None:
        store.list_accounts()
        opened.wait(timeout=10)
        if keep_alive is not None:
            keep_alive.wait(timeout=10)

    started = [threading.Thread(target=read, daemon=True) for _ in range(threads)]
    for thread in started:
        thread.start()
    opened.wait(timeout=10)
    return started


def test_close_closes_the_connections_of_every_thread(tmp_path: Path) -> None:
    state = tmp_path / "state.sqlite3"
    store = Store(state)
    release = threading.Event()
    use_in_threads(store, 4, keep_alive=release)  # four threads, each still holding its own
    assert open_files(state) >= 4
    store.close()  # from a fifth thread, while the four are alive
    assert open_files(state) == 0
    release.set()
    assert store.list_accounts() == []  # a closed store reopens on next use
    store.close()
    assert open_files(state) == 0


def test_the_connections_of_ended_threads_do_not_pile_up(tmp_path: Path) -> None:
    state = tmp_path / "state.sqlite3"
    store = Store(state)
    for _ in range(20):  # Werkzeug's server runs each request in a thread of its own
        for thread in use_in_threads(store, 2, keep_alive=None):  # not other tests' threads
            thread.join(timeout=10)
    # 40 threads came and went: an ended thread's connection is closed when the next opens.
    # (SQLite may keep a closed connection's descriptor for reuse while others are open.)
    assert open_files(state) <= 10  # not one per thread that ever used it
    store.close()
    assert open_files(state) == 0
