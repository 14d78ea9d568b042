"""The contract, `openapi.yaml`, loaded once: the one place the server reads its numbers from."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

import yaml

from mockserver.resources import data_path

try:  # the C loader parses the spec several times faster; fall back where libyaml is absent
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]


@cache
def load_spec(name: str = "openapi.yaml") -> Mapping[str, Any]:
    """Return the parsed OpenAPI document (`openapi.yaml` or `openapi-control.yaml`)."""
    with data_path(name).open(encoding="utf-8") as handle:
        spec: Mapping[str, Any] = yaml.load(handle, Loader=_Loader)
    return spec


def allowed_media_types() -> tuple[str, ...]:
    """The declared types the service accepts, in the order its error message lists them."""
    return tuple(load_spec()["x-itsocr-limits"]["allowedMediaTypes"])


def max_file_size() -> int:
    """The global ceiling in bytes, whatever the plan (50 MiB)."""
    return int(load_spec()["x-itsocr-limits"]["maxFileSizeBytes"])
