"""The measurements: each fills its part of `Results`."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from alternatives import ensure_tools, prism_command, wiremock_command
from harness import (
    CHECKOUT_ENV,
    CONNECTIONS,
    FIXTURE,
    FRESH_IMAGES,
    HEADERS,
    HUGE_UPLOAD,
    MIB,
    OCR_PATH,
    ROOT,
    TOO_LARGE,
    Load,
    Server,
    connect,
    distinct_pngs,
    floor_command,
    lua_script,
    memory,
    mock_command,
    multipart,
    noise_png,
    post,
    progress,
    running,
    wrk,
)

# -- the measurements ------------------------------------------------------------------------


DEFAULT = "itsocr-mock (as the README starts it: INFO, log to a file)"
PIPE = "itsocr-mock (INFO, log read from a pipe)"
WARNING = "itsocr-mock --log-level WARNING"
FLOOR = "floor (bare WSGI)"
PRISM = "Prism 5"
WIREMOCK = "WireMock 3"


@dataclass
class Results:
    """Every number of the table (lists hold one value per run)."""

    mock: list[Load] = field(default_factory=list)  # as the README starts it: INFO, to a file
    pipe: list[Load] = field(default_factory=list)  # the same, its log read from a pipe
    warning: list[Load] = field(default_factory=list)  # --log-level WARNING: no access lines
    fresh: list[Load] = field(default_factory=list)  # the mock, a new image each request
    floor: list[Load] = field(default_factory=list)
    alternatives: dict[str, list[Load]] = field(default_factory=dict)  # Prism, WireMock
    alternatives_missing: str = ""  # why they did not run
    sequential: dict[str, Load] = field(default_factory=dict)  # one connection, per server
    # Server CPU (all its processes, from /proc) per request of each 16-connection run, in µs:
    # what a request costs, less swayed than req/s by what else runs on the machine.
    cpu_us: dict[str, list[float]] = field(default_factory=dict)
    started: dict[str, float] = field(default_factory=dict)  # process start to first 200
    rss: dict[str, int] = field(default_factory=dict)  # the process tree, after the load
    mock_start: list[float] = field(default_factory=list)  # first request: an unknown image
    mock_start_fixture: list[float] = field(default_factory=list)  # a built-in fixture
    floor_start: list[float] = field(default_factory=list)
    in_process_start: list[float] = field(default_factory=list)
    big: list[Load] = field(default_factory=list)
    big_floor: list[Load] = field(default_factory=list)
    big_peak_rss: list[int] = field(default_factory=list)  # per worker
    big_size: int = 0
    huge_ms: list[float] = field(default_factory=list)
    huge_first_growth: int = 0  # peak RSS growth over each worker's first refusals
    huge_peak_before: int = 0
    huge_peak_after: int = 0
    huge_hwm_growth: int = 0
    huge_drain_growth: int = 0  # peak RSS growth while discarding what clients still send
    huge_requests: str = ""
    huge_http_client: str = ""
    suites: dict[str, str] = field(default_factory=dict)


@dataclass
class Contender:
    """A server in the throughput rounds: its label, how to start it, where its loads go."""

    label: str
    start: Callable[[contextlib.ExitStack], Server]
    loads: list[Load]


def contenders(work: Path, results: Results, body: bytes) -> list[Contender]:
    """The mock as the README starts it (log to a file, and to a pipe), at WARNING, the floor,
    and, when they can run here, Prism and WireMock."""

    def mock(log_level: str | None, pipe: bool, name: str) -> Callable[..., Server]:
        state = work / f"throughput-{name}.sqlite3"
        return lambda stack: stack.enter_context(
            running(lambda p: mock_command(p, state, log_level), work / f"{name}.log", body,
                    pipe=pipe)
        )  # fmt: skip

    chosen = [
        Contender(DEFAULT, mock(None, False, "default"), results.mock),
        Contender(PIPE, mock(None, True, "pipe"), results.pipe),
        Contender(WARNING, mock("WARNING", False, "warning"), results.warning),
        Contender(FLOOR, lambda stack: stack.enter_context(
            running(floor_command, work / "floor.log", body)), results.floor),
    ]  # fmt: skip
    missing = ensure_tools()
    if missing:
        results.alternatives_missing = missing
        return chosen
    chosen.append(
        Contender(PRISM, lambda stack: stack.enter_context(
            running(prism_command, work / "prism.log", body, path="/ocr")),
            results.alternatives.setdefault(PRISM, []))
    )  # fmt: skip
    wiremock = wiremock_command(0, work)
    if wiremock is None:
        results.alternatives_missing = "java is not on PATH (WireMock needs it)"
    else:
        chosen.append(
            Contender(WIREMOCK, lambda stack: stack.enter_context(
                running(lambda p: wiremock_command(p, work) or [], work / "wiremock.log", body)),
                results.alternatives.setdefault(WIREMOCK, []))
        )  # fmt: skip
    return chosen


def measure_throughput(work: Path, results: Results, runs: int, seconds: int) -> None:
    """wrk at 16 connections against every contender in turn (the order rotating run by run,
    so that all see the same machine), `runs` times; one connection (a client's test suite,
    call after call); then the mock again with a new image on every request.

    Each contender runs only for its own turn: started, warmed up, measured, stopped. A server
    left running between its turns would take CPU from the others' -- a JVM's garbage collector
    and JIT threads do, measured at about 45 % of a core while the mock was under load.
    """
    png = noise_png(200, 100, 16)
    body = multipart(png)
    same = lua_script(work, "small", [png])
    fresh = lua_script(work, "fresh", distinct_pngs(png, FRESH_IMAGES))
    chosen = contenders(work, results, body)
    starts: dict[str, list[float]] = {contender.label: [] for contender in chosen}
    for run in range(runs):
        for contender in chosen[run % len(chosen) :] + chosen[: run % len(chosen)]:
            with contextlib.ExitStack() as stack:
                server = contender.start(stack)
                starts[contender.label].append(server.started_in)
                # Warm up: imports, connections, SQLite pages -- and a JVM's JIT, which needs
                # longer.
                wrk(server.endpoint, same, CONNECTIONS, 10 if contender.label == WIREMOCK else 2)
                used = server.cpu_seconds()
                contender.loads.append(wrk(server.endpoint, same, CONNECTIONS, seconds))
                used = server.cpu_seconds() - used
                results.cpu_us.setdefault(contender.label, []).append(
                    used / max(1, contender.loads[-1].requests) * 1e6
                )
                if run == runs - 1:  # its last turn: one connection, and the memory it holds
                    results.sequential[contender.label] = wrk(server.endpoint, same, 1, seconds)
                    results.rss[contender.label] = server.tree_rss()
        rates = ", ".join(
            f"{c.label.split(' (')[0]} {c.loads[-1].requests_per_second:.0f}" for c in chosen
        )
        progress(f"throughput run {run + 1}/{runs} (req/s): {rates}")
    for label, seconds_to_serve in starts.items():
        results.started[label] = statistics.median(seconds_to_serve)
    with contextlib.ExitStack() as stack:  # alone on the machine again
        mock = chosen[0].start(stack)
        wrk(mock.url, same, CONNECTIONS, 2)
        sent = 0  # each run goes on where the last stopped: every image is new to the server
        for _ in range(max(1, runs // 2)):
            results.fresh.append(wrk(mock.url, fresh, CONNECTIONS, seconds, start=sent))
            sent += results.fresh[-1].requests
            if sent + results.fresh[-1].requests > FRESH_IMAGES:
                break  # another run would send images the server has seen
    if sent > FRESH_IMAGES:
        progress(f"warning: {sent} requests for {FRESH_IMAGES} new images; some were seen")


def measure_start_up(work: Path, results: Results, runs: int) -> None:
    """Process start to the first 200, on a fresh state each time, for an image of the built-in
    fixtures and for one no fixture knows (its first decode and generated text included); the
    floor; and the in-process server."""
    body = multipart(noise_png(64, 32, 8))
    known = multipart((ROOT / "fixtures" / FIXTURE).read_bytes(), FIXTURE)
    for run in range(runs):
        for first, starts in ((known, results.mock_start_fixture), (body, results.mock_start)):
            state = work / f"start-{run}-{len(starts)}-{len(first)}.sqlite3"
            with running(lambda p, s=state: mock_command(p, s), work / "mock.log", first) as mock:
                starts.append(mock.started_in)
        with running(floor_command, work / "floor.log", body) as floor:
            results.floor_start.append(floor.started_in)
        results.in_process_start.append(in_process_start_up(body))
    progress(f"start-up: mock {statistics.median(results.mock_start):.3f} s")


_IN_PROCESS = """
import http.client, sys, time
from mockserver.testing import InProcessServer
body, headers = sys.stdin.buffer.read(), {headers!r}
began = time.perf_counter()
server = InProcessServer().start()
connection = http.client.HTTPConnection("127.0.0.1", int(server.url.rsplit(":", 1)[1]))
connection.request("POST", "/api/v1/ocr", body=body, headers=headers)
status = connection.getresponse().status
print(time.perf_counter() - began if status == 200 else f"status {{status}}")
server.stop()
"""


def in_process_start_up(body: bytes) -> float:
    """InProcessServer().start() to its first 200, in a fresh interpreter (imports done)."""
    finished = subprocess.run(
        [sys.executable, "-c", _IN_PROCESS.format(headers=HEADERS)],
        input=body,
        capture_output=True,
        cwd=ROOT,
        env=CHECKOUT_ENV,
        check=True,
    )
    return float(finished.stdout)


def measure_big_uploads(work: Path, results: Results, runs: int, seconds: int) -> None:
    """20 MiB uploads at 2 connections on a fresh mock: req/s and each worker's peak RSS."""
    image = noise_png(2560, 2728, 2728)
    results.big_size = len(image)
    script = lua_script(work, "big", [image], file_name="big.png", boundaries=1)
    small = multipart(noise_png(64, 32, 8))
    with (
        running(lambda p: mock_command(p, work / "big.sqlite3"), work / "mock.log", small) as mock,
        running(floor_command, work / "floor.log", small) as floor,
    ):
        for _ in range(runs):
            results.big.append(wrk(mock.url, script, 2, seconds))
            results.big_floor.append(wrk(floor.url, script, 2, seconds))
        results.big_peak_rss = [memory(pid)["VmHWM"] for pid in mock.workers()]
    progress(
        f"20 MiB uploads: {statistics.median(load.requests_per_second for load in results.big):.1f}"
        f" req/s, peak RSS {max(results.big_peak_rss) / MIB:.1f} MiB"
    )


def measure_huge_upload(work: Path, results: Results, runs: int) -> None:
    """A 60 MiB upload: time to the 400 and the workers' RSS around it, for a client that
    reads while it sends and stops once answered (as curl does); then what python-requests
    and http.client (which read only once all is sent) receive, and the RSS that costs."""
    small = multipart(noise_png(64, 32, 8))
    body = multipart(bytes(HUGE_UPLOAD), "huge.png")
    with running(
        lambda p: mock_command(p, work / "huge.sqlite3"), work / "mock.log", small
    ) as mock:
        workers = mock.workers()
        for _ in range(8):  # every worker serves a few: its baseline is warm
            on_each_worker(mock.url, len(workers), lambda sock: post(mock.url, small, sock=sock))
        cold = {pid: memory(pid) for pid in workers}
        # The first refusals run code and fill buffers no small request did, once per worker:
        # measured apart, so that "unchanged" is about what every further upload costs.
        for _ in range(4):
            on_each_worker(mock.url, len(workers), lambda sock: time_to_answer(sock, body))
        before = {pid: memory(pid) for pid in workers}
        for _ in range(runs):
            results.huge_ms.append(time_to_answer(connect(mock.url), body))
        after = {pid: memory(pid) for pid in workers}
        results.huge_requests = requests_view(mock.url, body)
        results.huge_http_client = http_client_view(mock.url, body)
        drained = {pid: memory(pid) for pid in workers}
    results.huge_first_growth = max(before[pid]["VmHWM"] - cold[pid]["VmHWM"] for pid in workers)
    # Peaks (VmHWM): the RSS itself rises and falls by a MiB or two between requests, as glibc
    # keeps or returns gunicorn's freed read buffers; the peak shows whether uploads add up.
    results.huge_peak_before = max(m["VmHWM"] for m in before.values())
    results.huge_peak_after = max(m["VmHWM"] for m in after.values())
    results.huge_hwm_growth = max(after[pid]["VmHWM"] - before[pid]["VmHWM"] for pid in workers)
    results.huge_drain_growth = max(drained[pid]["VmHWM"] - after[pid]["VmHWM"] for pid in workers)
    progress(f"60 MiB upload: 400 in {statistics.median(results.huge_ms):.1f} ms")


def on_each_worker(url: str, workers: int, send: Callable[[socket.socket], object]) -> None:
    """`send` on `workers` connections opened first and held together: the workers take
    connections by load (balancing.py), so each serves one. One connection at a time could
    go to the same worker every time: sequential clients are a tie, which either may take."""
    connections = []
    try:
        for _ in range(workers):
            connections.append(connect(url))
            time.sleep(0.005)  # taken by a worker before the next one is weighed
        for sock in connections:
            send(sock)
    finally:
        for sock in connections:
            sock.close()


def time_to_answer(sock: socket.socket, body: bytes) -> float:
    """Milliseconds from the first byte sent on `sock` to the complete response, for a client
    that reads while it is still sending and stops sending once answered (as curl does);
    checks that the answer is the JSON 400. Closes `sock`."""
    host, port = sock.getpeername()[:2]
    head = (
        f"POST {OCR_PATH} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: {len(body)}\r\n"
        + "".join(f"{key}: {value}\r\n" for key, value in HEADERS.items())
        + "\r\n"
    ).encode()
    request = head + body
    with sock:
        began = time.perf_counter()
        sender = threading.Thread(target=_send_quietly, args=(sock, request), daemon=True)
        sender.start()
        response = http.client.HTTPResponse(sock)
        response.begin()
        answer = response.read()
        elapsed = (time.perf_counter() - began) * 1000
        response.close()
        sock.shutdown(socket.SHUT_RDWR)  # answered: the rest is not sent
        sender.join(10)
    if response.status != 400 or json.loads(answer) != TOO_LARGE:
        raise RuntimeError(f"60 MiB upload answered {response.status} {answer[:200]!r}")
    return elapsed


def _send_quietly(sock: socket.socket, data: bytes) -> None:
    with contextlib.suppress(OSError):  # the server may stop reading: that is the point
        sock.sendall(data)


def requests_view(url: str, body: bytes) -> str:
    """What python-requests (no Expect: 100-continue) receives for the 60 MiB upload."""
    import requests

    began = time.perf_counter()
    try:
        response = requests.post(url + OCR_PATH, data=body, headers=HEADERS, timeout=30)
    except requests.RequestException as failure:
        return f"{type(failure).__name__}"
    elapsed = (time.perf_counter() - began) * 1000
    verdict = (
        "JSON 400"
        if response.status_code == 400 and response.json() == TOO_LARGE
        else (f"{response.status_code}")
    )
    return f"{verdict} in {elapsed:.0f} ms"


def http_client_view(url: str, body: bytes) -> str:
    """What http.client, which reads nothing until it has sent everything, receives."""
    began = time.perf_counter()
    try:
        status, answer = post(url, body)
    except OSError as failure:
        return type(failure).__name__
    elapsed = (time.perf_counter() - began) * 1000
    verdict = "JSON 400" if status == 400 and json.loads(answer) == TOO_LARGE else f"{status}"
    return f"{verdict} in {elapsed:.0f} ms"


def measure_suites(results: Results) -> None:
    """Wall time of the contract suite against the mock, and of the default test run."""
    has_contract_tests = any((ROOT / "src" / "contract_tests").glob("test_*.py"))
    runs = {
        "contract": [sys.executable, "-m", "pytest", "--pyargs", "contract_tests", "-q"],
        "default": [sys.executable, "-m", "pytest", "-q"],
    }
    for name, command in runs.items():
        if name == "contract" and not has_contract_tests:
            results.suites[name] = "not ready: contract_tests/ has no test modules yet"
            continue
        began = time.monotonic()
        finished = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        elapsed = time.monotonic() - began
        lines = [line for line in finished.stdout.splitlines() if line.strip()]
        summary = lines[-1].strip("= ") if lines else "no output"
        state = "" if finished.returncode == 0 else f"FAILED (exit {finished.returncode}): "
        results.suites[name] = f"{elapsed:.1f} s ({state}{summary})"
        results.suites[name + "_seconds"] = f"{elapsed:.3f}" if not state else "inf"
        progress(f"{name} run: {results.suites[name]}")


# -- the table -------------------------------------------------------------------------------
