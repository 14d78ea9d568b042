"""What users would run instead of the mock: Prism 5 and WireMock 3, started for the bench.

Both come from the npm registry (`@stoplight/prism-cli`, and `wiremock`, which wraps the
standalone jar and needs Java). They are installed once into a cache directory
(`$ITSOCR_BENCH_TOOLS`, default `~/.cache/itsocr-mock-bench/node`), never into the repository.
Without `npm` or `java` on PATH, or when the install fails, their rows say why and the rest
of the bench runs as usual.

What each checks, for the README's table:
- **Prism** mocks `openapi.yaml`: it validates the request against the spec (method, path,
  security header present, multipart body shape) and answers the spec's example. No tokens,
  quotas, plans, sizes, messages or OCR: every valid request gets the same example.
- **WireMock** answers a stub: one mapping (POST /api/v1/ocr -> the success JSON). Nothing is
  checked unless stubs are written for it, by hand.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from harness import ROOT, progress

PACKAGES = ("@stoplight/prism-cli@5", "wiremock@3")
SUCCESS = {
    "id": "550e8400-e29b-41d4-a716-446655440000",
    "text": "Extracted text from the image...",
    "processingTimeMs": 1,
    "fileName": "bench.png",
    "fileSize": 10240,
    "mimeType": "image/png",
    "success": True,
}


def tools_dir() -> Path:
    """Where the npm packages are installed (created on first use)."""
    default = Path.home() / ".cache" / "itsocr-mock-bench" / "node"
    return Path(os.environ.get("ITSOCR_BENCH_TOOLS", default))


def ensure_tools() -> str | None:
    """Install Prism and WireMock if needed; None when ready, else why they cannot run."""
    if shutil.which("npm") is None:
        return "npm is not on PATH"
    directory = tools_dir()
    bin_dir = directory / "node_modules" / ".bin"
    if (bin_dir / "prism").exists() and (bin_dir / "wiremock").exists():
        return None
    directory.mkdir(parents=True, exist_ok=True)
    progress(f"installing {', '.join(PACKAGES)} into {directory} (once)")
    finished = subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(directory), *PACKAGES],
        capture_output=True,
        text=True,
    )
    if finished.returncode != 0:
        return f"npm install failed: {finished.stderr.strip().splitlines()[-1:]}"
    return None


def prism_command(port: int) -> list[str]:
    """Prism 5 mocking the kit's `openapi.yaml` (static examples, no dynamic generation)."""
    prism = tools_dir() / "node_modules" / ".bin" / "prism"
    return [str(prism), "mock", "--host", "127.0.0.1", "-p", str(port), str(ROOT / "openapi.yaml")]


def wiremock_command(port: int, work: Path) -> list[str] | None:
    """WireMock 3 standalone with one stub answering the success JSON; None without Java."""
    if shutil.which("java") is None:
        return None
    root = work / "wiremock"
    (root / "mappings").mkdir(parents=True, exist_ok=True)
    stub = {
        "request": {"method": "POST", "url": "/api/v1/ocr"},
        "response": {
            "status": 200,
            "headers": {"Content-Type": "application/json"},
            "jsonBody": SUCCESS,
        },
    }
    (root / "mappings" / "ocr.json").write_text(json.dumps(stub))
    wiremock = tools_dir() / "node_modules" / ".bin" / "wiremock"
    return [
        str(wiremock),
        "--bind-address",
        "127.0.0.1",
        "--port",
        str(port),
        "--root-dir",
        str(root),
        "--disable-banner",
    ]
