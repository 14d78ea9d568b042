"""The contract suite's budget: what a run may spend of the user's token (no server needed)."""

from __future__ import annotations

import pytest

from contract_tests.budget import Budget, limit_reached, race_left


def test_the_monthly_limit_message_is_read() -> None:
    message = "Monthly limit reached. You have used 10 of 10 images this month."
    assert limit_reached(message) == (10, 10)
    assert limit_reached("Too many requests") is None
    assert limit_reached(None) is None


def test_a_free_token_keeps_its_last_image_unless_a_clause_means_to_use_it_up() -> None:
    budget = Budget(limit=10, quota=10, keep=1)
    budget.reserve(9, "clause a")
    with pytest.raises(pytest.skip.Exception, match="at most 9 of a fresh token's 10"):
        budget.reserve(1, "clause b")
    budget.reserve(1, "clause c", exhausting=True)
    assert budget.committed == 10


def test_the_budget_caps_even_the_clauses_that_use_the_quota_up() -> None:
    budget = Budget(limit=12, quota=10, keep=1)
    budget.reserve(9, "clause a")
    with pytest.raises(pytest.skip.Exception, match="3 of --itsocr-budget 12 left"):
        budget.reserve(4, "clause b", exhausting=True)


def test_once_used_up_only_the_clauses_meant_for_the_limit_reserve() -> None:
    budget = Budget(limit=20, quota=10)
    assert budget.note_used_up(10, 10) is True
    assert budget.note_used_up(10, 10) is False
    with pytest.raises(pytest.skip.Exception, match="monthly quota is used up: 10 of 10"):
        budget.reserve(1, "clause a")
    budget.reserve(1, "clause b", exhausting=True)
    assert budget.images_left() == 0


def test_unsent_reservations_are_given_back() -> None:
    budget = Budget(limit=10, quota=10)
    budget.reserve(4, "clause a")
    budget.release(3)
    assert budget.committed == 1


@pytest.mark.parametrize(("burst", "left"), [(2, 1), (3, 2), (8, 3), (16, 3)])
def test_a_burst_always_races_for_fewer_images_than_it_sends(burst: int, left: int) -> None:
    assert race_left(burst) == left
