"""The SQLite state file: its schema version, the migration of older states, and what is
refused without a byte of it changed (the command line's side is in test_mistakes.py)."""

from __future__ import annotations

import contextlib
import io
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from PIL import Image

from mockserver import errors
from mockserver.backend import DEMO_ACCOUNTS, Backend
from mockserver.clock import parse_instant
from mockserver.store import (
    SCHEMA_VERSION,
    NewerState,
    NotOurState,
    StateError,
    Store,
)
from mockserver.store.schema import APPLICATION_ID, MIGRATIONS, SCHEMA
from mockserver.testing import ServerProcess

DATA = Path(__file__).parent / "data"


def load(dump: str, state: Path) -> Path:
    """`state`, made by sqlite3 from one of the SQL dumps under tests/data."""
    with contextlib.closing(sqlite3.connect(state)) as db:
        db.executescript((DATA / dump).read_text(encoding="utf-8"))
    return state


# A state of each earlier schema, as the kit of that time wrote it: (dump, account, token).
PREVIOUS = {
    1: ("state-v1.sql", "acct_51fac9ca26124205", "itsocr_0YqZSEI7oyLFRM5FcrXI20PTIZNlbWMz"),
    3: ("state-v3.sql", "acct_dafd00c82d54436a", "itsocr_EH11mw72IwREqtjGg7ZxRMwvvWYVaCgb"),
}


def header(path: Path) -> tuple[int, int]:
    """(application_id, user_version) of a SQLite file."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        return (
            db.execute("PRAGMA application_id").fetchone()[0],
            db.execute("PRAGMA user_version").fetchone()[0],
        )


def columns(path: Path, table: str) -> list[str]:
    """The columns of `table` in the SQLite file at `path`."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        return [row[1] for row in db.execute(f"PRAGMA table_info({table})")]


def test_a_new_state_is_marked_with_the_schema_version(tmp_path: Path) -> None:
    state = tmp_path / "new" / "state.sqlite3"
    Store(state).close()
    assert header(state) == (APPLICATION_ID, SCHEMA_VERSION)


def test_the_migrations_lead_to_the_schema_of_a_new_state(tmp_path: Path) -> None:
    """Every version has its migration, and a migrated state has the same tables and columns
    as a new one."""
    assert sorted(MIGRATIONS) == list(range(2, SCHEMA_VERSION + 1))
    migrated = load("state-v1.sql", tmp_path / "old.sqlite3")
    Store(migrated).close()
    new = tmp_path / "new.sqlite3"
    Store(new).close()
    for table in ("accounts", "tokens", "usage", "faults", "fixtures", "journal", "meta"):
        assert columns(migrated, table) == columns(new, table), table
        assert f"CREATE TABLE IF NOT EXISTS {table} " in SCHEMA


@pytest.mark.parametrize("version", list(PREVIOUS), ids=[f"schema {v}" for v in PREVIOUS])
def test_a_state_of_an_older_schema_is_migrated_forward(version: int, tmp_path: Path) -> None:
    dump, account, token = PREVIOUS[version]
    state = load(dump, tmp_path / "state.sqlite3")
    assert header(state) == (0, 0)  # before schema 4, the version was in the meta table
    store = Store(state)
    try:
        assert header(state) == (APPLICATION_ID, SCHEMA_VERSION)
        backend = Backend(store)
        backend.ensure_initialised()  # not empty: nothing is reset
        # Everything the old state held is there and works.
        assert [a.id for a in store.list_accounts()] == [d.id for d in DEMO_ACCOUNTS] + [account]
        principal = backend.authenticate(f"Bearer {token}", parse_instant("2030-01-15T12:00Z"))
        assert (principal.account.id, principal.plan.name) == (account, "pro")
        assert store.usage(account, "2030-01") == (7, 0)
        assert store.frozen_now() == "2030-01-15T12:00:00.000Z"
        [fault] = store.list_faults()
        assert (fault.account_id, fault.status, fault.remaining) == (account, 500, 2)
        assert fault.counts_usage is (version >= 2)  # the column's default before schema 2
        assert store.find_fixture("ab" * 32, "") == ("receipt.png", "TOTAL 42.00")
        assert (store.journal()[0].status, store.journal()[0].file_size) == (200, 5820)
        backend.revoke_token(principal.token.id)  # and it takes new writes
        with pytest.raises(errors.TokenRevoked):
            backend.authenticate(f"Bearer {token}", parse_instant("2030-01-15T12:00Z"))
    finally:
        store.close()
    with contextlib.closing(sqlite3.connect(state)) as db:  # the old version's row is gone
        assert db.execute("SELECT key FROM meta").fetchall() == [("frozen_now",)]


def console(*args: str) -> subprocess.CompletedProcess[str]:
    """`itsocr-mock ARGS` in a child process."""
    return subprocess.run(
        [sys.executable, "-m", "mockserver.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_cli_opens_a_state_of_the_previous_schema(tmp_path: Path) -> None:
    """The state the kit wrote until schema 4, loaded by sqlite3 from its dump, opened by the
    real command line: its fault rules and journal carry on, and it takes writes."""
    dump, account, _ = PREVIOUS[SCHEMA_VERSION - 1]
    state = str(load(dump, tmp_path / "state.sqlite3"))
    listed = console("faults", "list", "--state", state, "--json")
    assert listed.returncode == 0, listed.stderr
    assert [(f["account"], f["countsUsage"]) for f in json.loads(listed.stdout)] == [
        (account, True)
    ]
    assert header(Path(state)) == (APPLICATION_ID, SCHEMA_VERSION)
    assert console("faults", "clear", "--state", state).returncode == 0
    journal = console("requests", "--state", state, "--json")
    assert journal.returncode == 0, journal.stderr
    assert [entry.get("violations") for entry in json.loads(journal.stdout)] == [
        None,
        ["body: 'text' is a required property"],
    ]


@pytest.mark.parametrize(
    "workers", ["1", pytest.param("2", marks=pytest.mark.slow)], ids=["1 worker", "2 workers"]
)
def test_serve_carries_on_with_a_state_of_the_previous_schema(workers: str, tmp_path: Path) -> None:
    """The same state, served by the real `itsocr-mock serve`: its token is accepted, its fault
    rule (a 500 twice, counting the image: schema 2's column) applies, its usage carries on."""
    dump, account, token = PREVIOUS[SCHEMA_VERSION - 1]
    state = str(load(dump, tmp_path / "state.sqlite3"))
    image = io.BytesIO()
    Image.new("RGB", (60, 30), "white").save(image, format="PNG")
    # With two workers, gunicorn's master migrates the file before it forks them.
    with ServerProcess(state=state, args=("--workers", workers)) as server:
        statuses = [
            requests.post(
                f"{server.url}/api/v1/ocr",
                headers={"Authorization": f"Bearer {token}"},
                files={"file": ("scan.png", image.getvalue(), "image/png")},
                timeout=30,
            ).status_code
            for _ in range(3)
        ]
        assert statuses == [500, 500, 200]
        usage = requests.get(f"{server.url}/_mock/accounts/{account}/usage", timeout=10)
        assert usage.json()["imagesUsed"] == 10  # the 7 of the old state, and these three


def test_a_current_state_is_opened_without_a_write(tmp_path: Path) -> None:
    state = tmp_path / "state.sqlite3"
    backend = Backend(Store(state))
    backend.ensure_initialised()
    backend.store.close()
    before = state.read_bytes()
    Store(state).close()
    assert state.read_bytes() == before


@pytest.mark.parametrize(
    ("content", "refusal", "problem"),
    [
        (b"", None, None),  # an empty file is a new state
        (b"SQLite format 3\x00" + b"\x00" * 84, NotOurState, "not a SQLite database"),
        (b"\x00" * 4096, NotOurState, "not a SQLite database"),
        (b"hello", NotOurState, "not a SQLite database"),
    ],
    ids=["empty", "a bare header", "zeros", "text"],
)
def test_what_a_file_holds(
    tmp_path: Path, content: bytes, refusal: type[StateError] | None, problem: str | None
) -> None:
    state = tmp_path / "state.sqlite3"
    state.write_bytes(content)
    if refusal is None:
        Store(state).close()
        assert header(state) == (APPLICATION_ID, SCHEMA_VERSION)
        return
    with pytest.raises(refusal) as refused:
        Store(state)
    assert problem is not None
    assert problem in str(refused.value)
    assert state.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.sqlite3"]


def test_another_applications_tables_are_never_touched(tmp_path: Path) -> None:
    state = tmp_path / "app.db"
    with contextlib.closing(sqlite3.connect(state)) as db:
        db.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance REAL)")
        db.execute("PRAGMA user_version = 7")
        db.commit()
    before = state.read_bytes()
    with pytest.raises(NotOurState, match=r"another application's SQLite database \(tables: "):
        Store(state)
    assert state.read_bytes() == before


def test_an_unmarked_state_whose_columns_do_not_fit_a_version_is_refused(tmp_path: Path) -> None:
    """Schema 3's column without schema 2's: no kit ever wrote that."""
    state = load("state-v1.sql", tmp_path / "state.sqlite3")
    with contextlib.closing(sqlite3.connect(state)) as db:
        db.execute("ALTER TABLE journal ADD COLUMN violations TEXT")
        db.commit()
    before = state.read_bytes()
    with pytest.raises(NotOurState, match=r"is damaged \(its columns do not match\)"):
        Store(state)
    assert state.read_bytes() == before


def test_a_state_of_a_newer_kit_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "state.sqlite3"
    Store(state).close()
    with contextlib.closing(sqlite3.connect(state)) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    before = state.read_bytes()
    with pytest.raises(NewerState, match="upgrade the kit, or use another --state"):
        Store(state)
    assert state.read_bytes() == before
