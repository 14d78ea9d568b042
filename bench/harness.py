"""The bench's tools: request bodies, wrk, and servers in child processes."""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
# Child processes (the servers, the in-process start-up) run this checkout's code, installed or not.
# A developer's own ITSOCR_MOCK_* settings (log level, state) must not change what is measured.
CHECKOUT_ENV = {
    **{key: value for key, value in os.environ.items() if not key.startswith("ITSOCR_MOCK_")},
    "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")])),
}

from contract_tests.forms import Part  # noqa: E402 - after the path is set
from contract_tests.forms import multipart as build_multipart  # noqa: E402
from contract_tests.images import noise_png  # noqa: E402, F401 - re-exported for measures
from mockserver.backend import DEMO_ACCOUNTS  # noqa: E402 - after the path is set
from mockserver.errors import FileTooLarge  # noqa: E402
from mockserver.testing import free_port  # noqa: E402

MIB = 1024 * 1024
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
TOKEN = next(demo.token for demo in DEMO_ACCOUNTS if demo.plan == "enterprise")
BOUNDARY = "itsocr-bench-boundary"
# wrk's bodies: each with a boundary of its own, as every client sends (requests, curl and
# browsers make a random one per request), and more of them than `re` caches (512): a server
# that compiled a pattern per boundary would pay for it here as it does in use.
NEW_BOUNDARY = "itsocr-bench-%08d"
NEW_BOUNDARIES = 1024
OCR_PATH = "/api/v1/ocr"
HEADERS = {
    "Authorization": f"Bearer {TOKEN}",
    "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
}
WORKERS = 2
FIXTURE = "short-line.png"  # a PNG of the built-in fixture catalogue (fixtures/)
FRESH_IMAGES = 12_000  # distinct 10 KB images for the runs that must not repeat one
CONNECTIONS = 16
BIG_UPLOAD = 20 * MIB
HUGE_UPLOAD = 60 * MIB
TOO_LARGE = {"error": FileTooLarge.message, "success": False}


# -- request bodies --------------------------------------------------------------------------


def multipart(
    data: bytes,
    file_name: str = "bench.png",
    media_type: str = "image/png",
    boundary: str = BOUNDARY,
) -> bytes:
    """A multipart/form-data body with one `file` part of `media_type` (the kit's builder)."""
    return build_multipart([Part("file", data, file_name, media_type)], boundary)


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


def lua_script(
    directory: Path,
    name: str,
    files: Sequence[bytes],
    *,
    file_name: str = "bench.png",
    boundaries: int = NEW_BOUNDARIES,
) -> Path:
    """A wrk script posting `files` (all of one length) in turn, each request a multipart body
    with a boundary of its own (`NEW_BOUNDARY`; `boundaries` of them at least), and the bench's
    token.

    The bodies are read from a file next to the script. ``-- START`` on wrk's command line says
    which one to begin with, so that successive runs send new ones.
    """
    count = max(len(files), boundaries)
    bodies = [
        multipart(files[n % len(files)], file_name, boundary=NEW_BOUNDARY % n) for n in range(count)
    ]
    body_file = directory / f"{name}.bodies"
    body_file.write_bytes(b"".join(bodies))
    size = len(bodies[0])
    assert all(len(body) == size for body in bodies)
    script = directory / f"{name}.lua"
    script.write_text(
        f'local f = assert(io.open("{body_file}", "rb"))\n'
        'local bodies = f:read("*a")\n'
        "f:close()\n"
        f"local size, count, turn = {size}, {count}, 0\n"
        'wrk.method = "POST"\n'
        f'wrk.headers["Authorization"] = "{HEADERS["Authorization"]}"\n'
        "function init(args) turn = tonumber(args[1] or 0) end\n"
        "function request()\n"
        "  local n = turn % count\n"
        "  turn = turn + 1\n"
        '  wrk.headers["Content-Type"] = "multipart/form-data; boundary="'
        f' .. string.format("{NEW_BOUNDARY}", n)\n'
        "  return wrk.format(nil, nil, nil, bodies:sub(n * size + 1, (n + 1) * size))\n"
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
    """One wrk run against `url`, a server's origin (the OCR path is added) or its endpoint.
    A single wrk thread leaves the second core to the server."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script)]
    endpoint = url if url.count("/") > 2 else url + OCR_PATH
    finished = subprocess.run(
        [*command, endpoint, "--", str(start)], capture_output=True, text=True, check=True
    )
    return parse_wrk(finished.stdout)


# -- servers ---------------------------------------------------------------------------------


def connect(url: str, timeout: float = 10.0) -> socket.socket:
    """A new connection to the server at the origin `url`."""
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=timeout)


def post(
    url: str,
    body: bytes,
    timeout: float = 30.0,
    path: str = OCR_PATH,
    sock: socket.socket | None = None,
) -> tuple[int, bytes]:
    """POST a multipart body to the OCR endpoint (`path` on the origin `url`), on `sock` if
    given (closed after), else on a new connection; (status, body)."""
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=timeout)
    connection.sock = sock  # http.client connects only when it has no socket
    try:
        connection.request("POST", path, body=body, headers=HEADERS)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def wait_for_200(
    url: str,
    body: bytes,
    deadline: float,
    alive: Callable[[], bool] = lambda: True,
    path: str = OCR_PATH,
) -> None:
    """Poll until a POST is answered 200 (connection refused meanwhile is expected)."""
    while time.monotonic() < deadline and alive():
        with contextlib.suppress(OSError):
            status, answer = post(url, body, timeout=5, path=path)
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
    path: str = OCR_PATH  # where it serves the OCR endpoint (Prism drops the server's prefix)
    # Its output to a pipe that a thread reads (as a CI runner or `| tee` does), not to a file.
    pipe: bool = False
    process: subprocess.Popen[bytes] | None = None
    started_in: float = 0.0  # seconds from process start to the first 200

    @property
    def url(self) -> str:
        """The server's origin."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def endpoint(self) -> str:
        """The URL of its OCR endpoint."""
        return self.url + self.path

    def start(self, first_body: bytes) -> Server:
        """Start the process and wait for its first 200."""
        with self.log.open("ab") as log:
            began = time.monotonic()
            self.process = subprocess.Popen(
                self.command,
                cwd=ROOT,
                env=CHECKOUT_ENV,
                stdout=subprocess.DEVNULL if not self.pipe else log,
                stderr=subprocess.PIPE if self.pipe else log,
            )
        process = self.process
        if self.pipe:
            threading.Thread(target=_read_lines, args=(process, self.log), daemon=True).start()
        try:
            wait_for_200(
                self.url, first_body, began + 60, lambda: process.poll() is None, self.path
            )
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

    def tree(self) -> set[int]:
        """PIDs of the process and its descendants."""
        assert self.process is not None
        parents: dict[int, int] = {}
        for status in Path("/proc").glob("[0-9]*/status"):
            with contextlib.suppress(OSError, ValueError):
                for line in status.read_text().splitlines():
                    if line.startswith("PPid:"):
                        parents[int(status.parent.name)] = int(line.split()[1])
        tree, grown = {self.process.pid}, True
        while grown:
            children = {pid for pid, parent in parents.items() if parent in tree} - tree
            tree, grown = tree | children, bool(children)
        return tree

    def tree_rss(self) -> int:
        """The resident memory of the process and its descendants, in bytes."""
        total = 0
        for pid in self.tree():
            with contextlib.suppress(OSError, KeyError):
                total += memory(pid)["VmRSS"]
        return total

    def cpu_seconds(self) -> float:
        """CPU time (user + system) used so far by the process and its descendants."""
        total = 0.0
        for pid in self.tree():
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS
        return total

    def stop(self) -> None:
        """SIGTERM to the server and every process it started, then SIGKILL to what lingers.

        The whole tree: `npx wiremock` is a Node wrapper whose JVM outlived it when only the
        wrapper was stopped, and went on using CPU and memory through the later measurements.
        """
        if self.process is None:
            return
        tree = self.tree() if self.process.poll() is None else set()
        for pid in tree:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(10)
        deadline = time.monotonic() + 10
        while (alive := [pid for pid in tree if _alive(pid)]) and time.monotonic() < deadline:
            time.sleep(0.05)
        for pid in alive:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        if self.process.poll() is None:
            self.process.wait(10)


def _alive(pid: int) -> bool:
    """True while `pid` runs (a zombie, which only waits for its parent to reap it, does not)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z"


def _read_lines(process: subprocess.Popen[bytes], log: Path) -> None:
    """Read a server's stderr line by line into `log`, as a CI runner's log collector does."""
    assert process.stderr is not None
    with log.open("ab") as sink:
        for line in process.stderr:
            sink.write(line)


def mock_command(port: int, state: Path, log_level: str | None = "WARNING") -> list[str]:
    """`itsocr-mock serve` as the console script runs it, from this checkout; `log_level`
    None: the default (INFO, an access line per request), as the README's command starts it."""
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
        *(["--log-level", log_level] if log_level else []),
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
def running(
    command: Callable[[int], list[str]],
    log: Path,
    first_body: bytes,
    path: str = OCR_PATH,
    pipe: bool = False,
) -> Iterator[Server]:
    """A started server, stopped on exit."""
    port = free_port()
    server = Server(command(port), port, log, path, pipe).start(first_body)
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


def progress(message: str) -> None:
    """A progress line on stderr (the table goes to stdout)."""
    print(f"  {message}", file=sys.stderr, flush=True)
