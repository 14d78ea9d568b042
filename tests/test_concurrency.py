"""The quota is exact under concurrency: N simultaneous uploads at the edge of a quota yield
exactly the allowed number of 200s -- across threads, and across gunicorn worker processes that
share one state file. (The live service overshoots here; the mock must not.)"""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import requests

from mockserver.backend import DEMO_ACCOUNTS
from mockserver.clock import period_of, utc_now
from mockserver.plans import get_plan
from mockserver.store import Store
from mockserver.testing import InProcessServer, ServerProcess
from mockserver.validation import assert_matches_contract

FREE = DEMO_ACCOUNTS[0]
LIMIT = get_plan("free").images_per_month or 0
REFUSED = f"Monthly limit reached. You have used {LIMIT} of {LIMIT} images this month."


def simultaneous_uploads(
    ocr_url: str, image: bytes, count: int, token: str = FREE.token
) -> list[requests.Response]:
    """`count` uploads released at the same instant, each on its own connection."""
    start = threading.Barrier(count)
    responses: list[requests.Response] = []
    failures: list[BaseException] = []

    def upload() -> None:
        try:
            start.wait(timeout=10)
            responses.append(
                requests.post(
                    ocr_url,
                    headers={"Authorization": f"Bearer {token}"},
                    files={"file": ("scan.png", image, "image/png")},
                    timeout=30,
                )
            )
        except BaseException as failure:  # reported below, with the others
            failures.append(failure)

    threads = [threading.Thread(target=upload) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures
    return responses


def assert_exactly_the_quota_succeeded(responses: list[requests.Response]) -> None:
    statuses = Counter(response.status_code for response in responses)
    assert statuses == {200: LIMIT, 429: len(responses) - LIMIT}
    for response in responses:
        assert_matches_contract(response)
        if response.status_code == 429:
            assert response.json() == {"error": REFUSED, "success": False}
    ids = {response.json()["id"] for response in responses if response.status_code == 200}
    assert len(ids) == LIMIT


def test_threads_at_the_quota_edge_get_exactly_the_quota(
    mock_server: InProcessServer, ocr_url: str, make_image: Callable[..., bytes]
) -> None:
    responses = simultaneous_uploads(ocr_url, make_image(), 4 * LIMIT)
    assert_exactly_the_quota_succeeded(responses)
    backend = mock_server.backend
    assert backend.store.usage(FREE.id, period_of(backend.now()))[0] == LIMIT
    assert Counter(entry.status for entry in backend.store.journal()) == {
        200: LIMIT,
        429: 3 * LIMIT,
    }


def booted_workers(server: ServerProcess, expected: int, timeout: float = 10.0) -> set[str]:
    """The pids of the workers gunicorn has booted, once there are `expected` of them (the
    banner comes before the workers: gunicorn prints it when its socket is ready)."""
    deadline = time.monotonic() + timeout
    while True:
        pids = {
            line.rsplit(" ", 1)[1].strip() for line in server.output if "Booting worker" in line
        }
        if len(pids) >= expected or time.monotonic() > deadline:
            return pids
        time.sleep(0.02)


def test_worker_processes_sharing_a_state_file_get_exactly_the_quota(
    tmp_path: Path, make_image: Callable[..., bytes]
) -> None:
    state = tmp_path / "s.sqlite3"
    with ServerProcess(args=["--workers", "4"], state=state, stop_signal=signal.SIGINT) as server:
        assert len(booted_workers(server, 4)) == 4, "expected four gunicorn workers"
        responses = simultaneous_uploads(server.base_url + "/ocr", make_image(), 4 * LIMIT)
    assert_exactly_the_quota_succeeded(responses)
    store = Store(state)
    try:
        assert store.usage(FREE.id, period_of(utc_now()))[0] == LIMIT
        assert len(store.journal(status=200)) == LIMIT
    finally:
        store.close()


def test_a_larger_quota_is_exact_too(
    mock_server: InProcessServer, ocr_url: str, make_image: Callable[..., bytes]
) -> None:
    """A Pro account at 495 of 500: of 20 simultaneous uploads exactly 5 succeed."""
    backend = mock_server.backend
    account, new = backend.create_account("pro")
    limit = get_plan("pro").images_per_month or 0
    backend.store.set_images_used(account.id, period_of(backend.now()), limit - 5)
    responses = simultaneous_uploads(ocr_url, make_image(), 20, token=new.token)
    assert Counter(response.status_code for response in responses) == {200: 5, 429: 15}
    assert backend.store.usage(account.id, period_of(backend.now()))[0] == limit
