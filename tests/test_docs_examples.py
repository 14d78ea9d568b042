"""The vendor documentation's own examples, run against the mock.

`tests/docs_examples/` holds the three examples of the itsOCR API documentation copied verbatim:
cURL, Node.js (fetch, FormData, Blob) and Python requests. Each test changes only the URL and the
token (by substitution, checked to touch nothing else), runs the example in a temporary
directory holding a real fixture image named ``document.jpg``, and checks that it behaves as it
does against the live service: curl and Node get a 200 with the image's text; the Python example
gets the live 400 ``Unsupported file type: text/plain. ...`` -- its file part carries no
Content-Type -- and then fails on ``result['text']``. docs/client-testing.md explains the fix,
which is run here too.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from PIL import Image, ImageDraw

from mockserver import errors
from mockserver.backend import Backend
from mockserver.resources import data_path
from mockserver.store import JournalEntry
from mockserver.testing import InProcessServer

pytest_plugins = ("pytester",)

EXAMPLES = Path(__file__).parent / "docs_examples"
DOCS_API_URL = "https://itsocr.com/api/v1"
DOCS_TOKEN = "itsocr_your_token_here"
# The one-line fix of the Python example that docs/client-testing.md gives.
PYTHON_FIX = ("files={'file': f}", "files={'file': ('document.jpg', f, 'image/jpeg')}")
TIMEOUT = 30


@dataclass(frozen=True)
class Document:
    """The image the examples upload, and the text the mock must return for it."""

    data: bytes
    text: str


@pytest.fixture(scope="module")
def document() -> Document:
    """A JPEG of the fixture catalogue (or, before there is one, a Pillow-made JPEG)."""
    try:
        manifest_path = data_path("fixtures") / "manifest.yaml"
    except FileNotFoundError:
        manifest_path = None
    if manifest_path is not None and manifest_path.exists():
        manifest = yaml.safe_load(manifest_path.read_text(encoding="utf-8"))
        entries = manifest.get("fixtures", manifest) if isinstance(manifest, dict) else manifest
        for entry in entries:
            if entry.get("mediaType") == "image/jpeg":
                data = (manifest_path.parent / entry["file"]).read_bytes()
                assert hashlib.sha256(data).hexdigest() == entry["sha256"], entry["file"]
                return Document(data, entry["text"].strip())
    return _drawn_document()


def _drawn_document() -> Document:
    # No JPEG fixture yet: an unregistered image gets the mock's deterministic fallback text.
    from mockserver.fixtures import fallback_text

    image = Image.new("RGB", (240, 60), "white")
    ImageDraw.Draw(image).text((8, 20), "itsOCR docs example", fill="black")
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG")
    data = buffer.getvalue()
    return Document(data, fallback_text(hashlib.sha256(data).hexdigest(), "").text)


@pytest.fixture
def workdir(tmp_path: Path, document: Document) -> Path:
    """An empty directory holding only ``document.jpg``, as the examples expect."""
    (tmp_path / "document.jpg").write_bytes(document.data)
    return tmp_path


def example(name: str, workdir: Path, server: InProcessServer, token: str) -> Path:
    """Copy a docs example into `workdir` with only the mock's URL and `token` put in."""
    source = (EXAMPLES / name).read_text(encoding="utf-8")
    # Exactly one URL and one token: the substitution changes those and nothing else.
    assert source.count(DOCS_API_URL) == 1, name
    assert source.count(DOCS_TOKEN) == 1, name
    script = workdir / name
    script.write_text(
        source.replace(DOCS_API_URL, server.base_url).replace(DOCS_TOKEN, token), encoding="utf-8"
    )
    return script


def run(command: list[str], workdir: Path) -> subprocess.CompletedProcess[str]:
    """Run an example with the loopback mock reachable (no proxy in the way)."""
    env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    return subprocess.run(
        command, cwd=workdir, env=env, capture_output=True, text=True, timeout=TIMEOUT
    )


def last_request(backend: Backend) -> JournalEntry:
    """The journal's entry of the one request the example sent."""
    entries = backend.store.journal()
    assert len(entries) == 1, entries
    return entries[0]


def test_curl_example_gets_the_text(
    mock_server: InProcessServer,
    backend: Backend,
    demo_token: str,
    workdir: Path,
    document: Document,
) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed: the docs' cURL example cannot run")
    script = example("curl.sh", workdir, mock_server, demo_token)
    done = run(["sh", script.name], workdir)
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    assert body["success"] is True
    assert body["text"] == document.text
    assert (body["fileName"], body["mimeType"]) == ("document.jpg", "image/jpeg")
    assert body["fileSize"] == len(document.data)
    assert last_request(backend).status == 200


def _node_major() -> int | None:
    node = shutil.which("node")
    if node is None:
        return None
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=False)
    found = re.match(r"v(\d+)", version.stdout.strip())
    return int(found.group(1)) if found else None


def test_node_example_gets_the_text(
    mock_server: InProcessServer,
    backend: Backend,
    demo_token: str,
    workdir: Path,
    document: Document,
) -> None:
    major = _node_major()
    if major is None:
        pytest.skip("node is not installed: the docs' Node.js example cannot run")
    if major < 18:
        pytest.skip(f"node {major} has no global fetch/FormData/Blob; the example needs 18+")
    script = example("node.mjs", workdir, mock_server, demo_token)
    done = run(["node", script.name], workdir)
    assert done.returncode == 0, done.stderr
    assert done.stdout == document.text + "\n"
    entry = last_request(backend)
    assert (entry.status, entry.mime_type, entry.file_name) == (200, "image/jpeg", "document.jpg")


def test_python_example_gets_the_live_400(
    mock_server: InProcessServer, backend: Backend, demo_token: str, workdir: Path
) -> None:
    script = example("python_requests.py", workdir, mock_server, demo_token)
    done = run([sys.executable, script.name], workdir)
    # As against the live service: a 400, whose body has no 'text', so the example crashes.
    assert done.returncode != 0
    assert done.stderr.rstrip().endswith("KeyError: 'text'"), done.stderr
    entry = last_request(backend)
    assert entry.status == 400
    assert entry.error == errors.UnsupportedFileType("text/plain").error
    assert (entry.mime_type, entry.file_name) == ("text/plain", "document.jpg")
    # The mock's log says why, with the fix (the live service cannot).
    assert entry.hint is not None
    assert PYTHON_FIX[1] in entry.hint


def test_python_example_with_the_fix_gets_the_text(
    mock_server: InProcessServer,
    backend: Backend,
    demo_token: str,
    workdir: Path,
    document: Document,
) -> None:
    script = example("python_requests.py", workdir, mock_server, demo_token)
    source = script.read_text(encoding="utf-8")
    assert source.count(PYTHON_FIX[0]) == 1
    script.write_text(source.replace(*PYTHON_FIX), encoding="utf-8")
    done = run([sys.executable, script.name], workdir)
    assert done.returncode == 0, done.stderr
    assert done.stdout == document.text + "\n"
    assert last_request(backend).status == 200


GUIDE = Path(__file__).parents[1] / "docs" / "client-testing.md"
_PYTHON_BLOCK = re.compile(r"^```python\n# (\S+\.py)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def test_the_fix_is_the_one_the_docs_give() -> None:
    assert PYTHON_FIX[1] in GUIDE.read_text(encoding="utf-8")


def test_the_client_testing_guide_runs(pytester: pytest.Pytester) -> None:
    """Every Python block of docs/client-testing.md is a file (named on its first line); the
    guide's client and its tests run with the plugin, and every test passes."""
    guide = GUIDE.read_text(encoding="utf-8")
    blocks = _PYTHON_BLOCK.findall(guide)
    assert len(blocks) == guide.count("```python"), "a python block without a '# file.py' line"
    for name, code in blocks:
        pytester.path.joinpath(name).write_text(code, encoding="utf-8")
    tests = sum(code.count("\ndef test_") for name, code in blocks if name.startswith("test_"))
    assert tests >= 7
    result = pytester.runpytest(
        "-p",
        "no:itsocr_mock",
        "-p",
        "mockserver.pytest_plugin",
        "-p",
        "no:cacheprovider",
        # Warnings are errors, but for the plugin module possibly imported by another test
        # already (an installed kit's entry point is imported, and rewritten, by pytest itself).
        "-W",
        "error",
        "-W",
        "ignore::pytest.PytestAssertRewriteWarning",
    )
    result.assert_outcomes(passed=tests)
