"""A new user's mistakes, each run through the real `itsocr-mock` console script.

Every start-up and command-line mistake must end in one line on stderr (``PROG: error: ...``),
the documented exit code, no traceback, and every file it was pointed at byte for byte as it
was. Each case builds its bad input in a fresh directory, runs the installed console script in
a child process (no target from the developer's environment), and checks all four.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pytest
from PIL import Image

from mockserver.backend import DEMO_ACCOUNTS, Backend
from mockserver.store import SCHEMA_VERSION, Store

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
    files: dict[str, bytes | Callable[[], bytes]] = field(default_factory=dict)  # path -> content
    env: dict[str, str] = field(default_factory=dict)
    code: int = 2
    slow: bool = False  # the same path as a lean case, for another command or file


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
        files={"state.sqlite3": lambda: our_state()},
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


@cache
def sqlite_file(*statements: str) -> bytes:
    """The bytes of a SQLite database made by `statements`."""
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "made.sqlite3"
        with contextlib.closing(sqlite3.connect(path)) as db:
            for statement in statements:
                db.execute(statement)
            db.commit()
        return path.read_bytes()


@cache
def our_state() -> bytes:
    """The bytes of a state file of this kit, with a few hundred accounts (several pages)."""
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "state.sqlite3"
        backend = Backend(Store(path))
        backend.ensure_initialised()
        for _ in range(200):
            backend.create_account("pro")
        backend.store.close()  # the last connection: the log is folded into the file
        return path.read_bytes()


def truncated_state() -> bytes:
    """A state file cut in half, as a full disk or an interrupted copy leaves it."""
    return our_state()[: len(our_state()) // 2]


def overwritten_state() -> bytes:
    """A state file with two of its pages overwritten."""
    data = bytearray(our_state())
    data[8192:16384] = bytes(range(256)) * 32
    return bytes(data)


def newer_state() -> bytes:
    """A state file as a kit with the next schema version would write it."""
    data = bytearray(our_state())
    data[60:64] = (SCHEMA_VERSION + 1).to_bytes(4, "big")  # the header's user_version
    return bytes(data)


STATE = "{dir}/state.sqlite3"
REFUSED_STATES: dict[str, tuple[bytes | Callable[[], bytes], str]] = {
    "garbage": (
        b"this is not a database\n" * 200,
        "is not a SQLite database: delete it or use another --state",
    ),
    "another application's database": (
        lambda: sqlite_file("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)"),
        "is another application's SQLite database (tables: users): use another --state",
    ),
    "a truncated state": (truncated_state, "is damaged (database disk image is malformed)"),
    "an overwritten state": (overwritten_state, "is damaged ("),
    "a newer state": (
        newer_state,
        f"was written by a newer itsocr-mock (schema {SCHEMA_VERSION + 1}; this one knows up to",
    ),
}
# Each bad state, for serve (with one worker, and with two: told before gunicorn forks), the
# proxy, a command that reads it, one that writes it, and reset. Every command opens a state
# file through one path (a store checks it read-only first): the lean run tries each file with
# a command acting on it, and serve and reset with two of them.
LEAN_KINDS = ("garbage", "a newer state")
for _kind, (_content, _problem) in REFUSED_STATES.items():
    for _name, _command, _slow in (
        ("serve", ("serve", "--port", "0"), _kind not in LEAN_KINDS),
        ("serve --workers 2", ("serve", "--port", "0", "--workers", "2"), True),
        ("proxy", ("proxy", "--upstream", "http://127.0.0.1:9", "--port", "0"), True),
        ("accounts list", ("accounts", "list"), False),
        ("usage --set", ("usage", "demo-free", "--set", "3"), True),
        ("reset", ("reset",), _kind not in LEAN_KINDS),
    ):
        MISTAKES[f"{_name} on {_kind}"] = Mistake(
            (*_command, "--state", STATE),
            f"state file {STATE} {_problem}",
            files={"state.sqlite3": _content},
            slow=_slow,
        )
MISTAKES |= {
    "serve on a directory": Mistake(
        ("serve", "--port", "0", "--state", "{dir}/states"),
        "state file {dir}/states is a directory: use another --state",
        files={"states/keep": b""},
    ),
    "serve where a file blocks the directory": Mistake(
        ("serve", "--port", "0", "--state", "{dir}/notes.txt/state.sqlite3"),
        "its directory {dir}/notes.txt cannot be made (a file is in its way)",
        files={"notes.txt": b"notes"},
    ),
    "reset where a file blocks the directory": Mistake(
        ("reset", "--force", "--state", "{dir}/notes.txt/state.sqlite3"),
        "its directory {dir}/notes.txt cannot be made (a file is in its way)",
        files={"notes.txt": b"notes"},
    ),
    "accounts list on a directory": Mistake(
        ("accounts", "list", "--state", "{dir}/states"),
        "state file {dir}/states is a directory: use another --state",
        files={"states/keep": b""},
    ),
    # A mistyped --state must not become a new, empty state.
    **{
        f"{' '.join(command[:2])} on a mistyped --state": Mistake(
            (*command, "--state", "{dir}/stat.sqlite3"),
            "no state file at {dir}/stat.sqlite3: check the path, or create it with "
            "`itsocr-mock reset --state {dir}/stat.sqlite3`",
            files={"state.sqlite3": our_state, "scan.png": png()},
            slow=slow,
        )
        for command, slow in (
            (("usage", "demo-free"), False),
            (("accounts", "list"), False),
            (("tokens", "create", "demo-free"), False),
            (("fixtures", "add", "{dir}/scan.png", "text"), False),
            (("tokens", "list", "demo-free"), True),
            (("fixtures", "list"), True),
            (("clock", "show"), True),
            (("faults", "list"), True),
            (("requests",), True),
        )
    },
}


def prepare(mistake: Mistake, directory: Path) -> list[str]:
    """Lay out the mistake's files in `directory`; its command line."""
    for name, content in mistake.files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content() if callable(content) else content)
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


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(case, marks=[pytest.mark.slow] if mistake.slow else [])
        for case, mistake in MISTAKES.items()
    ],
)
def test_a_mistake_is_one_line_and_changes_nothing(case: str, tmp_path: Path) -> None:
    mistake = MISTAKES[case]
    args = prepare(mistake, tmp_path)
    before = snapshot(tmp_path)
    done = console(*args, env={"XDG_STATE_HOME": str(tmp_path / "xdg"), **mistake.env})
    assert_one_line(done, mistake.message.replace("{dir}", str(tmp_path)), mistake.code)
    assert snapshot(tmp_path) == before  # nothing changed, nothing created


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port some other program listens on."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield other.getsockname()[1]


@pytest.mark.parametrize(
    "command", [("serve",), ("proxy", "--upstream", "http://127.0.0.1:9")], ids=["serve", "proxy"]
)
@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_port_in_use_is_one_line_not_gunicorns_retries(
    busy_port: int, command: tuple[str, ...], workers: str, tmp_path: Path
) -> None:
    state = tmp_path / "state.sqlite3"
    done = console(*command, "--port", str(busy_port), "--workers", workers, "--state", str(state))
    message = f"port {busy_port} on 127.0.0.1 is in use; pick another or --port 0"
    assert_one_line(done, message, 2)
    assert not state.exists()


@pytest.mark.parametrize(
    "kind",
    [
        pytest.param(kind, marks=[] if kind in LEAN_KINDS else [pytest.mark.slow])
        for kind in REFUSED_STATES
    ],
)
def test_reset_force_replaces_a_state_it_refused(kind: str, tmp_path: Path) -> None:
    state = tmp_path / "state.sqlite3"
    content = REFUSED_STATES[kind][0]
    state.write_bytes(content() if callable(content) else content)
    done = console("reset", "--state", str(state), "--force", "--json")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    listed = console("accounts", "list", "--state", str(state), "--json")
    assert listed.returncode == 0, listed.stderr
    assert [account["id"] for account in json.loads(listed.stdout)] == [
        demo.id for demo in DEMO_ACCOUNTS
    ]


def test_reset_force_cannot_make_an_unwritable_place_usable(tmp_path: Path) -> None:
    (tmp_path / "states").mkdir()
    done = console("reset", "--state", str(tmp_path / "states"), "--force")
    assert_one_line(done, f"state file {tmp_path}/states is a directory", 2)
    assert (tmp_path / "states").is_dir()


@cache
def read_only_mounts() -> bool:
    """Whether this user can make a directory read-only in a mount namespace of its own."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return False
    with tempfile.TemporaryDirectory() as scratch:
        probe = subprocess.run(
            [unshare, "--mount", "sh", "-c", READ_ONLY + "true", scratch],
            capture_output=True,
            timeout=30,
            check=False,
        )
    return probe.returncode == 0


# `sh -c READ_ONLY DIRECTORY COMMAND...`: COMMAND with DIRECTORY, and what it holds, read-only.
READ_ONLY = 'mount --bind "$0" "$0" && mount -o remount,ro,bind "$0" "$0" && exec "$@" '


def in_read_only_directory(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`itsocr-mock ARGS` while `directory` is read-only: as root (who may write wherever a
    permission forbids it), a read-only bind mount in a mount namespace of the command's own;
    otherwise the directory's permissions."""
    if os.geteuid() != 0:
        directory.chmod(0o555)
        try:
            return console(*args)
        finally:
            directory.chmod(0o755)
    if not read_only_mounts():
        pytest.skip("as root, a read-only directory needs a mount namespace (unshare --mount)")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ITSOCR_")}
    return subprocess.run(
        ["unshare", "--mount", "sh", "-c", READ_ONLY, str(directory), str(CONSOLE), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean,
        check=False,
    )


@pytest.mark.parametrize(
    "command",
    [("serve", "--port", "0"), ("reset",), ("accounts", "list")],
    ids=["serve", "reset", "accounts list"],
)
def test_a_state_in_a_read_only_directory(command: tuple[str, ...], tmp_path: Path) -> None:
    place = tmp_path / "read-only"
    place.mkdir()
    (place / "ours.sqlite3").write_bytes(our_state())
    before = snapshot(place)
    if command[0] != "accounts":  # serve and reset would make a new one
        state = place / "new.sqlite3"
        message = f"state file {state} cannot be created: its directory {place} is not writable"
    else:
        state = place / "ours.sqlite3"
        message = f"state file {state} "
    done = in_read_only_directory(place, *command, "--state", str(state))
    assert_one_line(done, message, 2)
    if os.geteuid() == 0:  # a permission is not a read-only file system
        assert "read-only file system" in done.stderr
    assert snapshot(place) == before
    assert sorted(p.name for p in place.iterdir()) == ["ours.sqlite3"]
