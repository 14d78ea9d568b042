"""The storage interface: what the backend asks of the mock's state, whatever keeps it.

The backend (the rules) is written against `StateStore` only; `mockserver.store.open_store`
picks the implementation from the `--state` value. An implementation stores and retrieves,
and makes the few compound steps the rules need (counting an image against a quota, claiming
one of a fault's `times`) atomic across every thread and process sharing the state.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Any, Protocol

from mockserver.store.sqlite import AccountRow, FaultRow, JournalEntry, Overrides, TokenRow


class StateStore(Protocol):
    """Accounts, tokens (hashed), monthly usage, clock, faults, fixtures and the journal."""

    path: str  # where the state lives, as given to `--state`

    def close(self) -> None:
        """Release what the store holds open (it reopens on next use)."""

    # -- whole state --------------------------------------------------------------------------

    def transaction(self) -> AbstractContextManager[Any]:
        """A write transaction: everything inside commits together or not at all."""

    def is_empty(self) -> bool:
        """True when no account was ever created (a fresh state)."""

    def wipe(self, db: Any) -> None:
        """Delete everything, inside the caller's transaction."""

    # -- accounts -----------------------------------------------------------------------------

    def insert_account(self, db: Any, account: AccountRow) -> None:
        """Insert an account inside the caller's transaction."""

    def get_account(self, account_id: str) -> AccountRow | None:
        """The account with that id, or None."""

    def list_accounts(self) -> list[AccountRow]:
        """All accounts, oldest first."""

    def delete_account(self, account_id: str) -> bool:
        """Delete an account and its usage (its tokens stay); False if there was none."""

    def set_plan(self, account_id: str, plan: str) -> bool:
        """Move an account to another plan; False if there is no such account."""

    # -- tokens -------------------------------------------------------------------------------

    def insert_token(self, db: Any, token: TokenRow) -> None:
        """Insert a token inside the caller's transaction."""

    def find_token(self, digest: str) -> tuple[TokenRow, AccountRow | None] | None:
        """The token with that SHA-256 digest and its account (None if deleted), or None."""

    def get_token(self, token_id: str) -> TokenRow | None:
        """The token with that id, or None."""

    def list_tokens(self, account_id: str) -> list[TokenRow]:
        """An account's tokens, oldest first."""

    def count_active_tokens(self, db: Any, account_id: str, now: str) -> int:
        """Tokens neither revoked nor expired at `now`, inside the caller's transaction."""

    def revoke_token(self, token_id: str, now: str) -> bool:
        """Mark a token revoked (idempotent); False if there is no such token."""

    # -- usage --------------------------------------------------------------------------------

    def usage(self, account_id: str, period: str) -> tuple[int, int]:
        """(images used, bytes processed) of an account in a period."""

    def set_images_used(self, account_id: str, period: str, images_used: int) -> None:
        """Overwrite the image count of a period (bytes processed are kept)."""

    def count_image(
        self, account_id: str, period: str, limit: int | None, size: int, entry: JournalEntry
    ) -> bool:
        """Atomically add one image to the period's usage if it stays within `limit`, and
        journal `entry` with it; False (nothing written) when the quota is used up."""

    # -- what the control API set ---------------------------------------------------------------

    def overrides(self) -> Overrides:
        """The frozen clock and whether any fault rule or registered fixture exists."""

    def frozen_now(self) -> str | None:
        """The instant the clock is frozen at (ISO-8601), or None for real time."""

    def set_frozen_now(self, instant: str | None) -> None:
        """Freeze the clock at `instant`, or return to real time with None."""

    def add_fault(self, fault: FaultRow) -> None:
        """Store a fault rule."""

    def list_faults(self) -> list[FaultRow]:
        """Fault rules in the order they apply (the order they were added in)."""

    def delete_faults(self, fault_id: str | None = None) -> int:
        """Delete one fault rule, or all of them; returns how many went."""

    def take_fault(self, account_id: str) -> FaultRow | None:
        """Atomically claim the first fault rule matching an account, spending one of its
        `times` (exactly once, whichever process asks)."""

    def add_fixture(
        self, sha256: str, prompt: str, name: str, text: str, media_type: str | None
    ) -> None:
        """Register (or replace) the text returned for an image, optionally for one prompt."""

    def find_fixture(self, sha256: str, prompt: str) -> tuple[str, str] | None:
        """(name, text) registered for the image with a prompt `prompt` matches (exactly or,
        failing that, ignoring case and runs of whitespace: `fixtures.matching_prompt`), else
        registered without one, else None."""

    def list_fixtures(self) -> list[Mapping[str, Any]]:
        """Fixtures registered at run time."""

    # -- journal ------------------------------------------------------------------------------

    def record(self, entry: JournalEntry) -> None:
        """Append a request to the journal."""

    def journal(
        self, account_id: str | None = None, status: int | None = None, limit: int | None = None
    ) -> list[JournalEntry]:
        """Journal entries, oldest first, optionally for one account and/or one status."""

    def clear_journal(self) -> None:
        """Forget every journalled request."""
