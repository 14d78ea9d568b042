"""Benchmark: `itsocr-mock serve` against a bare-WSGI floor, on this machine, in one table.

    python bench/run.py                         # print the table (about 3 minutes)
    python bench/run.py --write bench/RESULTS.md
    python bench/run.py --runs 3 --only throughput --only startup   # a subset

Measured (medians of `--runs` runs; floor and mock alternate so that both see the same noise):

- throughput and p50/p99 latency with wrk, 16 connections posting a 10 KB PNG, `--workers 2`,
  full semantics (auth, SQLite quota and journal on the Enterprise demo account, fixture
  lookup), and the same against `bench/floor.py` under the same gunicorn settings;
- start-up: process start to the first 200 (mock and floor), and the in-process pytest server
  (`mockserver.testing.InProcessServer().start()` to its first 200);
- 20 MiB uploads at 2 connections: req/s and the peak RSS (VmHWM) of each worker;
- a 60 MiB upload: time to the 400, worker RSS before and after, and what python-requests sees;
- the contract suite against the mock and the default test run: wall time.

Needs only the kit's own dependencies and wrk (a load generator from the OS packages:
``apt-get install wrk`` or ``brew install wrk``). Linux only: RSS is read from /proc.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import http.client
import io
import json
import os
import platform
import random
import re
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
# Child processes (the servers, the in-process start-up) run this checkout's code, installed or not.
CHECKOUT_ENV = {
    **os.environ,
    "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")])),
}

from mockserver.backend import DEMO_ACCOUNTS  # noqa: E402 - after the path is set
from mockserver.errors import FileTooLarge  # noqa: E402

MIB = 1024 * 1024
TOKEN = next(demo.token for demo in DEMO_ACCOUNTS if demo.plan == "enterprise")
BOUNDARY = "itsocr-bench-boundary"
OCR_PATH = "/api/v1/ocr"
HEADERS = {
    "Authorization": f"Bearer {TOKEN}",
    "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
}
WORKERS = 2
MEASURES = ("throughput", "startup", "uploads", "suites")
FIXTURE = "short-line.png"  # a PNG of the built-in fixture catalogue (fixtures/)
FRESH_IMAGES = 12_000  # distinct 10 KB images for the runs that must not repeat one
CONNECTIONS = 16
BIG_UPLOAD = 20 * MIB
HUGE_UPLOAD = 60 * MIB
TOO_LARGE = {"error": FileTooLarge.message, "success": False}


# -- request bodies --------------------------------------------------------------------------


def noise_png(width: int, height: int, noisy_rows: int, seed: int = 9) -> bytes:
    """A PNG whose first `noisy_rows` rows are random pixels (incompressible), the rest white.

    The noise fixes the size: 200x100 with 16 noisy rows is about 10 KB; all rows noisy and
    no compression gives a file of about width*height*3 bytes.
    """
    from PIL import Image  # the kit depends on Pillow; imported here to keep start-up light

    rng = random.Random(seed)
    image = Image.new("RGB", (width, height), "white")
    noise = Image.frombytes("RGB", (width, noisy_rows), rng.randbytes(width * noisy_rows * 3))
    image.paste(noise, (0, 0))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=0 if noisy_rows == height else 6)
    return buffer.getvalue()


def multipart(data: bytes, file_name: str = "bench.png") -> bytes:
    """A multipart/form-data body with one `file` part of type image/png."""
    head = (
        f"--{BOUNDARY}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{file_name}"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()
    return head + data + f"\r\n--{BOUNDARY}--\r\n".encode()


def distinct_pngs(png: bytes, count: int) -> list[bytes]:
    """`count` variants of `png`, each with a tEXt chunk of its own: the same pixels and
    length, different bytes, hence a different SHA-256 -- an image the server has not seen."""
    end = png.rindex(b"IEND") - 4  # the IEND chunk starts with its length
    variants = []
    for n in range(count):
        data = b"Comment\0" + b"%08d" % n
        crc = zlib.crc32(b"tEXt" + data)
        chunk = struct.pack(">I", len(data)) + b"tEXt" + data + struct.pack(">I", crc)
        variants.append(png[:end] + chunk + png[end:])
    return variants


def lua_script(directory: Path, name: str, bodies: Sequence[bytes]) -> Path:
    """A wrk script posting `bodies` (all of one length) in turn, with the bench headers.

    The bodies are read from a file next to the script. With several, ``-- START`` on wrk's
    command line says which one to begin with, so that successive runs send new ones.
    """
    body_file = directory / f"{name}.bodies"
    body_file.write_bytes(b"".join(bodies))
    size = len(bodies[0])
    assert all(len(body) == size for body in bodies)
    script = directory / f"{name}.lua"
    headers = "\n".join(f'wrk.headers["{key}"] = "{value}"' for key, value in HEADERS.items())
    script.write_text(
        f'local f = assert(io.open("{body_file}", "rb"))\n'
        'local bodies = f:read("*a")\n'
        "f:close()\n"
        f"local size, count, turn = {size}, {len(bodies)}, 0\n"
        'wrk.method = "POST"\n'
        f"{headers}\n"
        "wrk.body = bodies:sub(1, size)\n"
        "function init(args) turn = tonumber(args[1] or 0) end\n"
        "function request()\n"
        "  if count == 1 then return wrk.format() end\n"
        "  local start = (turn % count) * size\n"
        "  turn = turn + 1\n"
        "  return wrk.format(nil, nil, nil, bodies:sub(start + 1, start + size))\n"
        "end\n"
    )
    return script


# -- wrk -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Load:
    """What one wrk run measured."""

    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    failures: int  # non-2xx responses plus socket errors


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _milliseconds(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS_MS[unit]


def parse_wrk(output: str) -> Load:
    """Read wrk's report (with --latency)."""
    percentiles = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", output, re.MULTILINE))
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in", output)
    if not (rate and total and len(percentiles) == 2):
        raise RuntimeError(f"cannot read wrk's output:\n{output}")
    failures = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", output)) + sum(
        int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", output)
    )
    return Load(
        requests_per_second=float(rate.group(1)),
        p50_ms=_milliseconds(percentiles["50"]),
        p99_ms=_milliseconds(percentiles["99"]),
        requests=int(total.group(1)),
        failures=failures,
    )


def wrk(url: str, script: Path, connections: int, seconds: int, start: int = 0) -> Load:
    """One wrk run. A single wrk thread leaves the second core to the server."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script)]
    finished = subprocess.run(
        [*command, url + OCR_PATH, "--", str(start)], capture_output=True, text=True, check=True
    )
    return parse_wrk(finished.stdout)


# -- servers ---------------------------------------------------------------------------------


def free_port() -> int:
    """A port free on the loopback interface right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def post(url: str, body: bytes, timeout: float = 30.0) -> tuple[int, bytes]:
    """POST a multipart body to the OCR endpoint; (status, body)."""
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        connection.request("POST", OCR_PATH, body=body, headers=HEADERS)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def wait_for_200(
    url: str, body: bytes, deadline: float, alive: Callable[[], bool] = lambda: True
) -> None:
    """Poll until a POST is answered 200 (connection refused meanwhile is expected)."""
    while time.monotonic() < deadline and alive():
        with contextlib.suppress(OSError):
            status, answer = post(url, body, timeout=5)
            if status == 200:
                return
            raise RuntimeError(f"first answer was {status}: {answer[:300]!r}")
        time.sleep(0.002)
    raise RuntimeError(f"{url} gave no 200 in time")


@dataclass
class Server:
    """A server in a child process: the mock (`itsocr-mock serve`) or the floor."""

    command: Sequence[str]
    port: int
    log: Path
    process: subprocess.Popen[bytes] | None = None
    started_in: float = 0.0  # seconds from process start to the first 200

    @property
    def url(self) -> str:
        """The server's origin."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, first_body: bytes) -> Server:
        """Start the process and wait for its first 200."""
        with self.log.open("ab") as log:
            began = time.monotonic()
            self.process = subprocess.Popen(
                self.command, cwd=ROOT, env=CHECKOUT_ENV, stdout=subprocess.DEVNULL, stderr=log
            )
        process = self.process
        try:
            wait_for_200(self.url, first_body, began + 30, lambda: process.poll() is None)
        except RuntimeError as failure:
            self.stop()
            log_tail = self.log.read_text(errors="replace")[-3000:]
            raise RuntimeError(
                f"{' '.join(self.command)} did not serve: {failure}\n{log_tail}"
            ) from None
        self.started_in = time.monotonic() - began
        return self

    def workers(self) -> list[int]:
        """PIDs of the gunicorn workers (the children of the master)."""
        assert self.process is not None
        children = []
        for status in Path("/proc").glob("[0-9]*/status"):
            with contextlib.suppress(OSError):
                fields = dict(
                    line.split(":\t", 1)
                    for line in status.read_text().splitlines()
                    if ":\t" in line
                )
                if int(fields.get("PPid", "0")) == self.process.pid:
                    children.append(int(status.parent.name))
        return sorted(children)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it lingers."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


def mock_command(port: int, state: Path) -> list[str]:
    """`itsocr-mock serve` as the console script runs it, from this checkout."""
    return [
        sys.executable,
        "-m",
        "mockserver.cli",
        "serve",
        "--port",
        str(port),
        "--workers",
        str(WORKERS),
        "--state",
        str(state),
        "--log-level",
        "WARNING",
    ]


def floor_command(port: int) -> list[str]:
    """The bare-WSGI floor under gunicorn with the mock's settings."""
    return [
        sys.executable,
        str(ROOT / "bench" / "floor.py"),
        "--port",
        str(port),
        "--workers",
        str(WORKERS),
    ]


@contextlib.contextmanager
def running(command: Callable[[int], list[str]], log: Path, first_body: bytes) -> Iterator[Server]:
    """A started server, stopped on exit."""
    port = free_port()
    server = Server(command(port), port, log).start(first_body)
    try:
        yield server
    finally:
        server.stop()


def memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of a process, in bytes."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) * 1024
    return values


# -- the measurements ------------------------------------------------------------------------


@dataclass
class Results:
    """Every number of the table (lists hold one value per run)."""

    mock: list[Load] = field(default_factory=list)
    fresh: list[Load] = field(default_factory=list)  # the mock, a new image each request
    floor: list[Load] = field(default_factory=list)
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


def measure_throughput(work: Path, results: Results, runs: int, seconds: int) -> None:
    """wrk at 16 connections against the mock and the floor, alternating, `runs` times; then
    the mock again with a new image on every request."""
    png = noise_png(200, 100, 16)
    body = multipart(png)
    same = lua_script(work, "small", [body])
    fresh = lua_script(work, "fresh", [multipart(p) for p in distinct_pngs(png, FRESH_IMAGES)])
    with (
        running(
            lambda p: mock_command(p, work / "throughput.sqlite3"), work / "mock.log", body
        ) as mock,
        running(floor_command, work / "floor.log", body) as floor,
    ):
        for server in (mock, floor):  # warm up: imports, connections, SQLite pages
            wrk(server.url, same, CONNECTIONS, 2)
        for run in range(runs):
            pair = [(mock, results.mock), (floor, results.floor)]
            for server, loads in pair if run % 2 == 0 else reversed(pair):
                loads.append(wrk(server.url, same, CONNECTIONS, seconds))
            progress(
                f"throughput run {run + 1}/{runs}: mock {results.mock[-1].requests_per_second:.0f}"
                f" req/s, floor {results.floor[-1].requests_per_second:.0f} req/s"
            )
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
    script = lua_script(work, "big", [multipart(image, "big.png")])
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
        for _ in range(8 * len(workers)):  # every worker serves a few: its baseline is warm
            post(mock.url, small)
        cold = {pid: memory(pid) for pid in workers}
        # The first refusals run code and fill buffers no small request did, once per worker:
        # measured apart, so that "unchanged" is about what every further upload costs.
        for _ in range(4 * len(workers)):
            time_to_answer(mock.url, body)
        before = {pid: memory(pid) for pid in workers}
        for _ in range(runs):
            results.huge_ms.append(time_to_answer(mock.url, body))
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


def time_to_answer(url: str, body: bytes) -> float:
    """Milliseconds from the first byte sent to the complete response, for a client that
    reads while it is still sending and stops sending once answered (as curl does); checks
    that the answer is the JSON 400."""
    host, port = url.removeprefix("http://").split(":")
    head = (
        f"POST {OCR_PATH} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(body)}\r\n"
        + "".join(f"{key}: {value}\r\n" for key, value in HEADERS.items())
        + "\r\n"
    ).encode()
    request = head + body
    with socket.create_connection((host, int(port)), timeout=10) as sock:
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


def median(values: Sequence[float]) -> float:
    """The median (0 for no values)."""
    return statistics.median(values) if values else 0.0


def verdict(ok: bool) -> str:
    """The last column of a row."""
    return "ok" if ok else "**missed**"


def table(results: Results, runs: int) -> str:
    """The Markdown table of every measure, with its target."""
    rows: list[tuple[str, str, str, str, str]] = []
    if results.mock:
        mock_rate = median([load.requests_per_second for load in results.mock])
        floor_rate = median([load.requests_per_second for load in results.floor])
        ratio = median(
            [
                m.requests_per_second / f.requests_per_second
                for m, f in zip(results.mock, results.floor, strict=True)
            ]
        )
        p50 = median([load.p50_ms for load in results.mock])
        p99 = median([load.p99_ms for load in results.mock])
        failures = sum(load.failures for load in results.mock + results.floor)
        rows += [
            ("10 KB PNG, 16 connections: req/s", f"{mock_rate:,.0f}", f"{floor_rate:,.0f}", "", ""),
            (
                "  ratio to the floor (median of per-run ratios)",
                f"{ratio:.2f}x",
                "1x",
                ">= 0.5x",
                verdict(ratio >= 0.5),
            ),
            (
                "  latency p50",
                f"{p50:.1f} ms",
                f"{median([load.p50_ms for load in results.floor]):.1f} ms",
                "",
                "",
            ),
            (
                "  latency p99",
                f"{p99:.1f} ms",
                f"{median([load.p99_ms for load in results.floor]):.1f} ms",
                "<= 30 ms",
                verdict(p99 <= 30),
            ),
            ("  non-200 answers and socket errors", f"{failures}", "", "0", verdict(failures == 0)),
        ]
    if results.fresh:
        fresh_rate = median([load.requests_per_second for load in results.fresh])
        rows.append(
            (
                "the same with a new image each request (decode + generated text): req/s, p99",
                f"{fresh_rate:,.0f}, {median([load.p99_ms for load in results.fresh]):.1f} ms",
                "",
                "",
                "",
            )
        )
    if results.mock_start:
        start = median(results.mock_start_fixture)
        unknown = median(results.mock_start)
        in_process = median(results.in_process_start)
        rows += [
            (
                "start-up: process start to first 200 (a fixture image)",
                f"{start:.2f} s",
                f"{median(results.floor_start):.2f} s",
                "<= 0.5 s",
                verdict(start <= 0.5),
            ),
            (
                "  the same, the first image unknown (first decode, Faker's import)",
                f"{unknown:.2f} s",
                "",
                "<= 0.5 s",
                verdict(unknown <= 0.5),
            ),
            (
                "in-process server (pytest fixture): start() to first 200",
                f"{in_process:.3f} s",
                "",
                "<= 0.2 s",
                verdict(in_process <= 0.2),
            ),
        ]
    if results.big:
        peak = max(results.big_peak_rss)
        rows += [
            (
                f"{results.big_size / MIB:.1f} MiB PNG uploads, 2 connections: req/s",
                f"{median([load.requests_per_second for load in results.big]):.1f}",
                f"{median([load.requests_per_second for load in results.big_floor]):.1f}",
                "",
                "",
            ),
            (
                "  peak RSS per worker (VmHWM)",
                " / ".join(f"{rss / MIB:.1f}" for rss in results.big_peak_rss) + " MiB",
                "",
                "<= 64 MiB",
                verdict(peak <= 64 * MIB),
            ),
        ]
    if results.huge_ms:
        huge = median(results.huge_ms)
        growth = results.huge_hwm_growth
        rows += [
            (
                "60 MiB upload: time to the JSON 400",
                f"{huge:.1f} ms",
                "",
                "<= 50 ms",
                verdict(huge <= 50),
            ),
            (
                "  worker peak RSS growth over its first refusals (once: first use of that path)",
                f"+{results.huge_first_growth / MIB:.1f} MiB",
                "",
                "",
                "",
            ),
            (
                "  worker peak RSS before -> after more (growth), client stopping once answered",
                f"{results.huge_peak_before / MIB:.1f} -> {results.huge_peak_after / MIB:.1f} MiB "
                f"(+{growth / MIB:.1f})",
                "",
                "unchanged",
                verdict(growth < 2 * MIB),
            ),
            (
                "  python-requests (no Expect: 100-continue) receives",
                results.huge_requests,
                "",
                "JSON 400",
                verdict(results.huge_requests.startswith("JSON 400")),
            ),
            (
                "  http.client (reads only after sending all) receives",
                results.huge_http_client,
                "",
                "JSON 400",
                verdict(results.huge_http_client.startswith("JSON 400")),
            ),
            (
                "  worker peak RSS growth discarding what those two send (never stored)",
                f"+{results.huge_drain_growth / MIB:.1f} MiB",
                "",
                "",
                "",
            ),
        ]
    for name, label, limit in (
        ("contract", "contract suite against the mock: wall time", 60),
        ("default", "default test run: wall time", 300),
    ):
        if name in results.suites:
            seconds = float(results.suites.get(name + "_seconds", "inf"))
            rows.append(
                (label, results.suites[name], "", f"<= {limit} s", verdict(seconds <= limit))
            )
    header = ("measure", "itsocr-mock", "floor", "target", "")
    lines = [_row(header), _row(("---",) * 5)]
    lines += [_row(row) for row in rows]
    return "\n".join(lines) + f"\n\nMedians of {runs} runs.\n"


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def machine() -> str:
    """One line describing where the numbers were taken."""
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout
    import gunicorn

    return (
        f"{os.cpu_count()} CPUs ({model}), Linux {platform.release()}, "
        f"Python {platform.python_version()}, gunicorn {gunicorn.__version__}, "
        f"{wrk_version.split(' [')[0].strip() or 'wrk'}"
    )


def progress(message: str) -> None:
    """A progress line on stderr (the table goes to stdout)."""
    print(f"  {message}", file=sys.stderr, flush=True)


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
    if "suites" in chosen:
        measure_suites(results)
    command = "python bench/run.py" + (f" {' '.join(argv)}" if argv else "")
    report = (
        f"Measured {time.strftime('%Y-%m-%d')} on {machine()}; load average "
        f"{load_before:.2f} before, {load_average():.2f} after.\n"
        f"Command: `{command}`\n\n{table(results, args.runs)}"
    )
    print(report)
    if args.write:
        args.write.write_text(
            "# Benchmark results\n\nGenerated by `python bench/run.py --write "
            f"{args.write}`; do not edit by hand.\n\n{report}\n{NOTES}"
        )
        update_readme(report)
    return 0


README_BLOCK = re.compile(r"(<!-- bench-table -->\n).*?(<!-- /bench-table -->)", re.DOTALL)


def update_readme(report: str) -> None:
    """Put the latest table between the README's bench-table markers (with --write)."""
    readme = ROOT / "README.md"
    text = readme.read_text()
    if README_BLOCK.search(text) is None:
        progress("README.md has no bench-table markers: only the results file was written")
        return
    readme.write_text(README_BLOCK.sub(lambda m: f"{m[1]}{report}\n{m[2]}", text, count=1))


def load_average() -> float:
    """The one-minute load average: above zero, something else is using the CPU."""
    return float(Path("/proc/loadavg").read_text().split()[0])


NOTES = """\
## How to read it

- **Floor**: `bench/floor.py`, a bare WSGI function that parses the multipart body with the
  parser the mock uses, hashes the file and answers JSON, under gunicorn with the mock's own
  settings (`mockserver.serving.gunicorn_options`). The ratio is taken run by run, the two
  servers alternating, so that both see the same machine.
- **Throughput** posts the same 10 KB PNG (no fixture knows it) with the Enterprise demo token:
  authorization, quota, the SQLite usage count and journal entry, and the fixture lookup on
  every request; the image's decode check and generated text are computed once per worker and
  remembered (`Backend.unknown_images`). The next row sends a new image on every request: a
  full decode and a Faker document each time.
- **Start-up** counts from the process's start to its first 200 on a fresh state file. The
  first request for an image no fixture knows also pays for loading Pillow's plugins and
  importing Faker (about 0.15 s), once per worker.
- **20 MiB uploads** are PNGs of random pixels: as many bytes of pixels as of file, the worst
  case for memory. Bodies are spooled to disk and hashed as they arrive; a PNG's pixel data is
  checked as a stream, never built in memory.
- **60 MiB upload**: refused from its Content-Length, before the body is read. A client that
  only reads once it has sent everything (http.client, many SDKs) would then see a reset: the
  server takes what it still sends after answering and throws it away (at most 5 s, 256 MiB,
  `mockserver/connection.py`). A worker's first refusals grow its RSS by a few MiB, once:
  code and buffers the error path uses for the first time (no small request reaches them).
  The RSS row after it is what every further 60 MiB upload costs: the body is never stored.
  A client whose body does not arrive within `--client-timeout` (30 s) is cut off.
- **Where the gap to the floor goes** (worker CPU per request from `/proc`, against variants of
  the mock with one part left out): the floor uses about 215 µs, the mock about 565 µs. The
  largest part, about 130 µs, is the durable write of each counted image -- the lock that
  serialises writers across workers, then usage and journal in one SQLite transaction -- which
  keeps the quota exact across workers and every 200 counted after a `kill -9`. Without it
  the mock would run at about 0.5x the floor. The rest is Flask and the mock's own rules.
  gunicorn's gevent worker was tried instead of threads: 0.44x, but a p99 of 45-56 ms.
- On a shared or busy machine (see the load average above) every figure suffers, the tail
  latencies most: compare runs taken under the same load.
"""


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
