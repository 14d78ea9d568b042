"""Every shell and Python snippet of README.md runs here, against a real mock.

Snippets are written for a reader: they talk to ``http://127.0.0.1:8080`` and run the kit from
``.venv/bin/``. Here the URL becomes a mock started for the test and ``.venv/bin/`` the
environment running the tests. The two set-up commands are checked where they belong: the
test command is what ``.ci/run`` executes (asserted below), the serve command runs for real in a
fresh virtual environment (slow). A snippet marked ``<!-- readme: slow -->`` runs in the slow
suite only. The other snippets that run the contract suite run it narrowed to a few clauses
(``ITSOCR_CLAUSES``, which the command line as written leaves in force): they check that the
command works as shown, and the whole suite's verdict on the mock is
``test_contract_suite.test_green_against_the_mock_in_process``'s, in-process (no child
pytest to start).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from mockserver.backend import DEMO_ACCOUNTS
from mockserver.fixtures import FixtureCatalogue
from mockserver.serving import banner
from mockserver.settings import Settings
from mockserver.testing import InProcessServer, ServerProcess

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
README_URL = "http://127.0.0.1:8080"
LIVE_URL = "https://itsocr.com/api/v1"
BIN = Path(sys.executable).parent
# What a lean snippet that runs the contract suite runs of it: a clause needing no token and one
# uploading with the token.
LEAN_CLAUSES = "auth.missing-header,success.common-types"
_FENCE = re.compile(r"((?:<!--[^\n]*-->\n)*)```(\w+)\n(.*?)\n```", re.DOTALL)


@dataclass(frozen=True)
class Snippet:
    """A fenced block of the README and the markers written just above it."""

    language: str
    code: str
    markers: str
    line: int

    @property
    def id(self) -> str:
        return f"README.md:{self.line}"


def snippets(*languages: str) -> list[Snippet]:
    """The README's fenced blocks in those languages, in order."""
    found = []
    for match in _FENCE.finditer(README):
        if match.group(2) in languages:
            line = README.count("\n", 0, match.start(2)) + 1
            found.append(Snippet(match.group(2), match.group(3), match.group(1), line))
    return found


def _setup_command(name: str) -> str:
    for snippet in snippets("sh"):
        if f"<!-- {name} -->" in snippet.markers:
            return snippet.code
    raise AssertionError(f"README.md has no {name} block")


RUNNABLE = [
    s
    for s in snippets("sh", "python")
    if "serve-command" not in s.markers and "test-command" not in s.markers
]


def runs_the_suite(snippet: Snippet) -> bool:
    """Whether the snippet runs the contract suite (pytest on it, or `itsocr-mock check`)."""
    return bool(
        re.search(r"pytest (--pyargs contract_tests|--base-url)|itsocr-mock check", snippet.code)
    )


def _adapt(code: str, origin: str) -> str:
    return code.replace(README_URL, origin).replace(".venv/bin/", f"{BIN}/")


@pytest.fixture(scope="module")
def readme_mock() -> InProcessServer:
    with InProcessServer(Settings(state=":memory:")) as server:
        yield server


@pytest.mark.parametrize(
    "snippet",
    [
        pytest.param(s, id=s.id, marks=[pytest.mark.slow] if "readme: slow" in s.markers else [])
        for s in RUNNABLE
    ],
)
def test_snippet_runs(snippet: Snippet, readme_mock: InProcessServer) -> None:
    """The snippet runs as written against a mock; in the lean run, narrowed to LEAN_CLAUSES
    where it runs the contract suite (the slow ones, and an explicit --itsocr-clauses, win)."""
    readme_mock.backend.reset()
    code = _adapt(snippet.code, readme_mock.url).replace(LIVE_URL, readme_mock.base_url)
    command = ["bash", "-euo", "pipefail", "-c", code]
    if snippet.language == "python":
        command = [sys.executable, "-c", code]
    env = {**os.environ, "ITSOCR_TOKEN": DEMO_ACCOUNTS[1].token, "ITSOCR_MOCK_URL": readme_mock.url}
    if "readme: slow" not in snippet.markers:
        env["ITSOCR_CLAUSES"] = LEAN_CLAUSES
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{snippet.id} failed:\n{result.stdout}\n{result.stderr}"
    if runs_the_suite(snippet) and "readme: slow" not in snippet.markers:
        # Narrowed indeed: the clause table lists what ran, and nothing else.
        assert "auth.missing-header" in result.stdout + result.stderr, snippet.id
        assert "upload.not-multipart" not in result.stdout + result.stderr, snippet.id
    if '"file=@' in snippet.code and "/api/v1/ocr" in snippet.code:
        body = json.loads(result.stdout)
        assert body["success"] is True, body


def test_the_quick_start_banner_is_the_real_one() -> None:
    shown = next(s.code for s in snippets("text") if "itsOCR mock listening" in s.code)
    state = "/home/you/.local/state/itsocr-mock/state.sqlite3"
    real = banner(README_URL, Settings(state=state)).splitlines()
    assert shown.splitlines() == real[: len(shown.splitlines())]


def test_ci_runs_exactly_the_readme_test_command() -> None:
    extracted = subprocess.run(
        [str(ROOT / ".ci" / "run")],
        env={**os.environ, "CI_RUN_PRINT_ONLY": "1"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert extracted == _setup_command("test-command")
    assert "venv" in extracted


@pytest.mark.slow
def test_the_serve_command_works_from_a_fresh_clone(tmp_path: Path) -> None:
    """Clone, run the README's serve command as written, and upload with a demo token."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    command = _setup_command("serve-command").replace(" serve", " serve --port 0")
    # The README command ends by starting the server; start it through ServerProcess instead
    # so that the test can wait for its banner, after running the install part as written.
    install, _, _ = command.rpartition(" && ")
    subprocess.run(
        ["bash", "-euo", "pipefail", "-c", install],
        cwd=clone,
        check=True,
        capture_output=True,
        timeout=600,
    )
    assert (clone / ".venv" / "bin" / "itsocr-mock").exists()
    env = {
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "PATH": f"{clone}/.venv/bin:{os.environ['PATH']}",
    }
    program = [str(clone / ".venv" / "bin" / "itsocr-mock")]
    with ServerProcess(state=None, env=env, program=program) as server:
        import requests

        with (clone / "fixtures" / "short-line.png").open("rb") as image:
            response = requests.post(
                server.base_url + "/ocr",
                headers={"Authorization": f"Bearer {DEMO_ACCOUNTS[0].token}"},
                files={"file": ("short-line.png", image, "image/png")},
                timeout=10,
            )
    assert response.status_code == 200, response.text
    short_line = next(f for f in FixtureCatalogue.load() if f.name == "short-line.png")
    assert response.json()["text"] == short_line.text


def _console_invocations() -> list[tuple[str, dict[str, str], list[str]]]:
    """Each ``$ [VAR=value ...] .venv/bin/itsocr-mock ARGS`` line of the README's console
    blocks: (the line, its environment assignments, ARGS)."""
    found = []
    for snippet in snippets("console"):
        for line in snippet.code.splitlines():
            if not line.startswith("$ "):
                continue
            words = shlex.split(line[2:], comments=True)
            env = {}
            while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):
                name, _, value = words.pop(0).partition("=")
                env[name] = value
            if words and words[0].endswith("/itsocr-mock"):
                found.append((line, env, words[1:]))
    return found


def test_console_examples_are_commands_the_cli_accepts() -> None:
    """Commands shown (not run: `serve` never exits) use only real options and variables."""
    from mockserver.cli import build_parser
    from mockserver.settings import ENVIRONMENT

    invocations = _console_invocations()
    assert invocations, "the README shows no itsocr-mock console examples any more"
    for line, env, args in invocations:
        assert set(env) <= set(ENVIRONMENT.values()), line
        try:
            build_parser().parse_args(args)
        except SystemExit:
            pytest.fail(f"the CLI rejects a README example: {line}")


def test_the_status_table_is_every_error_the_contract_lists() -> None:
    """The README's table of statuses and messages is the one of openapi.yaml: every error
    example, each under its `respond_with_example` name, and nothing else."""
    from mockserver.contract import load_spec

    table = README.split("<!-- status-table -->\n", 1)[1].split("<!-- /status-table -->", 1)[0]
    rows = [
        [cell.strip() for cell in line.strip("|").split(" | ")]
        for line in table.strip().splitlines()[2:]
    ]
    shown = [(int(status), error.strip("`"), name.strip("`")) for status, error, _, name in rows]
    responses = load_spec()["paths"]["/ocr"]["post"]["responses"]
    listed = {
        (int(status), example["value"]["error"], name)
        for status, response in responses.items()
        if status != "200"
        for name, example in response.get("content", {})
        .get("application/json", {})
        .get("examples", {})
        .items()
    }
    assert sorted(shown) == sorted(listed)
    assert len(shown) == len(set(shown))
