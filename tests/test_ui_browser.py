"""The web page in a real browser: Playwright driving Debian's headless Chromium.

Playwright's own browser download is not used (nor available here): the tests launch the
system's Chromium (`ITSOCR_MOCK_CHROMIUM`, default ``/usr/bin/chromium``; ``.ci/run`` installs
it) with a fresh profile, against mocks they start on free loopback ports. Everything a test
checks on the page is also checked on the mock (over HTTP), and the other way round.

One screenshot per page (at 1280 and at 360 px wide) is saved to ``$ITSOCR_MOCK_UI_ARTIFACTS``
or else to ``ui-screenshots/`` under pytest's base temporary directory
(``/tmp/pytest-of-$USER/pytest-current/ui-screenshots``).
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from PIL import Image, ImageDraw
from playwright.sync_api import BrowserContext, ConsoleMessage, Page, expect, sync_playwright

from mockserver.backend import DEMO_ACCOUNTS
from mockserver.settings import Settings
from mockserver.testing import InProcessServer

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CHROMIUM = Path(os.environ.get("ITSOCR_MOCK_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ADMIN_TOKEN = "s3cret-admin-token"
FREE, PRO, _ = (demo.token for demo in DEMO_ACCOUNTS)
# Generous: the page polls every second (the journal) or two (accounts); the machine is shared.
WAIT_MS = 8000
TOKEN_PATTERN = re.compile(r"^itsocr_[A-Za-z0-9]{32}$")
expect.set_options(timeout=WAIT_MS)  # assertions retry this long (actions: the context's)

if not CHROMIUM.exists():
    pytestmark.append(
        pytest.mark.skip(reason=f"no Chromium at {CHROMIUM}: apt-get install chromium")
    )


# -- the browser and the mocks -------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser_context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
        )
        context.set_default_timeout(WAIT_MS)
        yield context
        context.close()


@pytest.fixture
def page(browser_context: BrowserContext) -> Iterator[Page]:
    """A fresh tab (its own sessionStorage) that fails the test on any script error."""
    tab = browser_context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))

    # Console errors too (a Content-Security-Policy violation is one), except the browser's
    # own line for each answer of 4xx, which the admin-token test gets on purpose.
    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            errors.append(message.text)

    tab.on("console", on_console)
    tab.on("dialog", lambda dialog: dialog.accept())
    yield tab
    tab.close()
    assert not errors, f"errors on the page: {errors}"


@pytest.fixture
def mock(mock_server: InProcessServer) -> InProcessServer:
    """The session's mock, reset (conftest's `mock_server`), by this module's short name."""
    return mock_server


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    configured = os.environ.get("ITSOCR_MOCK_UI_ARTIFACTS")
    folder = Path(configured) if configured else tmp_path_factory.getbasetemp() / "ui-screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def png(text: str) -> bytes:
    image = Image.new("RGB", (160, 40), "white")
    ImageDraw.Draw(image).text((4, 4), text, fill="black")
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def upload(
    mock: InProcessServer, token: str, *, media_type: str = "image/png"
) -> requests.Response:
    return requests.post(
        mock.base_url + "/ocr",
        headers={"Authorization": f"Bearer {token}"},
        files={"file": ("scan.png", png("hello"), media_type)},
        timeout=10,
    )


def control(mock: InProcessServer, method: str, path: str, **kwargs: object) -> requests.Response:
    return requests.request(method, f"{mock.url}/_mock{path}", timeout=10, **kwargs)  # type: ignore[arg-type]


def freeze(mock: InProcessServer, now: str) -> None:
    assert control(mock, "PUT", "/clock", json={"now": now}).status_code == 200


# -- Requests ----------------------------------------------------------------------------------

JOURNAL_FIELDS = [
    "time", "method", "path", "status", "account", "tokenPrefix", "fileName", "mimeType",
    "fileSize", "sha256", "fixture", "prompt", "error", "hint", "durationMs",
]  # fmt: skip


def test_a_request_appears_in_the_journal_live_with_every_field_and_its_hint(
    mock: InProcessServer, page: Page
) -> None:
    freeze(mock, "2030-01-31T23:59:30Z")  # every entry in one minute of the plot
    page.goto(mock.url + "/_mock/ui/")
    expect(page.locator("#journal-empty")).to_be_visible()
    rows = page.locator("tr.entry")

    assert upload(mock, FREE).status_code == 200
    expect(rows).to_have_count(1)
    assert upload(mock, FREE, media_type="image/jpg").status_code == 400
    expect(rows).to_have_count(2)

    # Newest first; the row with a hint is marked as such.
    expect(rows.nth(0)).to_have_attribute("data-status", "400")
    expect(rows.nth(1)).to_have_attribute("data-status", "200")
    expect(rows.nth(0).locator(".hint-mark")).to_be_visible()
    expect(rows.nth(1).locator(".hint-mark")).to_have_count(0)

    # Expanded from the keyboard: every journal field, and the hint called out.
    toggle = rows.nth(0).locator("button.expand")
    toggle.focus()
    page.keyboard.press("Enter")
    expect(toggle).to_have_attribute("aria-expanded", "true")
    details = page.locator("tr.details").nth(0)
    entry = control(mock, "GET", "/requests?status=400").json()[0]
    expect(details.locator(".hint-callout")).to_have_text(f"Hint: {entry['hint']}")
    assert "image/jpg is not a registered media type" in entry["hint"]
    expect(details.locator("dt")).to_have_text(JOURNAL_FIELDS)
    shown = ["null" if entry[name] is None else str(entry[name]) for name in JOURNAL_FIELDS]
    expect(details.locator("dd")).to_have_text(shown)
    expect(details.locator("dd.hint")).to_have_text(entry["hint"])

    # A live refresh keeps it open; the plot counts by status.
    assert upload(mock, PRO).status_code == 200
    expect(rows).to_have_count(3)
    expect(page.locator("tr.details:visible .hint-callout")).to_have_count(1)
    expect(page.locator('#plot rect[data-status="200"]')).to_have_attribute("data-count", "2")
    expect(page.locator('#plot rect[data-status="400"]')).to_have_attribute("data-count", "1")
    expect(page.locator("#plot-legend")).to_contain_text("200: 2")

    # Filters are the API's own ?status= and ?account=.
    page.select_option("#filter-status", "400")
    expect(rows).to_have_count(1)
    page.select_option("#filter-status", "")
    page.select_option("#filter-account", "demo-pro")
    expect(rows).to_have_count(1)
    expect(rows.nth(0)).to_contain_text("demo-pro")


@pytest.mark.timing
def test_the_journal_shows_a_row_within_two_seconds(mock: InProcessServer, page: Page) -> None:
    """The page polls every second; measured from the request to the row in the document."""
    page.goto(mock.url + "/_mock/ui/")
    expect(page.locator("#journal-empty")).to_be_visible()
    page.evaluate(
        """() => { window.seen = new Promise((resolve) => {
             new MutationObserver(() => {
               if (document.querySelector("tr.entry")) resolve(performance.now());
             }).observe(document.getElementById("journal-rows"), {childList: true});
           }); }"""
    )
    sent = page.evaluate("performance.now()")
    assert upload(mock, FREE).status_code == 200
    appeared = page.evaluate("window.seen")
    assert appeared - sent < 2000, f"the row appeared after {appeared - sent:.0f} ms"


# -- Accounts and Try it -------------------------------------------------------------------------


def test_an_upload_from_try_it_fills_the_quota_bar(mock: InProcessServer, page: Page) -> None:
    page.goto(mock.url + "/_mock/ui/try")
    expect(page.locator("#try-token option")).to_have_count(4)  # the demo tokens + another
    page.select_option("#try-token", label="free demo (demo-free)")
    page.set_input_files(
        "#try-file", files=[{"name": "scan.png", "mimeType": "image/png", "buffer": png("try")}]
    )
    page.fill("#try-prompt", "Extract the text")
    page.click("#try button[type=submit]")

    expect(page.locator("#answer-status")).to_contain_text("200")
    answer = page.locator("#answer-body").text_content() or ""
    assert '"success": true' in answer
    assert '"fileName": "scan.png"' in answer
    sent = control(mock, "GET", "/requests").json()
    assert [(e["status"], e["account"], e["prompt"]) for e in sent] == [
        (200, "demo-free", "Extract the text")
    ]

    page.goto(mock.url + "/_mock/ui/accounts")
    free = page.locator('article[data-account="demo-free"]')
    expect(free.locator(".bar")).to_have_attribute("aria-valuenow", "1")
    expect(free.locator(".usage-text")).to_contain_text("1 of 10 images")
    assert upload(mock, FREE).status_code == 200  # seen live
    expect(free.locator(".bar")).to_have_attribute("aria-valuenow", "2")
    enterprise = page.locator('article[data-account="demo-enterprise"]')
    expect(enterprise.locator(".usage-text")).to_contain_text("unlimited")
    expect(enterprise.locator(".bar")).to_have_class(re.compile(r"\bunlimited\b"))


def test_an_account_created_on_the_page_works_and_is_managed_there(
    mock: InProcessServer, page: Page
) -> None:
    page.goto(mock.url + "/_mock/ui/accounts")
    expect(page.locator("article.account")).to_have_count(3)
    page.select_option("#create-plan", "pro")
    page.click("#create-account button[type=submit]")

    shown_token = page.locator("#new-token-value")
    expect(shown_token).to_have_text(TOKEN_PATTERN)
    token = shown_token.text_content() or ""
    created = [a for a in control(mock, "GET", "/accounts").json() if a["id"].startswith("acct")]
    assert [a["plan"] for a in created] == ["pro"]
    account_id = created[0]["id"]
    expect(page.locator("#new-token-label")).to_contain_text(account_id)
    assert upload(mock, token).status_code == 200
    card = page.locator(f'article[data-account="{account_id}"]')
    expect(card.locator(".usage-text")).to_contain_text("1 of 500 images")
    page.click("#dismiss-token")  # shown once: gone from the page
    expect(shown_token).to_have_text("")
    expect(page.locator("#new-token")).to_be_hidden()

    card.locator("summary").click()
    card.locator(".add-token button").click()
    expect(shown_token).to_have_text(TOKEN_PATTERN)
    second = shown_token.text_content() or ""
    assert second != token
    expect(card.locator("li.token")).to_have_count(2)
    second_id = control(mock, "GET", f"/accounts/{account_id}").json()["tokens"][1]["id"]
    card.locator(f'li[data-token-id="{second_id}"] button').click()
    expect(card.locator(f'li[data-token-id="{second_id}"] .state')).to_have_text("revoked")
    revoked = upload(mock, second)
    assert (revoked.status_code, revoked.json()["error"]) == (401, "API token has been revoked")

    card.locator(".change-plan select").select_option("free")
    card.locator(".change-plan button").click()
    expect(card.locator(".plan")).to_have_text("free")
    assert control(mock, "GET", f"/accounts/{account_id}").json()["plan"] == "free"
    card.locator(".set-usage input").fill("10")
    card.locator(".set-usage input").press("Enter")
    expect(card.locator(".usage-text")).to_contain_text("10 of 10 images")
    expect(card.locator(".bar")).to_have_class(re.compile(r"\bfull\b"))
    assert upload(mock, token).status_code == 429


# -- Faults and clock ----------------------------------------------------------------------------


def test_a_fault_armed_on_the_page_fails_the_next_request(
    mock: InProcessServer, page: Page
) -> None:
    page.goto(mock.url + "/_mock/ui/faults")
    expect(page.locator("#faults-empty")).to_be_visible()
    page.select_option("#fault-outcome", "500")
    page.fill('#add-fault input[name="times"]', "1")
    page.click("#add-fault button[type=submit]")

    expect(page.locator(".toast").last).to_have_text(re.compile("Armed: answer 500, 1 time"))
    rules = page.locator("#fault-rows tr")
    expect(rules).to_have_count(1)
    expect(rules.nth(0).locator(".left")).to_have_text("1")
    failed = upload(mock, FREE)
    assert (failed.status_code, failed.json()["error"]) == (
        500,
        "OCR processing failed. Please try again.",
    )
    expect(rules).to_have_count(0)  # spent: gone from the list, live
    expect(page.locator("#faults-empty")).to_be_visible()
    assert upload(mock, FREE).status_code == 200


def test_a_fault_that_counts_the_image_is_armed_from_the_page(
    mock: InProcessServer, page: Page
) -> None:
    page.goto(mock.url + "/_mock/ui/faults")
    counts = page.locator("#fault-counts-usage")
    page.select_option("#fault-outcome", "delay")
    expect(counts).to_be_disabled()  # only a 500 or a drop may count the image
    page.select_option("#fault-outcome", "500")
    expect(counts).to_be_enabled()
    counts.check()
    page.click("#add-fault button[type=submit]")

    expect(page.locator(".toast").last).to_have_text(re.compile(r"answer 500 \(image counted\)"))
    expect(page.locator("#fault-rows tr")).to_have_count(1)
    (rule,) = control(mock, "GET", "/faults").json()
    assert (rule["status"], rule["countsUsage"]) == (500, True)
    assert upload(mock, FREE).status_code == 500
    usage = control(mock, "GET", "/accounts/demo-free/usage").json()
    assert usage["imagesUsed"] == 1  # counted, as the live service's 500 may be


def test_a_refused_action_says_why(mock: InProcessServer, page: Page) -> None:
    page.goto(mock.url + "/_mock/ui/faults")
    page.select_option("#fault-outcome", "drop")
    page.fill('#add-fault input[name="error"]', "custom message")
    page.click("#add-fault button[type=submit]")

    refused = control(mock, "POST", "/faults", json={"drop": True, "error": "custom message"})
    assert refused.status_code == 400
    alert = page.locator('.toast.error[role="alert"]')
    expect(alert).to_contain_text(refused.json()["error"])
    assert control(mock, "GET", "/faults").json() == []


def test_the_clock_is_frozen_and_freed_from_the_page(mock: InProcessServer, page: Page) -> None:
    page.goto(mock.url + "/_mock/ui/faults")
    expect(page.locator("#clock-state")).to_have_text("real time")
    page.fill("#freeze-at", "2030-01-31T23:59:59")
    page.click("#freeze button[type=submit]")

    expect(page.locator("#clock-now")).to_have_text("2030-01-31 23:59:59 UTC")
    expect(page.locator("#clock-state")).to_have_text("frozen")
    assert control(mock, "GET", "/clock").json() == {
        "now": "2030-01-31T23:59:59.000Z",
        "frozen": True,
    }
    page.click("#unfreeze")
    expect(page.locator("#clock-state")).to_have_text("real time")
    assert control(mock, "GET", "/clock").json()["frozen"] is False


# -- the admin token -----------------------------------------------------------------------------


def test_a_mock_with_an_admin_token_shows_nothing_until_it_is_given(page: Page) -> None:
    settings = Settings(state=":memory:", admin_token=ADMIN_TOKEN)
    with InProcessServer(settings) as guarded:
        assert upload(guarded, FREE).status_code == 200
        page.goto(guarded.url + "/_mock/ui/")

        expect(page.locator("#admin-token")).to_be_visible()
        expect(page.locator("#admin-token-error")).to_contain_text(
            "requires `Authorization: Bearer <admin token>`"
        )
        expect(page.locator("#admin-token-input")).to_be_focused()
        expect(page.locator("tr.entry")).to_have_count(0)

        page.keyboard.type("not-the-token")
        page.keyboard.press("Enter")
        expect(page.locator("#admin-token-error")).to_have_text("wrong admin token")
        expect(page.locator("tr.entry")).to_have_count(0)

        page.fill("#admin-token-input", ADMIN_TOKEN)
        page.keyboard.press("Enter")
        expect(page.locator("#admin-token")).to_be_hidden()
        expect(page.locator("tr.entry")).to_have_count(1)
        stored = page.evaluate("sessionStorage.getItem('itsocr-mock.admin-token')")
        assert stored == ADMIN_TOKEN
        assert ADMIN_TOKEN not in page.content()  # kept out of the document

        page.goto(guarded.url + "/_mock/ui/accounts")  # the same tab keeps it
        expect(page.locator("article.account")).to_have_count(3)
        expect(page.locator("#admin-token")).to_be_hidden()
        page.click("#forget-token")
        expect(page.locator("#admin-token")).to_be_visible()


# -- every page: a screenshot, 360 px, no horizontal scrolling -----------------------------------

PAGES = {
    "requests": ("", "tr.entry"),
    "accounts": ("accounts", "article.account"),
    "faults": ("faults", "#fault-rows tr"),
    "try": ("try", "#answer:not([hidden])"),
}


@pytest.mark.parametrize("name", list(PAGES))
def test_each_page_at_1280_and_360_px(
    mock: InProcessServer, page: Page, artifacts: Path, name: str
) -> None:
    created = control(mock, "POST", "/accounts", json={"plan": "pro"}).json()
    control(mock, "PUT", "/accounts/demo-free/usage", json={"imagesUsed": 7})
    for token, media_type in [
        (FREE, "image/png"),
        (PRO, "image/jpg"),
        (created["token"], "image/png"),
    ]:
        upload(mock, token, media_type=media_type)
    upload(mock, "itsocr_" + "x" * 32)
    control(mock, "POST", "/faults", json={"status": 500, "times": 3, "account": created["id"]})
    control(mock, "POST", "/faults", json={"delayMs": 1500})
    path, ready = PAGES[name]

    for width in (1280, 360):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(f"{mock.url}/_mock/ui/{path}")
        if name == "try":
            page.set_input_files(
                "#try-file", files=[{"name": "a.png", "mimeType": "image/png", "buffer": png("a")}]
            )
            page.click("#try button[type=submit]")
        if name == "requests":
            page.locator("tr.entry button.expand").nth(1).click()
        expect(page.locator(ready).first).to_be_visible()
        page.wait_for_timeout(300)  # let the last poll's redraw settle for the picture
        overflow = page.evaluate("document.documentElement.scrollWidth")
        assert overflow <= width, f"{name} is {overflow} px wide at {width} px"
        page.screenshot(path=artifacts / f"{name}-{width}.png", full_page=True)
        assert (artifacts / f"{name}-{width}.png").stat().st_size > 5000
