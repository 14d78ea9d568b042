"""Fault rules: failures, delays and dropped connections for the next OCR requests."""

from __future__ import annotations

from flask import Blueprint, Response

from mockserver.control.common import boolean, integer, json_body, no_content, string
from mockserver.faults import FaultRule
from mockserver.store import FaultRow
from mockserver.web import current_backend, json_response

views = Blueprint("faults", __name__)

_FIELDS = ("status", "error", "delayMs", "times", "account", "drop", "countsUsage")


@views.get("/faults")
def list_faults() -> Response:
    """The fault rules, in the order they apply."""
    return json_response([_fault_json(row) for row in current_backend().faults()])


@views.post("/faults")
def add_fault() -> Response:
    """A fault rule for the next OCR requests."""
    body = json_body(_FIELDS)
    rule = FaultRule(
        status=integer(body, "status"),
        error=string(body, "error"),
        delay_ms=integer(body, "delayMs") or 0,
        times=integer(body, "times"),
        account_id=string(body, "account"),
        drop=bool(boolean(body, "drop")),
        counts_usage=bool(boolean(body, "countsUsage")),
    )
    return json_response(_fault_json(current_backend().add_fault(rule)), 201)


@views.delete("/faults")
def clear_faults() -> Response:
    """Delete every fault rule."""
    current_backend().clear_faults()
    return no_content()


@views.delete("/faults/<fault_id>")
def delete_fault(fault_id: str) -> Response:
    """Delete one fault rule."""
    current_backend().delete_fault(fault_id)
    return no_content()


def _fault_json(fault: FaultRow) -> dict[str, object]:
    return {
        "id": fault.id,
        "status": fault.status,
        "error": fault.error,
        "delayMs": fault.delay_ms,
        "times": fault.remaining,
        "account": fault.account_id,
        "drop": fault.drop_connection,
        "countsUsage": fault.counts_usage,
        "createdAt": fault.created_at,
    }
