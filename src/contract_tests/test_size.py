"""File size limits: per plan at exactly N MiB and N MiB + 1, and the global ceiling.

A rejected upload costs no quota, so the N MiB + 1 checks are cheap against a live service (only
bandwidth); the inclusive check at exactly N MiB is a billable 200.
"""

from __future__ import annotations

import pytest

from contract_tests.forms import upload
from contract_tests.harness import Contract
from contract_tests.images import padded_png
from contract_tests.target import Account
from mockserver import contract as spec
from mockserver.contract import example_message, plan_too_large_message, unsupported_type_message
from mockserver.plans import plans

TOO_LARGE = example_message(400, "fileTooLarge")
PLANS = list(plans())


@pytest.mark.clause("size.plan-limit")
@pytest.mark.parametrize("plan", PLANS)
def test_over_the_plan_limit(contract: Contract, plan: str) -> None:
    """One byte over the plan's maximum: 400, and no quota spent."""
    limits = plans()[plan]
    account = contract.account(plan)
    size = limits.max_file_size + 1
    reply = contract.post_ocr(account, parts=upload(padded_png(size), "image/png"))
    # Over the global ceiling too (Enterprise), the ceiling's message comes first.
    message = (
        TOO_LARGE
        if size > spec.max_file_size()
        else plan_too_large_message(limits.max_file_size_mb)
    )
    contract.expect(reply, 400, error=message)


@pytest.mark.clause("size.plan-inclusive", level="observed")
@pytest.mark.parametrize("plan", PLANS)
def test_exactly_the_plan_limit(contract: Contract, plan: str) -> None:
    """Exactly the plan's maximum (N MiB) is accepted: limits are inclusive."""
    limits = plans()[plan]
    account = contract.account(plan)
    contract.reserve(account, 1)
    image = padded_png(limits.max_file_size)
    reply = contract.post_ocr(account, parts=upload(image, "image/png"), billable=True)
    contract.expect(reply, 200, fileSize=limits.max_file_size)


@pytest.mark.clause("size.global-ceiling", level="observed")
def test_global_ceiling_comes_before_the_plan(contract: Contract) -> None:
    """Over 50 MiB, on any plan: the global ceiling's message, not the plan's."""
    account = _any_plan(contract)
    image = padded_png(spec.max_file_size() + 1)
    reply = contract.post_ocr(account, parts=upload(image, "image/png"))
    contract.expect(reply, 400, error=TOO_LARGE)


@pytest.mark.clause("size.after-type", level="observed")
def test_type_is_checked_before_size(contract: Contract) -> None:
    """An oversized file of a refused type: Unsupported file type, not too large."""
    account = _any_plan(contract)
    size = min(plans()[account.plan].max_file_size, spec.max_file_size()) + 1
    reply = contract.post_ocr(account, parts=upload(padded_png(size), "application/pdf", "a.pdf"))
    contract.expect(reply, 400, error=unsupported_type_message("application/pdf"))


def _any_plan(contract: Contract) -> Account:
    # On a mock, the smallest plan (where the plan's own limit would answer first); against
    # anything else, the token's plan, whichever it is: the rule holds on every plan.
    return contract.account(PLANS[0] if contract.suite.target.is_mock else None)
