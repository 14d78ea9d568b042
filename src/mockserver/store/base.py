"""The storage interface: what the backend asks of the mock's state, whatever keeps it.

The backend (the rules) is written against `StateStore` only; `mockserver.store.open_store`
picks the implementation from the `--state` value (a SQLite file, ``:memory:`` or a Redis URL).
An implementation stores and retrieves, and makes the compound steps the rules need atomic
across every thread, process and host sharing the state: counting an image against a quota,
claiming one of a fault's `times`, issuing a token within the limit of active ones, a reset.
When the state cannot be reached it raises `errors.StateUnavailable`, nothing else.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

JOURNAL_LIMIT = 10_000  # newest journal entries kept by default (`--journal-limit`)
# ... and at most this many characters of them, whatever the store (what clients sent is kept
# abbreviated, see quoting.py; this bounds the state whatever they send).
JOURNAL_BYTES = 32 * 1024 * 1024


class StateError(ValueError):
    """A `--state` value (or prefix, or journal limit) that no store can be opened with; the
    message says what to do. Raised when the store is opened, before anything is changed."""


class UnusableState(StateError):
    """Something is at the state's place, but not a state this kit can use. The message names
    it; `itsocr-mock reset --force` may replace it (its data is then lost)."""


class NotOurState(UnusableState):
    """Not a state of this kit: not a database at all, a damaged one, or another
    application's."""


class NewerState(UnusableState):
    """A state written by a newer version of the kit, whose schema this one does not know."""


@dataclass(frozen=True)
class AccountRow:
    """A stored account."""

    id: str
    plan: str
    created_at: str


@dataclass(frozen=True)
class TokenRow:
    """A stored token: never the token itself, only its SHA-256 digest and display prefix."""

    id: str
    account_id: str
    digest: str
    prefix: str
    created_at: str
    expires_at: str | None
    revoked_at: str | None


@dataclass(frozen=True)
class FaultRow:
    """A stored fault rule; `remaining` None means until deleted."""

    id: str
    account_id: str | None
    status: int | None
    error: str | None
    delay_ms: int
    remaining: int | None
    drop_connection: bool
    created_at: str
    counts_usage: bool = False  # the image is counted before the rule fails the request


@dataclass(frozen=True)
class Overrides:
    """What the control API has set that changes how an OCR request is handled."""

    frozen_now: str | None  # ISO-8601, or None for real time
    any_faults: bool
    any_fixtures: bool


@dataclass(frozen=True)
class ReadAhead:
    """What an OCR request looks up right after its overrides: the token with this SHA-256
    digest (None when the request's header holds no token), and the usage of that token's
    account in `period` -- the month of real time, which a frozen clock may not ask for."""

    digest: str | None
    period: str


@dataclass
class JournalEntry:
    """One request as the journal keeps it (built up while the request is handled)."""

    time: str
    method: str
    path: str
    status: int = 0
    account_id: str | None = None
    token_prefix: str | None = None
    file_name: str | None = None
    mime_type: str | None = None
    file_size: int | None = None
    sha256: str | None = None
    fixture: str | None = None
    prompt: str | None = None
    error: str | None = None
    hint: str | None = None
    duration_ms: float | None = None
    # The ways the answer broke openapi.yaml: a list on a proxy's journal, None on a mock's.
    violations: tuple[str, ...] | None = None
    seq: int | None = field(default=None, compare=False)


class StateStore(ABC):
    """Accounts, tokens (hashed), monthly usage, clock, faults, fixtures and the journal.

    The journal is capped at `journal_limit` entries, oldest dropped: an implementation may
    prune in batches, but `journal()` never returns more than the cap (`_journal_bound`).
    """

    path: str  # where the state lives, for display (`--state`, a password masked)

    def __init__(self, journal_limit: int = JOURNAL_LIMIT) -> None:
        if journal_limit < 1:
            raise StateError(f"the journal limit must be at least 1, not {journal_limit}")
        self.journal_limit = journal_limit

    def _journal_bound(self, limit: int | None) -> int:
        """How many of the newest entries a `journal(limit=...)` read returns at most."""
        return self.journal_limit if limit is None else max(0, min(limit, self.journal_limit))

    @abstractmethod
    def close(self) -> None:
        """Release every connection the store opened (it reopens on next use)."""

    # -- whole state --------------------------------------------------------------------------

    @abstractmethod
    def is_empty(self) -> bool:
        """True when no account was ever created (a fresh state)."""

    @abstractmethod
    def reset(self, accounts: Sequence[AccountRow], tokens: Sequence[TokenRow]) -> None:
        """Atomically replace the whole state with these accounts and tokens."""

    # -- accounts -----------------------------------------------------------------------------

    @abstractmethod
    def create_account(self, account: AccountRow, token: TokenRow) -> None:
        """Store a new account with its first token, together."""

    @abstractmethod
    def get_account(self, account_id: str) -> AccountRow | None:
        """The account with that id, or None."""

    @abstractmethod
    def list_accounts(self) -> list[AccountRow]:
        """All accounts, oldest first."""

    @abstractmethod
    def delete_account(self, account_id: str) -> bool:
        """Delete an account and its usage (its tokens stay); False if there was none."""

    @abstractmethod
    def set_plan(self, account_id: str, plan: str) -> bool:
        """Move an account to another plan; False if there is no such account."""

    # -- tokens -------------------------------------------------------------------------------

    @abstractmethod
    def add_token(self, token: TokenRow, now: str, max_active: int) -> bool:
        """Atomically store `token` if its account holds fewer than `max_active` tokens
        neither revoked nor expired at `now`; False (nothing stored) otherwise."""

    @abstractmethod
    def find_token(self, digest: str) -> tuple[TokenRow, AccountRow | None] | None:
        """The token with that SHA-256 digest and its account (None if deleted), or None."""

    @abstractmethod
    def get_token(self, token_id: str) -> TokenRow | None:
        """The token with that id, or None."""

    @abstractmethod
    def list_tokens(self, account_id: str) -> list[TokenRow]:
        """An account's tokens, oldest first."""

    @abstractmethod
    def revoke_token(self, token_id: str, now: str) -> bool:
        """Mark a token revoked (idempotent); False if there is no such token."""

    # -- usage --------------------------------------------------------------------------------

    @abstractmethod
    def usage(self, account_id: str, period: str) -> tuple[int, int]:
        """(images used, bytes processed) of an account in a period."""

    @abstractmethod
    def set_images_used(self, account_id: str, period: str, images_used: int) -> None:
        """Overwrite the image count of a period (bytes processed are kept)."""

    @abstractmethod
    def count_image(
        self,
        account_id: str,
        period: str,
        limit: int | None,
        size: int,
        entry: JournalEntry,
    ) -> bool:
        """Atomically add one image to the period's usage if it stays within `limit`, and
        journal `entry` with it; False (nothing written) when the quota is used up."""

    # -- what the control API set ---------------------------------------------------------------

    @abstractmethod
    def overrides(self) -> Overrides:
        """The frozen clock and whether any fault rule or registered fixture exists, read
        together: an OCR request reads them once."""

    @contextmanager
    def arriving(self, ahead: ReadAhead) -> Iterator[Overrides]:
        """An OCR request's first read, its `overrides()`, for the duration of the request.

        A store across the network reads what `ahead` names in the same round trip, and
        answers this thread's first `find_token` and `usage` calls for it from that read until
        the block ends (a request's round trips are its cost: see `store.redis`). A local
        store, like this default, reads the overrides alone and every lookup when asked.
        """
        yield self.overrides()

    @abstractmethod
    def frozen_now(self) -> str | None:
        """The instant the clock is frozen at (ISO-8601), or None for real time."""

    @abstractmethod
    def set_frozen_now(self, instant: str | None) -> None:
        """Freeze the clock at `instant`, or return to real time with None."""

    @abstractmethod
    def add_fault(self, fault: FaultRow) -> None:
        """Store a fault rule."""

    @abstractmethod
    def list_faults(self) -> list[FaultRow]:
        """Fault rules in the order they apply (the order they were added in)."""

    @abstractmethod
    def delete_faults(self, fault_id: str | None = None) -> int:
        """Delete one fault rule, or all of them; returns how many went."""

    @abstractmethod
    def take_fault(self, account_id: str) -> FaultRow | None:
        """Atomically claim the first fault rule matching an account, spending one of its
        `times` (exactly once, whichever process or host asks)."""

    @abstractmethod
    def add_fixture(
        self, sha256: str, prompt: str, name: str, text: str, media_type: str | None
    ) -> None:
        """Register (or replace) the text returned for an image, optionally for one prompt."""

    @abstractmethod
    def find_fixture(self, sha256: str, prompt: str) -> tuple[str, str] | None:
        """(name, text) registered for the image with a prompt `prompt` matches (exactly or,
        failing that, ignoring case and runs of whitespace: `prompts.matching_prompt`), else
        registered without one, else None."""

    @abstractmethod
    def list_fixtures(self) -> list[Mapping[str, Any]]:
        """Fixtures registered at run time, in the order they were registered."""

    # -- journal ------------------------------------------------------------------------------

    @abstractmethod
    def record(self, entry: JournalEntry) -> None:
        """Append a request to the journal (dropping the oldest past the cap)."""

    @abstractmethod
    def journal(
        self, account_id: str | None = None, status: int | None = None, limit: int | None = None
    ) -> list[JournalEntry]:
        """Journal entries, oldest first, optionally for one account and/or one status; at
        most the newest `limit` of them, and never more than the cap."""

    @abstractmethod
    def clear_journal(self) -> None:
        """Forget every journalled request."""
