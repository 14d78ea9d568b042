"""The journal's table in the SQLite state: append, prune to its caps, read, clear.

`store.sqlite.Store` inherits it: the journal's part of the StateStore, over the connections
and transactions of `store.database`.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import fields

from mockserver.store.base import JOURNAL_BYTES, JournalEntry, StateStore
from mockserver.store.database import Database

_JOURNAL_PRUNE_EVERY = 500  # journal entries between two prunings of those past the caps
_ENTRY_REST = 200  # characters an entry counts for besides its variable text columns
# An entry's size: its variable text columns, plus about 200 characters for the rest.
_ENTRY_SIZE = (
    " + ".join(
        f"length(coalesce({column}, ''))"
        for column in ("file_name", "mime_type", "prompt", "error", "hint", "account_id", "fixture")
    )
    + f" + {_ENTRY_REST}"
)


_JOURNAL_COLUMNS = tuple(f.name for f in fields(JournalEntry) if f.name != "seq")


class JournalTable(Database, StateStore):
    """The journal of requests, numbered by `seq` without gaps and capped in entries and size
    (`StateStore.journal_limit`, `JOURNAL_BYTES`)."""

    def record(self, entry: JournalEntry) -> None:
        """Append a request to the journal."""
        with self.transaction() as db:
            self._insert_journal(db, entry)

    def _insert_journal(self, db: sqlite3.Connection, entry: JournalEntry) -> None:
        values = [getattr(entry, name) for name in _JOURNAL_COLUMNS]
        if entry.violations is not None:
            values[_JOURNAL_COLUMNS.index("violations")] = json.dumps(list(entry.violations))
        placeholders = ", ".join("?" * len(values))
        cursor = db.execute(
            f"INSERT INTO journal ({', '.join(_JOURNAL_COLUMNS)}) VALUES ({placeholders})",  # noqa: S608
            values,
        )
        entry.seq = cursor.lastrowid
        if entry.seq is not None and entry.seq % _JOURNAL_PRUNE_EVERY == 0:
            self._prune_journal(db, entry.seq)

    def _prune_journal(self, db: sqlite3.Connection, seq: int) -> None:
        """Drop the entries past the caps: the count, then the size in characters."""
        db.execute("DELETE FROM journal WHERE seq <= ?", (seq - self.journal_limit,))
        if self._journal_may_exceed_bytes(db):
            db.execute(
                "DELETE FROM journal WHERE seq <= (SELECT seq FROM (SELECT seq, "  # noqa: S608
                f"SUM({_ENTRY_SIZE}) OVER (ORDER BY seq DESC) AS kept FROM journal) "
                "WHERE kept > ? ORDER BY seq DESC LIMIT 1)",
                (JOURNAL_BYTES,),
            )

    def _journal_may_exceed_bytes(self, db: sqlite3.Connection) -> bool:
        """Whether the journal's size may be over `JOURNAL_BYTES`, from a bound that costs
        nothing to read: the database's pages in use hold every character of its text (a byte
        at least), plus `_ENTRY_REST` an entry. Summing the sizes themselves takes about 10 ms
        for 10,000 entries, with the writer lock held: a stall of every worker each time."""
        pages, free, page_size = (
            db.execute(f"PRAGMA {name}").fetchone()[0]
            for name in ("page_count", "freelist_count", "page_size")
        )
        # seq is the rowid: its first and last are read from the table's b-tree ends.
        span = db.execute("SELECT COALESCE(MAX(seq) - MIN(seq) + 1, 0) FROM journal")
        (entries,) = span.fetchone()
        return bool((pages - free) * page_size + _ENTRY_REST * entries > JOURNAL_BYTES)

    def journal(
        self, account_id: str | None = None, status: int | None = None, limit: int | None = None
    ) -> list[JournalEntry]:
        """Journal entries, oldest first, optionally for one account and/or one status."""
        # Entries are numbered without gaps: the newest `journal_limit` are those past this line
        # (the pruning leaves up to _JOURNAL_PRUNE_EVERY more in the table).
        where: list[str] = ["seq > (SELECT COALESCE(MAX(seq), 0) FROM journal) - ?"]
        params: list[object] = [self.journal_limit]
        if account_id is not None:
            where.append("account_id = ?")
            params.append(account_id)
        if status is not None:
            where.append("status = ?")
            params.append(status)
        # Fixed clauses with bound values: nothing from the caller is pasted into the SQL.
        sql = "SELECT * FROM journal WHERE " + " AND ".join(where)  # noqa: S608
        if limit is not None:
            bound = self._journal_bound(limit)
            sql = f"SELECT * FROM ({sql} ORDER BY seq DESC LIMIT {bound})"  # noqa: S608
        rows = self._read(sql + " ORDER BY seq", params)
        return [_journal_entry(row) for row in rows]

    def clear_journal(self) -> None:
        """Forget every journalled request."""
        with self.transaction() as db:
            db.execute("DELETE FROM journal")


def _journal_entry(row: sqlite3.Row) -> JournalEntry:
    values = dict(row)
    if values.get("violations") is not None:
        values["violations"] = tuple(json.loads(values["violations"]))
    return JournalEntry(**values)
