"""Reliability on the production server (`itsocr-mock serve`, gunicorn): the mock never loses a
count and never falls over on bad input.

- 64 simultaneous uploads on a fresh Free account, four workers: exactly 10 x 200, 54 x 429.
- kill -9 under load, restart on the same state file: stored usage equals the 200s clients
  received (a request cut off mid-flight may or may not count); tokens and accounts survive.
- A corpus of malformed requests: each gets its 4xx (or the live 500 for bytes that are not an
  image), never a traceback, a hang or a dead worker.
- A client trickling its upload does not hold up other clients and is cut off after
  ``--client-timeout`` seconds; neither does a fault rule's delay hold them up.
- Answers given before the body is read (too large, unknown token) reach clients that read
  only once they have sent everything; a 60 MiB refusal and a 20 MiB PNG cost no memory.
- A second mock on a port in use is refused in one line (how workers share connections:
  test_balancing.py).
- Schemathesis in negative mode: no 5xx but the documented OCR failure.

Requests are written on raw sockets where no HTTP client would send them (a Content-Length
that lies, a 1 MB header); every socket has a timeout, so that a hang fails instead of waiting.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import schemathesis
from PIL import Image
from schemathesis import GenerationMode

from contract_tests.forms import Part, multipart
from contract_tests.harness import explore
from mockserver import errors
from mockserver.backend import DEMO_ACCOUNTS, Backend
from mockserver.clock import period_of, utc_now
from mockserver.faults import FaultRule
from mockserver.plans import MIB, get_plan
from mockserver.resources import data_path
from mockserver.store import Store
from mockserver.testing import ServerProcess

ENTERPRISE = DEMO_ACCOUNTS[2]
BOUNDARY = "reliability-boundary"
INVALID_BODY = errors.InvalidRequestBody.message
OCR_FAILED = errors.OcrFailed.message
# The module watches gunicorn's workers (their sockets, memory, lives) through /proc. All of it
# is slow (multi-process, load, large uploads): the lean run keeps the same rules in process
# (test_concurrency, test_hostile, test_api_upload) and one four-worker quota test.
pytestmark = [
    pytest.mark.skipif(
        not Path("/proc/self/status").exists(), reason="watches the workers through /proc (Linux)"
    ),
    pytest.mark.slow,
]
CLIENT_TIMEOUT = 2  # seconds, for the servers of this module (the default is 30)
SOCKET_TIMEOUT = 15  # no exchange of this module may take longer: a hang fails the test


# -- talking to a server on a socket ---------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """One response read from a socket."""

    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes
    seconds: float  # from the first byte sent to the last byte read

    def json(self) -> Any:
        return json.loads(self.body)


def request_bytes(
    body: bytes,
    *,
    token: str = ENTERPRISE.token,
    content_type: str | None = f"multipart/form-data; boundary={BOUNDARY}",
    content_length: int | None = None,
    extra: str = "",
) -> bytes:
    """A POST /api/v1/ocr as it goes on the wire; `content_length` may lie."""
    length = len(body) if content_length is None else content_length
    head = f"POST /api/v1/ocr HTTP/1.1\r\nHost: mock\r\nAuthorization: Bearer {token}\r\n"
    if content_type is not None:
        head += f"Content-Type: {content_type}\r\n"
    head += f"Content-Length: {length}\r\n{extra}Connection: close\r\n\r\n"
    return head.encode("latin-1") + body


def exchange(url: str, data: bytes, *, half_close: bool = False) -> Reply:
    """Send `data` (while already reading, as curl does) and read one response."""
    origin = urlsplit(url)
    with socket.create_connection((origin.hostname, origin.port), timeout=SOCKET_TIMEOUT) as sock:
        began = time.monotonic()
        sender = threading.Thread(target=_send, args=(sock, data, half_close), daemon=True)
        sender.start()
        reply = read_reply(sock, began)
        sender.join(SOCKET_TIMEOUT)
    return reply


def read_reply(sock: socket.socket, began: float = 0.0) -> Reply:
    """Read one response from `sock`; `seconds` counts from `began` (monotonic)."""
    answer = http.client.HTTPResponse(sock)
    try:
        answer.begin()
        body = answer.read()
    finally:
        answer.close()  # its file object holds the socket open otherwise
    headers = {name.lower(): value for name, value in answer.getheaders()}
    return Reply(answer.status, headers, body, time.monotonic() - began)


def _send(sock: socket.socket, data: bytes, half_close: bool) -> None:
    with contextlib.suppress(OSError):  # the server may answer and close before the end
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)


def part(name: str, content: bytes, filename: bytes | None = None, media_type: str = "") -> Part:
    """One multipart part, its filename as raw bytes (which may not be UTF-8)."""
    return Part(name, content, filename, media_type or None)


CLOSING = len(f"--{BOUNDARY}--\r\n")


def form(*parts: Part) -> bytes:
    """A multipart body: the parts, then the closing boundary."""
    return multipart(parts, BOUNDARY)


def upload(url: str, image: bytes, token: str, name: str = "scan.png") -> requests.Response:
    """A well-formed upload with python-requests."""
    return requests.post(
        url + "/api/v1/ocr",
        headers={"Authorization": f"Bearer {token}"},
        files={"file": (name, image, "image/png")},
        timeout=SOCKET_TIMEOUT,
    )


# -- servers and their state -----------------------------------------------------------------


@contextlib.contextmanager
def state_backend(state: Path) -> Iterator[Backend]:
    """The rules over a server's state file, from this process (SQLite WAL makes it safe)."""
    backend = Backend(Store(state))
    try:
        yield backend
    finally:
        backend.store.close()


def worker_pids(server: ServerProcess) -> set[int]:
    """The gunicorn workers of a server: the children of its master process."""
    assert server.process is not None
    children = set()
    for status in Path("/proc").glob("[0-9]*/status"):
        with contextlib.suppress(OSError):
            for line in status.read_text().splitlines():
                if line.startswith("PPid:") and int(line.split()[1]) == server.process.pid:
                    children.add(int(status.parent.name))
    return children


def all_workers(server: ServerProcess, count: int) -> set[int]:
    """The workers, once all `count` are up (gunicorn spawns them after its banner)."""
    deadline = time.monotonic() + SOCKET_TIMEOUT
    while len(workers := worker_pids(server)) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(workers) == count, workers
    return workers


def server_log(server: ServerProcess) -> str:
    """The server's stderr so far."""
    return "".join(server.output)


def logged(server: ServerProcess, text: str, timeout: float = 5.0) -> str:
    """The server's stderr once `text` is in it (or `timeout` has passed): a log record is
    written by a thread of its own, possibly after the response went out."""
    deadline = time.monotonic() + timeout
    while text not in server_log(server) and time.monotonic() < deadline:
        time.sleep(0.02)
    return server_log(server)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Two workers on a state file, with a short client timeout, for the malformed corpus."""
    state = tmp_path_factory.mktemp("served") / "state.sqlite3"
    args = ["--workers", "2", "--client-timeout", str(CLIENT_TIMEOUT)]
    with ServerProcess(args=args, state=state) as server:
        all_workers(server, 2)
        yield server


# -- the quota under concurrency -------------------------------------------------------------


def test_64_simultaneous_uploads_on_4_workers_get_exactly_the_free_quota(
    tmp_path: Path, make_image: Callable[..., bytes]
) -> None:
    limit = get_plan("free").images_per_month or 0
    state = tmp_path / "state.sqlite3"
    with ServerProcess(args=["--workers", "4"], state=state) as server:
        with state_backend(state) as backend:
            account, token = backend.create_account("free")
        request = request_bytes(
            form(part("file", make_image(), b"a.png", "image/png")), token=token.token
        )
        replies = simultaneous(server.url, request, 64)
    assert Counter(reply.status for reply in replies) == {200: limit, 429: 64 - limit}
    refused = f"Monthly limit reached. You have used {limit} of {limit} images this month."
    assert all(r.json() == {"error": refused, "success": False} for r in replies if r.status == 429)
    assert len({reply.json()["id"] for reply in replies if reply.status == 200}) == limit
    with state_backend(state) as backend:
        assert backend.store.usage(account.id, period_of(utc_now()))[0] == limit
        journal = Counter(entry.status for entry in backend.store.journal(account_id=account.id))
    assert journal == {200: limit, 429: 64 - limit}


def simultaneous(url: str, request: bytes, count: int) -> list[Reply]:
    """`count` copies of `request`, each on its own connection, completed at the same instant:
    every request is sent but its last byte, then the last bytes go out back to back."""
    origin = urlsplit(url)
    sockets = [
        socket.create_connection((origin.hostname, origin.port), timeout=SOCKET_TIMEOUT)
        for _ in range(count)
    ]
    try:
        for sock in sockets:
            sock.sendall(request[:-1])
        for sock in sockets:
            sock.sendall(request[-1:])
        return [read_reply(sock) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


# -- the port --------------------------------------------------------------------------------


def test_a_second_mock_on_the_same_port_is_refused(tmp_path: Path) -> None:
    with ServerProcess(args=["--workers", "2"], state=tmp_path / "one.sqlite3") as server:
        port = str(urlsplit(server.url).port)
        second = subprocess.run(
            [
                sys.executable,
                "-m",
                "mockserver.cli",
                "serve",
                "--port",
                port,
                "--workers",
                "2",
                "--state",
                str(tmp_path / "two.sqlite3"),
            ],
            capture_output=True,
            text=True,
            timeout=SOCKET_TIMEOUT,
        )
    assert second.returncode == 2
    assert (
        second.stderr
        == f"itsocr-mock: error: port {port} on 127.0.0.1 is in use; pick another or --port 0\n"
    )


# -- kill -9 under load ----------------------------------------------------------------------


@dataclass
class Tally:
    """What one client of a load run received."""

    ok: int = 0  # 200s
    cut: int = 0  # requests that ended without a response (in flight at the kill)
    other: Counter[int] = field(default_factory=Counter)


def load(url: str, image: bytes, token: str, stop: threading.Event, tally: Tally) -> None:
    """Upload in a loop on one keep-alive connection until `stop` or the server is gone."""
    with requests.Session() as session:
        while not stop.is_set():
            try:
                response = session.post(
                    url + "/api/v1/ocr",
                    headers={"Authorization": f"Bearer {token}"},
                    files={"file": ("scan.png", image, "image/png")},
                    timeout=SOCKET_TIMEOUT,
                )
            except requests.RequestException:
                tally.cut += 1
                return
            if response.status_code == 200:
                tally.ok += 1
            else:
                tally.other[response.status_code] += 1


def test_kill_9_under_load_loses_no_count_token_or_account(
    tmp_path: Path, make_image: Callable[..., bytes]
) -> None:
    state = tmp_path / "state.sqlite3"
    image = make_image()
    with ServerProcess(args=["--workers", "2"], state=state) as server:
        with state_backend(state) as backend:
            account, first = backend.create_account("pro")
            second = backend.create_token(account.id)
            other_account, other = backend.create_account("free")
        tallies = [Tally() for _ in range(8)]
        stop = threading.Event()
        clients = [
            threading.Thread(target=load, args=(server.url, image, first.token, stop, tally))
            for tally in tallies
        ]
        for client in clients:
            client.start()
        deadline = time.monotonic() + 10
        while sum(t.ok for t in tallies) < 100 and time.monotonic() < deadline:
            time.sleep(0.01)
        for pid in [*all_workers(server, 2), server.process.pid]:  # type: ignore[union-attr]
            os.kill(pid, signal.SIGKILL)
        stop.set()
        for client in clients:
            client.join(SOCKET_TIMEOUT)
    ok, cut = sum(t.ok for t in tallies), sum(t.cut for t in tallies)
    assert ok >= 100, f"the load never got going: {tallies}"
    assert not any(t.other for t in tallies), tallies

    with ServerProcess(args=["--workers", "2"], state=state) as restarted:
        with state_backend(state) as backend:
            used = backend.store.usage(account.id, period_of(utc_now()))[0]
            journalled = len(backend.store.journal(account_id=account.id, status=200))
        assert ok <= used <= ok + cut, (ok, cut, used)  # only a request in flight may differ
        assert journalled == used  # a count and its journal entry are one transaction
        for token in (first, second, other):  # tokens and accounts made before the kill
            assert upload(restarted.url, image, token.token).status_code == 200
    with state_backend(state) as backend:
        assert backend.store.usage(account.id, period_of(utc_now()))[0] == used + 2
        assert backend.store.get_account(other_account.id) == other_account


# -- malformed requests ----------------------------------------------------------------------


def decompression_bomb() -> bytes:
    """A 100,000 x 100,000 PNG in a few hundred bytes (one black 1-bit row, then nothing)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", 100_000, 100_000, 1, 0, 0, 0, 0)
    pixels = zlib.compress(b"\0" * (1 + 100_000 // 8))
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


@dataclass(frozen=True)
class Malformed:
    """A hand-made request and what the mock must answer."""

    request: Callable[[bytes], bytes]  # the valid PNG -> the request's bytes
    status: int
    error: str | None = None  # the JSON error expected; None: any body (the server's own 4xx)
    half_close: bool = False


def _truncated(png: bytes) -> bytes:
    body = form(part("file", png, b"a.png", "image/png"))
    return request_bytes(body[: len(body) // 2], content_length=len(body))


def _lying_short(png: bytes) -> bytes:
    body = form(part("file", png, b"a.png", "image/png"))
    return request_bytes(body, content_length=len(body) - 40)


MALFORMED = {
    "truncated body, then the client stops sending": Malformed(
        _truncated, 400, INVALID_BODY, half_close=True
    ),
    "no closing boundary": Malformed(
        lambda png: request_bytes(form(part("file", png, b"a.png", "image/png"))[:-CLOSING]),
        400,
        INVALID_BODY,
    ),
    "boundary of the header absent from the body": Malformed(
        lambda png: request_bytes(
            form(part("file", png, b"a.png", "image/png")),
            content_type="multipart/form-data; boundary=another",
        ),
        400,
        INVALID_BODY,
    ),
    "no boundary parameter": Malformed(
        lambda png: request_bytes(
            form(part("file", png, b"a.png", "image/png")), content_type="multipart/form-data"
        ),
        400,
        INVALID_BODY,
    ),
    "not multipart at all": Malformed(
        lambda png: request_bytes(png, content_type="image/png"), 400, INVALID_BODY
    ),
    "10,000 parts and no file": Malformed(
        lambda png: request_bytes(form(*(part(f"f{n}", b"x") for n in range(10_000)))),
        400,
        errors.MissingFile.message,
    ),
    "a 1 MB header": Malformed(
        lambda png: request_bytes(
            form(part("file", png, b"a.png", "image/png")), extra=f"X-Big: {'a' * MIB}\r\n"
        ),
        431,
    ),
    "a 1 MB filename (accepted, and echoed)": Malformed(
        lambda png: request_bytes(form(part("file", png, b"a" * MIB + b".png", "image/png"))),
        200,
    ),
    "Content-Length shorter than the body": Malformed(_lying_short, 400, INVALID_BODY),
    "Content-Length that is not a number": Malformed(
        lambda png: request_bytes(b"", content_length=None, extra="Content-Length: many\r\n"),
        400,
    ),
    "a decompression bomb": Malformed(
        lambda png: request_bytes(form(part("file", decompression_bomb(), b"b.png", "image/png"))),
        500,
        OCR_FAILED,
    ),
    "bytes that are no image": Malformed(
        lambda png: request_bytes(form(part("file", png[:100], b"a.png", "image/png"))),
        500,
        OCR_FAILED,
    ),
}


@pytest.mark.parametrize("case", MALFORMED.values(), ids=list(MALFORMED))
def test_a_malformed_request_gets_its_error_and_the_server_carries_on(
    served: ServerProcess, make_image: Callable[..., bytes], case: Malformed
) -> None:
    workers = worker_pids(served)
    reply = exchange(served.url, case.request(make_image()), half_close=case.half_close)
    assert reply.status == case.status, reply
    if case.error is not None:
        assert reply.json() == {"error": case.error, "success": False}
    # Answered, not left hanging (how fast is the bench's business: a loaded machine is slow).
    assert reply.seconds < SOCKET_TIMEOUT
    assert_still_serving(served, make_image(), workers)


def assert_still_serving(server: ServerProcess, image: bytes, workers: set[int]) -> None:
    """The server answers a good upload, with the same workers, and has logged no traceback."""
    assert upload(server.url, image, ENTERPRISE.token).status_code == 200
    assert worker_pids(server) == workers, "a worker died and was replaced"
    assert "Traceback" not in server_log(server)


def test_a_non_utf8_filename_is_echoed_with_replacement_characters(
    served: ServerProcess, make_image: Callable[..., bytes]
) -> None:
    body = form(part("file", make_image(), "résumé.png".encode("latin-1"), "image/png"))
    reply = exchange(served.url, request_bytes(body))
    assert reply.status == 200, reply
    assert reply.json()["fileName"] == "r\ufffdsum\ufffd.png"
    assert "Traceback" not in server_log(served)


def test_a_10_mb_prompt_is_read_and_answered(
    served: ServerProcess, make_image: Callable[..., bytes]
) -> None:
    prompt = ("read the total " * (10 * MIB // 15)).encode()
    body = form(part("file", make_image(), b"a.png", "image/png"), part("prompt", prompt))
    reply = exchange(served.url, request_bytes(body))
    assert reply.status == 200, reply
    assert reply.json()["fileSize"] == len(make_image())
    assert "Traceback" not in server_log(served)


def test_a_content_length_longer_than_the_body_is_cut_off_at_the_client_timeout(
    served: ServerProcess, make_image: Callable[..., bytes]
) -> None:
    workers = worker_pids(served)
    body = form(part("file", make_image(), b"a.png", "image/png"))
    reply = exchange(served.url, request_bytes(body, content_length=len(body) + 1000))
    assert reply.status == 400
    assert reply.json() == {"error": INVALID_BODY, "success": False}
    assert CLIENT_TIMEOUT <= reply.seconds < CLIENT_TIMEOUT + 3  # a loaded machine is slow
    assert f"did not arrive within {CLIENT_TIMEOUT} s" in logged(served, "did not arrive")
    assert_still_serving(served, make_image(), workers)


# -- an answer given before the body is read ------------------------------------------------


def peak_rss(pids: set[int]) -> int:
    """The largest peak RSS (VmHWM) of these processes, in bytes."""
    peaks = []
    for pid in pids:
        status = Path(f"/proc/{pid}/status").read_text()
        peaks.append(int(status.split("VmHWM:")[1].split()[0]) * 1024)
    return max(peaks)


@pytest.mark.timing
def test_a_60_mib_upload_is_refused_from_its_content_length_without_being_stored(
    served: ServerProcess, make_image: Callable[..., bytes]
) -> None:
    workers = worker_pids(served)
    before = peak_rss(workers)
    body = form(part("file", make_image() + bytes(60 * MIB), b"big.png", "image/png"))
    reply = exchange(served.url, request_bytes(body))
    assert reply.status == 400
    assert reply.json() == {"error": errors.FileTooLarge.message, "success": False}
    assert reply.seconds < 1.0  # answered from the headers, not after 60 MiB
    assert peak_rss(workers) - before < 8 * MIB  # what follows is discarded, never held


_CHECK_PNG = """
import sys
from mockserver.imaging import _register_plugins, is_decodable

def peak():
    return int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) * 1024

_register_plugins()
with open(sys.argv[1], "rb") as stream:
    before = peak()
    print(is_decodable(stream), peak() - before)
"""


def test_a_20_mib_png_is_checked_to_its_last_row_without_holding_its_pixels(
    tmp_path: Path,
) -> None:
    image = Image.frombytes("RGB", (2560, 2728), random.Random(7).randbytes(2560 * 2728 * 3))
    whole = tmp_path / "whole.png"
    image.save(whole, "PNG", compress_level=0)  # about 20 MiB, as many bytes as pixels
    data = whole.read_bytes()
    cut = tmp_path / "cut.png"
    cut.write_bytes(data[: len(data) * 9 // 10])
    for path, decodable in ((whole, True), (cut, False)):
        checked = subprocess.run(
            [sys.executable, "-c", _CHECK_PNG, str(path)],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent.parent,
        )
        verdict, growth = checked.stdout.split()
        assert verdict == str(decodable)
        assert int(growth) < 4 * MIB  # the pixels alone are 20 MiB


@pytest.mark.parametrize(
    ("token", "size", "status", "error"),
    [
        (ENTERPRISE.token, 60 * MIB, 400, errors.FileTooLarge.message),
        ("itsocr_" + "Z" * 32, 8 * MIB, 401, errors.InvalidApiToken.message),
    ],
    ids=["60 MiB, too large", "8 MiB, unknown token"],
)
def test_a_client_reading_only_once_all_is_sent_still_gets_the_early_answer(
    served: ServerProcess,
    make_image: Callable[..., bytes],
    token: str,
    size: int,
    status: int,
    error: str,
) -> None:
    """http.client (like many SDKs) reads nothing before its whole body is sent: the server
    must take the rest of the body after answering, or the client sees a reset instead."""
    body = form(part("file", make_image() + bytes(size), b"big.png", "image/png"))
    origin = urlsplit(served.url)
    connection = http.client.HTTPConnection(origin.hostname, origin.port, timeout=SOCKET_TIMEOUT)
    try:
        connection.request(
            "POST",
            "/api/v1/ocr",
            body=body,
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
            },
        )
        response = connection.getresponse()
        assert response.status == status
        assert json.loads(response.read()) == {"error": error, "success": False}
    finally:
        connection.close()


# -- a client trickling its upload -----------------------------------------------------------


def test_a_trickling_client_holds_up_no_one_and_is_cut_off_at_the_timeout(
    make_image: Callable[..., bytes],
) -> None:
    image = make_image()
    body = form(part("file", image * 40, b"slow.png", "image/png"))  # minutes at 1 KB/s
    args = ["--client-timeout", str(CLIENT_TIMEOUT)]  # and one worker, the default
    with ServerProcess(args=args) as server:
        origin = urlsplit(server.url)
        with socket.create_connection((origin.hostname, origin.port), timeout=10) as slow:
            slow.sendall(request_bytes(body)[: -len(body)])
            began = time.monotonic()
            trickle = threading.Thread(target=_trickle, args=(slow, body), daemon=True)
            trickle.start()
            # Others are served meanwhile: a worker held by the trickle would answer them only
            # once it is cut off, CLIENT_TIMEOUT after it began.
            assert upload(server.url, image, ENTERPRISE.token).status_code == 200
            assert time.monotonic() - began < CLIENT_TIMEOUT
            for _ in range(9):
                assert upload(server.url, image, ENTERPRISE.token).status_code == 200
            reply = read_reply(slow, began)
        assert reply.status == 400
        assert reply.json() == {"error": INVALID_BODY, "success": False}
        assert CLIENT_TIMEOUT <= reply.seconds < CLIENT_TIMEOUT + 3  # a loaded machine is slow
        assert "did not arrive within" in logged(server, "did not arrive")


def test_a_delayed_request_holds_up_no_one(
    tmp_path: Path, make_image: Callable[..., bytes]
) -> None:
    """A fault rule's delay is a wait: the worker serves others meanwhile (one worker here)."""
    image, state = make_image(), tmp_path / "state.sqlite3"
    with ServerProcess(state=state) as server:
        with state_backend(state) as backend:
            account, slow = backend.create_account("pro")
            backend.add_fault(FaultRule(delay_ms=2000, account_id=account.id, times=1))
        replies: list[requests.Response] = []
        began = time.monotonic()
        delayed = threading.Thread(
            target=lambda: replies.append(upload(server.url, image, slow.token))
        )
        delayed.start()
        time.sleep(0.3)  # the delayed request is in its fault's delay now
        # Served while the delayed request still waits, not after it.
        assert upload(server.url, image, ENTERPRISE.token).status_code == 200
        assert not replies
        for _ in range(4):
            assert upload(server.url, image, ENTERPRISE.token).status_code == 200
        delayed.join(SOCKET_TIMEOUT)
    assert [reply.status_code for reply in replies] == [200]
    assert time.monotonic() - began >= 2.0


@pytest.mark.slow
def test_by_default_a_trickling_client_is_cut_off_after_30_seconds(
    make_image: Callable[..., bytes],
) -> None:
    body = form(part("file", make_image() * 100, b"slow.png", "image/png"))  # a minute
    with ServerProcess() as server:
        origin = urlsplit(server.url)
        with socket.create_connection((origin.hostname, origin.port), timeout=40) as slow:
            slow.sendall(request_bytes(body)[: -len(body)])
            began = time.monotonic()
            threading.Thread(target=_trickle, args=(slow, body), daemon=True).start()
            reply = read_reply(slow, began)
        assert reply.status == 400
        assert 30 <= reply.seconds < 33
        assert "did not arrive within 30 s" in logged(server, "did not arrive")


def _trickle(sock: socket.socket, body: bytes) -> None:
    with contextlib.suppress(OSError):
        for start in range(0, len(body), 1024):
            sock.sendall(body[start : start + 1024])
            time.sleep(1)


# -- Schemathesis, negative mode -------------------------------------------------------------


@pytest.mark.parametrize(
    "examples", [pytest.param(60, id="60"), pytest.param(3000, id="3000", marks=pytest.mark.slow)]
)
def test_generated_invalid_requests_never_get_an_undocumented_5xx(
    served: ServerProcess, examples: int
) -> None:
    schema = schemathesis.openapi.from_path(
        str(data_path("openapi.yaml")), config=schemathesis.Config()
    )
    schema.config.generation.update(with_security_parameters=False)
    strategy = schema["/ocr"]["POST"].as_strategy(generation_mode=GenerationMode.NEGATIVE)
    statuses: Counter[int] = Counter()

    def send(case: Any) -> None:
        response = case.call(
            base_url=served.base_url,
            headers={"Authorization": f"Bearer {ENTERPRISE.token}"},
            timeout=SOCKET_TIMEOUT,
        )
        statuses[response.status_code] += 1
        if response.status_code >= 500:
            assert response.status_code == 500, response.text
            assert response.json() == {"error": OCR_FAILED, "success": False}

    explore(strategy, examples, send)  # the contract suite's settings: derandomized, no database
    assert sum(statuses.values()) >= examples // 2, statuses
    assert "Traceback" not in server_log(served)
