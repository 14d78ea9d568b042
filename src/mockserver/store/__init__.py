"""The mock's state: one storage interface (`StateStore`) and its two implementations.

`open_store` picks the implementation from the `--state` value: a SQLite file or ``:memory:``
(`Store`, the embedded default) or a ``redis://`` URL (`RedisStore`, shared by mocks on several
hosts; it needs the `redis` package: ``pip install 'itsocr-mock[redis]'``). The backend only
ever sees a `StateStore`.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from mockserver.store.base import (
    JOURNAL_BYTES,
    JOURNAL_LIMIT,
    AccountRow,
    FaultRow,
    JournalEntry,
    NewerState,
    NotOurState,
    Overrides,
    ReadAhead,
    StateError,
    StateStore,
    TokenRow,
    UnusableState,
)
from mockserver.store.database import MEMORY, WriterLock
from mockserver.store.schema import SCHEMA_VERSION
from mockserver.store.sqlite import Store

DEFAULT_PREFIX = "itsocr-mock:"  # the Redis keys' prefix unless `--state-prefix` says otherwise
REDIS_SCHEMES = ("redis", "rediss")


def is_redis_url(state: str) -> bool:
    """True when `state` names a Redis (``redis://`` or ``rediss://``) rather than a file."""
    return urlsplit(state).scheme.lower() in REDIS_SCHEMES


def describe_state(state: str) -> str:
    """`state` for a banner or a log line: a Redis URL's password masked."""
    parts = urlsplit(state)
    if not is_redis_url(state) or parts.password is None:
        return state
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{parts.username or ''}:***@{host}").geturl()


def open_store(
    state: str, *, prefix: str = DEFAULT_PREFIX, journal_limit: int = JOURNAL_LIMIT
) -> StateStore:
    """The store for a `--state` value: a SQLite file path, ``:memory:`` or a Redis URL.

    A Redis that cannot be reached raises `errors.StateUnavailable` here, at start-up, as does
    a state file that cannot be created or written; a file that is not a usable state of this
    kit raises an `UnusableState` (`NotOurState`, `NewerState`). Nothing is changed then.
    """
    if is_redis_url(state):
        try:
            from mockserver.store.redis import RedisStore
        except ImportError as missing:
            raise StateError(
                f"a Redis state needs the redis package ({missing}): "
                "pip install 'itsocr-mock[redis]'"
            ) from None
        return RedisStore(state, prefix, journal_limit)
    return Store(state, journal_limit)


__all__ = [
    "DEFAULT_PREFIX",
    "JOURNAL_BYTES",
    "JOURNAL_LIMIT",
    "MEMORY",
    "SCHEMA_VERSION",
    "AccountRow",
    "FaultRow",
    "JournalEntry",
    "NewerState",
    "NotOurState",
    "Overrides",
    "ReadAhead",
    "StateError",
    "StateStore",
    "Store",
    "TokenRow",
    "UnusableState",
    "WriterLock",
    "describe_state",
    "is_redis_url",
    "open_store",
]
