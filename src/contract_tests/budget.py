"""Billing safety: how many requests of a run could consume the token's quota.

Every `POST /ocr` the suite sends with the user's token (or a header built from it) is one of:

- **billable**: a well-formed upload meant to reach OCR. A test reserves all of its billable
  requests before sending the first (`reserve`), so it either runs whole or skips with a reason.
- **rejectable**: meant to be refused (400, 401, 429, 500), which costs nothing on a correct
  server. It is sent only while one more request fits in the budget, and charged only if the
  server answers 200 anyway -- so even a server that bills its errors cannot push a run over.

The budget (``--itsocr-budget``, default 10) caps reservations plus unexpected charges. Against a
mock with a control API the suite works on accounts of its own, state is free, and the budget
is not applied (`limit` None); the requests are still counted for the report.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import pytest


@dataclass
class Budget:
    """The session's count of quota-consuming requests, and its hard cap."""

    limit: int | None  # None: no cap (a mock with a control API)
    committed: int = 0  # reserved billable requests + rejectable ones answered 200
    requests: int = 0  # every POST /ocr sent with the user's token
    spent: int = 0  # those answered 200: the quota actually consumed
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def left(self) -> int | None:
        """Requests that may still be committed (None: unlimited)."""
        return None if self.limit is None else self.limit - self.committed

    def reserve(self, count: int, what: str) -> None:
        """Commit `count` billable requests, or skip the test saying why."""
        with self._lock:
            if self.limit is not None and self.committed + count > self.limit:
                pytest.skip(
                    f"{what} needs {count} billable request(s); {self.left} of "
                    f"--itsocr-budget {self.limit} left (raise --itsocr-budget)"
                )
            self.committed += count

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
