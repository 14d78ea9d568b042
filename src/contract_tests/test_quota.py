"""The monthly quota: 429 after exactly the limit, what counts, whose it is, when it resets.

On a mock the suite sets an account's usage through the control API; against anything else
the quota clauses need ``--itsocr-allow-exhaust`` (they use the token's month up) and run after
every other clause.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from contract_tests.checks import DEFAULT_CHECKS, no_rate_limit_headers
from contract_tests.forms import Part, upload
from contract_tests.harness import Contract
from contract_tests.images import make_image, undecodable_bytes
from contract_tests.target import Account
from mockserver.contract import monthly_limit_message
from mockserver.plans import plans

LIMITED = [name for name, plan in plans().items() if plan.images_per_month is not None]
UNLIMITED = [name for name, plan in plans().items() if plan.images_per_month is None]
QUOTA_CHECKS = (*DEFAULT_CHECKS, no_rate_limit_headers)
# The last second of a month and the first of the next, in UTC (a year the suite owns).
MONTH_END, MONTH_START = "2031-01-31T23:59:59Z", "2031-02-01T00:00:00Z"
MID_MONTH = "2031-01-15T12:00:00Z"


def image(text: str = "quota") -> list[Part]:
    return upload(make_image("image/png", text=text), "image/png")


def limit_of(account: Account) -> int:
    limit = plans()[account.plan].images_per_month
    if limit is None:
        pytest.skip(
            f"the {account.plan} plan has no monthly limit (pass a token of a plan "
            "with one: --itsocr-token with --itsocr-plan)"
        )
    return limit


@pytest.fixture
def frozen_clock(contract: Contract) -> Iterator[None]:
    """Lets a test freeze the mock's clock; real time again afterwards."""
    control = contract.control
    yield
    control.real_clock()


@pytest.mark.clause("quota.exact-limit")
@pytest.mark.exhausts
@pytest.mark.parametrize("plan", LIMITED)
def test_429_after_exactly_the_limit(contract: Contract, plan: str) -> None:
    """The last image of the month is a 200; the next request is a 429 with the usage."""
    account = contract.account(plan)
    limit = limit_of(account)
    if contract.suite.target.control is not None:
        contract.control.set_images_used(account, limit - 1)
        contract.expect(contract.post_ocr(account, parts=image(), billable=True), 200)
    else:
        _use_up(contract, account, limit)
    reply = contract.post_ocr(account, parts=image())
    contract.expect(reply, 429, error=monthly_limit_message(limit, limit), checks=QUOTA_CHECKS)
    if contract.suite.target.control is not None and contract.control.images_used(account) != limit:
        contract.fail(
            reply,
            f"usage: expected {limit} images, the mock stored "
            f"{contract.control.images_used(account)}",
        )


def _use_up(contract: Contract, account: Account, limit: int) -> None:
    """Against a live service: spend the rest of the month's quota, counted from a fresh token
    (a used one meets the 429 sooner), unless an earlier clause already met it."""
    contract.allow_exhaust(account)
    budget = contract.suite.budget
    if budget.used_up is not None:
        return
    needed = max(limit - budget.spent, 0)
    contract.reserve(account, needed)
    for number in range(needed):
        reply = contract.post_ocr(account, parts=image(f"quota {number}"), billable=True)
        if reply.status == 429:
            return
        contract.expect(reply, 200)


@pytest.mark.clause("quota.before-body", level="observed")
@pytest.mark.exhausts
def test_quota_is_checked_before_the_body(contract: Contract) -> None:
    """An account over its quota gets the 429 even for a body that is not multipart."""
    account = contract.account(LIMITED[0] if contract.suite.target.is_mock else None)
    # Against a live service this needs a token whose quota is used up (by quota.exact-limit,
    # or before the run): its 429s are this clause's to judge.
    limit = limit_of(account)
    contract.meets_the_limit = True
    if contract.suite.target.control is not None:
        contract.control.set_images_used(account, limit)
    reply = contract.post_ocr(account, data=b'{"file": null}', content_type="application/json")
    if reply.status == 400 and not contract.suite.target.is_mock:
        reply.checked = True
        pytest.skip(
            "the token's quota is not used up: run with --itsocr-allow-exhaust so that "
            "quota.exact-limit uses it up first"
        )
    contract.expect(reply, 429, error=monthly_limit_message(limit, limit), checks=QUOTA_CHECKS)


@pytest.mark.clause("quota.errors-free", level="observed")
def test_errors_consume_no_quota(contract: Contract) -> None:
    """400, 401, 429 and 500 answers leave the usage as it was."""
    control = contract.control
    account = contract.account(LIMITED[0])
    limit = limit_of(account)
    control.set_images_used(account, limit - 1)
    rejected = [
        (contract.post_ocr(account, parts=[]), 400),
        (contract.post_ocr(account, parts=upload(make_image("image/png"), "application/pdf")), 400),
        (contract.post_ocr(account, parts=upload(undecodable_bytes(), "image/png")), 500),
        (contract.post_ocr(account, parts=upload(b"", "image/png")), 500),
    ]
    control.add_fault(account, status=500, times=1)
    rejected.append((contract.post_ocr(account, parts=image("fault")), 500))
    for reply, status in rejected:
        contract.expect(reply, status)
    _expect_usage(contract, account, limit - 1)
    control.set_images_used(account, limit)
    contract.expect(contract.post_ocr(account, parts=image()), 429)
    _expect_usage(contract, account, limit)


def _expect_usage(contract: Contract, account: Account, expected: int) -> None:
    used = contract.control.images_used(account)
    if used != expected:
        contract.fail(
            None,
            f"usage: expected {expected} images after refused requests, the mock counted {used}",
        )


@pytest.mark.clause("quota.shared-by-tokens", level="observed")
def test_quota_belongs_to_the_account(contract: Contract) -> None:
    """Two tokens of one account share its quota."""
    control = contract.control
    first = contract.account(LIMITED[0])
    second = control.create_token(first)
    limit = limit_of(first)
    control.set_images_used(first, limit - 1)
    contract.expect(contract.post_ocr(first, parts=image()), 200)
    reply = contract.post_ocr(second, parts=image())
    contract.expect(reply, 429, error=monthly_limit_message(limit, limit))


@pytest.mark.clause("quota.month-reset")
@pytest.mark.usefixtures("frozen_clock")
def test_quota_resets_at_the_utc_month_boundary(contract: Contract) -> None:
    """Used up on the last second of a month (UTC), available again on the first of the next."""
    control = contract.control
    control.set_clock(MONTH_END)
    account = contract.account(LIMITED[0])
    limit = limit_of(account)
    control.set_images_used(account, limit)
    reply = contract.post_ocr(account, parts=image())
    contract.expect(reply, 429, error=monthly_limit_message(limit, limit))
    control.set_clock(MONTH_START)
    contract.expect(contract.post_ocr(account, parts=image()), 200)
    if control.images_used(account) != 1:
        contract.fail(
            None,
            f"usage: expected 1 image in the new month, the mock counted "
            f"{control.images_used(account)}",
        )


@pytest.mark.clause("quota.month-utc", level="observed")
@pytest.mark.usefixtures("frozen_clock")
def test_months_are_utc_months(contract: Contract) -> None:
    """00:30 on the 1st at UTC+1 is still the previous month in UTC."""
    control = contract.control
    # Use the month up in its middle: at MONTH_END a server on UTC+1 would already be in the
    # next month, and would pass by storing the usage there.
    control.set_clock(MID_MONTH)
    account = contract.account(LIMITED[0])
    limit = limit_of(account)
    control.set_images_used(account, limit)
    control.set_clock("2031-02-01T00:30:00+01:00")
    reply = contract.post_ocr(account, parts=image())
    contract.expect(reply, 429, error=monthly_limit_message(limit, limit))


@pytest.mark.clause("quota.unlimited")
@pytest.mark.parametrize("plan", UNLIMITED)
def test_unlimited_plan(contract: Contract, plan: str) -> None:
    """A plan without a monthly limit is never refused for its usage."""
    control = contract.control
    account = contract.account(plan)
    control.set_images_used(account, 1_000_000)
    contract.expect(contract.post_ocr(account, parts=image()), 200)


@pytest.mark.clause("quota.error-message", level="observed")
def test_limit_message_shows_the_stored_usage(contract: Contract) -> None:
    """The 429 message shows the stored count, even above the limit (a plan downgrade)."""
    control = contract.control
    account = contract.account(LIMITED[0])
    limit = limit_of(account)
    control.set_images_used(account, limit + 5)
    reply = contract.post_ocr(account, parts=image())
    contract.expect(reply, 429, error=monthly_limit_message(limit + 5, limit), checks=QUOTA_CHECKS)
