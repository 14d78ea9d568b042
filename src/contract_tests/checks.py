"""The suite's checks: small named functions ``(reply, expected) -> None`` (after Schemathesis).

Each raises an AssertionError saying what was received and what the contract expected;
`verify` runs a list of them on one reply and raises a single `Violation` naming the clause with
every problem found, so one failure message tells the whole story.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import requests

from contract_tests.clauses import Violation
from contract_tests.target import Account


@dataclass
class Reply:
    """A response together with what was sent and how it stands against the spec."""

    request: str  # the request in one line, for failure messages
    response: requests.Response
    problems: list[str]  # ways the response breaks openapi.yaml at the run's level
    account: Account | None = None  # whose token was sent, when it was a real one
    checked: bool = False  # a check has looked at it (else the test's teardown validates it)

    @property
    def status(self) -> int:
        """The status code."""
        return self.response.status_code

    @property
    def headers(self) -> Mapping[str, str]:
        """The headers (case-insensitive)."""
        return self.response.headers

    def json(self) -> Any:
        """The body as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.response.content)
        except ValueError:
            return None

    def received(self) -> str:
        """The response in one line: status, Content-Type and a preview of the body."""
        kind = self.headers.get("Content-Type", "no Content-Type")
        return f"{self.status} {kind} {preview(self.response.content)}"


@dataclass(frozen=True)
class Expectation:
    """What the contract expects of one reply, under which clause and at which level."""

    clause: str
    observed: bool  # check observed-level details (exact messages, headers)
    statuses: tuple[int, ...]
    errors: tuple[str, ...] = ()  # the allowed `error` messages (observed level); () = any
    fields: Mapping[str, object] = field(default_factory=dict)  # fields of a 200 body


Check = Callable[[Reply, Expectation], None]


def status_code(reply: Reply, expected: Expectation) -> None:
    """The status is the one the contract expects."""
    if reply.status not in expected.statuses:
        wanted = " or ".join(map(str, expected.statuses))
        raise AssertionError(f"status: expected {wanted}, received {reply.status}")


def conforms_to_spec(reply: Reply, expected: Expectation) -> None:
    """Status, Content-Type, headers and body match openapi.yaml."""
    if reply.problems:
        raise AssertionError("response does not match openapi.yaml: " + "; ".join(reply.problems))


def error_message(reply: Reply, expected: Expectation) -> None:
    """At the observed level, the `error` message is exactly the live service's."""
    if not expected.observed or not expected.errors or reply.status not in expected.statuses:
        return
    body = reply.json()
    received = body.get("error") if isinstance(body, dict) else None
    if received not in expected.errors:
        wanted = " or ".join(map(repr, expected.errors))
        raise AssertionError(f"error: expected {wanted}, received {received!r}")


def success_fields(reply: Reply, expected: Expectation) -> None:
    """The fields of a 200 body (fileName, fileSize, mimeType...) are the ones expected."""
    if not expected.fields or reply.status != 200:
        return
    body = reply.json()
    if not isinstance(body, dict):
        return  # conforms_to_spec reports it
    wrong = [
        f"{name}: expected {wanted!r}, received {body.get(name, '<missing>')!r}"
        for name, wanted in expected.fields.items()
        if body.get(name) != wanted
    ]
    if wrong:
        raise AssertionError("; ".join(wrong))


def no_rate_limit_headers(reply: Reply, expected: Expectation) -> None:
    """At the observed level, a 429 carries no Retry-After or rate-limit headers."""
    if not expected.observed:
        return
    sent = [
        name
        for name in reply.headers
        if name.lower() == "retry-after" or name.lower().startswith(("x-ratelimit", "ratelimit"))
    ]
    if sent:
        raise AssertionError(f"headers {', '.join(sent)}: the live service sends none")


DEFAULT_CHECKS: tuple[Check, ...] = (status_code, conforms_to_spec, error_message, success_fields)


def verify(reply: Reply, expected: Expectation, checks: Sequence[Check] = DEFAULT_CHECKS) -> None:
    """Run `checks` on `reply`; raise one Violation listing every problem found."""
    __tracebackhide__ = True  # the failure is the test's, not this function's
    reply.checked = True
    found = []
    for check in checks:
        try:
            check(reply, expected)
        except AssertionError as problem:
            found.append(str(problem))
    if found:
        raise Violation(
            expected.clause, reply.request, found, reply.received(), reply.response.request
        )


def preview(content: bytes, limit: int = 300) -> str:
    """A short, printable rendering of a body for failure messages."""
    text = content.decode("utf-8", "replace")
    return repr(text if len(text) <= limit else text[:limit] + "…")
