"""The mock's state: one storage interface (`StateStore`), and the implementation that keeps it.

`open_store` picks the implementation from the `--state` value; the backend only ever sees a
`StateStore`. `Store` is the SQLite implementation (a state file, or ``:memory:``).
"""

from __future__ import annotations

from mockserver.store.base import StateStore
from mockserver.store.sqlite import (
    JOURNAL_LIMIT,
    MEMORY,
    SCHEMA_VERSION,
    AccountRow,
    FaultRow,
    JournalEntry,
    Overrides,
    Store,
    TokenRow,
    WriterLock,
)


def open_store(state: str) -> StateStore:
    """The store for a `--state` value: a SQLite file path, or ``:memory:``."""
    return Store(state)


__all__ = [
    "JOURNAL_LIMIT",
    "MEMORY",
    "SCHEMA_VERSION",
    "AccountRow",
    "FaultRow",
    "JournalEntry",
    "Overrides",
    "StateStore",
    "Store",
    "TokenRow",
    "WriterLock",
    "open_store",
]
