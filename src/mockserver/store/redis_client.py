"""The connection under `RedisStore`: the client, its scripts, the key prefix, and the check
that the state under the prefix is one this version can use.

Every call that reaches Redis goes through `reaching`: out of turn (a round trip waits on the
network), and with a lost connection told as `errors.StateUnavailable`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import redis
from redis.backoff import NoBackoff
from redis.commands.core import Script
from redis.retry import Retry

from mockserver import errors
from mockserver.store import describe_state
from mockserver.store.base import NewerState, NotOurState, StateError
from mockserver.store.redis_scripts import SCRIPTS
from mockserver.turns import waiting

SCHEMA_VERSION = "1"
# Seconds to wait for Redis: a request fails (and the next one retries) rather than hang.
CONNECT_TIMEOUT = 2.0
REPLY_TIMEOUT = 5.0
_UNREACHABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)

P = ParamSpec("P")
R = TypeVar("R")


def reaching(method: Callable[P, R]) -> Callable[P, R]:
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
            assert isinstance(store, RedisConnection)
            raise errors.StateUnavailable(
                f"the mock's state at {store.path} cannot be reached ({failure})"
            ) from failure

    return call


class RedisConnection:
    """A Redis (`url`) and the keys under `prefix` in it: one mock deployment's state."""

    def __init__(self, url: str, prefix: str) -> None:
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

    @reaching
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
