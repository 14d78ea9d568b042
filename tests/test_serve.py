"""`itsocr-mock serve` as a real process (gunicorn): banner, state location and persistence,
refused configurations, and the HTTP behaviour that depends on the production server."""

from __future__ import annotations

import signal
import sqlite3
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from mockserver.backend import DEMO_ACCOUNTS
from mockserver.clock import period_of, utc_now
from mockserver.plans import MIB
from mockserver.store import Store
from mockserver.testing import ServerProcess

FREE, PRO, ENTERPRISE = DEMO_ACCOUNTS
TOO_LARGE = "File too large. Maximum size: 50MB"
NO_ENV_STATE = {"ITSOCR_MOCK_STATE": ""}  # a developer's own setting must not leak in
QUICK = signal.SIGINT  # gunicorn's quick shutdown: every request's changes are committed anyway


@pytest.fixture(scope="module")
def served() -> Iterator[ServerProcess]:
    """One `serve --state :memory:` for the tests that only read or fail requests."""
    with ServerProcess(env=NO_ENV_STATE, stop_signal=QUICK) as server:
        yield server


def upload(
    http: requests.Session, server: ServerProcess, image: bytes, token: str
) -> requests.Response:
    return http.post(
        server.base_url + "/ocr",
        headers={"Authorization": f"Bearer {token}"},
        files={"file": ("scan.png", image, "image/png")},
    )


def output_of(server: ServerProcess, *expected: str, timeout: float = 5.0) -> str:
    """The server's stderr so far, once it holds every `expected` text (the banner's lines after
    the first are read by a background thread) or the timeout has passed."""
    deadline = time.monotonic() + timeout
    while True:
        output = "".join(server.output)
        if all(text in output for text in expected) or time.monotonic() > deadline:
            return output
        time.sleep(0.02)


def stored_usage(state: Path, account_id: str) -> int:
    store = Store(state)
    try:
        return store.usage(account_id, period_of(utc_now()))[0]
    finally:
        store.close()


# -- the banner and the server ---------------------------------------------------------------


def test_the_banner_shows_url_demo_tokens_and_state(served: ServerProcess) -> None:
    banner = output_of(served, *(demo.token for demo in DEMO_ACCOUNTS), "state: ")
    assert f"itsOCR mock listening on {served.url}" in banner
    assert served.url.startswith("http://127.0.0.1:")
    assert "state: :memory:" in banner
    for demo in DEMO_ACCOUNTS:
        assert demo.token in banner
        assert demo.plan in banner


def test_it_runs_on_gunicorn_not_the_development_server(
    served: ServerProcess, http: requests.Session, make_image: Callable[..., bytes]
) -> None:
    response = upload(http, served, make_image(), ENTERPRISE.token)
    assert response.status_code == 200
    assert response.headers["Server"] == "gunicorn"
    output = output_of(served, "Starting gunicorn")
    assert "Starting gunicorn" in output
    assert "Werkzeug" not in output


def test_an_in_memory_state_serves_requests(
    served: ServerProcess, http: requests.Session, make_image: Callable[..., bytes]
) -> None:
    """Regression: the pre-fork close of the store's connection used to drop a :memory: state,
    so every request of `serve --state :memory:` failed with a 500 (no such table)."""
    response = upload(http, served, make_image(text="memory"), PRO.token)
    assert response.status_code == 200
    assert response.json()["fileName"] == "scan.png"


def test_no_gunicorn_control_socket_is_opened(
    tmp_path: Path, http: requests.Session, make_image: Callable[..., bytes]
) -> None:
    """gunicorn >= 25.1 would bind $HOME/.gunicorn/gunicorn.ctl, shared by every mock."""
    env = {**NO_ENV_STATE, "HOME": str(tmp_path), "XDG_RUNTIME_DIR": str(tmp_path / "run")}
    with ServerProcess(env=env, stop_signal=QUICK) as server:
        assert upload(http, server, make_image(), FREE.token).status_code == 200
    assert not (tmp_path / ".gunicorn").exists()
    assert not (tmp_path / "run").exists()


# -- where the state lives -----------------------------------------------------------------


def test_the_default_state_is_the_per_user_xdg_state_file(tmp_path: Path) -> None:
    env = {**NO_ENV_STATE, "XDG_STATE_HOME": str(tmp_path / "xdg")}
    with ServerProcess(state=None, env=env, stop_signal=QUICK) as server:
        expected = tmp_path / "xdg" / "itsocr-mock" / "state.sqlite3"
        assert f"state: {expected}\n" in output_of(server, f"state: {expected}\n")
        assert expected.is_file()


def test_without_xdg_state_home_the_state_is_under_local_state(tmp_path: Path) -> None:
    env = {**NO_ENV_STATE, "XDG_STATE_HOME": "", "HOME": str(tmp_path)}
    with ServerProcess(state=None, env=env, stop_signal=QUICK) as server:
        expected = tmp_path / ".local" / "state" / "itsocr-mock" / "state.sqlite3"
        assert f"state: {expected}\n" in output_of(server, f"state: {expected}\n")
        assert expected.is_file()


def test_usage_survives_a_restart_on_the_same_state_file(
    tmp_path: Path, http: requests.Session, make_image: Callable[..., bytes]
) -> None:
    state = tmp_path / "state.sqlite3"
    with ServerProcess(state=state, env=NO_ENV_STATE, stop_signal=QUICK) as server:
        for _ in range(2):
            assert upload(http, server, make_image(), FREE.token).status_code == 200
    with ServerProcess(state=state, env=NO_ENV_STATE, stop_signal=QUICK) as server:
        assert upload(http, server, make_image(), FREE.token).status_code == 200
        assert stored_usage(state, FREE.id) == 3
    assert stored_usage(state, FREE.id) == 3


# -- what the production server passes on as sent ----------------------------------------------


def test_paths_are_matched_as_sent_on_gunicorn(
    served: ServerProcess, wire: Callable[..., Any], http: requests.Session
) -> None:
    """gunicorn hands the app `//api/v1/ocr` unmerged: still an unknown path, nothing counted."""
    usage_url = served.url + "/_mock/accounts/demo-free/usage"
    assert http.put(usage_url, json={"imagesUsed": 4}).status_code == 200  # a reset would clear it
    host = served.url.split("/")[2]
    for method, target in (
        ("POST", "//api/v1/ocr"),
        ("POST", "/api/v1//ocr"),
        ("POST", "//_mock/reset"),
    ):
        request = (
            f"{method} {target} HTTP/1.1\r\nHost: {host}\r\n"
            f"Authorization: Bearer {FREE.token}\r\nContent-Length: 0\r\n\r\n"
        )
        assert wire(served.url, request.encode()).status_code == 404, target
    assert http.get(usage_url).json()["imagesUsed"] == 4


def test_the_405_has_no_content_type_on_gunicorn(
    served: ServerProcess, wire: Callable[..., Any]
) -> None:
    host = served.url.split("/")[2]
    request = f"DELETE /api/v1/ocr HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\n\r\n"
    response = wire(served.url, request.encode())
    assert (response.status_code, response.content) == (405, b"DELETE method not allowed")
    assert "Content-Type" not in response.headers
    assert response.headers["Allow"] == "POST, OPTIONS"


# -- configurations that are refused ---------------------------------------------------------


def serve(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mockserver.cli", "serve", "--port", "0", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_an_in_memory_state_cannot_be_shared_by_several_workers() -> None:
    finished = serve("--state", ":memory:", "--workers", "2")
    assert finished.returncode == 2
    assert "in-memory state cannot be shared by several workers" in finished.stderr
    assert "--state PATH" in finished.stderr
    assert "Traceback" not in finished.stderr


def test_zero_workers_is_refused(tmp_path: Path) -> None:
    finished = serve("--state", str(tmp_path / "s.sqlite3"), "--workers", "0")
    assert finished.returncode == 2
    assert "--workers must be at least 1" in finished.stderr


# -- large bodies on the production server ---------------------------------------------------


def test_a_body_over_the_ceiling_is_refused_from_its_content_length(
    served: ServerProcess, wire: Callable[..., Any], assert_api_error: Callable[..., None]
) -> None:
    head = (
        "POST /api/v1/ocr HTTP/1.1\r\nHost: mock\r\n"
        f"Authorization: Bearer {ENTERPRISE.token}\r\n"
        "Content-Type: multipart/form-data; boundary=b\r\n"
        f"Content-Length: {60 * MIB}\r\n\r\n"
    ).encode()
    assert_api_error(wire(served.base_url + "/ocr", head), 400, TOO_LARGE)


def test_a_60_mib_upload_gets_the_json_400(
    served: ServerProcess,
    http: requests.Session,
    make_image: Callable[..., bytes],
    assert_api_error: Callable[..., None],
) -> None:
    huge = make_image() + bytes(60 * MIB)
    assert_api_error(upload(http, served, huge, ENTERPRISE.token), 400, TOO_LARGE)


def test_a_chunked_body_is_cut_off_at_the_ceiling(
    served: ServerProcess, http: requests.Session, assert_api_error: Callable[..., None]
) -> None:
    sent = [0]

    def body() -> Iterator[bytes]:
        yield (
            b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.png"\r\n'
            b"Content-Type: image/png\r\n\r\n"
        )
        for _ in range(200):
            sent[0] += MIB
            yield bytes(MIB)
        yield b"\r\n--b--\r\n"

    response = http.post(
        served.base_url + "/ocr",
        data=body(),
        headers={
            "Authorization": f"Bearer {ENTERPRISE.token}",
            "Content-Type": "multipart/form-data; boundary=b",
        },
    )
    assert_api_error(response, 400, TOO_LARGE)
    assert sent[0] < 100 * MIB  # the server stopped reading near 51 MiB, not at 200


def test_a_closing_delimiter_cut_by_a_64_kib_read_stays_out_of_the_file(
    served: ServerProcess,
    http: requests.Session,
    make_image: Callable[..., bytes],
    assert_ocr_success: Callable[..., dict[str, Any]],
) -> None:
    """The body is read 64 KiB at a time; here the first read ends one byte into the closing
    `--`. Werkzeug's decoder would add the delimiter's CR to the file (fileSize one too many)."""
    head = (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n'
        b"Content-Type: image/png\r\n\r\n"
    )
    size = 64 * 1024 - len(head) - len(b"\r\n--b-")
    image = padded_png(make_image(), size)
    response = http.post(
        served.base_url + "/ocr",
        data=head + image + b"\r\n--b--\r\n",
        headers={
            "Authorization": f"Bearer {PRO.token}",
            "Content-Type": "multipart/form-data; boundary=b",
        },
    )
    assert_ocr_success(response, fileName="a.png", fileSize=size)


def padded_png(png: bytes, size: int) -> bytes:
    """`png` grown to exactly `size` bytes by a tEXt chunk before its IEND (still decodable)."""
    end = png.rindex(b"IEND") - 4  # the IEND chunk starts with its length
    text = b"pad\x00" + b"x" * (size - len(png) - 12 - 4)
    chunk = struct.pack(">I", len(text)) + b"tEXt" + text
    chunk += struct.pack(">I", zlib.crc32(b"tEXt" + text))
    padded = png[:end] + chunk + png[end:]
    assert len(padded) == size
    return padded


# -- stopping: SIGTERM and Ctrl-C --------------------------------------------------------------


def _slow_upload(server: ServerProcess, image: bytes) -> tuple[threading.Thread, list[object]]:
    """An upload held by a fault rule's delay, in a thread; its answer (or error) lands in the
    list."""
    outcome: list[object] = []

    def send() -> None:
        try:
            outcome.append(
                requests.post(
                    server.base_url + "/ocr",
                    headers={"Authorization": f"Bearer {PRO.token}"},
                    files={"file": ("scan.png", image, "image/png")},
                    timeout=30,
                ).status_code
            )
        except requests.ConnectionError as cut:
            outcome.append(cut)

    thread = threading.Thread(target=send)
    thread.start()
    return thread, outcome


def _consistent(state: Path) -> int:
    """The state file is whole, and its usage agrees with its journal: the images counted."""
    with sqlite3.connect(state) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        used = db.execute("SELECT COALESCE(SUM(images_used), 0) FROM usage").fetchone()[0]
        served = db.execute("SELECT COUNT(*) FROM journal WHERE status = 200").fetchone()[0]
    assert used == served
    return int(used)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("stop", "exit_code"), [(signal.SIGTERM, 0), (signal.SIGINT, 130)], ids=["TERM", "INT"]
)
def test_a_stop_signal_leaves_a_consistent_state_and_the_documented_exit_code(
    tmp_path: Path, make_image: Callable[..., bytes], stop: signal.Signals, exit_code: int
) -> None:
    state = tmp_path / "state.sqlite3"
    server = ServerProcess(state=state, env=NO_ENV_STATE, stop_signal=stop).start()
    try:
        control = requests.Session()
        fault = {"delayMs": 3000, "times": 1}
        assert control.post(server.url + "/_mock/faults", json=fault).status_code == 201
        thread, outcome = _slow_upload(server, make_image(text="in flight"))
        time.sleep(1.0)  # the upload is in, held by the rule's delay
    finally:
        server.stop(timeout=20)
    thread.join(30)
    assert server.process is not None
    assert server.process.returncode == exit_code, "".join(server.output)
    assert "Traceback" not in "".join(server.output)
    used = _consistent(state)
    if stop == signal.SIGTERM:  # graceful: the request in flight finishes
        assert outcome == [200]
        assert used == 1
    else:  # at once: the request is cut, and counted only if it was answered
        assert len(outcome) == 1
        assert used == (1 if outcome == [200] else 0)
