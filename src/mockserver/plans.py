"""The plan table: monthly image quota and maximum file size per plan.

The numbers live in `openapi.yaml` under `x-itsocr-plans`; this module is the only code that
reads them, so the spec and the server cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

from mockserver.contract import load_spec

MIB = 1024 * 1024


@dataclass(frozen=True)
class Plan:
    """A subscription plan as the vendor's docs list it."""

    name: str
    title: str
    images_per_month: int | None  # None = unlimited
    max_file_size: int  # bytes, inclusive

    @property
    def max_file_size_mb(self) -> int:
        """The limit as the live service writes it in messages ("MB" meaning MiB)."""
        return self.max_file_size // MIB

    def allows_another_image(self, images_used: int) -> bool:
        """True while the month's usage is below the quota."""
        return self.images_per_month is None or images_used < self.images_per_month


@cache
def plans() -> Mapping[str, Plan]:
    """All plans by name (``free``, ``pro``, ``enterprise``), in the docs' order."""
    table = load_spec()["x-itsocr-plans"]
    return {
        name: Plan(
            name=name,
            title=row["title"],
            images_per_month=row["imagesPerMonth"],
            max_file_size=row["maxFileSizeBytes"],
        )
        for name, row in table.items()
    }


def get_plan(name: str) -> Plan:
    """Return the plan called `name`; KeyError names the plans that exist."""
    try:
        return plans()[name]
    except KeyError:
        raise KeyError(f"unknown plan {name!r}; expected one of {', '.join(plans())}") from None
