"""The mock on a Redis state: over HTTP, as several `serve` processes, through Redis failures.

The store itself is tested against Redis by test_backend.py and test_store.py; here the mock
is served, in-process or as `itsocr-mock serve`, on a real redis-server.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis
import requests

from mockserver.backend import DEMO_ACCOUNTS
from mockserver.clock import period_of
from mockserver.settings import Settings
from mockserver.store.redis import RedisStore
from mockserver.testing import InProcessServer, RedisServer, ServerProcess

FREE, PRO, ENTERPRISE = DEMO_ACCOUNTS
OCR_FAILED = {"error": "OCR processing failed. Please try again.", "success": False}


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis of the test's own, durable so that a restart keeps the state."""
    with RedisServer(tmp_path / "redis", durable=True) as server:
        yield server


def upload(url: str, image: bytes, token: str, timeout: float = 30) -> requests.Response:
    return requests.post(
        url + "/api/v1/ocr",
        headers={"Authorization": f"Bearer {token}"},
        files={"file": ("scan.png", image, "image/png")},
        timeout=timeout,
    )


def images_used(redis_url: str, prefix: str, account_id: str) -> int:
    store = RedisStore(redis_url, prefix)
    try:
        now = time.gmtime()
        return store.usage(account_id, f"{now.tm_year:04d}-{now.tm_mon:02d}")[0]
    finally:
        store.close()


def test_a_lost_redis_is_the_live_500_and_a_control_503_until_it_is_back(
    own_redis: RedisServer, make_image: Callable[..., bytes]
) -> None:
    image = make_image("image/png")
    with InProcessServer(Settings(state=own_redis.url, state_prefix="t:")) as mock:
        assert upload(mock.url, image, FREE.token).status_code == 200
        own_redis.stop()
        lost = upload(mock.url, image, FREE.token)
        assert (lost.status_code, lost.json()) == (500, OCR_FAILED)
        control = requests.get(mock.url + "/_mock/accounts", timeout=30)
        assert control.status_code == 503
        assert "cannot be reached" in control.json()["error"]
        assert requests.get(mock.url + "/_mock/health", timeout=30).status_code == 503
        own_redis.start()  # the same Redis back, with its data: no restart of the mock
        assert upload(mock.url, image, FREE.token).status_code == 200
        assert requests.get(mock.url + "/_mock/accounts", timeout=30).status_code == 200
        period = period_of(mock.backend.now())
        assert mock.backend.store.usage(FREE.id, period)[0] == 2  # the 500 was not counted


def round_trips(redis_url: str, action: Callable[[], object]) -> list[str]:
    """The commands clients sent Redis while `action` ran (not those of scripts), from its
    MONITOR stream, between two ECHO markers."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    sent: list[str] = []
    with client.monitor() as monitor:
        client.echo("itsocr-test-begin")
        for command in monitor.listen():
            if "itsocr-test-begin" in command["command"]:
                break
        action()
        client.echo("itsocr-test-end")
        for command in monitor.listen():
            if "itsocr-test-end" in command["command"]:
                break
            if command["client_type"] != "lua":
                sent.append(command["command"].split(" ")[0])
    client.close()
    return sent


@pytest.mark.parametrize(
    ("token", "status"), [(PRO.token, 200), (PRO.token[:-1] + "x", 401), (None, 401)]
)
def test_an_ocr_request_is_two_round_trips_to_redis(
    redis_server: RedisServer,
    redis_prefix: str,
    make_image: Callable[..., bytes],
    token: str | None,
    status: int,
) -> None:
    """Arriving (overrides, token, usage) in one script, then the count or the journal: a
    round trip is a wait for the network, and the whole of a Redis state's extra cost."""
    image = make_image("image/png")
    settings = Settings(state=redis_server.url, state_prefix=redis_prefix)
    with InProcessServer(settings) as mock:
        # Each script is loaded into Redis by its first use.
        assert upload(mock.url, image, PRO.token).status_code == 200
        assert upload(mock.url, image, PRO.token[:-1] + "x").status_code == 401
        answers: list[requests.Response] = []
        sent = round_trips(
            redis_server.url,
            lambda: answers.append(
                requests.post(
                    mock.url + "/api/v1/ocr",
                    headers={"Authorization": f"Bearer {token}"} if token else {},
                    files={"file": ("scan.png", image, "image/png")},
                    timeout=30,
                )
            ),
        )
    assert answers[0].status_code == status
    assert sent == ["EVALSHA", "EVALSHA"]


def test_serve_refuses_an_unreachable_redis_in_one_line(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis").start()
    url = server.url.replace("redis://", "redis://:hunter2@")
    server.stop()  # the port is free again: nothing answers there
    done = subprocess.run(
        [sys.executable, "-m", "mockserver.cli", "serve", "--port", "0", "--state", url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("itsocr-mock: error: the mock's state at redis://:***@127.0.0.1:")
    assert "cannot be reached" in lines[0]
    assert "hunter2" not in done.stderr


@pytest.mark.parametrize(
    ("schema", "says"),
    [
        ("2", "was written by a newer itsocr-mock (schema 2; this one knows 1): upgrade the kit"),
        ("banana", "has a '{prefix}schema' key that is not this kit's ('banana')"),
    ],
)
def test_a_redis_state_this_version_cannot_read_is_refused_unchanged(
    redis_server: RedisServer, redis_prefix: str, schema: str, says: str
) -> None:
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    client.set(redis_prefix + "schema", schema)
    client.set(redis_prefix + "accounts", "whatever a newer version keeps")
    before = {key: client.dump(key) for key in client.scan_iter(redis_prefix + "*")}
    command = [sys.executable, "-m", "mockserver.cli"]
    where = ["--state", redis_server.url, "--state-prefix", redis_prefix]
    for args in (["serve", "--port", "0", *where], ["usage", "demo-free", *where]):
        done = subprocess.run(command + args, capture_output=True, text=True, timeout=60)
        assert done.returncode == 2, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        assert says.format(prefix=redis_prefix) in lines[0]
    after = {key: client.dump(key) for key in client.scan_iter(redis_prefix + "*")}
    assert after == before
    client.close()


def test_the_banner_masks_the_redis_password(tmp_path: Path) -> None:
    with (
        RedisServer(tmp_path / "redis", password="hunter2") as redis_server,
        ServerProcess(state=redis_server.url) as mock,
    ):
        assert upload(mock.url, b"not an image", FREE.token).status_code == 500
        banner = "".join(mock.output)
        assert f"state: redis://:***@127.0.0.1:{redis_server.port}/0" in banner
        health = requests.get(mock.url + "/_mock/health", timeout=30).json()
        assert health["state"] == f"redis://:***@127.0.0.1:{redis_server.port}/0"
    assert "hunter2" not in "".join(mock.output)


def test_the_state_and_its_prefix_come_from_the_environment_too(
    redis_server: RedisServer, redis_prefix: str
) -> None:
    environment = {"ITSOCR_MOCK_STATE": redis_server.url, "ITSOCR_MOCK_STATE_PREFIX": redis_prefix}
    with ServerProcess(state=None, env=environment) as mock:
        created = requests.post(mock.url + "/_mock/accounts", json={"plan": "pro"}, timeout=30)
        assert created.status_code == 201
    store = RedisStore(redis_server.url, redis_prefix)
    assert store.get_account(created.json()["id"]) is not None
    store.close()


# -- several mock processes on one Redis -------------------------------------------------------


@pytest.mark.slow
def test_the_quota_is_exact_across_two_mocks_of_two_workers(
    redis_server: RedisServer, redis_prefix: str, make_image: Callable[..., bytes]
) -> None:
    image = make_image("image/png")
    args = ["--workers", "2", "--state-prefix", redis_prefix]
    with (
        ServerProcess(state=redis_server.url, args=args) as first,
        ServerProcess(state=redis_server.url, args=args) as second,
    ):
        requests.post(first.url + "/_mock/reset", timeout=30).raise_for_status()
        start = threading.Barrier(64)

        def send(i: int) -> int:
            start.wait(timeout=60)
            return upload((first, second)[i % 2].url, image, FREE.token, timeout=120).status_code

        with ThreadPoolExecutor(64) as pool:
            statuses = list(pool.map(send, range(64)))
        assert sorted(statuses) == [200] * 10 + [429] * 54
        assert images_used(redis_server.url, redis_prefix, FREE.id) == 10
        journal = requests.get(second.url + "/_mock/requests", timeout=30).json()
        assert len(journal) == 64


@pytest.mark.slow
def test_a_redis_restart_under_load_loses_no_count_and_needs_no_mock_restart(
    own_redis: RedisServer, make_image: Callable[..., bytes]
) -> None:
    image = make_image("image/png")
    args = ["--workers", "2", "--state-prefix", "load:"]
    with (
        ServerProcess(state=own_redis.url, args=args) as first,
        ServerProcess(state=own_redis.url, args=args) as second,
    ):
        replies: list[requests.Response] = []
        stop = threading.Event()

        def load(url: str) -> None:
            deadline = time.monotonic() + 60  # bounded, whatever happens
            while not stop.is_set() and time.monotonic() < deadline:
                replies.append(upload(url, image, ENTERPRISE.token))

        workers = [threading.Thread(target=load, args=(m.url,)) for m in (first, second) * 2]
        for worker in workers:
            worker.start()
        time.sleep(1.5)
        own_redis.stop()  # SIGTERM: Redis finishes the script at hand, then goes
        time.sleep(1.5)
        own_redis.start()
        time.sleep(1.5)
        stop.set()
        for worker in workers:
            worker.join(timeout=90)
        # Both mocks answer again without a restart.
        assert upload(first.url, image, ENTERPRISE.token).status_code == 200
        assert upload(second.url, image, ENTERPRISE.token).status_code == 200
        logs = "".join(first.output + second.output)
    answered = [reply.status_code for reply in replies]
    failed = [reply for reply in replies if reply.status_code != 200]
    assert failed, "Redis was down for 1.5 s: some requests must have failed"
    assert all((r.status_code, r.json()) == (500, OCR_FAILED) for r in failed)
    assert "cannot be reached" in logs  # the hint, in the log of the mock that answered
    # Every 200 counted, nothing else: the two checks above included.
    assert images_used(own_redis.url, "load:", ENTERPRISE.id) == answered.count(200) + 2
