"""The floor of the benchmark: the least work `POST /api/v1/ocr` can do, as a bare WSGI app.

It parses the multipart body with the parser the mock uses (Werkzeug's sans-IO decoder),
hashes the `file` part and answers a small JSON document -- no framework, no auth, no state,
no journal. `bench/run.py` serves it under gunicorn with the mock's own worker settings, so the
ratio mock/floor measures what the mock's semantics cost, not a different server setup.

Run on its own: ``python bench/floor.py --port 8090 --workers 2``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from werkzeug.sansio.multipart import Data, Epilogue, File, MultipartDecoder, NeedData

CHUNK_SIZE = 64 * 1024

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """Parse the multipart body, hash its `file` part, answer JSON."""
    boundary = environ.get("CONTENT_TYPE", "").partition("boundary=")[2].encode("latin-1")
    remaining = int(environ.get("CONTENT_LENGTH") or 0)
    stream = environ["wsgi.input"]
    decoder = MultipartDecoder(boundary)
    digest, size, name, in_file, done = hashlib.sha256(), 0, "", False, False
    while not done:
        chunk = stream.read(min(CHUNK_SIZE, remaining)) if remaining else b""
        remaining -= len(chunk)
        decoder.receive_data(chunk or None)
        while not done:
            event = decoder.next_event()
            if isinstance(event, NeedData):
                break
            done = isinstance(event, Epilogue)
            if isinstance(event, File):
                in_file, name = event.name == "file", event.filename
            elif isinstance(event, Data) and in_file:
                digest.update(event.data)
                size += len(event.data)
        if not chunk and not done:
            return _answer(start_response, "400 Bad Request", {"success": False})
    body = {"fileName": name, "fileSize": size, "sha256": digest.hexdigest(), "success": True}
    return _answer(start_response, "200 OK", body)


def _answer(start_response: StartResponse, status: str, document: object) -> list[bytes]:
    payload = json.dumps(document, separators=(",", ":")).encode()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))]
    start_response(status, headers)
    return [payload]


def main() -> None:
    parser = argparse.ArgumentParser(description="the bare-WSGI floor, under gunicorn")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
    from gunicorn.app.base import BaseApplication

    from mockserver.serving import gunicorn_options

    options = gunicorn_options(args.host, args.port, args.workers, log_level="warning")

    class Floor(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)
            if "control_socket_disable" in self.cfg.settings:  # as the mock does (serving.py)
                self.cfg.set("control_socket_disable", True)

        def load(self) -> Callable[..., Iterable[bytes]]:
            return app

    Floor().run()


if __name__ == "__main__":
    main()
