"""Time as the mock sees it: real UTC time unless the control API froze it somewhere."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    """The real current time, timezone-aware UTC."""
    return datetime.now(UTC)


def period_of(instant: datetime) -> str:
    """The usage period (UTC calendar month) an instant falls in, as ``YYYY-MM``."""
    return instant.astimezone(UTC).strftime("%Y-%m")


def parse_instant(text: str) -> datetime:
    """Parse an ISO-8601 instant; ``Z`` is accepted and a time without offset is taken as UTC.

    Raises ValueError with a message fit for a client when `text` is not such an instant.
    """
    try:
        instant = datetime.fromisoformat(text.strip())
    except (TypeError, ValueError, AttributeError):
        raise ValueError(f"not an ISO-8601 date-time: {text!r}") from None
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    return instant.astimezone(UTC)


def format_instant(instant: datetime) -> str:
    """Format an instant as ISO-8601 UTC with a ``Z`` and millisecond precision."""
    return instant.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
