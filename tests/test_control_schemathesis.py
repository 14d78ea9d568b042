"""Schemathesis over `openapi-control.yaml` against a running mock: no check may fail.

Every operation is generated positive and negative (coverage, explicit examples, then random
cases), with every default check: server errors, documented statuses, content types, response
schemas, valid data accepted, invalid data rejected, 405s with an ``Allow`` header, and the
admin token actually required (the mock runs with one). The state is reset before each case,
so that a case never depends on what the ones before it created. A PNG strategy makes the
generated fixture images real ones.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st
from PIL import Image

from mockserver.resources import data_path
from mockserver.settings import Settings
from mockserver.testing import InProcessServer

ADMIN_TOKEN = "schemathesis-admin"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

schema = schemathesis.openapi.from_path(
    str(data_path("openapi-control.yaml")), config=schemathesis.Config()
)
# The admin token is sent by the test, not generated (401 is checked by `ignored_auth`).
schema.config.generation.update(with_security_parameters=False)


@st.composite
def _pngs(draw: st.DrawFn) -> bytes:
    size = (draw(st.integers(1, 40)), draw(st.integers(1, 40)))
    shade = draw(st.integers(0, 255))
    buffer = io.BytesIO()
    Image.new("L", size, shade).save(buffer, format="PNG")
    return buffer.getvalue()


@contextmanager
def png_images() -> Iterator[None]:
    """Real PNGs for `image/png` parts while this module generates; Schemathesis's registries
    are process-wide, so what was there before is put back afterwards."""
    from schemathesis.core.media_types import MEDIA_TYPE_STRATEGIES
    from schemathesis.transport.requests import REQUESTS_TRANSPORT

    strategies = dict(MEDIA_TYPE_STRATEGIES)
    serializers = dict(REQUESTS_TRANSPORT._serializers)
    schemathesis.openapi.media_type("image/png", _pngs())
    try:
        yield
    finally:
        MEDIA_TYPE_STRATEGIES.clear()
        MEDIA_TYPE_STRATEGIES.update(strategies)
        REQUESTS_TRANSPORT._serializers.clear()
        REQUESTS_TRANSPORT._serializers.update(serializers)


@pytest.fixture(scope="module")
def protected_mock() -> Iterator[InProcessServer]:
    """A mock whose control API requires an admin token, with real PNG generation on."""
    with png_images(), InProcessServer(Settings(state=":memory:", admin_token=ADMIN_TOKEN)) as mock:
        yield mock


@schema.parametrize()
@hypothesis.settings(
    max_examples=15,
    database=None,
    derandomize=True,
    deadline=None,
    phases=(Phase.explicit, Phase.generate),
    suppress_health_check=list(HealthCheck),
)
def test_control_api_conforms(case: Any, protected_mock: InProcessServer) -> None:
    protected_mock.backend.reset()
    case.call_and_validate(base_url=protected_mock.url + "/_mock", headers=ADMIN)
