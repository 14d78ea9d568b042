"""The rules of turns (mockserver/turns.py): a store transaction never gives the turn up, and
a wait for the state's writer lock always does, so one writer never stalls a worker; a free
writer lock is taken without a handoff."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from mockserver.store import Store, database
from mockserver.turns import in_turns, no_waiting, waiting

OCR = "/api/v1/ocr"


def test_waiting_inside_a_store_transaction_is_refused(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.sqlite3")
    try:
        with store.transaction(), pytest.raises(RuntimeError, match="rule 2"), waiting():
            pass
        with no_waiting(), no_waiting(), pytest.raises(RuntimeError), waiting():  # nested too
            pass
        with waiting():  # and outside one, it is allowed again
            pass
    finally:
        store.close()


def _turned(body: Callable[[], None]) -> Callable[[], None]:
    """`body` run as an OCR request of `itsocr-mock serve` runs: holding the worker's turn."""

    def app(_: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        body()
        start_response("200 OK", [])
        return [b""]

    turned = in_turns(app, paths={OCR})
    return lambda: list(turned({"PATH_INFO": OCR}, lambda *_: None))  # type: ignore[func-returns-value]


def test_a_request_waiting_for_the_writer_lock_gives_its_turn_to_others(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.sqlite3")
    writer = store._writer
    assert writer is not None
    other_ran, written = threading.Event(), threading.Event()

    def write() -> None:  # waits for the writer lock, which the test holds
        with store.transaction() as db:
            db.execute("INSERT INTO meta VALUES ('turns-test', 'x')")
        written.set()

    try:
        with writer:  # another writer (a control call, another worker) holds the lock
            blocked = threading.Thread(target=_turned(write), daemon=True)
            blocked.start()
            blocked.join(0.2)
            assert blocked.is_alive()  # waiting for the lock ...
            other = threading.Thread(target=_turned(other_ran.set), daemon=True)
            other.start()
            # ... without the turn: another request of the worker runs meanwhile.
            assert other_ran.wait(10), "a wait for the writer lock kept the worker's turn"
        assert written.wait(10)
        blocked.join(10)
    finally:
        store.close()


def test_a_free_writer_lock_is_taken_without_giving_the_turn_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(tmp_path / "state.sqlite3")
    handoffs: list[str] = []

    @contextmanager
    def counting() -> Iterator[None]:  # turns.waiting, counted
        handoffs.append("gave the turn up")
        with waiting():
            yield

    monkeypatch.setattr(database, "waiting", counting)

    def write() -> None:
        with store.transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES ('turns-test', 'x')")

    writer = store._writer
    assert writer is not None
    try:
        _turned(write)()  # nobody holds the lock: no thread switch for it
        assert handoffs == []
        with writer:  # now another writer does: the request waits out of turn
            blocked = threading.Thread(target=_turned(write), daemon=True)
            blocked.start()
            blocked.join(0.2)
        blocked.join(10)
        assert handoffs == ["gave the turn up"]
    finally:
        store.close()
