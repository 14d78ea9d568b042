"""Fault rules: make the next OCR requests slow, fail, or lose their connection.

A rule applies to OCR requests that reach the OCR step (authorised, within quota, a valid
upload), as an OCR engine failure would. It may delay the request, then either answer an error
status with the live service's message for it (or its own `error`), or drop the connection
without any response; a rule with a delay only makes requests slow but successful. A failing
request consumes no quota -- the documented intent -- unless its rule has `counts_usage`: the
live service increments usage before it stores the image, so its 500 (or a lost connection) can
follow an image already counted, a case a client's retry logic may want to meet. Rules apply
oldest first; `times` counts down as requests match and the rule goes at zero (None: until
deleted).

This module is the model and its validation; the store keeps the rules (shared by every worker
process), `Backend.recognise` applies them.
"""

from __future__ import annotations

from dataclasses import dataclass

from mockserver.errors import BadControlRequest
from mockserver.store import FaultRow

MAX_DELAY_MS = 300_000  # five minutes: longer than any sane client timeout
MAX_COUNT = 2**53 - 1  # the largest integer every JSON parser reads exactly: times, usage


@dataclass(frozen=True)
class FaultRule:
    """A fault rule as a client asks for it (validated on creation)."""

    status: int | None = None  # answer this status with the live message
    error: str | None = None  # ...or with this message instead (needs `status`)
    delay_ms: int = 0  # wait this long first
    times: int | None = None  # how many matching requests; None: until deleted
    account_id: str | None = None  # only this account's requests; None: every account's
    drop: bool = False  # close the connection without a response
    counts_usage: bool = False  # count the image first, as the live service may before a 500

    def __post_init__(self) -> None:
        if not 0 <= self.delay_ms <= MAX_DELAY_MS:
            raise BadControlRequest(f"delayMs must be between 0 and {MAX_DELAY_MS}")
        if self.times is not None and not 1 <= self.times <= MAX_COUNT:
            raise BadControlRequest(
                f"times must be at least 1 (or null: until the rule is deleted), got {self.times}"
            )
        if self.drop and self.status is not None:
            raise BadControlRequest(
                "a rule either answers a status or drops the connection, not both"
            )
        if self.error is not None and self.status is None:
            raise BadControlRequest("error is the message of a status: give status too")
        if self.error is not None and not self.error:
            raise BadControlRequest("error must not be empty (leave it out for the live message)")
        if self.counts_usage and self.status != 500 and not self.drop:
            raise BadControlRequest(
                "countsUsage is for a rule that fails the OCR step after the image was counted: "
                "give status 500 or drop: true with it"
            )
        if self.status is None and not self.drop and self.delay_ms == 0:
            raise BadControlRequest(
                "a rule must do something: give status, drop: true, or delayMs above 0"
            )

    def to_row(self, fault_id: str, created_at: str) -> FaultRow:
        """The rule as the store keeps it."""
        return FaultRow(
            id=fault_id,
            account_id=self.account_id,
            status=self.status,
            error=self.error,
            delay_ms=self.delay_ms,
            remaining=self.times,
            drop_connection=self.drop,
            created_at=created_at,
            counts_usage=self.counts_usage,
        )
