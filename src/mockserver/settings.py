"""The mock server's settings: defaults < environment < command line.

One documented name per setting: the command-line option `--state` is `ITSOCR_MOCK_STATE` in
the environment, and so on (see `ENVIRONMENT`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mockserver.store import DEFAULT_PREFIX, JOURNAL_LIMIT, MEMORY

ENVIRONMENT = {
    "state": "ITSOCR_MOCK_STATE",
    "state_prefix": "ITSOCR_MOCK_STATE_PREFIX",
    "journal_limit": "ITSOCR_MOCK_JOURNAL_LIMIT",
    "fixtures": "ITSOCR_MOCK_FIXTURES",
    "admin_token": "ITSOCR_MOCK_ADMIN_TOKEN",
    "control": "ITSOCR_MOCK_CONTROL",
    "log_level": "ITSOCR_MOCK_LOG_LEVEL",
    "client_timeout": "ITSOCR_MOCK_CLIENT_TIMEOUT",
}


def default_state_path() -> str:
    """The per-user state file: ``$XDG_STATE_HOME/itsocr-mock/state.sqlite3``
    (``~/.local/state/itsocr-mock/state.sqlite3`` when XDG_STATE_HOME is unset)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return str(Path(base) / "itsocr-mock" / "state.sqlite3")


@dataclass(frozen=True)
class Settings:
    """Everything `create_app` needs to know; nothing is read from elsewhere."""

    state: str = field(default_factory=default_state_path)  # a path, ":memory:" or redis://
    state_prefix: str = DEFAULT_PREFIX  # the Redis keys' prefix: one per deployment
    journal_limit: int = JOURNAL_LIMIT  # journal entries kept, the oldest dropped past it
    fixtures: tuple[Path, ...] = ()  # user fixture directories, merged over the built-in set
    control: bool = True  # serve the /_mock control API and honour `Prefer: code=`
    admin_token: str | None = None  # when set, /_mock requires `Authorization: Bearer <it>`
    log_level: str = "INFO"
    # Seconds an OCR request's body may take to arrive before the connection is cut (see
    # connection.py): a client trickling its upload holds a worker thread no longer.
    client_timeout: float = 30.0

    @property
    def in_memory(self) -> bool:
        """True when the state is thrown away with the process."""
        return self.state == MEMORY

    @classmethod
    def from_environment(
        cls, environ: Mapping[str, str] | None = None, **overrides: Any
    ) -> Settings:
        """Defaults, then the environment, then `overrides` (the command line) on top."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        if env.get(ENVIRONMENT["state"]):
            values["state"] = env[ENVIRONMENT["state"]]
        if env.get(ENVIRONMENT["state_prefix"]):
            values["state_prefix"] = env[ENVIRONMENT["state_prefix"]]
        if env.get(ENVIRONMENT["journal_limit"]):
            values["journal_limit"] = _count(ENVIRONMENT["journal_limit"], env)
        if env.get(ENVIRONMENT["fixtures"]):
            values["fixtures"] = tuple(
                Path(p) for p in env[ENVIRONMENT["fixtures"]].split(os.pathsep) if p
            )
        if env.get(ENVIRONMENT["admin_token"]):
            values["admin_token"] = env[ENVIRONMENT["admin_token"]]
        if env.get(ENVIRONMENT["control"]):
            values["control"] = env[ENVIRONMENT["control"]].lower() not in (
                "0",
                "false",
                "no",
                "off",
            )
        if env.get(ENVIRONMENT["log_level"]):
            values["log_level"] = env[ENVIRONMENT["log_level"]].upper()
        if env.get(ENVIRONMENT["client_timeout"]):
            values["client_timeout"] = _seconds(ENVIRONMENT["client_timeout"], env)
        values.update({key: value for key, value in overrides.items() if value is not None})
        return replace(cls(), **values)


def _seconds(name: str, env: Mapping[str, str]) -> float:
    try:
        return float(env[name])
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds, not {env[name]!r}") from None


def _count(name: str, env: Mapping[str, str]) -> int:
    try:
        return int(env[name])
    except ValueError:
        raise ValueError(f"{name} must be a whole number, not {env[name]!r}") from None
