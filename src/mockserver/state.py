"""The control state: accounts, tokens, usage, clock, faults, fixtures and journal.

`MockState` holds what the control API (and the pytest plugin, and the CLI) put the mock into,
with no HTTP in sight. The OCR request pipeline (`backend.Backend`) reads it; `reset` is the
one path back to a fresh state.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO

from mockserver import errors
from mockserver.clock import format_instant, parse_instant, period_of, utc_now
from mockserver.faults import MAX_COUNT, FaultRule
from mockserver.fixtures import FixtureCatalogue
from mockserver.imaging import examine
from mockserver.plans import Plan, get_plan, plans
from mockserver.store import AccountRow, FaultRow, JournalEntry, Overrides, StateStore, TokenRow
from mockserver.tokens import (
    DEMO_ACCOUNTS,
    MAX_ACTIVE_TOKENS,
    NewToken,
    generate_token,
    token_row,
)


@dataclass(frozen=True)
class Usage:
    """An account's usage in one period (a UTC calendar month, ``YYYY-MM``)."""

    period: str
    images_used: int
    limit: int | None  # the plan's quota; None = unlimited
    bytes_processed: int


@dataclass(frozen=True)
class RegisteredFixture:
    """A fixture registered at run time: the text returned for an image (and prompt)."""

    name: str
    sha256: str
    prompt: str  # "" = any prompt
    media_type: str | None
    text: str


def known_plan(name: str) -> Plan:
    """The plan called `name`, or the control API's 400 naming the plans that exist."""
    if name not in plans():
        raise errors.BadControlRequest(
            f"unknown plan {name!r}; expected one of {', '.join(plans())}"
        )
    return get_plan(name)


_ERROR_FOR_STATUS: dict[int, type[errors.ApiError]] = {
    400: errors.InvalidRequestBody,
    401: errors.InvalidApiToken,
    500: errors.OcrFailed,
}
OVERRIDE_STATUSES: tuple[int, ...] = tuple(sorted([429, *_ERROR_FOR_STATUS]))
"""The statuses a fault rule or ``Prefer: code=`` can ask for (each has its live message)."""


def error_for_status(status: int, plan: Plan | None = None) -> errors.ApiError:
    """The live service's error for a status, for fault rules and ``Prefer: code=`` (a 429
    counts the images of `plan`, the Free plan's when unknown)."""
    if status == 429:
        limit = plan.images_per_month if plan else None
        used = limit if limit is not None else get_plan("free").images_per_month or 0
        return errors.MonthlyLimitReached(used, used)
    chosen = _ERROR_FOR_STATUS.get(status)
    if chosen is None:
        raise errors.BadControlRequest(
            f"status must be one of {', '.join(map(str, OVERRIDE_STATUSES))}, got {status}"
        )
    return chosen()


@dataclass
class MockState:
    """What the mock is put into: accounts, tokens, usage, clock, faults, fixtures, journal."""

    store: StateStore
    catalogue: FixtureCatalogue = field(default_factory=FixtureCatalogue.load)

    # -- state ------------------------------------------------------------------------------

    def reset(self) -> None:
        """Back to a fresh state: demo accounts only, no usage, faults, fixtures or journal,
        real clock. The one reset path: the control API, the pytest plugin and tests call it."""
        created = format_instant(utc_now())
        self.store.reset(
            [AccountRow(demo.id, demo.plan, created) for demo in DEMO_ACCOUNTS],
            [
                token_row(demo.id, demo.token, f"{demo.id}-token", None, created)
                for demo in DEMO_ACCOUNTS
            ],
        )

    def ensure_initialised(self) -> None:
        """Seed the demo accounts on a fresh state file; keep an existing state as it is."""
        if self.store.is_empty():
            self.reset()

    def now(self, overrides: Overrides | None = None) -> datetime:
        """The mock's current time: frozen by the control API, or real UTC time.

        `overrides`, already read by the caller, saves reading the clock again.
        """
        frozen = overrides.frozen_now if overrides is not None else self.store.frozen_now()
        return parse_instant(frozen) if frozen else utc_now()

    # -- accounts and tokens ----------------------------------------------------------------

    def create_account(self, plan: str) -> tuple[AccountRow, NewToken]:
        """A new account on `plan` with one fresh token."""
        known_plan(plan)  # before anything is written
        created = format_instant(self.now())
        account = AccountRow("acct_" + uuid.uuid4().hex[:16], plan, created)
        token = generate_token()
        row = token_row(account.id, token, None, None, created)
        self.store.create_account(account, row)
        return account, NewToken(token, row)

    def create_token(self, account_id: str, expires_at: datetime | None = None) -> NewToken:
        """Issue a token for an account, within the limit of active tokens per account."""
        now = self.now()
        self.account(account_id)  # 404 for an unknown account
        token = generate_token()
        expiry = format_instant(expires_at) if expires_at else None
        row = token_row(account_id, token, None, expiry, format_instant(now))
        if not self.store.add_token(row, format_instant(now), MAX_ACTIVE_TOKENS):
            raise errors.Conflict(
                f"An account may hold at most {MAX_ACTIVE_TOKENS} active tokens; revoke one first"
            )
        return NewToken(token, row)

    # -- the control API: accounts, tokens, usage, clock, faults, fixtures, journal ----------

    def account(self, account_id: str) -> AccountRow:
        """The account with that id, or 404."""
        account = self.store.get_account(account_id)
        if account is None:
            raise errors.NotFound(f"no account with id {account_id!r}")
        return account

    def accounts(self) -> list[AccountRow]:
        """Every account, oldest first."""
        return self.store.list_accounts()

    def tokens(self, account_id: str) -> list[TokenRow]:
        """An account's tokens (revoked and expired ones included), oldest first."""
        return self.store.list_tokens(account_id)

    def delete_account(self, account_id: str) -> None:
        """Delete an account and its usage; its tokens then answer "User not found"."""
        if not self.store.delete_account(account_id):
            raise errors.NotFound(f"no account with id {account_id!r}")

    def change_plan(self, account_id: str, plan: str) -> AccountRow:
        """Move an account to another plan; its usage this month stays."""
        known_plan(plan)
        if not self.store.set_plan(account_id, plan):
            raise errors.NotFound(f"no account with id {account_id!r}")
        return self.account(account_id)

    def revoke_token(self, token_id: str) -> TokenRow:
        """Revoke a token (again: no change); it then answers "API token has been revoked"."""
        revoked = None
        if self.store.revoke_token(token_id, format_instant(self.now())):
            revoked = self.store.get_token(token_id)  # None only if a reset came in between
        if revoked is None:
            raise errors.NotFound(f"no token with id {token_id!r}")
        return revoked

    def usage(self, account_id: str) -> Usage:
        """The account's usage in the current period of the mock's clock."""
        account = self.account(account_id)
        period = period_of(self.now())
        used, processed = self.store.usage(account_id, period)
        return Usage(period, used, get_plan(account.plan).images_per_month, processed)

    def set_usage(self, account_id: str, images_used: int) -> Usage:
        """Set the images used in the current period (bytes processed are kept)."""
        if not 0 <= images_used <= MAX_COUNT:
            raise errors.BadControlRequest(f"imagesUsed must be between 0 and {MAX_COUNT}")
        self.account(account_id)
        self.store.set_images_used(account_id, period_of(self.now()), images_used)
        return self.usage(account_id)

    def freeze_clock(self, instant: datetime) -> datetime:
        """Stop the mock's clock at `instant`: month boundaries, expiry and usage follow it."""
        stored = format_instant(instant)
        self.store.set_frozen_now(stored)
        return parse_instant(stored)

    def real_clock(self) -> None:
        """Back to real time."""
        self.store.set_frozen_now(None)

    def clock_is_frozen(self) -> bool:
        """True while the control API holds the clock."""
        return self.store.frozen_now() is not None

    def add_fault(self, rule: FaultRule) -> FaultRow:
        """Store a fault rule; its status must be one the mock can answer."""
        if rule.status is not None:
            error_for_status(rule.status)  # 400 for a status without a live message
        if rule.account_id is not None:
            self.account(rule.account_id)
        row = rule.to_row("flt_" + uuid.uuid4().hex[:16], format_instant(self.now()))
        self.store.add_fault(row)
        return row

    def faults(self) -> list[FaultRow]:
        """The fault rules in the order they apply."""
        return self.store.list_faults()

    def delete_fault(self, fault_id: str) -> None:
        """Delete one fault rule."""
        if not self.store.delete_faults(fault_id):
            raise errors.NotFound(f"no fault rule with id {fault_id!r}")

    def clear_faults(self) -> None:
        """Delete every fault rule."""
        self.store.delete_faults()

    def add_fixture(
        self, image: IO[bytes], text: str, *, name: str, prompt: str = "", media_type: str | None
    ) -> RegisteredFixture:
        """Make OCR answer `text` for this image (with this prompt, or any when empty).

        The image must decode, as an OCR model would need it to: a fixture that no real
        service could answer is a mistake in the test, said at once rather than later.
        """
        decoding = examine(image)
        if not decoding.decodable:
            raise errors.BadControlRequest(
                f"the image {name!r} does not decode as an image: {decoding.problem}"
            )
        hashed = hashlib.sha256()
        for chunk in iter(lambda: image.read(1024 * 1024), b""):
            hashed.update(chunk)
        fixture = RegisteredFixture(name, hashed.hexdigest(), prompt.strip(), media_type, text)
        self.store.add_fixture(fixture.sha256, fixture.prompt, name, text, media_type)
        return fixture

    def fixtures(self) -> list[RegisteredFixture]:
        """The fixtures registered at run time, in the order they were added."""
        return [
            RegisteredFixture(
                row["name"], row["sha256"], row["prompt"], row["media_type"], row["text"]
            )
            for row in self.store.list_fixtures()
        ]

    def journal(
        self, account_id: str | None = None, status: int | None = None, limit: int | None = None
    ) -> list[JournalEntry]:
        """The API requests received, oldest first (the newest `limit` of them)."""
        return self.store.journal(account_id, status, limit)

    def clear_journal(self) -> None:
        """Forget every request received."""
        self.store.clear_journal()
