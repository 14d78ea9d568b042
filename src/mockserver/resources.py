"""Where the kit's shared data files live, installed or in a source checkout.

`openapi.yaml`, `openapi-control.yaml` and `fixtures/` sit at the repository root so people
find them; a built wheel carries copies under `mockserver/_data/` (see pyproject's
force-include). Code asks here instead of guessing paths, so both layouts work.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


@cache
def data_path(name: str) -> Path:
    """Return the path of a shared data file or folder (``"openapi.yaml"``, ``"fixtures"``)."""
    for candidate in (_PACKAGE_DIR / "_data" / name, _PACKAGE_DIR.parents[1] / name):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"itsocr-mock data file {name!r} is missing from this installation")
