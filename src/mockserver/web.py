"""HTTP helpers shared by the blueprints: JSON bodies as the live service writes them, CORS."""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING

from flask import Response, current_app

from mockserver.contract import load_spec

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


@cache
def cors_headers() -> Mapping[str, str]:
    """The CORS headers every JSON response of the API carries, read from the contract."""
    declared = load_spec()["components"]["headers"]
    return {
        "Access-Control-Allow-Origin": declared["AccessControlAllowOrigin"]["schema"]["const"],
        "Access-Control-Allow-Methods": declared["AccessControlAllowMethods"]["schema"]["const"],
        "Access-Control-Allow-Headers": declared["AccessControlAllowHeaders"]["schema"]["const"],
    }
