"""The SQLite state file's schema, its version, and the migrations that bring older files forward.

The file's header marks it: ``PRAGMA application_id`` says the SQLite file is an itsocr-mock
state, ``PRAGMA user_version`` which schema it has. Versions 1 to 3 predate both: they kept
"1" in the ``meta`` table and are told apart by their columns (the kits of versions 2 and 3
added their column to older files when they opened them). Opening a state file (`check_file`,
then `bring_up_to_date`) creates a new one, migrates an older one in one transaction, and
refuses -- changing nothing -- a file that is not a state of this kit, a damaged one, or one a
newer kit wrote.

Changing the schema: add the statements to `SCHEMA` (for new files) and, under the next
version number, to `MIGRATIONS` (for existing ones), and add a test that opens a state of the
previous version (see ``tests/data/state-v*.sql``).
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from mockserver.errors import StateUnavailable
from mockserver.store.base import NewerState, NotOurState

APPLICATION_ID = 0x69744F63  # "itOc": this SQLite file is an itsocr-mock state
SCHEMA_VERSION = 4
NEW = 0  # the version of a file that holds nothing yet

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS accounts (
    id TEXT PRIMARY KEY, plan TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (
    id TEXT PRIMARY KEY, account_id TEXT NOT NULL, digest TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL, created_at TEXT NOT NULL, expires_at TEXT, revoked_at TEXT);
CREATE INDEX IF NOT EXISTS tokens_by_account ON tokens (account_id);
CREATE TABLE IF NOT EXISTS usage (
    account_id TEXT NOT NULL, period TEXT NOT NULL,
    images_used INTEGER NOT NULL DEFAULT 0, bytes_processed INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (account_id, period));
CREATE TABLE IF NOT EXISTS faults (
    id TEXT PRIMARY KEY, account_id TEXT, status INTEGER, error TEXT,
    delay_ms INTEGER NOT NULL DEFAULT 0, remaining INTEGER, drop_connection INTEGER NOT NULL,
    created_at TEXT NOT NULL, counts_usage INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS fixtures (
    sha256 TEXT NOT NULL, prompt TEXT NOT NULL, name TEXT NOT NULL, text TEXT NOT NULL,
    media_type TEXT, PRIMARY KEY (sha256, prompt));
-- seq only orders the entries: without AUTOINCREMENT, which would write sqlite_sequence's
-- page on every request, a cleared journal numbers from 1 again.
CREATE TABLE IF NOT EXISTS journal (
    seq INTEGER PRIMARY KEY, time TEXT NOT NULL, method TEXT NOT NULL,
    path TEXT NOT NULL, status INTEGER NOT NULL, account_id TEXT, token_prefix TEXT,
    file_name TEXT, mime_type TEXT, file_size INTEGER, sha256 TEXT, fixture TEXT, prompt TEXT,
    error TEXT, hint TEXT, duration_ms REAL, violations TEXT);
"""
TABLES = frozenset({"meta", "accounts", "tokens", "usage", "faults", "fixtures", "journal"})

# MIGRATIONS[n]: the statements that bring a state of version n - 1 to version n.
MIGRATIONS: dict[int, tuple[str, ...]] = {
    # 2: a fault rule may count the image before it fails (countsUsage).
    2: ("ALTER TABLE faults ADD COLUMN counts_usage INTEGER NOT NULL DEFAULT 0",),
    # 3: the proxy's journal keeps the ways an answer broke the contract.
    3: ("ALTER TABLE journal ADD COLUMN violations TEXT",),
    # 4: the version moves from the meta table into the file's header (user_version), where it
    # can be read before anything else of the file; `bring_up_to_date` writes the header.
    4: ("DELETE FROM meta WHERE key = 'schema_version'",),
}
# The columns versions 2 and 3 added, in order: an unmarked file's version is 1 + how many of
# them it has.
_UNMARKED_COLUMNS = (("faults", "counts_usage"), ("journal", "violations"))

DELETE_OR_ELSEWHERE = "delete it or use another --state"
_REPLACE = f"{DELETE_OR_ELSEWHERE} (`itsocr-mock reset --state PATH --force` replaces it)"


def check_file(path: str) -> int:
    """The schema version of the state file at `path` (`NEW` when there is none yet), read
    without changing anything; or a StateError / `errors.StateUnavailable` saying what is
    wrong and what to do.

    Creates the file's directory when the file does not exist.
    """
    file = Path(path)
    if not file.exists():
        _check_creatable(file)
        return NEW
    _check_usable(file)
    # Without a write-ahead log beside it (no process has the file open), read it as
    # immutable: a read-only connection would leave an empty -wal and -shm file behind.
    mode = "ro" if Path(f"{path}-wal").exists() else "ro&immutable=1"
    try:
        reader = sqlite3.connect(f"{file.absolute().as_uri()}?mode={mode}", uri=True)
    except sqlite3.Error as failure:
        raise StateUnavailable(
            f"state file {path} cannot be opened ({failure}): use another --state"
        ) from None
    try:
        version = inspect(reader, path)
        if version != NEW:
            _check_integrity(reader, path)
        return version
    finally:
        reader.close()


def _check_usable(file: Path) -> None:
    if file.is_dir():
        raise StateUnavailable(f"state file {file} is a directory: use another --state")
    if not file.is_file():
        raise StateUnavailable(f"state file {file} is not a regular file: use another --state")
    if _read_only_mount(file.parent):
        raise StateUnavailable(
            f"state file {file} is on a read-only file system, where it cannot be written: "
            "use another --state"
        )
    if not os.access(file, os.R_OK | os.W_OK):
        raise StateUnavailable(
            f"state file {file} cannot be read and written by this user: "
            "change its permissions or use another --state"
        )
    if not os.access(file.parent, os.W_OK):  # the WAL and lock files live beside the state
        raise StateUnavailable(
            f"state file {file} is in a read-only directory ({file.parent}), where SQLite "
            "cannot write beside it: use another --state"
        )


def _check_creatable(file: Path) -> None:
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
    except OSError as failure:
        reason = (
            "a file is in its way"
            if isinstance(failure, FileExistsError | NotADirectoryError)
            else failure.strerror
        )
        raise StateUnavailable(
            f"state file {file} cannot be created: its directory {file.parent} cannot be "
            f"made ({reason}): use another --state"
        ) from None
    if not os.access(file.parent, os.W_OK):
        reason = "read-only file system" if _read_only_mount(file.parent) else "no permission"
        raise StateUnavailable(
            f"state file {file} cannot be created: its directory {file.parent} is not "
            f"writable ({reason}): use another --state"
        )


def _read_only_mount(directory: Path) -> bool:
    try:
        return bool(os.statvfs(directory).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def inspect(db: sqlite3.Connection, path: str) -> int:
    """The schema version of the state `db` holds (`NEW` for an empty database), or
    NotOurState / NewerState. Reads only."""
    try:
        application_id = db.execute("PRAGMA application_id").fetchone()[0]
        user_version = db.execute("PRAGMA user_version").fetchone()[0]
        tables = {
            row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        unmarked = _unmarked_version(db, path) if application_id == 0 and tables >= TABLES else 0
    except sqlite3.DatabaseError as failure:
        raise _unreadable(path, failure) from None
    if application_id == APPLICATION_ID:
        if user_version > SCHEMA_VERSION:
            raise NewerState(
                f"state file {path} was written by a newer itsocr-mock (schema {user_version}; "
                f"this one knows up to {SCHEMA_VERSION}): upgrade the kit, or use another "
                "--state (`itsocr-mock reset --state PATH --force` replaces it, losing its data)"
            )
        if not tables >= TABLES:
            missing = ", ".join(sorted(TABLES - tables))
            raise NotOurState(f"state file {path} is damaged (no table {missing}): {_REPLACE}")
        return int(user_version)
    if application_id == 0 and user_version == 0:
        if not tables:
            return NEW
        if unmarked:
            return unmarked
    shown = ", ".join(sorted(tables)[:5]) + (", ..." if len(tables) > 5 else "")
    raise NotOurState(
        f"state file {path} is another application's SQLite database (tables: {shown or 'none'}"
        f"): use another --state"
    )


def _unmarked_version(db: sqlite3.Connection, path: str) -> int:
    """The version of a state written before the header was marked (1 to 3), or 0 when the
    tables are not this kit's."""
    marked = db.execute("SELECT 1 FROM meta WHERE key = 'schema_version' AND value = '1'")
    if marked.fetchone() is None:
        return 0
    present = [
        column in {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        for table, column in _UNMARKED_COLUMNS
    ]
    added = present.index(False) if False in present else len(present)
    if any(present[added:]):  # a later version's column without an earlier one's
        raise NotOurState(f"state file {path} is damaged (its columns do not match): {_REPLACE}")
    return 1 + added


def _unreadable(path: str, failure: sqlite3.DatabaseError) -> NotOurState:
    if "not a database" in str(failure):
        return NotOurState(f"state file {path} is not a SQLite database: {_REPLACE}")
    return NotOurState(f"state file {path} is damaged ({_one_line(str(failure))}): {_REPLACE}")


def _one_line(text: str, width: int = 120) -> str:
    flat = " ".join(text.replace("*** in database main ***", "").split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _check_integrity(db: sqlite3.Connection, path: str) -> None:
    """A cheap whole-file check (no index cross-checks): a truncated or overwritten file is
    told at start-up rather than by a request that reads the bad page."""
    try:
        verdict = [row[0] for row in db.execute("PRAGMA quick_check(1)")]
    except sqlite3.DatabaseError as failure:
        raise _unreadable(path, failure) from None
    if verdict != ["ok"]:
        raise NotOurState(f"state file {path} is damaged ({_one_line(verdict[0])}): {_REPLACE}")


def bring_up_to_date(db: sqlite3.Connection, path: str) -> None:
    """Create the schema in a new state, or migrate an older one, inside the caller's write
    transaction; nothing when the state is current. Refuses what `inspect` refuses."""
    version = inspect(db, path)  # again, under the write lock: another process may have done it
    if version == SCHEMA_VERSION:
        return
    if version == NEW:
        for statement in _statements(SCHEMA):
            db.execute(statement)
    else:
        for step in range(version + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[step]:
                db.execute(statement)
    # Plain integers, not user input: PRAGMA takes no bound parameters.
    db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _statements(script: str) -> list[str]:
    lines = [line for line in script.splitlines() if not line.lstrip().startswith("--")]
    return [statement.strip() for statement in "\n".join(lines).split(";") if statement.strip()]
