"""Fault rules with ``countsUsage``, over real HTTP: the image is counted, then the request
fails -- as on the live service, which increments usage before it stores the image, so its 500
can follow an image already counted. Without the option a failure never consumes quota (the
documented intent; see test_control.py)."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from mockserver import errors
from mockserver.backend import DEMO_ACCOUNTS
from mockserver.client import MockControl
from mockserver.settings import Settings
from mockserver.store import Store
from mockserver.store.sqlite import FaultRow
from mockserver.testing import InProcessServer

FREE, PRO, ENTERPRISE = DEMO_ACCOUNTS
OCR_FAILED = errors.OcrFailed.message
DATA = Path(__file__).parent / "data"


@pytest.fixture
def control(mock_server: InProcessServer) -> Iterator[MockControl]:
    with MockControl(mock_server.url) as client:
        yield client


@pytest.fixture
def ocr(post_ocr: Callable[..., requests.Response], make_image: Callable[..., bytes]) -> Any:
    def send(token: str = FREE.token, image: bytes | None = None) -> requests.Response:
        upload = make_image("image/png") if image is None else image
        return post_ocr(token=token, files={"file": ("scan.png", upload, "image/png")})

    return send


def test_a_500_that_counts_the_image_then_a_retry_meets_the_quota(
    control: MockControl, ocr: Any, assert_api_error: Callable[..., None]
) -> None:
    """The retry trap: the last image of the month fails with a 500 yet is counted, so the
    client's retry gets the 429."""
    control.set_usage(FREE.id, 9)
    rule = control.add_fault(500, times=1, counts_usage=True)
    assert rule["countsUsage"] is True
    assert_api_error(ocr(), 500, OCR_FAILED)
    assert control.get_usage(FREE.id)["imagesUsed"] == 10
    assert_api_error(ocr(), 429, errors.MonthlyLimitReached(10, 10).error)
    journal = control.requests()
    assert [(entry["status"], entry["error"]) for entry in journal] == [
        (500, OCR_FAILED),
        (429, errors.MonthlyLimitReached(10, 10).error),
    ]
    assert "counted first (countsUsage)" in journal[0]["hint"]
    assert rule["id"] in journal[0]["hint"]


def test_the_pytest_plugin_spelling(itsocr_mock: Any, make_image: Callable[..., bytes]) -> None:
    itsocr_mock.fail_next(500, times=2, counts_usage=True, account="demo-pro")
    headers = {"Authorization": f"Bearer {itsocr_mock.demo_tokens['pro']}"}
    upload = {"file": ("scan.png", make_image("image/png"), "image/png")}
    statuses = [
        requests.post(itsocr_mock.ocr_url, headers=headers, files=upload, timeout=10).status_code
        for _ in range(3)
    ]
    assert statuses == [500, 500, 200]
    assert itsocr_mock.usage("demo-pro") == 3


def test_a_dropped_connection_that_counts_the_image(control: MockControl, ocr: Any) -> None:
    control.add_fault(drop=True, times=1, counts_usage=True)
    with pytest.raises(requests.ConnectionError):
        ocr(PRO.token)
    assert control.get_usage(PRO.id)["imagesUsed"] == 1
    [entry] = control.requests()
    assert (entry["status"], entry["error"]) == (0, "connection dropped by a fault rule")


def test_an_empty_file_is_not_counted_even_so(
    control: MockControl, ocr: Any, assert_api_error: Callable[..., None]
) -> None:
    """The live service counts only non-empty files; the fault fails the request before the
    empty bytes reach the decoder."""
    control.add_fault(500, times=1, counts_usage=True)
    assert_api_error(ocr(image=b""), 500, OCR_FAILED)
    assert control.get_usage(FREE.id)["imagesUsed"] == 0
    assert [entry["status"] for entry in control.requests()] == [500]


@pytest.mark.parametrize(
    "body",
    [
        {"status": 400, "countsUsage": True},
        {"status": 429, "countsUsage": True},
        {"delayMs": 100, "countsUsage": True},
        {"status": 500, "countsUsage": "yes"},
    ],
)
def test_counts_usage_only_with_a_500_or_a_drop(mock_server: InProcessServer, body: Any) -> None:
    answer = requests.post(mock_server.url + "/_mock/faults", json=body, timeout=10)
    assert answer.status_code == 400
    assert "countsUsage" in answer.json()["error"]
    assert requests.get(mock_server.url + "/_mock/faults", timeout=10).json() == []


def test_a_state_file_from_before_counts_usage_gains_the_column(tmp_path: Path) -> None:
    state = tmp_path / "state.sqlite3"
    with contextlib.closing(sqlite3.connect(state)) as db:  # the faults table of schema 1
        db.executescript((DATA / "state-v1.sql").read_text(encoding="utf-8"))
    with InProcessServer(Settings(state=str(state))) as server:
        server.backend.ensure_initialised()
        with MockControl(server.url) as control:
            control.add_fault(500, counts_usage=True, times=1)
            # The old state's rule gained the column with its default, the new one is set.
            assert [rule["countsUsage"] for rule in control.list_faults()] == [False, True]
    store = Store(state)
    try:
        old, rule = store.list_faults()
    finally:
        store.close()
    assert isinstance(rule, FaultRow)
    assert (old.id, old.counts_usage, rule.counts_usage) == ("flt_0123456789abcdef", False, True)
