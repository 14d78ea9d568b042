"""The floor of the benchmark: the least work `POST /api/v1/ocr` can do, as a bare WSGI app.

It reads the multipart body with the mock's own reader (`mockserver.multipart.read_form`:
Werkzeug's sans-IO decoder, the file part spooled and hashed as it arrives) and answers a
small JSON document -- no framework, no auth, no state, no journal. `bench/run.py` serves it
under gunicorn with the mock's own worker settings, so the ratio mock/floor measures what the
mock's semantics cost, not a different server setup.

Run on its own: ``python bench/floor.py --port 8090 --workers 2``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from mockserver.multipart import MalformedForm, read_form

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """Parse the multipart body, hash its `file` part, answer JSON."""
    boundary = environ.get("CONTENT_TYPE", "").partition("boundary=")[2].encode("latin-1")
    try:
        form = read_form(environ["wsgi.input"], boundary)
    except MalformedForm:
        return _answer(start_response, "400 Bad Request", {"success": False})
    if form.file is None:
        return _answer(start_response, "400 Bad Request", {"success": False})
    with contextlib.closing(form.file.spool) as spool:
        body = {
            "fileName": form.file.file_name,
            "fileSize": spool.size,
            "sha256": spool.hash.hexdigest(),
            "success": True,
        }
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
