"""The Redis rows of the benchmark: the mock on a Redis state, next to the SQLite one.

- one mock of 2 workers on SQLite and one on Redis, in the same rounds (wrk, 16 connections,
  the 10 KB PNG, the Enterprise demo token: authentication, quota count and journal on every
  request); the target is at least 0.8x of the SQLite throughput;
- two Redis-backed mocks (2 workers each) on one Redis, loaded together (8 connections each),
  against one such mock at 16 connections: what a second replica adds on this machine.

Needs Debian's `redis-server` (``apt-get install redis-server``); the `redis` package of the
kit's `redis` extra. Redis itself runs here with no persistence, as a cache would.
"""

from __future__ import annotations

import contextlib
import statistics
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness import (
    CONNECTIONS,
    OCR_PATH,
    WORKERS,
    Load,
    lua_script,
    multipart,
    noise_png,
    parse_wrk,
    progress,
    running,
)

from mockserver.testing import REDIS_SERVER, RedisServer

REPLICA_CONNECTIONS = CONNECTIONS // 2


@dataclass
class RedisResults:
    """req/s per run: SQLite and Redis side by side, then one Redis-backed mock against two."""

    sqlite: list[Load] = field(default_factory=list)
    redis: list[Load] = field(default_factory=list)
    one: list[float] = field(default_factory=list)
    two: list[float] = field(default_factory=list)
    failures: int = 0
    missing: str = ""


def redis_mock_command(port: int, url: str, prefix: str) -> list[str]:
    """`itsocr-mock serve` on a Redis state, as `harness.mock_command` on SQLite (WARNING)."""
    return [
        sys.executable, "-m", "mockserver.cli", "serve", "--port", str(port),
        "--workers", str(WORKERS), "--state", url, "--state-prefix", prefix,
        "--log-level", "WARNING",
    ]  # fmt: skip


def sqlite_mock_command(port: int, state: Path) -> list[str]:
    """The same on a SQLite state file."""
    return [
        sys.executable, "-m", "mockserver.cli", "serve", "--port", str(port),
        "--workers", str(WORKERS), "--state", str(state), "--log-level", "WARNING",
    ]  # fmt: skip


def together(endpoints: list[str], script: Path, connections: int, seconds: int) -> list[Load]:
    """wrk against each endpoint at once (one wrk process each); their loads."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script)]
    running_wrk = [
        subprocess.Popen([*command, url, "--", "0"], stdout=subprocess.PIPE, text=True)
        for url in endpoints
    ]
    return [parse_wrk(process.communicate()[0]) for process in running_wrk]


def measure_redis(work: Path, runs: int, seconds: int) -> RedisResults:
    """Every Redis row, `runs` times, the order of SQLite and Redis alternating."""
    results = RedisResults()
    if not Path(REDIS_SERVER).exists():
        results.missing = f"{REDIS_SERVER} is missing (apt-get install redis-server)"
        return results
    png = noise_png(200, 100, 16)
    body = multipart(png)
    script = lua_script(work, "redis-small", [png])
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(RedisServer(work / "redis"))

        def start(command: Callable[[int], list[str]], name: str) -> str:
            mock = stack.enter_context(running(command, work / f"{name}.log", body))
            endpoint = mock.url + OCR_PATH
            together([endpoint], script, CONNECTIONS, 2)  # warm up
            return endpoint

        sqlite = start(lambda p: sqlite_mock_command(p, work / "redis-row.sqlite3"), "sqlite")
        redis = start(lambda p: redis_mock_command(p, server.url, "bench-a:"), "redis")
        replica = start(lambda p: redis_mock_command(p, server.url, "bench-a:"), "replica")
        for run in range(runs):
            pair = [(sqlite, results.sqlite), (redis, results.redis)]
            for endpoint, loads in pair if run % 2 == 0 else pair[::-1]:
                loads.extend(together([endpoint], script, CONNECTIONS, seconds))
            alone = together([redis], script, CONNECTIONS, seconds)
            both = together([redis, replica], script, REPLICA_CONNECTIONS, seconds)
            results.one.append(alone[0].requests_per_second)
            results.two.append(sum(load.requests_per_second for load in both))
            results.failures += sum(load.failures for load in [*alone, *both])
            sqlite_rate = results.sqlite[-1].requests_per_second
            redis_rate = results.redis[-1].requests_per_second
            progress(
                f"redis run {run + 1}/{runs} (req/s): SQLite {sqlite_rate:.0f}, Redis "
                f"{redis_rate:.0f}, one Redis-backed mock {results.one[-1]:.0f}, two "
                f"{results.two[-1]:.0f}"
            )
    results.failures += sum(load.failures for load in results.sqlite + results.redis)
    return results


def redis_table(results: RedisResults) -> str:
    """The Redis rows, as a Markdown table of their own."""
    if results.missing:
        return f"The Redis rows did not run: {results.missing}.\n"
    ratio = statistics.median(
        r.requests_per_second / s.requests_per_second
        for r, s in zip(results.redis, results.sqlite, strict=True)
    )
    scale = statistics.median(two / one for one, two in zip(results.one, results.two, strict=True))

    def rate(loads: list[Load]) -> str:
        per_second = statistics.median(load.requests_per_second for load in loads)
        p99 = statistics.median(load.p99_ms for load in loads)
        return f"{per_second:,.0f} req/s, p99 {p99:.1f} ms"

    rows = [
        ("one mock, 2 workers, SQLite state (16 connections)", rate(results.sqlite), "", ""),
        ("one mock, 2 workers, Redis state (16 connections)", rate(results.redis), "", ""),
        ("  Redis / SQLite (median of per-run ratios)", f"{ratio:.2f}x", ">= 0.8x",
         "ok" if ratio >= 0.8 else "**missed**"),
        ("one Redis-backed mock, 16 connections",
         f"{statistics.median(results.one):,.0f} req/s", "", ""),
        ("two Redis-backed mocks on one Redis, 8 connections each (sum)",
         f"{statistics.median(results.two):,.0f} req/s", "", ""),
        ("  two / one (median of per-run ratios)", f"{scale:.2f}x", "", ""),
        ("  non-200 answers and socket errors", str(results.failures), "0",
         "ok" if results.failures == 0 else "**missed**"),
    ]  # fmt: skip
    lines = ["| Redis state | measured | target | |", "| --- | --- | --- | --- |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
