"""The quota under concurrency: N simultaneous requests at the edge get exactly what is left.

A server that checks the quota and increments it later, non-atomically (as the live service
does), answers more 200s than the quota allows. On a mock the account is put a few images
below its limit and each OCR call is slowed down by a fault rule, so that all the requests are
in flight together, and the stored usage must end exactly at the limit.

Against other targets the clause runs only with ``--itsocr-concurrency N`` and
``--itsocr-allow-exhaust``, and judges by what the client saw, not by a counter the server may
cap: it spends the token sequentially until `RACE_LEFT` images are left (counted from a fresh
token), fires the burst, and counts every 200 the token received during the whole run. More
200s than the plan's monthly limit prove an overshoot. From a fresh token this needs a budget
of the limit + N (``--itsocr-budget``).
"""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from contract_tests.budget import limit_reached, race_left, utc_month
from contract_tests.checks import Reply
from contract_tests.forms import Part, upload
from contract_tests.harness import Contract
from contract_tests.images import make_image
from contract_tests.target import Account
from mockserver.plans import plans

OCR_DELAY_MS = 250  # a slow OCR call keeps every request between its check and its count
LIMITED = next(name for name, plan in plans().items() if plan.images_per_month is not None)


def burst(contract: Contract, account: Account, count: int) -> list[Reply]:
    """`count` uploads sent at the same moment, one connection each."""
    start = threading.Barrier(count)

    def send(number: int) -> Reply:
        parts = upload(make_image("image/png", text=f"burst {number}"), "image/png")
        with requests.Session() as session:
            start.wait()
            return contract.post_ocr(account, parts=parts, billable=True, session=session)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(send, range(count)))


@pytest.mark.clause("quota.concurrency")
@pytest.mark.exhausts(order=0)  # before quota.exact-limit uses the rest up: it needs images left
def test_simultaneous_requests_at_the_quota_edge(contract: Contract) -> None:
    """N simultaneous requests with k images left: exactly k 200s, the rest 429."""
    count = contract.suite.concurrency
    if count < 2:
        pytest.skip(
            "off against targets without a control API: pass --itsocr-concurrency N "
            "(N >= 2, with --itsocr-allow-exhaust)"
        )
    if contract.suite.target.control is None:
        _live_burst(contract, count)
        return
    account = contract.account(LIMITED)
    limit = plans()[LIMITED].images_per_month or 0
    left = race_left(count)
    contract.control.set_images_used(account, limit - left)
    contract.control.add_fault(account, delay_ms=OCR_DELAY_MS, times=count)
    replies = burst(contract, account, count)
    statuses = Counter(reply.status for reply in replies)
    for reply in replies:
        contract.expect(reply, (200, 429))
    used = contract.control.images_used(account)
    if statuses[200] != left or used != limit:
        contract.fail(
            None,
            f"{count} simultaneous requests with {left} image(s) left: expected "
            f"{left} x 200 and usage {limit}, received {dict(statuses)} and "
            f"usage {used}",
        )


def _live_burst(contract: Contract, count: int) -> None:
    """Spend the token down to a few images left, fire the burst, and count the 200s."""
    account = contract.account()
    contract.allow_exhaust(account)
    limit = plans()[account.plan].images_per_month
    if limit is None:
        pytest.skip(f"the {account.plan} plan has no monthly limit to race for")
    budget = contract.suite.budget
    fill = max(limit - race_left(count) - budget.spent, 0) if budget.used_up is None else 0
    if budget.left is not None and budget.left < fill + count:
        pytest.skip(
            f"the race needs {fill + count} billable requests ({fill} to spend the token down "
            f"to {race_left(count)} images left, {count} at once), {budget.left} left: from a "
            f"fresh token pass --itsocr-budget {limit + count} (the limit + the burst)"
        )
    contract.reserve(account, fill + count)
    for number in range(fill):
        reply = contract.post_ocr(account, parts=_image(f"fill {number}"), billable=True)
        if reply.status == 429:
            break  # the token was not fresh: the burst will tell what it can
        contract.expect(reply, 200)
    before = budget.spent
    replies = burst(contract, account, count)
    for reply in replies:
        contract.expect(reply, (200, 429))
    won = sum(reply.status == 200 for reply in replies)
    after = contract.post_ocr(account, parts=_image("after the burst"))
    contract.expect(after, (200, 429))
    if budget.month != utc_month():
        pytest.skip(
            f"the run began in {budget.month} UTC and the quota's month has changed since: "
            "its 200s cannot be held against one month's limit"
        )
    if budget.spent > limit:
        contract.fail(
            after,
            f"the token received {budget.spent} x 200 during this run ({before} before the "
            f"burst, {won} of {count} simultaneous requests{_and_after(after)}), but the "
            f"{account.plan} plan allows {limit} images a month: {budget.spent - limit} "
            f"image(s) were processed beyond the quota{_stored(after, limit)}",
        )
    _judge_stored_usage(contract, after, won, count)
    if won == count:
        pytest.skip(f"a burst of {count} did not reach the quota edge: raise --itsocr-concurrency")
    if won == 0:
        pytest.skip(
            "the token had no images left when the burst started: it had used some before "
            "this run; the race needs a fresh token (or one the run can spend down)"
        )


def _image(text: str) -> list[Part]:
    return upload(make_image("image/png", text=text), "image/png")


def _and_after(after: Reply) -> str:
    return ", and the request after them" if after.status == 200 else ""


def _stored(after: Reply, limit: int) -> str:
    used = _used(after)
    if used is None:
        return ""
    note = " (the stored count is capped)" if used[0] <= limit else ""
    return f"; the next 429 says 'used {used[0]} of {used[1]}'{note}"


def _used(reply: Reply) -> tuple[int, int] | None:
    body = reply.json()
    return limit_reached(body.get("error") if isinstance(body, dict) else None)


def _judge_stored_usage(contract: Contract, after: Reply, won: int, count: int) -> None:
    """The usage the 429 reports must not exceed the limit either."""
    used = _used(after) if after.status == 429 else None
    if used and used[0] > used[1]:
        contract.fail(
            after,
            f"{won} of {count} simultaneous requests got a 200 and the account now has "
            f"{used[0]} of {used[1]} images: the quota was overshot (check and increment "
            "are not atomic)",
        )
