"""The journal: the API requests the mock received (control requests are never in it)."""

from __future__ import annotations

from flask import Blueprint, Response

from mockserver.control.common import no_content, query_integer, query_text
from mockserver.store import JournalEntry
from mockserver.web import current_backend, json_response

views = Blueprint("journal", __name__)


@views.get("/requests")
def list_requests() -> Response:
    """The API requests received, oldest first; ``?account=``, ``?status=``, ``?limit=``."""
    status = query_integer("status", 0, 999)
    limit = query_integer("limit", 1, None)
    entries = current_backend().journal(query_text("account"), status, limit)
    return json_response([entry_json(entry) for entry in entries])


@views.delete("/requests")
def clear_requests() -> Response:
    """Empty the journal."""
    current_backend().clear_journal()
    return no_content()


def entry_json(entry: JournalEntry) -> dict[str, object]:
    """A journal entry as the control API shows it (the mock's and the proxy's)."""
    shown: dict[str, object] = {
        "time": entry.time,
        "method": entry.method,
        "path": entry.path,
        "status": entry.status,
        "account": entry.account_id,
        "tokenPrefix": entry.token_prefix,
        "fileName": entry.file_name,
        "mimeType": entry.mime_type,
        "fileSize": entry.file_size,
        "sha256": entry.sha256,
        "fixture": entry.fixture,
        "prompt": entry.prompt,
        "error": entry.error,
        "hint": entry.hint,
        "durationMs": entry.duration_ms,
    }
    if entry.violations is not None:  # a proxy's journal: how the upstream's answer broke the spec
        shown["violations"] = list(entry.violations)
    return shown
