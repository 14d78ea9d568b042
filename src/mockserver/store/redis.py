"""The mock's state in Redis: one state shared by mock processes on any number of hosts.

`--state redis://HOST:PORT/DB` (or ``rediss://`` for TLS, a password in the URL). Every key
starts with the deployment's prefix (`--state-prefix`), so several mocks can share one Redis.
Whatever reads and then writes runs as a Lua script inside Redis (see `redis_scripts.py`):
the quota's check-and-increment is one atomic step however many processes send it. When
Redis cannot be reached, every method raises `errors.StateUnavailable`; the client reconnects
on the next call, so the mock recovers by itself once Redis is back.
"""

from __future__ import annotations

import functools
import json
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from typing import Any, ParamSpec, TypeVar, cast

import redis
from redis.backoff import NoBackoff
from redis.commands.core import Script
from redis.retry import Retry

from mockserver import errors
from mockserver.prompts import matching_prompt
from mockserver.store import base, describe_state
from mockserver.store import redis_rows as rows
from mockserver.store.base import (
    JOURNAL_LIMIT,
    AccountRow,
    FaultRow,
    JournalEntry,
    NewerState,
    NotOurState,
    Overrides,
    StateError,
    StateStore,
    TokenRow,
)
from mockserver.store.redis_scripts import SCRIPTS
from mockserver.turns import waiting

SCHEMA_VERSION = "1"
# Seconds to wait for Redis: a request fails (and the next one retries) rather than hang.
CONNECT_TIMEOUT = 2.0
REPLY_TIMEOUT = 5.0
_UNREACHABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)

P = ParamSpec("P")
R = TypeVar("R")


def _reaching(method: Callable[P, R]) -> Callable[P, R]:
    """Run a call to Redis out of turn, its connection failures as `errors.StateUnavailable`.

    A round trip to Redis waits on the network: the worker's other requests compute meanwhile
    (turns.py, rule 1). No lock of the store is held across it (rule 2).
    """

    @functools.wraps(method)
    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            with waiting():
                return method(*args, **kwargs)
        except _UNREACHABLE as failure:
            store = args[0]
            assert isinstance(store, RedisStore)
            raise errors.StateUnavailable(
                f"the mock's state at {store.path} cannot be reached ({failure})"
            ) from failure

    return call


# How long a request whose count may have run waits for Redis to come back and tell.
RECOVERY_SECONDS = 10.0


class RedisStore(StateStore):
    """The mock's state in Redis, shared by every process and host given the same URL."""

    def __init__(
        self, url: str, prefix: str = "itsocr-mock:", journal_limit: int = JOURNAL_LIMIT
    ) -> None:
        super().__init__(journal_limit)
        if not prefix:
            raise StateError("the state prefix must not be empty")
        self.path = describe_state(url)
        self.prefix = prefix
        # No retries inside the client: a script whose reply was lost may have run, and
        # running it again would count an image twice. The next request simply tries again.
        try:
            self._client = redis.Redis.from_url(
                url,
                decode_responses=True,
                socket_connect_timeout=CONNECT_TIMEOUT,
                socket_timeout=REPLY_TIMEOUT,
                retry=Retry(NoBackoff(), 0),
            )
        except ValueError as failure:  # a port that is no number, a database that is no index
            raise StateError(f"not a usable Redis URL: {failure}") from None
        self._scripts: dict[str, Script] = {
            name: self._client.register_script(source) for name, source in SCRIPTS.items()
        }
        self._start()

    @_reaching
    def _start(self) -> None:
        # Fails at start-up, in one line, when Redis cannot be reached or refuses the password,
        # or holds under the prefix a state this version cannot read: nothing is changed then.
        self._client.set(self._key("schema"), SCHEMA_VERSION, nx=True)
        found = self._client.get(self._key("schema"))
        if found == SCHEMA_VERSION:
            return
        where = f"the Redis state {self.path} under the prefix {self.prefix!r}"
        number = found if isinstance(found, str) and found.isascii() and found.isdigit() else "0"
        if int(number) > int(SCHEMA_VERSION):
            raise NewerState(
                f"{where} was written by a newer itsocr-mock (schema {number}; this one knows "
                f"{SCHEMA_VERSION}): upgrade the kit, or use another --state-prefix"
            )
        raise NotOurState(
            f"{where} has a {self._key('schema')!r} key that is not this kit's ({found!r}): "
            "use another --state-prefix"
        )

    def _key(self, name: str) -> str:
        return self.prefix + name

    def _run(self, script: str, *args: str | int) -> Any:
        return self._scripts[script](args=[self.prefix, *args])

    def close(self) -> None:
        """Close the client's connections (it reconnects on next use)."""
        self._client.close()

    # -- whole state --------------------------------------------------------------------------

    @_reaching
    def is_empty(self) -> bool:
        """True when no account exists under this prefix."""
        return not self._client.exists(self._key("accounts"))

    @_reaching
    def reset(self, accounts: Sequence[AccountRow], tokens: Sequence[TokenRow]) -> None:
        """Replace every key under the prefix with these accounts and tokens, atomically."""
        seed = {"accounts": [asdict(a) for a in accounts], "tokens": [asdict(t) for t in tokens]}
        self._run("reset", rows.glob_escape(self.prefix) + "*", json.dumps(seed))

    # -- accounts -----------------------------------------------------------------------------

    @_reaching
    def create_account(self, account: AccountRow, token: TokenRow) -> None:
        """Store a new account with its first token, in one script."""
        self._run("create_account", json.dumps(asdict(account)), json.dumps(asdict(token)))

    @_reaching
    def get_account(self, account_id: str) -> AccountRow | None:
        """The account with that id, or None."""
        found = cast("dict[str, str]", self._client.hgetall(self._key("account:" + account_id)))
        return rows.account(found) if found else None

    @_reaching
    def list_accounts(self) -> list[AccountRow]:
        """All accounts, oldest first (by creation time, then the order they were added in)."""
        found = [rows.pairs(flat) for flat in self._run("list_rows", "accounts", "account:")]
        found.sort(key=lambda row: (row["created_at"], int(row["seq"])))
        return [rows.account(row) for row in found]

    @_reaching
    def delete_account(self, account_id: str) -> bool:
        """Delete an account and its usage. Its tokens stay, to answer "User not found"."""
        return bool(self._run("delete_account", account_id))

    @_reaching
    def set_plan(self, account_id: str, plan: str) -> bool:
        """Move an account to another plan; False if there is no such account."""
        return bool(self._run("update_field", "account:" + account_id, "plan", plan, "set"))

    # -- tokens -------------------------------------------------------------------------------

    @_reaching
    def add_token(self, token: TokenRow, now: str, max_active: int) -> bool:
        """Store `token` unless its account already holds `max_active` active tokens."""
        return bool(self._run("add_token", json.dumps(asdict(token)), now, max_active))

    @_reaching
    def find_token(self, digest: str) -> tuple[TokenRow, AccountRow | None] | None:
        """The token with that SHA-256 digest and its account (None if deleted), or None."""
        found = self._run("find_token", digest)
        if not found:
            return None
        token, account = rows.pairs(found[0]), rows.pairs(found[1])
        return rows.token(token), (rows.account(account) if account else None)

    @_reaching
    def get_token(self, token_id: str) -> TokenRow | None:
        """The token with that id, or None."""
        found = cast("dict[str, str]", self._client.hgetall(self._key("token:" + token_id)))
        return rows.token(found) if found else None

    @_reaching
    def list_tokens(self, account_id: str) -> list[TokenRow]:
        """An account's tokens, oldest first."""
        found = [
            rows.pairs(flat) for flat in self._run("list_rows", "tokens:" + account_id, "token:")
        ]
        found.sort(key=lambda row: (row["created_at"], int(row["seq"])))
        return [rows.token(row) for row in found]

    @_reaching
    def revoke_token(self, token_id: str, now: str) -> bool:
        """Mark a token revoked (idempotent: the first instant stays)."""
        return bool(self._run("update_field", "token:" + token_id, "revoked_at", now, "keep"))

    # -- usage --------------------------------------------------------------------------------

    @_reaching
    def usage(self, account_id: str, period: str) -> tuple[int, int]:
        """(images used, bytes processed) of an account in a period."""
        images, processed = self._client.hmget(
            self._key("usage:" + account_id), [period + ":images", period + ":bytes"]
        )
        return int(images or 0), int(processed or 0)

    @_reaching
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

    @_reaching
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

    @_reaching
    def _marker(self, marker: str) -> str | None:
        return cast("str | None", self._client.get(self._key("counted:" + marker)))

    # -- what the control API set ---------------------------------------------------------------

    @_reaching
    def overrides(self) -> Overrides:
        """The frozen clock and whether any fault rule or fixture exists, in one round trip."""
        with self._client.pipeline(transaction=False) as pipe:
            pipe.get(self._key("clock"))
            pipe.exists(self._key("faults"))
            pipe.exists(self._key("fixtures"))
            frozen, faults, fixtures = pipe.execute()
        return Overrides(frozen_now=frozen, any_faults=bool(faults), any_fixtures=bool(fixtures))

    @_reaching
    def frozen_now(self) -> str | None:
        """The instant the clock is frozen at (ISO-8601), or None for real time."""
        return cast("str | None", self._client.get(self._key("clock")))

    @_reaching
    def set_frozen_now(self, instant: str | None) -> None:
        """Freeze the clock at `instant`, or return to real time with None."""
        if instant is None:
            self._client.delete(self._key("clock"))
        else:
            self._client.set(self._key("clock"), instant)

    @_reaching
    def add_fault(self, fault: FaultRow) -> None:
        """Store a fault rule."""
        self._run("add_fault", rows.fault_json(fault))

    @_reaching
    def list_faults(self) -> list[FaultRow]:
        """Fault rules in the order they apply (the order they were added in)."""
        return [rows.fault(rows.pairs(flat)) for flat in self._run("list_rows", "faults", "fault:")]

    @_reaching
    def delete_faults(self, fault_id: str | None = None) -> int:
        """Delete one fault rule, or all of them; returns how many went."""
        return int(self._run("delete_faults", fault_id or ""))

    @_reaching
    def take_fault(self, account_id: str) -> FaultRow | None:
        """Claim the first fault rule matching an account, spending one of its `times` inside
        Redis: each of them goes to exactly one request, whichever mock receives it."""
        found = self._run("take_fault", account_id)
        return rows.fault(rows.pairs(found)) if found else None

    @_reaching
    def add_fixture(
        self, sha256: str, prompt: str, name: str, text: str, media_type: str | None
    ) -> None:
        """Register (or replace) the text returned for an image, optionally for one prompt."""
        self._run("add_fixture", sha256, prompt, json.dumps([name, text, media_type]))

    @_reaching
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

    @_reaching
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

    @_reaching
    def record(self, entry: JournalEntry) -> None:
        """Append a request to the journal (dropping the oldest past the cap)."""
        seq = self._run("record", rows.entry_json(entry), self.journal_limit, base.JOURNAL_BYTES)
        entry.seq = int(seq)

    @_reaching
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

    @_reaching
    def clear_journal(self) -> None:
        """Forget every journalled request."""
        self._client.delete(self._key("journal"), self._key("journal-bytes"))
