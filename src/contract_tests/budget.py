"""Billing safety: how many requests of a run could consume the token's quota, and what is left.

Every `POST /ocr` the suite sends with the user's token (or a header built from it) is one of:

- **billable**: a well-formed upload meant to reach OCR. A test reserves all of its billable
  requests before sending the first (`reserve`), so it either runs whole or skips with a reason.
- **rejectable**: meant to be refused (400, 401, 429, 500), which costs nothing on a correct
  server. It is sent only while one more request fits in the budget, and charged only if the
  server answers 200 anyway -- so even a server that bills its errors cannot push a run over.

The budget (``--itsocr-budget``, default 10) caps reservations plus unexpected charges. On a
plan with a monthly limit, the clauses that do not mean to use the quota up also leave the
token's last image(s) alone, counted from a fresh token: at least one, and with
``--itsocr-allow-exhaust`` and a concurrency burst the few the race is fought over
(`RACE_LEFT`). A 429 ``Monthly limit reached`` on the token (`limit_reached`) means the quota is
used up: from then on every request that would reach the quota check skips, with one reason.

Against a mock with a control API the suite works on accounts of its own, state is free, and
the budget is not applied (`limit` None); the requests are still counted for the report.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

RACE_LEFT = 3  # images left on the token when the concurrency burst starts
_USED = re.compile(r"used (\d+) of (\d+)")
_LIMIT_REACHED = "Monthly limit reached"


def utc_month() -> str:
    """The current UTC calendar month, ``YYYY-MM``: the period a quota counts in."""
    return datetime.now(UTC).strftime("%Y-%m")


def race_left(concurrency: int) -> int:
    """Images left when a burst of `concurrency` requests starts: fewer than the burst."""
    return max(1, min(RACE_LEFT, concurrency - 1))


def limit_reached(error: object) -> tuple[int, int] | None:
    """(used, limit) from a 429's ``error`` when it says the monthly limit is reached."""
    if not isinstance(error, str) or not error.startswith(_LIMIT_REACHED):
        return None
    found = _USED.search(error)
    return (int(found.group(1)), int(found.group(2))) if found else None


@dataclass
class Budget:
    """The session's count of quota-consuming requests, its hard cap, and the token's quota."""

    limit: int | None  # None: no cap (a mock with a control API)
    quota: int | None = None  # the token's plan's monthly images (None: unlimited, or a mock)
    keep: int = 1  # images of `quota` that clauses not meant to use it up leave alone
    committed: int = 0  # reserved billable requests + rejectable ones answered 200
    requests: int = 0  # every POST /ocr sent with the user's token
    spent: int = 0  # those answered 200: the quota actually consumed
    used_up: tuple[int, int] | None = None  # (used, limit) of the first monthly-limit 429
    month: str = field(default_factory=utc_month)  # the UTC month the run started in
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def left(self) -> int | None:
        """Requests that may still be committed (None: unlimited)."""
        return None if self.limit is None else self.limit - self.committed

    @property
    def used_up_reason(self) -> str:
        """The one skip reason of every clause that needs quota once it is used up."""
        used, limit = self.used_up or (0, 0)
        return f"the token's monthly quota is used up: {used} of {limit}"

    def images_left(self) -> int | None:
        """Images the token had left at the end, when known (0 once a 429 said so)."""
        return 0 if self.used_up is not None else None

    def reserve(self, count: int, what: str, *, exhausting: bool = False) -> None:
        """Commit `count` billable requests, or skip the test saying why.

        A clause not `exhausting` the quota stays `keep` images short of the plan's limit.
        """
        with self._lock:
            if self.used_up is not None and not exhausting:
                pytest.skip(self.used_up_reason)
            if self.limit is not None and self.committed + count > self.limit:
                pytest.skip(
                    f"{what} needs {count} billable request(s); {self.left} of "
                    f"--itsocr-budget {self.limit} left (raise --itsocr-budget)"
                )
            if not exhausting and self.quota is not None and self.limit is not None:
                cap = self.quota - self.keep
                if self.committed + count > cap:
                    pytest.skip(
                        f"{what} needs {count} billable request(s); the clauses that do not use "
                        f"the quota up spend at most {cap} of a fresh token's {self.quota} "
                        f"images, {max(cap - self.committed, 0)} left"
                    )
            self.committed += count

    def release(self, count: int) -> None:
        """Give back `count` reserved requests a test did not send."""
        with self._lock:
            self.committed -= count

    def require_headroom(self) -> None:
        """Skip unless one more request could be charged (before a rejectable request)."""
        if self.limit is not None and self.committed >= self.limit:
            pytest.skip(
                f"--itsocr-budget {self.limit} is used up; even a request meant to be refused "
                "could be billed by a faulty server (raise --itsocr-budget)"
            )

    def record(self, status: int, *, billable: bool) -> None:
        """Count a request sent with the user's token, answered `status`."""
        with self._lock:
            self.requests += 1
            if status == 200:
                self.spent += 1
                if not billable:  # a request meant to be refused was billed: charge it
                    self.committed += 1

    def note_used_up(self, used: int, limit: int) -> bool:
        """Remember that a 429 said the quota is used up; True the first time."""
        with self._lock:
            first = self.used_up is None
            if first:
                self.used_up = (used, limit)
            return first
