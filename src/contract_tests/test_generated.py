"""Schemathesis over `openapi.yaml`: generated requests, every response checked against the spec.

- Positive cases carry real images of every allowed type (Pillow strategies registered per
  media type), so a correct server answers each with a 200 -- a 400 is a finding.
- Negative cases (no file, not multipart, odd fields...) are judged by `contract_tests.oracle`
  from the bytes actually sent: the status and exact message the contract gives for them.
- Authorization is not generated (``with_security_parameters=False``): test_auth.py covers it.

Hypothesis runs derandomized, without an example database and without shrinking, with
``--itsocr-examples`` examples; against a live service every case that could be billed comes
out of the budget, and negative cases that would reach OCR are not generated at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import requests
import schemathesis
from schemathesis import GenerationMode

from contract_tests import oracle
from contract_tests.checks import Expectation, verify
from contract_tests.harness import Contract, explore
from contract_tests.images import image_strategy
from contract_tests.target import Account
from mockserver import contract as spec
from mockserver.plans import Plan, plans
from mockserver.resources import data_path

# Kept by the request so that a failure can be traced in the target's logs.
TRACE_HEADER = "X-Schemathesis-TestCaseId"
OTHER_METHODS = [
    method.upper() for method in spec.load_spec()["paths"]["/ocr"] if method not in ("post",)
]


@contextmanager
def image_media_types() -> Iterator[None]:
    """Real-image strategies for the allowed types while the suite generates; Schemathesis's
    registries are process-wide, so what was there before is put back afterwards."""
    from schemathesis.core.media_types import MEDIA_TYPE_STRATEGIES
    from schemathesis.transport.asgi import ASGI_TRANSPORT
    from schemathesis.transport.requests import REQUESTS_TRANSPORT
    from schemathesis.transport.wsgi import WSGI_TRANSPORT

    transports: tuple[Any, ...] = (ASGI_TRANSPORT, REQUESTS_TRANSPORT, WSGI_TRANSPORT)
    # The serializer tables have no public way back: copy them whole, and restore them.
    strategies = dict(MEDIA_TYPE_STRATEGIES)
    serializers = [dict(transport._serializers) for transport in transports]
    for media_type in spec.allowed_media_types():
        schemathesis.openapi.media_type(media_type, image_strategy(media_type))
    try:
        yield
    finally:
        MEDIA_TYPE_STRATEGIES.clear()
        MEDIA_TYPE_STRATEGIES.update(strategies)
        for transport, saved in zip(transports, serializers, strict=True):
            transport._serializers.clear()
            transport._serializers.update(saved)


@pytest.fixture(scope="module")
def schema() -> Iterator[Any]:
    """`openapi.yaml` loaded by Schemathesis, with no generated security parameters."""
    with image_media_types():
        loaded = schemathesis.openapi.from_path(
            str(data_path("openapi.yaml")), config=schemathesis.Config()
        )
        loaded.config.generation.update(with_security_parameters=False)
        yield loaded


@dataclass(frozen=True)
class Wire:
    """A generated case as it goes on the wire."""

    prepared: requests.PreparedRequest
    content_type: str | None
    body: bytes


def to_wire(case: Any, base_url: str, headers: dict[str, str] | None = None) -> Wire:
    """Prepare `case` exactly as it will be sent, so that the oracle judges those bytes."""
    kwargs = case.as_transport_kwargs(base_url=base_url, headers=headers)
    prepared = requests.Request(
        kwargs["method"],
        kwargs["url"],
        headers=kwargs.get("headers"),
        params=kwargs.get("params"),
        files=kwargs.get("files"),
        data=kwargs.get("data"),
        json=kwargs.get("json"),
    ).prepare()
    body = prepared.body
    content = body.encode() if isinstance(body, str) else body if isinstance(body, bytes) else b""
    content_type = prepared.headers.get("Content-Type")
    return Wire(prepared, str(content_type) if content_type else None, content)


def send_case(contract: Contract, case: Any, account: Account | None, budgeted: bool) -> None:
    """Send one generated case, predict its answer from the wire and check the reply."""
    headers = {"Authorization": f"Bearer {account.token}"} if account else None
    wire = to_wire(case, contract.suite.target.api_url, headers)
    trace = str(wire.prepared.headers.get(TRACE_HEADER))
    what = f"{oracle.describe(wire.content_type, wire.body)}; {TRACE_HEADER}: {trace}"
    path = case.operation.path
    if account is None:  # the preflight and the refused methods: no body, no token
        reply = contract.send(wire.prepared, path, what)
        documented = tuple(int(code) for code in case.operation.definition.raw["responses"])
        verify(reply, Expectation(contract.clause, contract.observed, documented))
        return
    outcome = oracle.predict(wire.content_type, wire.body, plans()[account.plan])
    billable = budgeted and outcome.reaches_ocr
    reply = contract.send(wire.prepared, path, what, account=account, billable=billable)
    expected = Expectation(
        contract.clause, contract.observed, outcome.statuses, outcome.errors, outcome.fields
    )
    verify(reply, expected)


def _generation_account(contract: Contract) -> Account:
    # On a mock: an Enterprise account, unlimited and with the largest files; else the user's.
    return contract.account("enterprise" if contract.suite.target.is_mock else None)


@pytest.mark.clause("schema.fuzz-positive")
@pytest.mark.costly
def test_positive_cases(contract: Contract, schema: Any) -> None:
    """Generated valid uploads of every image type: a 200 matching the spec, echoing the file."""
    account = _generation_account(contract)
    examples = contract.suite.examples
    contract.reserve(account, examples + 1)  # Hypothesis replays a failing case once
    strategy = schema["/ocr"]["POST"].as_strategy(generation_mode=GenerationMode.POSITIVE)
    explore(strategy, examples, lambda case: send_case(contract, case, account, budgeted=True))


@pytest.mark.clause("schema.fuzz-negative")
def test_negative_cases(contract: Contract, schema: Any) -> None:
    """Generated invalid requests: the 400 (and message) the contract gives for what was sent."""
    account = _generation_account(contract)
    strategy = schema["/ocr"]["POST"].as_strategy(generation_mode=GenerationMode.NEGATIVE)
    if account.is_users:
        # Against a live service, only cases that cannot reach OCR, hence cannot be billed.
        plan = plans()[account.plan]
        strategy = strategy.filter(lambda case: not _reaches_ocr(case, plan, contract))
    explore(
        strategy,
        contract.suite.examples,
        lambda case: send_case(contract, case, account, budgeted=False),
    )


def _reaches_ocr(case: Any, plan: Plan, contract: Contract) -> bool:
    wire = to_wire(case, contract.suite.target.api_url)
    return oracle.predict(wire.content_type, wire.body, plan).reaches_ocr


@pytest.mark.clause("schema.fuzz-methods", level="observed")
@pytest.mark.parametrize("method", OTHER_METHODS)
def test_other_operations(contract: Contract, schema: Any, method: str) -> None:
    """The preflight and the refused methods, generated: the documented status and shape."""
    strategy = schema["/ocr"][method].as_strategy(generation_mode=GenerationMode.POSITIVE)
    explore(
        strategy,
        contract.suite.examples,
        lambda case: send_case(contract, case, None, budgeted=False),
    )
