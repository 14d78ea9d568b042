"""`itsocr-mock proxy --record DIR` on gunicorn, as users run it: the mock as upstream with a
fixture set at run time, the answers recorded into DIR, replayed by a fresh `serve --fixtures
DIR`; no token or header value anywhere on disk; the budget's count at exit; and a 50 MiB
upload streamed through with the worker's memory measured."""

from __future__ import annotations

import hashlib
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from mockserver.backend import DEMO_ACCOUNTS
from mockserver.client import MockControl
from mockserver.testing import InProcessServer, ServerProcess

FREE, PRO, ENTERPRISE = DEMO_ACCOUNTS
SECRET = ("X-Client-Secret", "do-not-write-me-anywhere-42")
MIB = 1024 * 1024


def post(url: str, image: bytes, *, token: str = PRO.token, prompt: str | None = None) -> Any:
    data = {"prompt": prompt} if prompt is not None else None
    return requests.post(
        url + "/api/v1/ocr",
        headers={"Authorization": f"Bearer {token}", SECRET[0]: SECRET[1]},
        files={"file": ("receipt.png", image, "image/png")},
        data=data,
        timeout=120,
    )


@pytest.fixture
def upstream() -> Iterator[InProcessServer]:
    """A mock of its own (its fixtures are set per test), as the proxy's upstream."""
    with InProcessServer() as server:
        yield server


def proxy_process(upstream_url: str, tmp_path: Path, *args: str) -> ServerProcess:
    return ServerProcess(
        command="proxy",
        state=tmp_path / "proxy.sqlite3",
        args=["--upstream", upstream_url, *args],
        stop_signal=signal.SIGINT,
    )


@pytest.mark.slow
def test_recorded_answers_are_replayed_by_a_fresh_serve(
    upstream: InProcessServer, tmp_path: Path, make_image: Any
) -> None:
    image = make_image(text="RECEIPT 42")
    control = MockControl(upstream.url)
    control.add_fixture(image, "TOTAL 42.00 EUR", name="receipt.png")
    control.add_fixture(image, "42.00", name="receipt.png", prompt="Only the total")
    record = tmp_path / "recorded"
    with proxy_process(upstream.url, tmp_path, "--record", str(record)) as proxy:
        plain = post(proxy.url, image)
        assert (plain.status_code, plain.json()["text"]) == (200, "TOTAL 42.00 EUR")
        [name] = [p.name for p in record.iterdir() if p.suffix == ".png"]
        sha = hashlib.sha256(image).hexdigest()
        assert name == sha[:16] + ".png"
        assert (record / name).read_bytes() == image
        assert (record / name).with_suffix(".txt").read_text() == "TOTAL 42.00 EUR"
        stamps = {p.name: p.stat().st_mtime_ns for p in record.iterdir()}
        assert post(proxy.url, image).status_code == 200  # the same answer again: no change
        assert {p.name: p.stat().st_mtime_ns for p in record.iterdir()} == stamps
        variant = post(proxy.url, image, prompt="  Only the total ")
        assert variant.json()["text"] == "42.00"
        prompts = yaml.safe_load((record / (sha[:16] + ".prompts.yaml")).read_text())
        assert prompts == {"Only the total": "42.00"}
        assert (record / name).with_suffix(".txt").read_text() == "TOTAL 42.00 EUR"
        journal = requests.get(proxy.url + "/_mock/requests", timeout=10).json()
        assert [(e["status"], e["violations"], e["fixture"]) for e in journal] == [
            (200, [], name),
            (200, [], name),
            (200, [], name),
        ]
        assert {e["tokenPrefix"] for e in journal} == {PRO.token[:12]}
        deadline = time.monotonic() + 5  # the log thread writes the access line soon after
        while not any(line.rstrip().endswith("contract=ok") for line in proxy.output):
            assert time.monotonic() < deadline, "".join(proxy.output)
            time.sleep(0.02)
    assert not [p for p in record.iterdir() if p.name.endswith(".part")]
    _assert_no_secret_on_disk([record, tmp_path / "proxy.sqlite3"])

    with ServerProcess(args=["--fixtures", str(record)]) as replay:  # a fresh mock, DIR as is
        assert post(replay.url, image).json()["text"] == "TOTAL 42.00 EUR"
        assert post(replay.url, image, prompt="Only the total").json()["text"] == "42.00"


def _assert_no_secret_on_disk(places: list[Path]) -> None:
    files = [p for place in places for p in ([place] if place.is_file() else place.rglob("*"))]
    files += [p for p in places[-1].parent.glob(places[-1].name + "-*")]  # -wal, -shm, -lock
    assert files
    for path in files:
        if not path.is_file():
            continue
        content = path.read_bytes()
        for secret in (PRO.token, PRO.token[12:], SECRET[1]):
            assert secret.encode() not in content, f"{secret!r} written to {path}"


@pytest.mark.slow
def test_the_budget_is_counted_across_workers_and_printed_at_exit(
    upstream: InProcessServer, tmp_path: Path, make_image: Any
) -> None:
    image = make_image()
    with proxy_process(upstream.url, tmp_path, "--budget", "3", "--workers", "2") as proxy:
        statuses = [post(proxy.url, image).status_code for _ in range(5)]
        assert statuses == [200, 200, 200, 503, 503]
    assert any(
        "itsocr-mock proxy: forwarded 3 requests that can consume quota (budget 3)" in line
        for line in proxy.output
    ), "".join(proxy.output)
    assert len(upstream.backend.journal()) == 3


def _worker_pid(master: int) -> int:
    # The banner comes from the master, as its worker starts: wait for the worker to exist.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        if children:
            assert len(children) == 1, children
            return int(children[0])
        time.sleep(0.05)
    raise AssertionError("gunicorn started no worker within 20 s")


def _status(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} in /proc/{pid}/status")


@pytest.mark.slow
@pytest.mark.timing
@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
def test_a_50_mib_upload_streams_through_one_worker_within_64_mib(
    upstream: InProcessServer, tmp_path: Path
) -> None:
    from contract_tests.images import padded_png

    image = padded_png(50 * MIB)  # the ceiling, Enterprise's limit: the mock reads it all
    with proxy_process(upstream.url, tmp_path, "--record", str(tmp_path / "rec")) as proxy:
        assert proxy.process is not None
        worker = _worker_pid(proxy.process.pid)
        assert post(proxy.url, b"warm-up", token=ENTERPRISE.token).status_code == 500
        Path(f"/proc/{worker}/clear_refs").write_text("5")  # the peak starts again from here
        before = _status(worker, "VmRSS")
        reply = post(proxy.url, image, token=ENTERPRISE.token)
        peak = _status(worker, "VmHWM")
    assert reply.status_code == 200, reply.text
    assert reply.json()["fileSize"] == 50 * MIB
    growth = peak - before
    print(
        f"proxy worker: RSS {before / MIB:.1f} MiB before, peak {peak / MIB:.1f} MiB: "
        f"+{growth / MIB:.1f} MiB for a 50 MiB upload (recording on)"
    )
    assert growth <= 64 * MIB
    [recorded] = (tmp_path / "rec").glob("*.png")
    assert recorded.stat().st_size == 50 * MIB
