"""An account's usage this month, and the mock's clock that decides which month that is."""

from __future__ import annotations

from flask import Blueprint, Response

from mockserver.clock import format_instant
from mockserver.control.common import instant, integer, json_body, no_content, required
from mockserver.state import Usage
from mockserver.web import current_backend, json_response

views = Blueprint("usage", __name__)


@views.get("/accounts/<account_id>/usage")
def get_usage(account_id: str) -> Response:
    """The account's usage in the current month of the mock's clock."""
    return json_response(_usage_json(current_backend().usage(account_id)))


@views.put("/accounts/<account_id>/usage")
def set_usage(account_id: str) -> Response:
    """Set the images used in the current month."""
    body = json_body(("imagesUsed",), required=("imagesUsed",))
    images_used = required(integer(body, "imagesUsed"), "imagesUsed")
    usage = current_backend().set_usage(account_id, images_used)
    return json_response(_usage_json(usage))


@views.get("/clock")
def get_clock() -> Response:
    """The mock's time, and whether it is frozen."""
    return json_response(clock_json())


@views.put("/clock")
def set_clock() -> Response:
    """Freeze the mock's clock at an instant."""
    body = json_body(("now",), required=("now",))
    current_backend().freeze_clock(instant(body["now"], "now"))
    return json_response(clock_json())


@views.delete("/clock")
def real_clock() -> Response:
    """Back to real time."""
    current_backend().real_clock()
    return no_content()


def clock_json() -> dict[str, object]:
    """The clock as the control API shows it (here and in the health check)."""
    backend = current_backend()
    return {"now": format_instant(backend.now()), "frozen": backend.clock_is_frozen()}


def _usage_json(usage: Usage) -> dict[str, object]:
    return {
        "period": usage.period,
        "imagesUsed": usage.images_used,
        "limit": usage.limit,
        "bytesProcessed": usage.bytes_processed,
    }
