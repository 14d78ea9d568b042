"""The mock's state in Redis: one state shared by mock processes on any number of hosts.

`--state redis://HOST:PORT/DB` (or ``rediss://`` for TLS, a password in the URL). Every key
starts with the deployment's prefix (`--state-prefix`), so several mocks can share one Redis.
Whatever reads and then writes runs as a Lua script inside Redis (see `redis_scripts.py`):
the quota's check-and-increment is one atomic step however many processes send it. When
Redis cannot be reached, every method raises `errors.StateUnavailable`; the client reconnects
on the next call, so the mock recovers by itself once Redis is back.

An OCR request costs two round trips, each a wait on the network: `arriving` reads the
overrides, the token and its account's usage in one script, and `count_image` (or `record`)
writes. The connection, its scripts and the check of the prefix's state are `redis_client`'s.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any, cast

from mockserver import errors
from mockserver.prompts import matching_prompt
from mockserver.store import base
from mockserver.store import redis_rows as rows
from mockserver.store.base import (
    JOURNAL_LIMIT,
    AccountRow,
    FaultRow,
    JournalEntry,
    Overrides,
    ReadAhead,
    StateStore,
    TokenRow,
)
from mockserver.store.redis_client import RedisConnection, reaching
from mockserver.turns import waiting

# How long a request whose count may have run waits for Redis to come back and tell.
RECOVERY_SECONDS = 10.0

Found = tuple[TokenRow, AccountRow | None] | None  # what `find_token` answers


@dataclass
class _Read:
    """What `RedisStore.arriving` read for its thread's OCR request. Each token and usage
    answers one call, then is spent: the request's own count changes the usage."""

    overrides: Overrides
    tokens: dict[str, Found]  # by digest
    usages: dict[tuple[str, str], tuple[int, int]]  # by (account id, period)


class RedisStore(RedisConnection, StateStore):
    """The mock's state in Redis, shared by every process and host given the same URL."""

    def __init__(
        self, url: str, prefix: str = "itsocr-mock:", journal_limit: int = JOURNAL_LIMIT
    ) -> None:
        StateStore.__init__(self, journal_limit)
        RedisConnection.__init__(self, url, prefix)
        self._ahead = threading.local()  # .read: the _Read of this thread's OCR request

    # -- whole state --------------------------------------------------------------------------

    @reaching
    def is_empty(self) -> bool:
        """True when no account exists under this prefix."""
        return not self._client.exists(self._key("accounts"))

    @reaching
    def reset(self, accounts: Sequence[AccountRow], tokens: Sequence[TokenRow]) -> None:
        """Replace every key under the prefix with these accounts and tokens, atomically."""
        seed = {"accounts": [asdict(a) for a in accounts], "tokens": [asdict(t) for t in tokens]}
        self._run("reset", rows.glob_escape(self.prefix) + "*", json.dumps(seed))

    # -- accounts -----------------------------------------------------------------------------

    @reaching
    def create_account(self, account: AccountRow, token: TokenRow) -> None:
        """Store a new account with its first token, in one script."""
        self._run("create_account", json.dumps(asdict(account)), json.dumps(asdict(token)))

    @reaching
    def get_account(self, account_id: str) -> AccountRow | None:
        """The account with that id, or None."""
        found = cast("dict[str, str]", self._client.hgetall(self._key("account:" + account_id)))
        return rows.account(found) if found else None

    @reaching
    def list_accounts(self) -> list[AccountRow]:
        """All accounts, oldest first (by creation time, then the order they were added in)."""
        found = [rows.pairs(flat) for flat in self._run("list_rows", "accounts", "account:")]
        found.sort(key=lambda row: (row["created_at"], int(row["seq"])))
        return [rows.account(row) for row in found]

    @reaching
    def delete_account(self, account_id: str) -> bool:
        """Delete an account and its usage. Its tokens stay, to answer "User not found"."""
        return bool(self._run("delete_account", account_id))

    @reaching
    def set_plan(self, account_id: str, plan: str) -> bool:
        """Move an account to another plan; False if there is no such account."""
        return bool(self._run("update_field", "account:" + account_id, "plan", plan, "set"))

    # -- tokens -------------------------------------------------------------------------------

    @reaching
    def add_token(self, token: TokenRow, now: str, max_active: int) -> bool:
        """Store `token` unless its account already holds `max_active` active tokens."""
        return bool(self._run("add_token", json.dumps(asdict(token)), now, max_active))

    def find_token(self, digest: str) -> Found:
        """The token with that SHA-256 digest and its account (None if deleted), or None."""
        read: _Read | None = getattr(self._ahead, "read", None)
        if read is not None and digest in read.tokens:
            return read.tokens.pop(digest)
        return self._found(self._find_token(digest))

    @reaching
    def _find_token(self, digest: str) -> Any:
        return self._run("find_token", digest)

    @staticmethod
    def _found(found: Sequence[Any]) -> Found:
        if not found:
            return None
        token, account = rows.pairs(found[0]), rows.pairs(found[1])
        return rows.token(token), (rows.account(account) if account else None)

    @reaching
    def get_token(self, token_id: str) -> TokenRow | None:
        """The token with that id, or None."""
        found = cast("dict[str, str]", self._client.hgetall(self._key("token:" + token_id)))
        return rows.token(found) if found else None

    @reaching
    def list_tokens(self, account_id: str) -> list[TokenRow]:
        """An account's tokens, oldest first."""
        found = [
            rows.pairs(flat) for flat in self._run("list_rows", "tokens:" + account_id, "token:")
        ]
        found.sort(key=lambda row: (row["created_at"], int(row["seq"])))
        return [rows.token(row) for row in found]

    @reaching
    def revoke_token(self, token_id: str, now: str) -> bool:
        """Mark a token revoked (idempotent: the first instant stays)."""
        return bool(self._run("update_field", "token:" + token_id, "revoked_at", now, "keep"))

    # -- usage --------------------------------------------------------------------------------

    def usage(self, account_id: str, period: str) -> tuple[int, int]:
        """(images used, bytes processed) of an account in a period."""
        read: _Read | None = getattr(self._ahead, "read", None)
        if read is not None and (account_id, period) in read.usages:
            return read.usages.pop((account_id, period))
        return self._usage(account_id, period)

    @reaching
    def _usage(self, account_id: str, period: str) -> tuple[int, int]:
        images, processed = self._client.hmget(
            self._key("usage:" + account_id), [period + ":images", period + ":bytes"]
        )
        return int(images or 0), int(processed or 0)

    @reaching
    def set_images_used(self, account_id: str, period: str, images_used: int) -> None:
        """Overwrite the image count of a period (bytes processed are kept)."""
        self._client.hset(self._key("usage:" + account_id), period + ":images", images_used)

    def count_image(
        self, account_id: str, period: str, limit: int | None, size: int, entry: JournalEntry
    ) -> bool:
        """Add one image to the usage if it stays within `limit`, journalling `entry` with it,
        in one Lua script: the check and the increment cannot be split by another process.

        The script also leaves a marker of its own. When Redis is lost after the script was
        sent, it may have run with its reply lost: the marker, read once Redis is back (for at
        most `RECOVERY_SECONDS`), tells, so that an image that was counted is answered 200
        and one that was not is the live 500.
        """
        marker = uuid.uuid4().hex
        args = (account_id, period, -1 if limit is None else limit, size, rows.entry_json(entry))
        try:
            seq = self._count(marker, *args)
        except errors.StateUnavailable as lost:
            seq = self._recover_count(marker, lost)
        if seq:
            entry.seq = int(seq)
        return bool(seq)

    @reaching
    def _count(self, marker: str, *args: str | int) -> Any:
        return self._run("count_image", *args, self.journal_limit, base.JOURNAL_BYTES, marker)

    def _recover_count(self, marker: str, lost: errors.StateUnavailable) -> Any:
        deadline = time.monotonic() + RECOVERY_SECONDS
        while True:
            try:
                found = self._marker(marker)
            except errors.StateUnavailable:
                if time.monotonic() > deadline:
                    raise lost from None
                with waiting():
                    time.sleep(0.1)
                continue
            if found is None:  # Redis is back and the script never ran: not counted
                raise lost
            return found

    @reaching
    def _marker(self, marker: str) -> str | None:
        return cast("str | None", self._client.get(self._key("counted:" + marker)))

    # -- what the control API set ---------------------------------------------------------------

    @contextmanager
    def arriving(self, ahead: ReadAhead) -> Iterator[Overrides]:
        """The overrides, the token of `ahead` and its account's usage in its period, read in
        one round trip (one script) rather than three: each round trip is a wait, and on a
        Redis across the network a long one. This thread's first `find_token` and `usage`
        calls for them are answered from this read until the block ends."""
        read = self._arrive(ahead)
        self._ahead.read = read
        try:
            yield read.overrides
        finally:
            self._ahead.read = None

    @reaching
    def _arrive(self, ahead: ReadAhead) -> _Read:
        frozen, faults, fixtures, found, images, processed = self._run(
            "arrive", ahead.digest or "", ahead.period
        )
        overrides = Overrides(
            frozen_now=frozen, any_faults=bool(faults), any_fixtures=bool(fixtures)
        )
        token = self._found(found)
        read = _Read(overrides, {}, {})
        if ahead.digest is not None:
            read.tokens[ahead.digest] = token
        if token is not None:
            read.usages[token[0].account_id, ahead.period] = (int(images), int(processed))
        return read

    @reaching
    def overrides(self) -> Overrides:
        """The frozen clock and whether any fault rule or fixture exists, in one round trip."""
        with self._client.pipeline(transaction=False) as pipe:
            pipe.get(self._key("clock"))
            pipe.exists(self._key("faults"))
            pipe.exists(self._key("fixtures"))
            frozen, faults, fixtures = pipe.execute()
        return Overrides(frozen_now=frozen, any_faults=bool(faults), any_fixtures=bool(fixtures))

    @reaching
    def frozen_now(self) -> str | None:
        """The instant the clock is frozen at (ISO-8601), or None for real time."""
        return cast("str | None", self._client.get(self._key("clock")))

    @reaching
    def set_frozen_now(self, instant: str | None) -> None:
        """Freeze the clock at `instant`, or return to real time with None."""
        if instant is None:
            self._client.delete(self._key("clock"))
        else:
            self._client.set(self._key("clock"), instant)

    @reaching
    def add_fault(self, fault: FaultRow) -> None:
        """Store a fault rule."""
        self._run("add_fault", rows.fault_json(fault))

    @reaching
    def list_faults(self) -> list[FaultRow]:
        """Fault rules in the order they apply (the order they were added in)."""
        return [rows.fault(rows.pairs(flat)) for flat in self._run("list_rows", "faults", "fault:")]

    @reaching
    def delete_faults(self, fault_id: str | None = None) -> int:
        """Delete one fault rule, or all of them; returns how many went."""
        return int(self._run("delete_faults", fault_id or ""))

    @reaching
    def take_fault(self, account_id: str) -> FaultRow | None:
        """Claim the first fault rule matching an account, spending one of its `times` inside
        Redis: each of them goes to exactly one request, whichever mock receives it."""
        found = self._run("take_fault", account_id)
        return rows.fault(rows.pairs(found)) if found else None

    @reaching
    def add_fixture(
        self, sha256: str, prompt: str, name: str, text: str, media_type: str | None
    ) -> None:
        """Register (or replace) the text returned for an image, optionally for one prompt."""
        self._run("add_fixture", sha256, prompt, json.dumps([name, text, media_type]))

    @reaching
    def find_fixture(self, sha256: str, prompt: str) -> tuple[str, str] | None:
        """(name, text) registered for the image with a prompt `prompt` matches (as
        `matching_prompt` has it), else without one, else None."""
        stored = cast("dict[str, str]", self._client.hgetall(self._key("fixture:" + sha256)))
        variant = matching_prompt(prompt, stored)
        best = stored.get(variant if variant is not None else "")
        if best is None:
            return None
        name, text, _ = json.loads(best)
        return name, text

    @reaching
    def list_fixtures(self) -> list[Mapping[str, Any]]:
        """Fixtures registered at run time, in the order they were registered."""
        listed: list[Mapping[str, Any]] = []
        for sha256, prompt, stored in self._run("list_fixtures"):
            name, text, media_type = json.loads(stored)
            listed.append(
                {
                    "sha256": sha256,
                    "prompt": prompt,
                    "name": name,
                    "text": text,
                    "media_type": media_type,
                }
            )
        return listed

    # -- journal ------------------------------------------------------------------------------

    @reaching
    def record(self, entry: JournalEntry) -> None:
        """Append a request to the journal (dropping the oldest past the cap)."""
        seq = self._run("record", rows.entry_json(entry), self.journal_limit, base.JOURNAL_BYTES)
        entry.seq = int(seq)

    @reaching
    def journal(
        self, account_id: str | None = None, status: int | None = None, limit: int | None = None
    ) -> list[JournalEntry]:
        """Journal entries, oldest first, optionally for one account and/or one status."""
        stored = cast(
            "list[str]", self._client.lrange(self._key("journal"), -self.journal_limit, -1)
        )
        entries = [rows.entry(line) for line in stored]
        chosen = [
            entry
            for entry in entries
            if (account_id is None or entry.account_id == account_id)
            and (status is None or entry.status == status)
        ]
        if limit is not None:
            bound = self._journal_bound(limit)
            chosen = chosen[len(chosen) - bound :] if bound else []
        return chosen

    @reaching
    def clear_journal(self) -> None:
        """Forget every journalled request."""
        self._client.delete(self._key("journal"), self._key("journal-bytes"))
