"""HTTP helpers shared by the blueprints: the backend of the app, JSON bodies as the live
service writes them."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from flask import Response, current_app

if TYPE_CHECKING:
    from mockserver.backend import Backend

EXTENSION_KEY = "itsocr_mock"


def current_backend() -> Backend:
    """The backend of the app handling the current request."""
    backend: Backend = current_app.extensions[EXTENSION_KEY]
    return backend


def json_response(body: object, status: int = 200) -> Response:
    """A JSON response serialised as JavaScript's JSON.stringify does: compact, raw UTF-8,
    keys in insertion order -- so the mock is byte-for-byte the live service."""
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    return Response(text, status=status, mimetype="application/json")
