"""What a clause's test works with: `Suite` (the session) and `Contract` (one test's view of it).

A test asks `contract` for an account, sends requests with `post_ocr`/`request` and states what
the contract expects with `expect`. Every reply is validated against openapi.yaml -- by `expect`,
or at the end of the test for replies no check looked at -- and every failure names the test's
clause. Requests with the user's token go through the budget (see `contract_tests.budget`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import hypothesis
import pytest
import requests
from hypothesis import HealthCheck, Phase, Verbosity
from hypothesis import strategies as st

from contract_tests import budget as quota
from contract_tests.budget import Budget
from contract_tests.checks import (
    DEFAULT_CHECKS,
    Check,
    Expectation,
    Reply,
    no_rate_limit_headers,
    verify,
)
from contract_tests.clauses import Ledger, Violation, mask
from contract_tests.forms import MULTIPART, Part, multipart
from contract_tests.plugin import SuiteOptions
from contract_tests.target import Account, ControlApi, Target
from mockserver import contract as spec
from mockserver.validation import Level, find_violations

TIMEOUT = 120.0  # seconds; 50 MiB uploads to a remote service take a while
_UNSET: Any = object()


@dataclass
class Suite:
    """The session: options, target, HTTP, budget, clause results and request counts."""

    options: SuiteOptions
    target: Target
    session: requests.Session
    budget: Budget
    observed: bool  # the run's level is observed
    ledger: Ledger = field(default_factory=Ledger)
    requests_sent: int = 0
    fidelity: list[tuple[str, float]] = field(default_factory=list)  # (fixture, CER)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def level(self) -> Level:
        """documented or observed."""
        return "observed" if self.observed else "documented"

    @property
    def examples(self) -> int:
        """Hypothesis examples per generated clause."""
        if self.options.itsocr_examples is not None:
            return self.options.itsocr_examples
        return 20 if self.target.is_mock else 3

    @property
    def concurrency(self) -> int:
        """Simultaneous requests of the concurrency clause (0 = off)."""
        if self.options.itsocr_concurrency is not None:
            return self.options.itsocr_concurrency
        return 16 if self.target.is_mock else 0

    def count(self) -> None:
        """Count one request sent to the API (control API requests are not counted)."""
        with self._lock:
            self.requests_sent += 1


class Contract:
    """One test's view of the suite, bound to the test's clause."""

    def __init__(self, suite: Suite, clause: str) -> None:
        self.suite = suite
        self.clause = clause
        self.replies: list[Reply] = []
        self.meets_the_limit = False  # the test means to reach the token's monthly limit
        self._reserved = 0
        self._lock = threading.Lock()

    # -- state --------------------------------------------------------------------------------

    @property
    def observed(self) -> bool:
        """True when the run checks observed-level details."""
        return self.suite.observed

    @property
    def control(self) -> ControlApi:
        """The control API; skips the test when the target has none."""
        return self.control_or(None)

    def control_or(self, option: str | None) -> ControlApi:
        """The control API, or a skip naming `option`, the other way to unlock the clause."""
        control = self.suite.target.control
        if control is None:
            other = f"pass {option}, or " if option else ""
            pytest.skip(
                f"needs a mock's control API to set the state: {other}point --base-url "
                f"at a mock ({self.suite.target.control_note})"
            )
        return control

    def account(self, plan: str | None = None) -> Account:
        """An account to send requests for: a fresh one on a mock, else the user's token."""
        target, options = self.suite.target, self.suite.options
        if target.control is not None:
            return target.control.create_account(plan or "free")
        if not options.itsocr_token:
            pytest.skip("needs an API token: pass --itsocr-token (or set ITSOCR_TOKEN)")
        if plan is not None and plan != options.itsocr_plan:
            pytest.skip(
                f"needs a token on the {plan} plan; --itsocr-plan is {options.itsocr_plan} "
                f"(pass --itsocr-token of an account on the {plan} plan with --itsocr-plan {plan})"
            )
        return Account(options.itsocr_token, options.itsocr_plan)

    def reserve(self, account: Account, count: int) -> None:
        """Reserve `count` billable requests for `account`, or skip (see contract_tests.budget)."""
        if account.is_users:
            what = f"clause {self.clause}"
            self.suite.budget.reserve(count, what, exhausting=self.meets_the_limit)
            with self._lock:
                self._reserved += count

    def allow_exhaust(self, account: Account) -> None:
        """Skip unless the test may use up `account`'s monthly quota; from here on its 429s
        ``Monthly limit reached`` are the test's to judge."""
        if account.is_users and not self.suite.options.itsocr_allow_exhaust:
            pytest.skip("uses up the token's monthly quota: pass --itsocr-allow-exhaust")
        self.meets_the_limit = True

    # -- requests -----------------------------------------------------------------------------

    def post_ocr(
        self,
        account: Account | None = None,
        *,
        authorization: str | None = _UNSET,
        parts: Sequence[Part] | None = None,
        data: bytes | None = None,
        content_type: str | None = None,
        billable: bool = False,
        path: str = "/ocr",
        session: requests.Session | None = None,
    ) -> Reply:
        """POST to the OCR endpoint as `account` (or with exactly `authorization`).

        The body is `parts` (hand-built multipart) or `data` with `content_type`. `billable`
        marks a well-formed upload meant to reach OCR; it must have been reserved first.
        """
        if authorization is _UNSET:
            authorization = f"Bearer {account.token}" if account else None
        headers = {"Authorization": authorization} if authorization is not None else {}
        if parts is not None:
            data, content_type = multipart(parts), MULTIPART
        if content_type is not None:
            headers["Content-Type"] = content_type
        prepared = requests.Request(
            "POST", self.suite.target.api_url + path, headers=headers, data=data or b""
        ).prepare()
        what = _describe_auth(authorization) + "; " + _describe_body(parts, data, content_type)
        return self.send(prepared, path, what, account=account, billable=billable, session=session)

    def request(
        self,
        method: str,
        path: str = "/ocr",
        *,
        headers: dict[str, str] | None = None,
        what: str = "",
    ) -> Reply:
        """Send a bodiless `method` request to `path` under the API base."""
        prepared = requests.Request(
            method, self.suite.target.api_url + path, headers=headers
        ).prepare()
        return self.send(prepared, path, what)

    def send(
        self,
        prepared: requests.PreparedRequest,
        path: str,
        what: str,
        *,
        account: Account | None = None,
        billable: bool = False,
        session: requests.Session | None = None,
    ) -> Reply:
        """Send a prepared request for spec path `path` (``/ocr``), through the budget when it
        carries the user's token; the reply is validated against the spec."""
        users = account is not None and account.is_users
        charged = users and _authenticates(prepared, account)
        if users:
            self._before_users_request(billable, charged)
        response = (session or self.suite.session).send(
            prepared, timeout=TIMEOUT, allow_redirects=False
        )
        self.suite.count()
        if users:
            self.suite.budget.record(response.status_code, billable=billable)
        method, url = str(prepared.method), str(prepared.url)
        request_line = f"{method} {urlsplit(url).path}" + (f" ({what})" if what else "")
        reply = self.wrap(response, method, path, request_line, account)
        if charged:
            self._after_users_reply(reply)
        return reply

    def _before_users_request(self, billable: bool, charged: bool) -> None:
        budget = self.suite.budget
        if charged and budget.used_up is not None and not self.meets_the_limit:
            # It would be answered 429 before anything else is looked at: nothing to learn.
            pytest.skip(budget.used_up_reason)
        if not billable:
            self.suite.budget.require_headroom()
            return
        with self._lock:
            if self.suite.budget.limit is not None and self._reserved <= 0:
                raise RuntimeError(
                    f"clause {self.clause} sent a billable request it did not reserve"
                )
            self._reserved -= 1

    def _after_users_reply(self, reply: Reply) -> None:
        """A 429 ``Monthly limit reached`` on the user's token: the quota is used up, which no
        clause but those meant to reach the limit may be blamed for. The first such 429 is
        checked against the contract; then the test skips, as every later one that needs quota.
        """
        if reply.status != 429:
            return
        body = reply.json()
        found = quota.limit_reached(body.get("error") if isinstance(body, dict) else None)
        if found is None:
            return  # not the quota's 429: the clause judges it
        budget = self.suite.budget
        first = budget.note_used_up(*found)
        if self.meets_the_limit:
            return
        reply.checked = True
        if first:
            used, limit = found
            messages = (spec.monthly_limit_message(used, budget.quota or limit),)
            checks = (*DEFAULT_CHECKS, no_rate_limit_headers)
            verify(reply, Expectation(self.clause, self.observed, (429,), messages), checks)
        pytest.skip(budget.used_up_reason)

    def release(self) -> None:
        """Give back the budget this test reserved and did not send (at its end)."""
        with self._lock:
            unsent, self._reserved = self._reserved, 0
        if unsent > 0 and self.suite.budget.limit is not None:
            self.suite.budget.release(unsent)

    def wrap(
        self,
        response: requests.Response,
        method: str,
        path: str,
        request_line: str,
        account: Account | None = None,
    ) -> Reply:
        """A Reply for a response to ``method path`` (a spec path such as ``/ocr``)."""
        found = []
        if method.lower() in spec.load_spec()["paths"].get(path, {}):
            operation = (method.lower(), path)
            level = self.suite.level
            found = [str(v) for v in find_violations(response, operation=operation, level=level)]
        reply = Reply(mask(request_line), response, found, account)
        with self._lock:
            self.replies.append(reply)
        return reply

    # -- expectations -------------------------------------------------------------------------

    def expect(
        self,
        reply: Reply,
        status: int | tuple[int, ...],
        *,
        error: str | tuple[str, ...] | None = None,
        checks: Sequence[Check] = DEFAULT_CHECKS,
        **fields: object,
    ) -> Any:
        """Assert that `reply` is what the contract expects; return its JSON body.

        `error` is the exact message, or the messages allowed (compared at the observed level);
        `fields` are fields of a 200 body. (A 429 because the user's token has used its quota
        up never gets here: `send` skips the test, see `_after_users_reply`.)
        """
        __tracebackhide__ = True
        statuses = status if isinstance(status, tuple) else (status,)
        errors = (error,) if isinstance(error, str) else tuple(error or ())
        expected = Expectation(self.clause, self.observed, statuses, errors, fields)
        verify(reply, expected, checks)
        return reply.json()

    def fail(self, reply: Reply | None, *problems: str) -> None:
        """Fail the clause with `problems` about `reply` (or about the test's replies)."""
        __tracebackhide__ = True
        request = reply.request if reply else "(see the requests above)"
        received = reply.received() if reply else "-"
        raise Violation(
            self.clause, request, problems, received, reply.response.request if reply else None
        )

    def finish(self) -> None:
        """At the end of the test: replies no check looked at must still match the spec."""
        for reply in self.replies:
            if not reply.checked and reply.problems:
                raise Violation(
                    self.clause,
                    reply.request,
                    ["response does not match openapi.yaml: " + "; ".join(reply.problems)],
                    reply.received(),
                    reply.response.request,
                )


def _authenticates(prepared: requests.PreparedRequest, account: Account | None) -> bool:
    """True when the request carries `account`'s token the way the service accepts it
    (``Bearer`` in any case, one space): past authentication, the quota is checked."""
    if account is None:
        return False
    scheme, _, token = str(prepared.headers.get("Authorization", "")).partition(" ")
    return scheme.lower() == "bearer" and token == account.token


def _describe_auth(authorization: str | None) -> str:
    if authorization is None:
        return "no Authorization header"
    return f"Authorization: {authorization!r}"


def _describe_body(
    parts: Sequence[Part] | None, data: bytes | None, content_type: str | None
) -> str:
    if parts is not None:
        return "multipart: " + (", ".join(part.describe() for part in parts) or "no parts")
    kind = content_type or "no Content-Type"
    return f"body {kind}, {len(data or b'')} bytes"


def explore(strategy: st.SearchStrategy[Any], examples: int, body: Callable[[Any], None]) -> None:
    """Run `body` on up to `examples` cases: derandomized, no database, no shrinking."""

    @hypothesis.settings(
        max_examples=examples,
        database=None,
        derandomize=True,
        deadline=None,
        phases=(Phase.generate,),
        report_multiple_bugs=False,
        suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.quiet,
    )
    @hypothesis.given(case=strategy)
    def run(case: Any) -> None:
        body(case)

    run()
