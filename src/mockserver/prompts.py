"""Which prompt variant of a fixture a request's prompt selects: one rule for every fixture,
from a directory (`fixtures.py`) or added at run time (the stores)."""

from __future__ import annotations

from collections.abc import Iterable


def matching_prompt(prompt: str, variants: Iterable[str]) -> str | None:
    """The variant `prompt` matches: the one equal to it or, failing that, the first equal to it
    ignoring case and runs of whitespace; None for no prompt or no match.

    The one rule for every fixture, from a directory or added at run time.
    """
    if not prompt:
        return None
    candidates = [variant for variant in variants if variant]
    if prompt in candidates:
        return prompt
    wanted = _normalise(prompt)
    return next((variant for variant in candidates if _normalise(variant) == wanted), None)


def _normalise(prompt: str) -> str:
    return " ".join(prompt.split()).casefold()
