"""Hostile clients against `itsocr-mock serve --workers 2`: the targets of issue 20, measured.

    python bench/hostile.py [--seconds 30]

1. Slow and silent connections: 64 sockets that send nothing and 16 that trickle a header line
   a second (each reopened when the mock closes it) while a client uploads a 10 KB PNG in a
   loop. Target: its p99 within 1 s over the run.
2. Decompression bombs within the plan size: eight in flight at once (two each of interlaced
   PNG, progressive JPEG, deflated TIFF, HEIC; 9400 x 9400), in rounds. Targets: each answered
   within 5 s (the live 500), a worker's peak RSS (VmHWM) under 256 MiB.
3. A JPEG with thousands of scans (35 s to decode in full on an idle core). Target: within 5 s.

The mock runs with its default settings (INFO log) but two workers. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import harness
from harness import MIB, connect, memory, multipart, noise_png, post, running

from mockserver import hostile

SILENT = 64
TRICKLING = 16


def _silent(url: str, stop: threading.Event) -> None:
    while not stop.is_set():
        with contextlib.suppress(OSError), connect(url, timeout=5) as sock:
            sock.settimeout(1)
            while not stop.is_set():  # until the mock closes it
                with contextlib.suppress(TimeoutError):
                    if not sock.recv(1024):
                        break


def _trickling(url: str, stop: threading.Event) -> None:
    lines = [b"POST /api/v1/ocr HTTP/1.1\r\n", b"Host: 127.0.0.1\r\n"]
    lines += [f"X-Slow-{n}: {'a' * 20}\r\n".encode() for n in range(1000)]
    while not stop.is_set():
        with contextlib.suppress(OSError), connect(url, timeout=5) as sock:
            for line in lines:
                if stop.wait(1.0):
                    return
                sock.sendall(line)


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def slow_connections(url: str, seconds: float, body: bytes) -> list[tuple[str, str, str, str]]:
    stop = threading.Event()
    attackers = [threading.Thread(target=_silent, args=(url, stop)) for _ in range(SILENT)]
    attackers += [threading.Thread(target=_trickling, args=(url, stop)) for _ in range(TRICKLING)]
    for attacker in attackers:
        attacker.daemon = True
        attacker.start()
    time.sleep(2)  # all connected and waiting
    timings, failures = [], 0
    ends = time.monotonic() + seconds
    while time.monotonic() < ends:
        started = time.monotonic()
        try:
            status, _ = post(url, body, timeout=10)
        except OSError:
            status = 0
        timings.append(time.monotonic() - started)
        failures += status != 200
    stop.set()
    p99 = _percentile(timings, 0.99)
    return [
        (
            f"{SILENT} silent + {TRICKLING} trickling connections: a 10 KB upload, {len(timings)} "
            f"in {seconds:g} s: p50 / p99 / max",
            f"{statistics.median(timings) * 1000:.0f} / {p99 * 1000:.0f} / "
            f"{max(timings) * 1000:.0f} ms",
            "p99 <= 1 s",
            "ok" if p99 <= 1.0 and not failures else "**missed**",
        ),
        ("  uploads not answered 200", str(failures), "0", "ok" if not failures else "**missed**"),
    ]


def bombs(url: str, workers: list[int], rounds: int) -> list[tuple[str, str, str, str]]:
    made = {name: (kind, make()) for name, (kind, make) in hostile.BOMBS.items()}
    sizes = ", ".join(f"{name} {len(data):,} bytes" for name, (_, data) in made.items())
    bodies = [multipart(data, f"bomb-{name}") for name, (_, data) in made.items()] * 2
    types = [kind for kind, _ in made.values()] * 2
    slowest, statuses = 0.0, set()

    def send(index: int) -> tuple[int, float]:
        started = time.monotonic()
        body = bodies[index].replace(
            b"Content-Type: image/png", f"Content-Type: {types[index]}".encode(), 1
        )
        status, _ = post(url, body, timeout=60)
        return status, time.monotonic() - started

    for _ in range(rounds):
        with ThreadPoolExecutor(len(bodies)) as pool:
            for status, took in pool.map(send, range(len(bodies))):
                statuses.add(status)
                slowest = max(slowest, took)
    peak = max(memory(pid)["VmHWM"] for pid in workers)
    return [
        (
            f"8 bombs in flight ({sizes}), {rounds} rounds: slowest answer",
            f"{slowest:.2f} s (statuses {sorted(statuses)})",
            "<= 5 s, 500",
            "ok" if slowest <= 5 and statuses == {500} else "**missed**",
        ),
        (
            "  worker peak RSS (VmHWM), highest of the workers",
            f"{peak / MIB:.1f} MiB",
            "< 256 MiB",
            "ok" if peak < 256 * MIB else "**missed**",
        ),
    ]


def many_scans(url: str) -> list[tuple[str, str, str, str]]:
    data = hostile.many_scan_jpeg(scans=3000, side=2000)
    body = multipart(data, "scans.jpg", "image/jpeg")
    started = time.monotonic()
    status, _ = post(url, body, timeout=120)
    took = time.monotonic() - started
    return [
        (
            f"a {len(data) // 1024} KB JPEG of 2000 x 2000 with 3000 scans",
            f"{status} in {took:.2f} s",
            "<= 5 s",
            "ok" if took <= 5 else "**missed**",
        )
    ]


def large_photo(url: str) -> list[tuple[str, str, str, str]]:
    from PIL import Image

    buffer = io.BytesIO()
    Image.effect_noise((6000, 4000), 30).convert("RGB").save(buffer, "JPEG", quality=80)
    body = multipart(buffer.getvalue(), "photo.jpg", "image/jpeg")
    started = time.monotonic()
    status, _ = post(url, body, timeout=120)
    took = time.monotonic() - started
    return [
        (
            f"a 24-megapixel photo ({len(buffer.getvalue()) // MIB} MiB JPEG), within the budgets",
            f"{status} in {took:.2f} s",
            "200, <= 5 s",
            "ok" if status == 200 and took <= 5 else "**missed**",
        )
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="the slow-connection run")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of eight bombs")
    args = parser.parse_args(argv)
    body = multipart(noise_png(200, 100, 16))
    rows: list[tuple[str, str, str, str]] = []
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as scratch:
        state, log = Path(scratch) / "state.sqlite3", Path(scratch) / "mock.log"

        def command(port: int) -> list[str]:
            return harness.mock_command(port, state, None)

        with running(command, log, body) as server:
            workers = server.workers()
            print("  slow and silent connections...", file=sys.stderr, flush=True)
            rows += slow_connections(server.url, args.seconds, body)
            print("  bombs...", file=sys.stderr, flush=True)
            rows += bombs(server.url, workers, args.rounds)
            rows += many_scans(server.url)
            rows += large_photo(server.url)
    print(
        f"Measured {time.strftime('%Y-%m-%d')} on {os.cpu_count()} CPUs, "
        f"{platform.platform()}, Python {platform.python_version()}; load average "
        f"{load_before:.2f} before, {os.getloadavg()[0]:.2f} after."
    )
    print(
        "Command: `python bench/hostile.py"
        + "".join(f" {a}" for a in (argv or sys.argv[1:]))
        + "`\n"
    )
    print("| measure | itsocr-mock | target |  |")
    print("| --- | --- | --- | --- |")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
