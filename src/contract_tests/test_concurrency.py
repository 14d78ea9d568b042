"""The quota under concurrency: N simultaneous requests at the edge get exactly what is left.

A server that checks the quota and increments it later, non-atomically (as the live service
does), answers more 200s than the quota allows. On a mock the account is put a few images
below its limit and each OCR call is slowed down by a fault rule, so that all the requests are
in flight together; against other targets the clause runs only with ``--itsocr-concurrency N``
(and ``--itsocr-allow-exhaust``), and judges by the usage the 429 message reports afterwards.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from contract_tests import spec
from contract_tests.checks import Reply
from contract_tests.harness import Contract, upload
from contract_tests.images import make_image
from contract_tests.target import Account

LEFT = 3  # images left on the account when the burst starts (on a mock)
OCR_DELAY_MS = 250  # a slow OCR call keeps every request between its check and its count
LIMITED = next(name for name, plan in spec.plans().items() if plan.images_per_month is not None)


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
@pytest.mark.exhausts
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
    limit = spec.plans()[LIMITED].images_per_month or 0
    left = min(LEFT, count - 1)
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
    """Fire the burst, then read the stored usage from the next 429: it must not exceed the
    limit, and the burst must not have got more 200s than there were images left."""
    account = contract.account()
    contract.allow_exhaust(account)
    limit = spec.plans()[account.plan].images_per_month
    if limit is None:
        pytest.skip(f"the {account.plan} plan has no monthly limit to race for")
    contract.reserve(account, count)
    replies = burst(contract, account, count)
    for reply in replies:
        contract.expect(reply, (200, 429))
    after = contract.post_ocr(account, parts=upload(make_image("image/png"), "image/png"))
    if after.status != 429:
        after.checked = True
        pytest.skip(
            f"a burst of {count} did not reach the quota edge (the account had more "
            "images left): raise --itsocr-concurrency"
        )
    contract.expect(after, 429)
    used = re.search(r"used (\d+) of (\d+)", str((after.json() or {}).get("error", "")))
    if used and int(used.group(1)) > int(used.group(2)):
        successes = sum(reply.status == 200 for reply in replies)
        contract.fail(
            after,
            f"{successes} of {count} simultaneous requests got a 200 and the "
            f"account now has {used.group(1)} of {used.group(2)} images: the "
            "quota was overshot (check and increment are not atomic)",
        )
