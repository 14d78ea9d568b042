"""Persistence in SQLite: accounts, tokens (hashed), monthly usage, clock, faults, fixtures and
the journal.

Everything lives in one SQLite database so that several worker processes share one state file
and see each other's writes at once (`store.database`: connections, the writer lock,
transactions; `store.schema`: the file's version and migrations; `store.sqlite_journal`: the
journal's table). The store knows nothing of
HTTP and holds no rules beyond "what is stored"; the rules are in `backend.py`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from mockserver.prompts import matching_prompt
from mockserver.store.base import (
    JOURNAL_LIMIT,
    AccountRow,
    FaultRow,
    JournalEntry,
    Overrides,
    StateStore,
    TokenRow,
)
from mockserver.store.database import MEMORY, Database
from mockserver.store.sqlite_journal import JournalTable


class Store(JournalTable):
    """The mock's state in SQLite, safe to share between threads and processes.

    Opening a file checks it first and refuses (`StateError`, `errors.StateUnavailable`),
    changing nothing, one that is not a usable state; an older state is migrated forward.
    """

    def __init__(self, path: str | Path = MEMORY, journal_limit: int = JOURNAL_LIMIT) -> None:
        StateStore.__init__(self, journal_limit)
        Database.__init__(self, path)

    # -- whole state --------------------------------------------------------------------------

    def is_empty(self) -> bool:
        """True when no account was ever created (a fresh state file)."""
        return self._read_one("SELECT 1 FROM accounts LIMIT 1") is None

    def reset(self, accounts: Sequence[AccountRow], tokens: Sequence[TokenRow]) -> None:
        """Replace the whole state with these accounts and tokens, in one transaction."""
        with self.transaction() as db:
            self.wipe(db)
            for account in accounts:
                self.insert_account(db, account)
            for token in tokens:
                self.insert_token(db, token)

    def wipe(self, db: sqlite3.Connection) -> None:
        """Delete every row, inside the caller's transaction (the schema's version is in the
        file's header)."""
        for table in ("accounts", "tokens", "usage", "faults", "fixtures", "journal", "meta"):
            db.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names

    # -- accounts -----------------------------------------------------------------------------

    def create_account(self, account: AccountRow, token: TokenRow) -> None:
        """Store a new account with its first token, in one transaction."""
        with self.transaction() as db:
            self.insert_account(db, account)
            self.insert_token(db, token)

    def insert_account(self, db: sqlite3.Connection, account: AccountRow) -> None:
        """Insert an account inside the caller's transaction."""
        db.execute(
            "INSERT INTO accounts VALUES (?, ?, ?)", (account.id, account.plan, account.created_at)
        )

    def get_account(self, account_id: str) -> AccountRow | None:
        """The account with that id, or None."""
        row = self._read_one("SELECT * FROM accounts WHERE id = ?", (account_id,))
        return AccountRow(**row) if row else None

    def list_accounts(self) -> list[AccountRow]:
        """All accounts, oldest first."""
        rows = self._read("SELECT * FROM accounts ORDER BY created_at, rowid")
        return [AccountRow(**row) for row in rows]

    def delete_account(self, account_id: str) -> bool:
        """Delete an account. Its tokens stay, so they answer "User not found" as live does."""
        with self.transaction() as db:
            deleted = db.execute("DELETE FROM accounts WHERE id = ?", (account_id,)).rowcount
            db.execute("DELETE FROM usage WHERE account_id = ?", (account_id,))
        return bool(deleted)

    def set_plan(self, account_id: str, plan: str) -> bool:
        """Move an account to another plan; False if there is no such account."""
        with self.transaction() as db:
            changed = db.execute(
                "UPDATE accounts SET plan = ? WHERE id = ?", (plan, account_id)
            ).rowcount
        return bool(changed)

    # -- tokens -------------------------------------------------------------------------------

    def add_token(self, token: TokenRow, now: str, max_active: int) -> bool:
        """Store `token` unless its account already holds `max_active` active tokens."""
        with self.transaction() as db:
            if self.count_active_tokens(db, token.account_id, now) >= max_active:
                return False
            self.insert_token(db, token)
        return True

    def insert_token(self, db: sqlite3.Connection, token: TokenRow) -> None:
        """Insert a token inside the caller's transaction."""
        db.execute("INSERT INTO tokens VALUES (?, ?, ?, ?, ?, ?, ?)", tuple(asdict(token).values()))

    def find_token(self, digest: str) -> tuple[TokenRow, AccountRow | None] | None:
        """The token with that SHA-256 digest and its account (None if deleted), or None."""
        row = self._read_one(
            "SELECT t.*, a.plan AS plan, a.created_at AS account_created_at FROM tokens t "
            "LEFT JOIN accounts a ON a.id = t.account_id WHERE t.digest = ?",
            (digest,),
        )
        if row is None:
            return None
        values = dict(row)
        plan, created = values.pop("plan"), values.pop("account_created_at")
        token = TokenRow(**values)
        account = AccountRow(token.account_id, plan, created) if plan is not None else None
        return token, account

    def get_token(self, token_id: str) -> TokenRow | None:
        """The token with that id, or None."""
        row = self._read_one("SELECT * FROM tokens WHERE id = ?", (token_id,))
        return TokenRow(**row) if row else None

    def list_tokens(self, account_id: str) -> list[TokenRow]:
        """An account's tokens, oldest first."""
        rows = self._read(
            "SELECT * FROM tokens WHERE account_id = ? ORDER BY created_at, rowid", (account_id,)
        )
        return [TokenRow(**row) for row in rows]

    def count_active_tokens(self, db: sqlite3.Connection, account_id: str, now: str) -> int:
        """Tokens neither revoked nor expired at `now`, inside the caller's transaction."""
        row = db.execute(
            "SELECT COUNT(*) FROM tokens WHERE account_id = ? AND revoked_at IS NULL "
            "AND (expires_at IS NULL OR expires_at > ?)",
            (account_id, now),
        ).fetchone()
        return int(row[0])

    def revoke_token(self, token_id: str, now: str) -> bool:
        """Mark a token revoked (idempotent); False if there is no such token."""
        with self.transaction() as db:
            found = db.execute(
                "UPDATE tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?",
                (now, token_id),
            ).rowcount
        return bool(found)

    # -- usage --------------------------------------------------------------------------------

    def usage(self, account_id: str, period: str) -> tuple[int, int]:
        """(images used, bytes processed) of an account in a period."""
        row = self._read_one(
            "SELECT images_used, bytes_processed FROM usage WHERE account_id = ? AND period = ?",
            (account_id, period),
        )
        return (row[0], row[1]) if row else (0, 0)

    def set_images_used(self, account_id: str, period: str, images_used: int) -> None:
        """Overwrite the image count of a period (bytes processed are kept)."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO usage (account_id, period, images_used) VALUES (?, ?, ?) "
                "ON CONFLICT (account_id, period) DO UPDATE SET images_used = excluded.images_used",
                (account_id, period, images_used),
            )

    def count_image(
        self,
        account_id: str,
        period: str,
        limit: int | None,
        size: int,
        entry: JournalEntry | None,
    ) -> bool:
        """Add one image to the period's usage if it stays within `limit`; journal `entry` too
        (if any).

        This is the atomic check-and-increment that makes the quota exact under concurrency:
        the conditional upsert runs inside one write transaction, which SQLite serialises across
        threads and processes. Returns False (and writes nothing) when the quota is used up.
        """
        bound = limit if limit is not None else -1
        with self.transaction() as db:
            counted = db.execute(
                "INSERT INTO usage (account_id, period, images_used, bytes_processed) "
                "SELECT ?, ?, 1, ? WHERE ? < 0 OR ? > 0 "
                "ON CONFLICT (account_id, period) DO UPDATE SET "
                "images_used = images_used + 1, "
                "bytes_processed = bytes_processed + excluded.bytes_processed "
                "WHERE ? < 0 OR images_used < ?",
                (account_id, period, size, bound, bound, bound, bound),
            ).rowcount
            if counted and entry is not None:
                self._insert_journal(db, entry)
        return bool(counted)

    # -- what the control API set ---------------------------------------------------------------

    def overrides(self) -> Overrides:
        """The frozen clock and whether any fault rule or registered fixture exists, in one
        query: an OCR request reads them once, and skips the lookups that would find nothing."""
        row = self._read_one(
            "SELECT (SELECT value FROM meta WHERE key = 'frozen_now'), "
            "EXISTS (SELECT 1 FROM faults), EXISTS (SELECT 1 FROM fixtures)"
        )
        assert row is not None  # a SELECT without FROM always returns its one row
        return Overrides(frozen_now=row[0], any_faults=bool(row[1]), any_fixtures=bool(row[2]))

    # -- clock --------------------------------------------------------------------------------

    def frozen_now(self) -> str | None:
        """The instant the clock is frozen at (ISO-8601), or None for real time."""
        row = self._read_one("SELECT value FROM meta WHERE key = 'frozen_now'")
        return row[0] if row else None

    def set_frozen_now(self, instant: str | None) -> None:
        """Freeze the clock at `instant`, or return to real time with None."""
        with self.transaction() as db:
            db.execute("DELETE FROM meta WHERE key = 'frozen_now'")
            if instant is not None:
                db.execute("INSERT INTO meta VALUES ('frozen_now', ?)", (instant,))

    # -- faults -------------------------------------------------------------------------------

    def add_fault(self, fault: FaultRow) -> None:
        """Store a fault rule."""
        row = asdict(fault)
        with self.transaction() as db:
            db.execute(
                f"INSERT INTO faults ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",  # noqa: S608 - the dataclass's field names
                tuple(row.values()),
            )

    def list_faults(self) -> list[FaultRow]:
        """Fault rules in the order they apply (the order they were added in)."""
        # By rowid, not created_at: the mock's clock may have been moved between two rules.
        rows = self._read("SELECT * FROM faults ORDER BY rowid")
        return [_fault_row(row) for row in rows]

    def delete_faults(self, fault_id: str | None = None) -> int:
        """Delete one fault rule, or all of them; returns how many went."""
        with self.transaction() as db:
            if fault_id is None:
                return db.execute("DELETE FROM faults").rowcount
            return db.execute("DELETE FROM faults WHERE id = ?", (fault_id,)).rowcount

    def take_fault(self, account_id: str) -> FaultRow | None:
        """Claim the first fault rule matching an account, spending one of its `times`.

        A write transaction: call it only when `overrides()` saw a rule.
        """
        with self.transaction() as db:
            row = db.execute(
                "SELECT * FROM faults WHERE (account_id IS NULL OR account_id = ?) "
                "AND (remaining IS NULL OR remaining > 0) ORDER BY rowid LIMIT 1",
                (account_id,),
            ).fetchone()
            if row is None:
                return None
            if row["remaining"] == 1:
                db.execute("DELETE FROM faults WHERE id = ?", (row["id"],))
            elif row["remaining"] is not None:
                db.execute("UPDATE faults SET remaining = remaining - 1 WHERE id = ?", (row["id"],))
        return _fault_row(row)

    # -- fixtures registered at run time ------------------------------------------------------

    def add_fixture(
        self, sha256: str, prompt: str, name: str, text: str, media_type: str | None
    ) -> None:
        """Register (or replace) the text returned for an image, optionally for one prompt."""
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO fixtures VALUES (?, ?, ?, ?, ?)",
                (sha256, prompt, name, text, media_type),
            )

    def find_fixture(self, sha256: str, prompt: str) -> tuple[str, str] | None:
        """(name, text) registered for the image with a prompt `prompt` matches (as
        `matching_prompt` has it), else without one, else None."""
        # Every prompt of the image (a primary-key prefix: a few rows), chosen here with the
        # rule directory fixtures follow too; no ORDER BY, which costs SQLite a temporary b-tree.
        rows = {
            row[0]: (row[1], row[2])
            for row in self._read(
                "SELECT prompt, name, text FROM fixtures WHERE sha256 = ?", (sha256,)
            )
        }
        variant = matching_prompt(prompt, rows)
        return rows.get(variant if variant is not None else "")

    def list_fixtures(self) -> list[Mapping[str, Any]]:
        """Fixtures registered at run time."""
        return [dict(row) for row in self._read("SELECT * FROM fixtures ORDER BY rowid")]


def _fault_row(row: sqlite3.Row) -> FaultRow:
    flags = {
        "drop_connection": bool(row["drop_connection"]),
        "counts_usage": bool(row["counts_usage"]),
    }
    return FaultRow(**{**dict(row), **flags})
