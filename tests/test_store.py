"""The stores' own duties, beyond the backend's tests (which run against both stores).

SQLite: the connections it opens in every thread are its to close. Both: the journal's cap,
a fault's `times` spent once by stores sharing one state. Redis: tokens kept hashed, prefixes
as separate states, an unreachable Redis told as `StateUnavailable`, passwords never shown."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import redis

from mockserver import errors
from mockserver.backend import DEMO_ACCOUNTS, Backend, digest
from mockserver.clock import parse_instant
from mockserver.errors import StateUnavailable
from mockserver.store import (
    FaultRow,
    JournalEntry,
    ReadAhead,
    StateError,
    StateStore,
    Store,
)
from mockserver.store.redis import RedisStore
from mockserver.testing import RedisServer

on_linux = pytest.mark.skipif(
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


@on_linux
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


@on_linux
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


# -- both implementations: what the interface promises beyond the backend's tests ------------


def open_each(kind: str, request: pytest.FixtureRequest, **options: Any) -> StateStore:
    """A fresh store of `kind`: SQLite in memory or in a file, or Redis under its own prefix."""
    if kind == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        return RedisStore(server.url, request.getfixturevalue("redis_prefix"), **options)
    path = ":memory:" if kind == "memory" else request.getfixturevalue("tmp_path") / "s.sqlite3"
    return Store(path, **options)


def entry(status: int, account_id: str | None = None) -> JournalEntry:
    return JournalEntry(
        time="", method="POST", path="/api/v1/ocr", status=status, account_id=account_id
    )


@pytest.mark.parametrize("kind", ["memory", "file", "redis"])
def test_the_journal_keeps_the_newest_entries_up_to_its_cap(
    kind: str, request: pytest.FixtureRequest
) -> None:
    store = open_each(kind, request, journal_limit=5)
    for status in range(200, 212):  # twelve requests, the last five kept
        store.record(entry(status, "acct_a" if status % 2 else "acct_b"))
    assert [e.status for e in store.journal()] == [207, 208, 209, 210, 211]
    assert [e.status for e in store.journal(limit=2)] == [210, 211]
    assert [e.status for e in store.journal(limit=50)] == [207, 208, 209, 210, 211]
    assert [e.status for e in store.journal(account_id="acct_a")] == [207, 209, 211]
    assert store.count_image("acct_c", "2026-01", None, 10, entry(200, "acct_c"))
    assert [e.account_id for e in store.journal()][-1] == "acct_c"
    assert len(store.journal()) == 5
    store.close()


@pytest.mark.parametrize("kind", ["memory", "file", "redis"])
def test_an_ocr_requests_read_ahead_answers_as_its_lookups_would(
    kind: str, request: pytest.FixtureRequest
) -> None:
    backend = Backend(open_each(kind, request))
    backend.reset()
    account, new = backend.create_account("free")
    token = digest(new.token)
    store = backend.store
    assert store.count_image(account.id, "2026-03", 10, 100, entry(200, account.id))
    found = store.find_token(token)
    with store.arriving(ReadAhead(token, "2026-03")) as overrides:
        assert overrides == store.overrides()
        assert store.find_token(token) == found
        assert store.find_token(digest(DEMO_ACCOUNTS[0].token)) != found  # another token
        assert store.usage(account.id, "2026-02") == (0, 0)  # another month: read as asked
        assert store.usage(account.id, "2026-03") == (1, 100)
        assert store.count_image(account.id, "2026-03", 10, 50, entry(200, account.id))
        assert store.usage(account.id, "2026-03") == (2, 150)  # what was read ahead is spent
        assert store.find_token(token) == found
    assert found is not None
    store.revoke_token(found[0].id, "2026-03-02T00:00:00.000Z")
    with store.arriving(ReadAhead(token, "2026-03")):
        revoked = store.find_token(token)
        assert revoked is not None
        assert revoked[0].revoked_at == "2026-03-02T00:00:00.000Z"
    with store.arriving(ReadAhead(None, "2026-03")) as overrides:  # a header without a token
        assert overrides == store.overrides()
        assert store.find_token(token) == revoked
    store.close()


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_a_journal_limit_below_one_is_refused(kind: str, request: pytest.FixtureRequest) -> None:
    with pytest.raises(StateError, match="at least 1"):
        open_each(kind, request, journal_limit=0)


@pytest.mark.parametrize("kind", ["file", "redis"])
def test_a_faults_times_are_spent_once_across_stores_sharing_the_state(
    kind: str, request: pytest.FixtureRequest
) -> None:
    # Two stores on one state: two replicas of the mock. Eight threads claim at once.
    first = open_each(kind, request)
    second = (
        RedisStore(first.path, first.prefix) if isinstance(first, RedisStore) else Store(first.path)
    )
    first.add_fault(FaultRow("flt_1", None, 500, None, 0, 5, False, "2026-01-01T00:00:00.000Z"))
    start = threading.Barrier(8)
    claimed: list[FaultRow | None] = []

    def claim(store: StateStore) -> None:
        start.wait(timeout=10)
        claimed.extend(store.take_fault("acct_a") for _ in range(3))

    threads = [threading.Thread(target=claim, args=((first, second)[i % 2],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    taken = [fault for fault in claimed if fault is not None]
    assert len(claimed) == 24
    assert sorted(fault.remaining or 0 for fault in taken) == [1, 2, 3, 4, 5]
    assert first.list_faults() == second.list_faults() == []
    first.close()
    second.close()


# -- Redis only ------------------------------------------------------------------------------


def all_redis_text(server: RedisServer) -> str:
    """Every key and value in the Redis, as one text (hashes, sets, lists included)."""
    client = redis.Redis.from_url(server.url, decode_responses=True)
    parts: list[str] = []
    for key in client.scan_iter():
        kind = client.type(key)
        value: Any = {
            "string": client.get,
            "hash": client.hgetall,
            "zset": lambda k: client.zrange(k, 0, -1),
            "list": lambda k: client.lrange(k, 0, -1),
            "set": client.smembers,
        }[kind](key)
        parts.append(f"{key} {value}")
    client.close()
    return "\n".join(parts)


def test_redis_keeps_tokens_only_as_digest_and_display_prefix(
    redis_server: RedisServer, redis_prefix: str
) -> None:
    backend = Backend(RedisStore(redis_server.url, redis_prefix))
    backend.reset()
    _, new = backend.create_account("pro")
    stored = all_redis_text(redis_server)
    for token in (new.token, *(demo.token for demo in DEMO_ACCOUNTS)):
        assert token not in stored
        assert digest(token) in stored
    backend.store.close()


def test_two_prefixes_on_one_redis_are_two_states(
    redis_server: RedisServer, redis_prefix: str
) -> None:
    one = Backend(RedisStore(redis_server.url, redis_prefix + "one:"))
    other = Backend(RedisStore(redis_server.url, redis_prefix + "other:"))
    one.reset()
    other.reset()
    account, _ = one.create_account("pro")
    other.freeze_clock(parse_instant("2026-01-15T00:00:00Z"))
    assert [a.id for a in other.accounts()] == [demo.id for demo in DEMO_ACCOUNTS]
    assert one.store.frozen_now() is None
    one.reset()  # wipes its own keys only
    assert one.store.get_account(account.id) is None
    assert other.store.frozen_now() == "2026-01-15T00:00:00.000Z"
    one.store.close()
    other.store.close()


def test_an_unreachable_redis_is_state_unavailable(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis")
    url = server.start().url
    store = RedisStore(url, "t:")
    store.set_images_used("acct_a", "2026-01", 3)
    server.stop()
    with pytest.raises(StateUnavailable, match=r"redis://127\.0\.0\.1:\d+/0 cannot be reached"):
        store.usage("acct_a", "2026-01")
    with pytest.raises(StateUnavailable):
        RedisStore(url, "t:")  # at start-up: refused at once
    server.start()  # same port, a fresh (empty) Redis: the store reconnects by itself
    assert store.usage("acct_a", "2026-01") == (0, 0)
    store.close()
    server.stop()


def test_a_password_in_the_url_is_used_and_never_shown(tmp_path: Path) -> None:
    with RedisServer(tmp_path / "redis", password="s3cret-pass") as server:
        store = RedisStore(server.url, "t:")
        assert store.is_empty()
        assert "s3cret-pass" not in store.path
        assert store.path == f"redis://:***@127.0.0.1:{server.port}/0"
        store.close()
        wrong = server.url.replace("s3cret-pass", "wrong")
        with pytest.raises(StateUnavailable) as refused:
            RedisStore(wrong, "t:")
        assert "wrong" not in str(refused.value)


def test_redis_caps_the_journal_in_bytes_too(
    redis_server: RedisServer, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mockserver.store import base

    monkeypatch.setattr(base, "JOURNAL_BYTES", 200_000)
    store = RedisStore(redis_server.url, redis_prefix)
    for _ in range(300):
        store.record(JournalEntry("t", "POST", "/api/v1/ocr", 500, prompt="p" * 2000))
    kept = store.journal()
    assert 80 < len(kept) < 100  # 200 KB of entries of a little over 2 KB each, exactly
    assert kept[-1].seq == 300
    store.clear_journal()
    store.record(JournalEntry("t", "POST", "/api/v1/ocr", 500, prompt="p" * 2000))
    assert len(store.journal()) == 1
    store.close()


def test_a_count_whose_reply_redis_lost_is_still_known_to_be_counted(
    redis_server: RedisServer, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis lost right after running the count: the marker it left says it counted, so the
    image is answered 200; a count that never reached Redis is not counted (the live 500)."""
    store = RedisStore(redis_server.url, redis_prefix)
    ran = store._count

    def reply_lost(*args: Any) -> Any:
        ran(*args)  # the script runs in Redis ...
        raise errors.StateUnavailable("connection lost")  # ... and its reply never comes

    def never_sent(*_: Any) -> Any:
        raise errors.StateUnavailable("connection lost")

    try:
        monkeypatch.setattr(store, "_count", reply_lost)
        counted = entry(200, "acct")
        assert store.count_image("acct", "2030-01", 10, 5, counted)
        assert counted.seq is not None
        monkeypatch.setattr(store, "_count", never_sent)
        with pytest.raises(errors.StateUnavailable):
            store.count_image("acct", "2030-01", 10, 5, entry(200, "acct"))
        assert store.usage("acct", "2030-01")[0] == 1
    finally:
        store.close()
