"""A new user's mistakes, each run through the real `itsocr-mock` console script.

Every start-up and command-line mistake must end in one line on stderr (``PROG: error: ...``),
the documented exit code, no traceback, and every file it was pointed at byte for byte as it
was. Each case builds its bad input in a fresh directory, runs the installed console script in
a child process (no target from the developer's environment), and checks all four.
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from PIL import Image

from mockserver.backend import DEMO_ACCOUNTS

CONSOLE = Path(sys.executable).parent / "itsocr-mock"


def png() -> bytes:
    """A small real PNG."""
    buffer = io.BytesIO()
    Image.new("RGB", (40, 20), "white").save(buffer, format="PNG")
    return buffer.getvalue()


@dataclass(frozen=True)
class Mistake:
    """A bad invocation: the files it needs, its arguments, and what it must answer."""

    args: tuple[str, ...]  # "{dir}" stands for the case's own directory
    message: str  # a part of the one stderr line
    files: dict[str, bytes] = field(default_factory=dict)  # relative path -> content
    env: dict[str, str] = field(default_factory=dict)
    code: int = 2


def fixtures(**files: bytes) -> dict[str, bytes]:
    """A user fixture directory `fx/` holding `files` (dots written as `__`)."""
    return {f"fx/{name.replace('__', '.')}": content for name, content in files.items()}


SERVE = ("serve", "--port", "0", "--state", ":memory:")
FIXTURE_HINT = "(check it with `itsocr-mock fixtures verify --fixtures DIR`)"

MISTAKES = {
    # -- the command line ---------------------------------------------------------------------
    "unknown plan": Mistake(
        ("accounts", "create", "--plan", "gold"), "invalid choice: 'gold' (choose from"
    ),
    "missing action": Mistake(("tokens",), "required: ACTION (see `itsocr-mock tokens --help`)"),
    "port out of range": Mistake(("serve", "--port", "70000"), "expected 0 to 65535, got 70000"),
    "port not a number": Mistake(("serve", "--port", "http"), "expected a port number"),
    "unknown log level": Mistake(("serve", "--log-level", "loud"), "invalid choice: 'LOUD'"),
    "log level in the environment": Mistake(
        SERVE, "ITSOCR_MOCK_LOG_LEVEL must be one of", env={"ITSOCR_MOCK_LOG_LEVEL": "loud"}
    ),
    "client timeout in the environment": Mistake(
        SERVE,
        "ITSOCR_MOCK_CLIENT_TIMEOUT must be a number of seconds, not 'soon'",
        env={"ITSOCR_MOCK_CLIENT_TIMEOUT": "soon"},
    ),
    "no workers": Mistake(("serve", "--workers", "0"), "--workers must be at least 1"),
    "unknown host": Mistake(
        ("serve", "--host", "no-such-host.invalid", "--no-control"), "cannot listen on"
    ),
    "a token given as a token id": Mistake(
        ("tokens", "revoke", DEMO_ACCOUNTS[0].token, "--state", "{dir}/state.sqlite3"),
        "that is a token, not a token id; its id is demo-free-token",
        files={"state.sqlite3": b""},  # replaced by a real state in `run`
    ),
    "a client timeout that is not a number": Mistake(
        ("serve", "--client-timeout", "nan"), "--client-timeout must be a positive number"
    ),
    "a URL without its scheme": Mistake(
        ("usage", "demo-free", "--url", "localhost:8080"),
        "--url must be a mock's http(s) origin, e.g. http://127.0.0.1:8080 (got 'localhost:8080')",
    ),
    "a malformed URL in the environment": Mistake(
        ("faults", "list"),
        "ITSOCR_MOCK_URL must be a mock's http(s) origin",
        env={"ITSOCR_MOCK_URL": "http://[::1"},
    ),
    "fixtures verify against a URL without its scheme": Mistake(
        ("fixtures", "verify", "--url", "127.0.0.1:8080"), "--url must be a mock's http(s) origin"
    ),
    "an unreachable mock": Mistake(
        ("clock", "show", "--url", "http://127.0.0.1:9"), "no mock answers at", code=1
    ),
    # -- fixture directories, for serve and for `fixtures list` alike -------------------------
    "a missing fixture directory": Mistake(
        (*SERVE, "--fixtures", "{dir}/nope"), "nope: the fixture directory does not exist"
    ),
    "a file as the fixture directory": Mistake(
        (*SERVE, "--fixtures", "{dir}/scan.png"),
        "scan.png: the fixture directory is a file, not a directory " + FIXTURE_HINT,
        files={"scan.png": png()},
    ),
    "a text that is not UTF-8": Mistake(
        (*SERVE, "--fixtures", "{dir}/fx"),
        "fx/scan.txt: is not UTF-8 text (byte 0xdf at offset 4); save it as UTF-8",
        files=fixtures(scan__png=png(), scan__txt="Stra\xdfe".encode("latin-1")),
    ),
    "malformed prompts": Mistake(
        (*SERVE, "--fixtures", "{dir}/fx"),
        "fx/scan.prompts.yaml: is not valid YAML at line",
        files=fixtures(scan__png=png(), scan__txt=b"A", scan__prompts__yaml=b'"Total: [4\n'),
    ),
    "prompts that are a list": Mistake(
        (*SERVE, "--fixtures", "{dir}/fx"),
        "fx/scan.prompts.yaml: must map each prompt to its text",
        files=fixtures(scan__png=png(), scan__txt=b"A", scan__prompts__yaml=b"- a\n- b\n"),
    ),
    "an image that does not decode": Mistake(
        (*SERVE, "--fixtures", "{dir}/fx"),
        "fx/scan.png: does not decode as an image",
        files=fixtures(scan__png=b"\x89PNG\r\n\x1a\n cut short", scan__txt=b"A"),
    ),
    "several problems": Mistake(
        (*SERVE, "--fixtures", "{dir}/fx"),
        "(and 1 more problems) " + FIXTURE_HINT,
        files=fixtures(a__png=b"GIF89a", a__txt=b"A", b__png=png()),
    ),
    "fixtures list of a file": Mistake(
        ("fixtures", "list", "--fixtures", "{dir}/scan.png", "--url", "http://127.0.0.1:9"),
        "the fixture directory is a file",
        files={"scan.png": png()},
    ),
}


def prepare(mistake: Mistake, directory: Path) -> list[str]:
    """Lay out the mistake's files in `directory`; its command line."""
    for name, content in mistake.files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    if mistake.files.get("state.sqlite3") == b"":  # stands for a real state of this kit
        (directory / "state.sqlite3").unlink()
        made = console("reset", "--state", str(directory / "state.sqlite3"))
        assert made.returncode == 0, made.stderr
    return [arg.replace("{dir}", str(directory)) for arg in mistake.args]


def console(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The installed `itsocr-mock ARGS`, with no ITSOCR_* variable of the developer's."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ITSOCR_")}
    return subprocess.run(
        [str(CONSOLE), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**clean, **(env or {})},
        check=False,
    )


def snapshot(directory: Path) -> dict[str, bytes]:
    """Every file under `directory` and its bytes."""
    return {
        str(path.relative_to(directory)): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def assert_one_line(done: subprocess.CompletedProcess[str], message: str, code: int) -> str:
    """The command failed with `code` and said `message` in one stderr line, no traceback."""
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("itsocr-mock"), lines[0]
    assert ": error: " in lines[0], lines[0]
    assert message in lines[0], lines[0]
    assert done.returncode == code, (done.returncode, done.stderr)
    assert done.stdout == ""
    return lines[0]


@pytest.mark.parametrize("case", list(MISTAKES))
def test_a_mistake_is_one_line_and_changes_nothing(case: str, tmp_path: Path) -> None:
    mistake = MISTAKES[case]
    args = prepare(mistake, tmp_path)
    before = snapshot(tmp_path)
    done = console(*args, env={"XDG_STATE_HOME": str(tmp_path / "xdg"), **mistake.env})
    assert_one_line(done, mistake.message, mistake.code)
    assert snapshot(tmp_path) == before  # nothing changed, nothing created


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port some other program listens on."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield other.getsockname()[1]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_port_in_use_is_one_line_not_gunicorns_retries(
    busy_port: int, workers: str, tmp_path: Path
) -> None:
    state = tmp_path / "state.sqlite3"
    done = console("serve", "--port", str(busy_port), "--workers", workers, "--state", str(state))
    message = f"port {busy_port} on 127.0.0.1 is in use; pick another or --port 0"
    assert_one_line(done, message, 2)
    assert not state.exists()
