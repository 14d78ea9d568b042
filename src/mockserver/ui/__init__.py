"""The mock's web page, `/_mock/ui/`: a client of the control API, nothing more.

The views below only render templates; everything the page shows or changes, its JavaScript
reads and writes through the control API (`openapi-control.yaml`), so there is no second path
into the state. The HTML, CSS and JavaScript hold no state and no secret, which is why they are
served without the admin token: a browser cannot attach a header to a navigation, so the page
asks for the admin token itself (kept in the tab's sessionStorage) and sends it as
``Authorization: Bearer`` with every control request, which the control API checks as usual.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, Response, render_template, url_for

from mockserver import __version__
from mockserver.backend import OVERRIDE_STATUSES
from mockserver.plans import plans

ui = Blueprint(
    "ui",
    __name__,
    url_prefix="/_mock/ui",
    template_folder="templates",
    static_folder="static",
)

# Only the page's own files, and the mock's own origin for fetch (the control API and Try it's
# upload): no inline script or style can run, so nothing injected into the page can either.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


@dataclass(frozen=True)
class Page:
    """One page of the UI, as the navigation lists it."""

    endpoint: str
    title: str


PAGES = (
    Page("ui.requests_page", "Requests"),
    Page("ui.accounts_page", "Accounts"),
    Page("ui.faults_page", "Faults and clock"),
    Page("ui.try_page", "Try it"),
)


@ui.after_request
def page_headers(response: Response) -> Response:
    """Lock the page down: its own scripts only, never framed, never sniffed."""
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    if response.mimetype == "text/html":
        response.headers["Cache-Control"] = "no-store"
    return response


@ui.get("/")
def requests_page() -> str:
    """The journal, live, with a plot of the last hour."""
    return _render("requests.html")


@ui.get("/accounts")
def accounts_page() -> str:
    """Accounts, their usage this month and their tokens."""
    return _render("accounts.html")


@ui.get("/faults")
def faults_page() -> str:
    """The armed fault rules and the mock's clock."""
    return _render("faults.html")


@ui.get("/try")
def try_page() -> str:
    """Send an image to the OCR endpoint and see the answer."""
    return _render("try.html")


def _render(template: str) -> str:
    # Only the contract's constants are rendered in (plans, statuses): never any state.
    return render_template(
        template,
        pages=PAGES,
        version=__version__,
        plans=list(plans().values()),
        fault_statuses=OVERRIDE_STATUSES,
        journal_statuses=(200, *OVERRIDE_STATUSES, 0),
        control_url=url_for("control.mock.health").removesuffix("/health"),
        ocr_url=url_for("api.ocr"),
    )
