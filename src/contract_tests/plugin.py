"""The contract suite's pytest plugin (entry point ``itsocr_contract``): its options, nothing else.

pytest loads this module into every session of anyone who installs the kit, so it imports only
pytest and the standard library and only registers options; the suite's pytest fixtures and
hooks live in `contract_tests/conftest.py` and run only when the suite is collected.

Each setting has one name per layer, in pytest-base-url's order of precedence, command line >
environment > ini file > default::

    --itsocr-token        ITSOCR_TOKEN                itsocr_token
    --itsocr-plan         ITSOCR_PLAN                 itsocr_plan         (free)
    --itsocr-level        ITSOCR_LEVEL                itsocr_level        (observed on a mock,
                                                                           documented otherwise)
    --itsocr-budget       ITSOCR_BUDGET               itsocr_budget       (10)
    --itsocr-allow-exhaust                            itsocr_allow_exhaust
    --itsocr-max-cer      ITSOCR_MAX_CER              itsocr_max_cer      (0.10)
    --itsocr-concurrency  ITSOCR_CONCURRENCY          itsocr_concurrency  (16 on a mock, off
                                                                           otherwise)
    --itsocr-examples     ITSOCR_EXAMPLES             itsocr_examples     (20 on a mock, 3
                                                                           otherwise)
    --itsocr-admin-token  ITSOCR_MOCK_ADMIN_TOKEN     (the mock's --admin-token)
    --itsocr-revoked-token / --itsocr-expired-token   (live targets: tokens in those states)
    --itsocr-report PATH                              (the clause table as JSON)
    --itsocr-clauses      ITSOCR_CLAUSES              (only these clause ids or globs)

``--base-url`` (``PYTEST_BASE_URL``, ini ``base_url``) is pytest-base-url's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import pytest

LEVELS = ("documented", "observed")
PLANS = ("free", "pro", "enterprise")


@dataclass(frozen=True)
class Setting:
    """One setting of the suite: its option, environment variable and ini name."""

    name: str  # the ini name and the attribute of SuiteOptions
    option: str
    env: str | None
    help: str
    default: Any = None
    kind: type = str
    flag: bool = False
    choices: tuple[str, ...] | None = None


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "itsocr_token",
        "--itsocr-token",
        "ITSOCR_TOKEN",
        "API token the suite may use against a target without a control API",
    ),
    Setting(
        "itsocr_plan",
        "--itsocr-plan",
        "ITSOCR_PLAN",
        "plan of --itsocr-token's account (default free)",
        "free",
        choices=PLANS,
    ),
    Setting(
        "itsocr_level",
        "--itsocr-level",
        "ITSOCR_LEVEL",
        "documented = what the vendor docs promise; observed = every observed behaviour "
        "(default: observed on a mock with a control API, documented otherwise)",
        choices=LEVELS,
    ),
    Setting(
        "itsocr_budget",
        "--itsocr-budget",
        "ITSOCR_BUDGET",
        "hard cap on requests that could consume the token's quota (default 10; "
        "not applied to a mock with a control API); without --itsocr-allow-exhaust the "
        "last image of a fresh token's monthly quota is never spent",
        10,
        int,
    ),
    Setting(
        "itsocr_allow_exhaust",
        "--itsocr-allow-exhaust",
        None,
        "allow clauses that use up the token's monthly quota (only on a token bought for it)",
        False,
        flag=True,
    ),
    Setting(
        "itsocr_max_cer",
        "--itsocr-max-cer",
        "ITSOCR_MAX_CER",
        "highest character error rate per fixture against a real OCR engine (default 0.10)",
        0.10,
        float,
    ),
    Setting(
        "itsocr_concurrency",
        "--itsocr-concurrency",
        "ITSOCR_CONCURRENCY",
        "simultaneous requests at the quota edge (default 16 on a mock; 0 = off; against "
        "other targets only when given, with --itsocr-allow-exhaust and a budget of the "
        "plan's limit + N on a fresh token)",
        None,
        int,
    ),
    Setting(
        "itsocr_examples",
        "--itsocr-examples",
        "ITSOCR_EXAMPLES",
        "Hypothesis examples per generated clause (default 20 on a mock, 3 otherwise)",
        None,
        int,
    ),
    Setting(
        "itsocr_admin_token",
        "--itsocr-admin-token",
        "ITSOCR_MOCK_ADMIN_TOKEN",
        "admin token of a mock whose control API requires one",
    ),
    Setting(
        "itsocr_revoked_token",
        "--itsocr-revoked-token",
        "ITSOCR_REVOKED_TOKEN",
        "a revoked token, for the auth clauses against a target without a control API",
    ),
    Setting(
        "itsocr_expired_token",
        "--itsocr-expired-token",
        "ITSOCR_EXPIRED_TOKEN",
        "an expired token, for the auth clauses against a target without a control API",
    ),
    Setting(
        "itsocr_report", "--itsocr-report", None, "write the clause table to this file as JSON"
    ),
    Setting(
        "itsocr_clauses",
        "--itsocr-clauses",
        "ITSOCR_CLAUSES",
        "run only these clauses: comma-separated ids or globs, e.g. 'auth.*,quota.exact-limit'",
    ),
)


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register the suite's options and ini names (and nothing else)."""
    group = parser.getgroup("itsocr", "itsOCR contract suite")
    for setting in SETTINGS:
        if setting.flag:
            group.addoption(setting.option, action="store_true", default=None, help=setting.help)
            parser.addini(setting.name, setting.help, type="bool", default=False)
            continue
        group.addoption(
            setting.option,
            default=None,
            type=setting.kind,
            choices=setting.choices,
            metavar=setting.name.removeprefix("itsocr_").upper(),
            help=setting.help + (f" [env {setting.env}]" if setting.env else ""),
        )
        parser.addini(setting.name, setting.help, default=None)


@dataclass(frozen=True)
class SuiteOptions:
    """The suite's settings, resolved: command line > environment > ini > default.

    Settings whose default depends on the target (level, concurrency, examples) stay None here
    when not given; the suite fills them in once it knows whether the target is a mock.
    """

    itsocr_token: str | None
    itsocr_plan: str
    itsocr_level: str | None
    itsocr_budget: int
    itsocr_allow_exhaust: bool
    itsocr_max_cer: float
    itsocr_concurrency: int | None
    itsocr_examples: int | None
    itsocr_admin_token: str | None
    itsocr_revoked_token: str | None
    itsocr_expired_token: str | None
    itsocr_report: str | None
    itsocr_clauses: str | None

    @classmethod
    def from_config(
        cls, config: pytest.Config, environ: dict[str, str] | None = None
    ) -> SuiteOptions:
        """Resolve every setting; a bad value raises pytest.UsageError naming its source."""
        env = os.environ if environ is None else environ
        return cls(**{setting.name: _resolve(config, env, setting) for setting in SETTINGS})


def _resolve(config: pytest.Config, env: Any, setting: Setting) -> Any:
    given = config.getoption(setting.option)
    if given is not None:
        return given
    if setting.env and env.get(setting.env):
        return _convert(setting, env[setting.env], f"environment variable {setting.env}")
    ini = config.getini(setting.name)
    if setting.flag:
        return bool(ini)
    if ini not in (None, ""):
        return _convert(setting, str(ini), f"ini setting {setting.name}")
    return setting.default


def _convert(setting: Setting, raw: str, source: str) -> Any:
    value = raw.strip()
    if setting.choices and value not in setting.choices:
        raise pytest.UsageError(f"{source}={raw!r}: expected one of {', '.join(setting.choices)}")
    try:
        return setting.kind(value)
    except ValueError:
        raise pytest.UsageError(
            f"{source}={raw!r}: expected {'an integer' if setting.kind is int else 'a number'}"
        ) from None
