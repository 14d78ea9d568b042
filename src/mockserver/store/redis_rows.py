"""How the store's rows are kept in Redis: hashes of strings, and JSON for the journal.

A hash comes back as strings (or, from inside a script, as a flat name, value, name... list):
these functions turn it back into the store's rows, and a row into what the scripts store.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, fields

from mockserver.store.base import AccountRow, FaultRow, JournalEntry, TokenRow

JOURNAL_FIELDS = tuple(f.name for f in fields(JournalEntry) if f.name != "seq")


def entry_json(entry: JournalEntry) -> str:
    """A journal entry as the scripts store it (its `seq` is the line's prefix, not in it)."""
    return json.dumps({name: getattr(entry, name) for name in JOURNAL_FIELDS})


def entry(line: str) -> JournalEntry:
    """A journal line (``SEQ JSON``) back into its entry."""
    seq, _, stored = line.partition(" ")
    return JournalEntry(**json.loads(stored), seq=int(seq))


def pairs(flat: Sequence[str]) -> dict[str, str]:
    """A hash as HGETALL returns it inside a script: name, value, name, value..."""
    return dict(zip(flat[::2], flat[1::2], strict=True))


def account(row: Mapping[str, str]) -> AccountRow:
    """An account's hash back into its row."""
    return AccountRow(row["id"], row["plan"], row["created_at"])


def token(row: Mapping[str, str]) -> TokenRow:
    """A token's hash back into its row (an absent expiry or revocation is None)."""
    return TokenRow(
        id=row["id"],
        account_id=row["account_id"],
        digest=row["digest"],
        prefix=row["prefix"],
        created_at=row["created_at"],
        expires_at=row.get("expires_at"),
        revoked_at=row.get("revoked_at"),
    )


def fault(row: Mapping[str, str]) -> FaultRow:
    """A fault rule's hash back into its row (absent numbers are None, flags 0 or 1)."""

    def number(name: str) -> int | None:
        return int(row[name]) if name in row else None

    return FaultRow(
        id=row["id"],
        account_id=row.get("account_id"),
        status=number("status"),
        error=row.get("error"),
        delay_ms=int(row.get("delay_ms", 0)),
        remaining=number("remaining"),
        drop_connection=row.get("drop_connection") == "1",
        created_at=row["created_at"],
        counts_usage=row.get("counts_usage") == "1",
    )


def fault_json(fault: FaultRow) -> str:
    """A fault rule as the ``add_fault`` script stores it (its flags as 0 or 1)."""
    row = {
        **asdict(fault),
        "drop_connection": int(fault.drop_connection),
        "counts_usage": int(fault.counts_usage),
    }
    return json.dumps(row)


def glob_escape(text: str) -> str:
    """`text` matched literally by a Redis glob pattern (SCAN MATCH)."""
    return "".join("\\" + char if char in "*?[]\\" else char for char in text)
