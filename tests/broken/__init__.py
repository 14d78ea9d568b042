"""Broken implementations of the itsOCR API, for the contract suite's self-test.

Each `Defect` is the faithful mock with exactly one thing done wrong -- a backend rule
(`broken.backends`) or an HTTP detail (`broken.middleware`) -- served on a free loopback port
with the mock's control API intact, together with the contract clauses that must catch it.
`FAITHFUL` is the mock itself, served the same way: the suite must pass against it.

    with DEFECTS["quota-off-by-one"].build() as server:
        ...  # pytest --pyargs contract_tests --base-url {server.base_url}
"""

from __future__ import annotations

from broken.catalogue import DEFECTS, FAITHFUL, LIVE_RACE, Defect, backend_defect, http_defect
from broken.server import Served

__all__ = ["DEFECTS", "FAITHFUL", "LIVE_RACE", "Defect", "Served", "backend_defect", "http_defect"]
