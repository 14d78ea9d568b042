"""Benchmark: `itsocr-mock serve` against a bare-WSGI floor, on this machine, in one table.

    python bench/run.py                         # print the table (about 3 minutes)
    python bench/run.py --write bench/RESULTS.md
    python bench/run.py --runs 3 --only throughput --only startup   # a subset

Measured (medians of `--runs` runs; the servers take turns, each started for its own turn
and stopped after it, so that all see the same noise and none runs during another's):

- throughput, p50/p99 latency and the server's CPU per request (from /proc) with wrk, 16
  connections posting a 10 KB PNG, `--workers 2`,
  full semantics (auth, SQLite quota and journal on the Enterprise demo account, fixture
  lookup), and the same against `bench/floor.py` under the same gunicorn settings;
- start-up: process start to the first 200 (mock and floor), and the in-process pytest server
  (`mockserver.testing.InProcessServer().start()` to its first 200);
- 20 MiB uploads at 2 connections: req/s and the peak RSS (VmHWM) of each worker;
- a 60 MiB upload: time to the 400, worker RSS before and after, and what python-requests sees;
- the contract suite against the mock and the default test run: wall time;
- the Redis rows (`bench/redis_rows.py`): the mock on a Redis state next to the SQLite one, and
  two Redis-backed mocks on one Redis against one (needs Debian's `redis-server`).

Needs only the kit's own dependencies and wrk (a load generator from the OS packages:
``apt-get install wrk`` or ``brew install wrk``). Linux only: RSS is read from /proc.
"""

from __future__ import annotations

import argparse
import compileall
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from harness import (
    ROOT,
    progress,
)
from measures import (
    Results,
    measure_big_uploads,
    measure_huge_upload,
    measure_start_up,
    measure_suites,
    measure_throughput,
)
from redis_rows import RedisResults, measure_redis, redis_table
from report import (
    NOTES,
    load_average,
    machine,
    side_by_side,
    table,
    update_readme,
)

MEASURES = ("throughput", "startup", "uploads", "suites", "redis")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per measure (default 5)")
    parser.add_argument("--seconds", type=int, default=5, help="seconds per wrk run (5)")
    parser.add_argument(
        "--only",
        action="append",
        choices=MEASURES,
        help="run only these measures (repeatable; default: all)",
    )
    parser.add_argument("--write", type=Path, help="also write the table to this Markdown file")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print(
            "bench/run.py needs wrk, the HTTP load generator, on PATH: install it with "
            "`apt-get install wrk` (Debian/Ubuntu) or `brew install wrk` (macOS).",
            file=sys.stderr,
        )
        return 2
    if not Path("/proc/self/status").exists():
        print("bench/run.py reads memory figures from /proc: run it on Linux.", file=sys.stderr)
        return 2
    chosen = args.only or MEASURES
    results = Results()
    redis_results: RedisResults | None = None
    load_before = load_average()
    if load_before > 0.5:
        progress(
            f"warning: load average {load_before:.2f} before starting: other processes "
            "compete for the CPU, and every figure below suffers"
        )
    # Byte-compile the kit first, as installing it does: start-up then measures the server,
    # not the compilation of its modules (PYTHONDONTWRITEBYTECODE would otherwise redo it).
    compileall.compile_dir(ROOT / "src" / "mockserver", quiet=1)
    with tempfile.TemporaryDirectory(prefix="itsocr-bench-") as directory:
        work = Path(directory)
        if "throughput" in chosen:
            measure_throughput(work, results, args.runs, args.seconds)
        if "startup" in chosen:
            measure_start_up(work, results, args.runs)
        if "uploads" in chosen:
            measure_big_uploads(work, results, max(1, args.runs // 2), args.seconds)
            measure_huge_upload(work, results, args.runs)
        if "redis" in chosen:
            redis_results = measure_redis(work, args.runs, args.seconds)
    if "suites" in chosen:
        measure_suites(results)
    command = "python bench/run.py" + (f" {' '.join(argv)}" if argv else "")
    report = (
        f"Measured {time.strftime('%Y-%m-%d')} on {machine()}; load average "
        f"{load_before:.2f} before, {load_average():.2f} after.\n"
        f"Command: `{command}`\n\n{table(results, args.runs)}"
    )
    if results.mock:
        report += (
            "\n**Side by side** (the same 10 KB PNG, the same rounds; 1 conn.: one client "
            f"calling in sequence, as a test suite does):\n\n{side_by_side(results)}"
        )
    if redis_results is not None:
        report += f"\n**Redis state** (`bench/redis_rows.py`):\n\n{redis_table(redis_results)}"
    print(report)
    if args.write:
        args.write.write_text(
            "# Benchmark results\n\nGenerated by `python bench/run.py --write "
            f"{args.write}`; do not edit by hand.\n\n{report}\n{NOTES}"
        )
        update_readme(report)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
