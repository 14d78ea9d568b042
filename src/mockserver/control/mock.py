"""The mock as a whole: its health check (with and without the control API) and its reset."""

from __future__ import annotations

from flask import Blueprint, Response, current_app

from mockserver import __version__
from mockserver.control.common import json_body, no_content, no_store
from mockserver.control.usage import clock_json
from mockserver.plans import plans
from mockserver.tokens import DEMO_ACCOUNTS
from mockserver.web import current_backend, json_response

views = Blueprint("mock", __name__)


@views.get("/health")
def health() -> Response:
    """Whether this is a running itsOCR mock, and what it serves."""
    body = _public_health()
    body["state"] = current_backend().store.path
    body["demoAccounts"] = [
        {"id": demo.id, "plan": demo.plan, "token": demo.token} for demo in DEMO_ACCOUNTS
    ]
    return json_response(body)


@views.post("/reset")
def reset() -> Response:
    """Back to a fresh state (`MockState.reset`, the one reset path)."""
    json_body(())
    current_backend().reset()
    return no_content()


# With the control API off (`--no-control`), a production-like mock still answers its health
# check, so that docker-compose or CI has something to poll -- read-only, and without what a
# client could use against it: no tokens, no state path. The rest of /_mock stays a 404.
health_only = Blueprint("health_only", __name__, url_prefix="/_mock")
health_only.after_request(no_store)


@health_only.get("/health")
def public_health() -> Response:
    """The health check of a mock without a control API."""
    return json_response(_public_health())


def _public_health() -> dict[str, object]:
    return {
        "status": "ok",
        "version": __version__,
        "control": current_app.config["ITSOCR_SETTINGS"].control,
        "clock": clock_json(),
        "plans": {
            plan.name: {
                "title": plan.title,
                "imagesPerMonth": plan.images_per_month,
                "maxFileSizeBytes": plan.max_file_size,
            }
            for plan in plans().values()
        },
    }
