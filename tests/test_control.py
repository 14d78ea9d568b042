"""The control API, `/_mock`, over real HTTP: every endpoint, its errors, and its effect on the API.

State is put in place through `MockControl` (so the client is tested too) or raw `requests`
where the exact status and body of a mistake matter; its effect is then observed on
``POST /api/v1/ocr`` with real multipart uploads, validated against openapi.yaml.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from mockserver import __version__, errors
from mockserver.app import create_app
from mockserver.backend import DEMO_ACCOUNTS, MAX_ACTIVE_TOKENS, OVERRIDE_STATUSES
from mockserver.client import ControlApiError, MockControl
from mockserver.contract import load_spec
from mockserver.plans import plans
from mockserver.settings import Settings
from mockserver.testing import InProcessServer, ServerProcess
from mockserver.web import EXTENSION_KEY

FREE, PRO, ENTERPRISE = DEMO_ACCOUNTS
REPO = Path(__file__).resolve().parent.parent
CONTROL_SPEC = load_spec("openapi-control.yaml")
OCR_FAILED = errors.OcrFailed.message

Post = Callable[..., requests.Response]
CheckError = Callable[..., None]


@pytest.fixture
def control(mock_server: InProcessServer) -> Iterator[MockControl]:
    """The control API client of the session's mock (reset before the test)."""
    with MockControl(mock_server.url) as client:
        yield client


@pytest.fixture
def url(mock_server: InProcessServer) -> str:
    """The control API's base URL."""
    return mock_server.url + "/_mock"


@pytest.fixture
def png(make_image: Callable[..., bytes]) -> bytes:
    return make_image("image/png")


@pytest.fixture
def ocr(post_ocr: Post, png: bytes) -> Callable[..., requests.Response]:
    """``ocr(token=<free demo>, **requests_kwargs)``: POST a real PNG to /api/v1/ocr."""

    def send(token: str | None = FREE.token, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("files", {"file": ("scan.png", png, "image/png")})
        return post_ocr(token=token, **kwargs)

    return send


def refused(response: requests.Response, status: int, error: str) -> None:
    """The control API's error answer: that status, JSON ``{"error": ...}`` containing `error`."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert list(body) == ["error"]
    assert error in body["error"], body["error"]


# -- health and reset ----------------------------------------------------------------------------


def test_health(control: MockControl) -> None:
    health = control.health()
    assert health["status"] == "ok"
    assert health["version"] == __version__
    assert health["state"] == ":memory:"
    assert health["clock"]["frozen"] is False
    assert health["plans"] == {
        plan.name: {
            "title": plan.title,
            "imagesPerMonth": plan.images_per_month,
            "maxFileSizeBytes": plan.max_file_size,
        }
        for plan in plans().values()
    }
    demos = [(demo.id, demo.plan, demo.token) for demo in DEMO_ACCOUNTS]
    assert [(a["id"], a["plan"], a["token"]) for a in health["demoAccounts"]] == demos
    assert health["control"] is True
    assert list(_schema_errors("Health", health)) == []


def test_reset_restores_a_fresh_state(
    control: MockControl, ocr: Callable[..., requests.Response], png: bytes
) -> None:
    account = control.create_account("pro")
    control.set_usage(FREE.id, 7)
    control.add_fault(500)
    control.add_fixture(png, "added")
    control.set_clock("2031-05-05T00:00:00Z")
    ocr(PRO.token)
    control.reset()
    assert [a["id"] for a in control.list_accounts()] == [demo.id for demo in DEMO_ACCOUNTS]
    assert [len(a["tokens"]) for a in control.list_accounts()] == [1, 1, 1]
    assert control.get_usage(FREE.id)["imagesUsed"] == 0
    assert control.list_faults() == []
    assert control.list_fixtures() == []
    assert control.get_clock()["frozen"] is False
    assert control.requests() == []
    with pytest.raises(ControlApiError) as gone:
        control.get_account(account["id"])
    assert gone.value.status == 404
    assert ocr(PRO.token).status_code == 200  # and the demo tokens answer


def test_reset_takes_no_fields(url: str) -> None:
    refused(requests.post(url + "/reset", json={"all": True}, timeout=10), 400, "'all'")


# -- accounts ------------------------------------------------------------------------------------


@pytest.mark.parametrize("plan", list(plans()))
def test_create_account_on_each_plan(
    control: MockControl, plan: str, ocr: Callable[..., requests.Response]
) -> None:
    created = control.create_account(plan)
    assert list(created) == ["id", "plan", "token", "tokenId"]
    assert created["plan"] == plan
    assert ocr(created["token"]).status_code == 200
    assert control.get_usage(created["id"])["limit"] == plans()[plan].images_per_month


def test_create_account_is_free_by_default(url: str) -> None:
    for body in ({"data": b""}, {"json": {}}):  # `curl -X POST .../accounts`: no body at all
        created = requests.post(url + "/accounts", **body, timeout=10)
        assert created.status_code == 201
        assert created.json()["plan"] == "free"


def test_accounts_never_show_a_whole_token(control: MockControl) -> None:
    created = control.create_account("pro")
    account = control.get_account(created["id"])
    assert account["id"] == created["id"]
    assert account["plan"] == "pro"
    [token] = account["tokens"]
    assert token["id"] == created["tokenId"]
    assert token["prefix"] == created["token"][:12]
    assert (token["expiresAt"], token["revokedAt"]) == (None, None)
    assert account["createdAt"].endswith("Z")
    listed = requests.get(control.url + "/accounts", timeout=10)
    assert created["token"] not in listed.text
    assert all(demo.token not in listed.text for demo in DEMO_ACCOUNTS)
    assert [a["id"] for a in listed.json()] == [*(d.id for d in DEMO_ACCOUNTS), created["id"]]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"plan": "gold"}, "unknown plan 'gold'; expected one of free, pro, enterprise"),
        ({"plan": "Free"}, "unknown plan 'Free'"),
        ({"plan": 1}, "plan must be a string, got an integer"),
        ({"plan": None}, "plan must not be null"),
        ({"plan": "pro", "quota": 3}, "unknown field 'quota'; expected plan"),
    ],
)
def test_create_account_refuses_bad_bodies(url: str, body: Any, error: str) -> None:
    refused(requests.post(url + "/accounts", json=body, timeout=10), 400, error)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b'{"plan": "pro"', "the body is not valid JSON"),
        (b"plan=pro", "the body is not valid JSON"),
        (b'["pro"]', "the body must be a JSON object, got an array"),
        (b'"pro"', "the body must be a JSON object, got a string"),
        (b"null", "the body must be a JSON object, got null"),
        (b"\xff\xfe", "the body is not valid JSON"),
        # Found by Schemathesis's fuzzer: blanks are not an empty body (only no bytes are).
        (b"\x0c", "the body is not valid JSON"),
        (b" \n", "the body is not valid JSON"),
        # json.loads would keep the last: which one was meant is a guess.
        (b'{"plan": "pro", "plan": "free"}', "field 'plan' was sent more than once; send it once"),
    ],
)
def test_bodies_that_are_not_json_objects(url: str, data: bytes, error: str) -> None:
    answer = requests.post(
        url + "/accounts", data=data, headers={"Content-Type": "application/json"}, timeout=10
    )
    refused(answer, 400, error)


@pytest.mark.parametrize(
    "content_type", ["application/x-www-form-urlencoded", "text/plain", "multipart/form-data", None]
)
def test_a_json_body_must_be_declared_json(url: str, content_type: str | None) -> None:
    # What a cross-site page can send without a preflight (curl -d sends the first).
    headers = {"Content-Type": content_type} if content_type else {}
    answer = requests.post(url + "/accounts", data=b'{"plan":"pro"}', headers=headers, timeout=10)
    refused(answer, 415, "send the body as application/json")
    declared = {"Content-Type": "application/json; charset=utf-8"}
    answer = requests.post(url + "/accounts", data=b'{"plan":"pro"}', headers=declared, timeout=10)
    assert answer.status_code == 201
    assert answer.json()["plan"] == "pro"


def test_change_plan(
    control: MockControl, ocr: Callable[..., requests.Response], assert_api_error: CheckError
) -> None:
    account = control.create_account("free")
    control.set_usage(account["id"], 10)
    assert_api_error(ocr(account["token"]), 429, errors.MonthlyLimitReached(10, 10).error)
    changed = control.change_plan(account["id"], "pro")
    assert (changed["id"], changed["plan"]) == (account["id"], "pro")
    assert control.get_usage(account["id"])["imagesUsed"] == 10  # the month's usage stays
    assert ocr(account["token"]).status_code == 200
    usage = control.get_usage(account["id"])
    assert (usage["imagesUsed"], usage["limit"]) == (11, 500)


def test_change_plan_errors(url: str) -> None:
    patch = requests.patch
    refused(patch(url + "/accounts/demo-free", json={"plan": "gold"}, timeout=10), 400, "gold")
    refused(patch(url + "/accounts/demo-free", json={}, timeout=10), 400, "missing field 'plan'")
    refused(patch(url + "/accounts/acct_nope", json={"plan": "pro"}, timeout=10), 404, "acct_nope")


def test_delete_account(
    control: MockControl, ocr: Callable[..., requests.Response], assert_api_error: CheckError
) -> None:
    account = control.create_account("pro")
    control.delete_account(account["id"])
    assert_api_error(ocr(account["token"]), 401, errors.UserNotFound.message)
    assert account["id"] not in [a["id"] for a in control.list_accounts()]
    with pytest.raises(ControlApiError) as again:
        control.delete_account(account["id"])
    assert (again.value.status, again.value.error) == (404, f"no account with id {account['id']!r}")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/accounts/acct_nope", None),
        ("PATCH", "/accounts/acct_nope", {"plan": "pro"}),
        ("DELETE", "/accounts/acct_nope", None),
        ("POST", "/accounts/acct_nope/tokens", {}),
        ("GET", "/accounts/acct_nope/usage", None),
        ("PUT", "/accounts/acct_nope/usage", {"imagesUsed": 1}),
    ],
)
def test_unknown_account_is_404(url: str, method: str, path: str, body: Any) -> None:
    answer = requests.request(method, url + path, json=body, timeout=10)
    refused(answer, 404, "no account with id 'acct_nope'")


# -- tokens --------------------------------------------------------------------------------------


def test_create_token(control: MockControl, ocr: Callable[..., requests.Response]) -> None:
    token = control.create_token(PRO.id, expires_at="2999-01-01T00:00:00+02:00")
    assert list(token) == ["id", "token", "prefix", "createdAt", "expiresAt"]
    assert token["expiresAt"] == "2998-12-31T22:00:00.000Z"
    assert token["prefix"] == token["token"][:12]
    assert ocr(token["token"]).status_code == 200
    assert control.create_token(PRO.id)["expiresAt"] is None
    assert [t["id"] for t in control.get_account(PRO.id)["tokens"]][-2] == token["id"]


def test_token_expired_in_the_past(
    control: MockControl, ocr: Callable[..., requests.Response], assert_api_error: CheckError
) -> None:
    token = control.create_token(FREE.id, expires_at=datetime(2020, 1, 1))  # naive: UTC
    assert token["expiresAt"] == "2020-01-01T00:00:00.000Z"
    assert_api_error(ocr(token["token"]), 401, errors.TokenExpired.message)


def test_revoke_token(
    control: MockControl, ocr: Callable[..., requests.Response], assert_api_error: CheckError
) -> None:
    token = control.create_token(FREE.id, expires_at="2020-01-01T00:00:00Z")
    control.revoke_token(token["id"])
    assert_api_error(ocr(token["token"]), 401, errors.TokenRevoked.message)  # before "expired"
    control.revoke_token(FREE.id + "-token")  # the demo token's id
    assert_api_error(ocr(FREE.token), 401, errors.TokenRevoked.message)
    revoked_at = control.get_account(FREE.id)["tokens"][0]["revokedAt"]
    control.revoke_token(FREE.id + "-token")  # again: nothing changes
    assert control.get_account(FREE.id)["tokens"][0]["revokedAt"] == revoked_at
    with pytest.raises(ControlApiError) as unknown:
        control.revoke_token("tok_nope")
    assert unknown.value.status == 404
    assert unknown.value.error == "no token with id 'tok_nope'"


@pytest.mark.parametrize(
    ("expires", "error"),
    [
        ("tomorrow", "expiresAt must be an ISO-8601 date-time such as 2030-01-31T23:59:59Z"),
        ("2031-02-30T00:00:00Z", "got '2031-02-30T00:00:00Z'"),
        ("2031-01-01T25:00:00Z", "expiresAt must be an ISO-8601 date-time"),
        ("", "expiresAt must be an ISO-8601 date-time"),
        (1767225600, "expiresAt must be an ISO-8601 date-time string, got an integer"),
        ({"at": "2031-01-01"}, "got an object"),
        ("9999-12-31T23:59:59-01:00", "expiresAt must be an ISO-8601 date-time"),  # past 9999
    ],
)
def test_token_with_a_bad_expiry(url: str, expires: Any, error: str) -> None:
    answer = requests.post(
        url + "/accounts/demo-free/tokens", json={"expiresAt": expires}, timeout=10
    )
    refused(answer, 400, error)


def test_ten_active_tokens_at_most(
    control: MockControl, ocr: Callable[..., requests.Response]
) -> None:
    account = control.create_account("free")  # one token already
    control.create_token(account["id"], expires_at="2020-01-01T00:00:00Z")  # expired: not active
    expiring = control.create_token(account["id"], expires_at="2031-01-01T00:00:00Z")
    made = [control.create_token(account["id"]) for _ in range(MAX_ACTIVE_TOKENS - 2)]
    with pytest.raises(ControlApiError) as full:
        control.create_token(account["id"])
    assert full.value.status == 409
    assert f"at most {MAX_ACTIVE_TOKENS} active tokens" in full.value.error
    control.revoke_token(made[0]["id"])  # a revoked token no longer counts
    replacement = control.create_token(account["id"])
    assert ocr(replacement["token"]).status_code == 200
    with pytest.raises(ControlApiError):
        control.create_token(account["id"])
    control.set_clock("2031-01-01T00:00:00Z")  # nor one that has expired meanwhile
    assert control.create_token(account["id"])["id"] != expiring["id"]
    assert len(control.get_account(account["id"])["tokens"]) == MAX_ACTIVE_TOKENS + 3


# -- usage ---------------------------------------------------------------------------------------


def test_usage_counts_successes_only(
    control: MockControl,
    ocr: Callable[..., requests.Response],
    png: bytes,
    assert_api_error: CheckError,
) -> None:
    usage = control.get_usage(FREE.id)
    assert list(usage) == ["period", "imagesUsed", "limit", "bytesProcessed"]
    assert (usage["imagesUsed"], usage["limit"], usage["bytesProcessed"]) == (0, 10, 0)
    assert ocr().status_code == 200
    assert_api_error(
        ocr(files={"file": ("a.gif", png, "image/jpg")}),
        400,
        errors.UnsupportedFileType("image/jpg").error,
    )
    assert control.get_usage(FREE.id)["imagesUsed"] == 1
    assert control.get_usage(FREE.id)["bytesProcessed"] == len(png)
    assert control.get_usage(ENTERPRISE.id)["limit"] is None


def test_set_usage_to_the_quota_makes_the_next_call_429(
    control: MockControl, ocr: Callable[..., requests.Response], assert_api_error: CheckError
) -> None:
    assert control.set_usage(FREE.id, 9)["imagesUsed"] == 9
    assert ocr().status_code == 200
    assert_api_error(ocr(), 429, errors.MonthlyLimitReached(10, 10).error)
    control.set_usage(FREE.id, 12)  # above the quota: the message shows the stored count
    assert_api_error(ocr(), 429, errors.MonthlyLimitReached(12, 10).error)
    assert control.get_usage(FREE.id)["imagesUsed"] == 12


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"imagesUsed": -1}, "imagesUsed must be between 0 and 9007199254740991"),
        ({"imagesUsed": 2**63}, "imagesUsed must be between 0 and"),
        ({"imagesUsed": 1.5}, "imagesUsed must be an integer, got a number"),
        ({"imagesUsed": "3"}, "imagesUsed must be an integer, got a string"),
        ({"imagesUsed": True}, "imagesUsed must be an integer, got a boolean"),
        ({"imagesUsed": None}, "imagesUsed must not be null"),
        ({}, "missing field 'imagesUsed'"),
        ({"imagesUsed": 1, "bytesProcessed": 5}, "unknown field 'bytesProcessed'"),
    ],
)
def test_set_usage_refuses_bad_bodies(url: str, body: Any, error: str) -> None:
    refused(requests.put(url + "/accounts/demo-free/usage", json=body, timeout=10), 400, error)


def test_usage_set_as_a_whole_float_is_an_integer(control: MockControl) -> None:
    assert control.set_usage(FREE.id, 4.0)["imagesUsed"] == 4  # type: ignore[arg-type]


# -- the clock -----------------------------------------------------------------------------------


def test_clock_freezes_and_returns_to_real_time(control: MockControl) -> None:
    frozen = control.set_clock("2031-03-15T12:00:00+01:00")
    assert frozen == {"now": "2031-03-15T11:00:00.000Z", "frozen": True}
    time.sleep(0.01)
    assert control.get_clock() == frozen  # it does not tick
    assert control.get_usage(FREE.id)["period"] == "2031-03"
    assert control.create_account("free")  # creation times follow it
    assert control.list_accounts()[-1]["createdAt"] == "2031-03-15T11:00:00.000Z"
    control.reset_clock()
    real = control.get_clock()
    assert real["frozen"] is False
    assert real["now"][:4] != "2031"
    assert control.get_usage(FREE.id)["period"] == real["now"][:7]


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("2031-01-31", "2031-01-31T00:00:00.000Z"),  # a date alone: midnight UTC
        ("2031-01-31T10:00:00", "2031-01-31T10:00:00.000Z"),  # no offset: UTC
        ("2031-01-31t10:00:00z", "2031-01-31T10:00:00.000Z"),  # RFC 3339 lower case
        ("2031-01-31T23:59:60Z", "2031-02-01T00:00:00.000Z"),  # a leap second
        ("2031-01-31T10:00:00.123456789Z", "2031-01-31T10:00:00.123Z"),
    ],
)
def test_clock_reads_iso_8601(control: MockControl, given: str, stored: str) -> None:
    assert control.set_clock(given)["now"] == stored


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"now": "next monday"}, "now must be an ISO-8601 date-time"),
        ({"now": "2031-13-01T00:00:00Z"}, "now must be an ISO-8601 date-time"),
        ({"now": "0000-01-01T00:00:00Z"}, "now must be an ISO-8601 date-time"),
        ({"now": "0001-01-01T00:00:00+01:00"}, "now must be an ISO-8601 date-time"),
        ({"now": 1}, "now must be an ISO-8601 date-time string, got an integer"),
        ({"now": None}, "got null"),
        ({}, "missing field 'now'"),
        ({"now": "2031-01-01T00:00:00Z", "tick": True}, "unknown field 'tick'"),
    ],
)
def test_clock_refuses_bad_dates(url: str, body: Any, error: str) -> None:
    refused(requests.put(url + "/clock", json=body, timeout=10), 400, error)


def test_crossing_a_utc_month_boundary_resets_usage(
    control: MockControl, ocr: Callable[..., requests.Response], assert_api_error: CheckError
) -> None:
    control.set_clock("2031-01-31T23:59:59Z")
    control.set_usage(FREE.id, 10)
    assert_api_error(ocr(), 429, errors.MonthlyLimitReached(10, 10).error)
    control.set_clock("2031-02-01T00:30:00+01:00")  # still January in UTC
    assert_api_error(ocr(), 429, errors.MonthlyLimitReached(10, 10).error)
    control.set_clock("2031-02-01T00:00:00Z")
    assert ocr().status_code == 200
    assert control.get_usage(FREE.id) | {"bytesProcessed": 0} == {
        "period": "2031-02",
        "imagesUsed": 1,
        "limit": 10,
        "bytesProcessed": 0,
    }
    control.set_clock("2031-01-15T00:00:00Z")  # January's count is still there
    assert control.get_usage(FREE.id)["imagesUsed"] == 10


def test_token_expiry_follows_the_clock(
    control: MockControl, ocr: Callable[..., requests.Response], assert_api_error: CheckError
) -> None:
    token = control.create_token(PRO.id, expires_at="2031-06-01T00:00:00Z")
    control.set_clock("2031-05-31T23:59:59.999Z")
    assert ocr(token["token"]).status_code == 200
    control.set_clock("2031-06-01T00:00:00Z")  # expiry is inclusive of its instant
    assert_api_error(ocr(token["token"]), 401, errors.TokenExpired.message)


# -- faults --------------------------------------------------------------------------------------


def test_fault_fails_the_next_requests_without_consuming_quota(
    control: MockControl, ocr: Callable[..., requests.Response], assert_api_error: CheckError
) -> None:
    rule = control.add_fault(500, times=2)
    assert rule["id"].startswith("flt_")
    assert {k: v for k, v in rule.items() if k not in ("id", "createdAt")} == {
        "status": 500,
        "error": None,
        "delayMs": 0,
        "times": 2,
        "account": None,
        "drop": False,
        "countsUsage": False,
    }
    assert_api_error(ocr(), 500, OCR_FAILED)
    assert [f["times"] for f in control.list_faults()] == [1]
    assert_api_error(ocr(PRO.token), 500, OCR_FAILED)  # any account's
    assert control.list_faults() == []
    assert ocr().status_code == 200
    assert control.get_usage(FREE.id)["imagesUsed"] == 1
    assert control.get_usage(PRO.id)["imagesUsed"] == 0
    journal = control.requests()
    assert [(e["status"], e["error"]) for e in journal] == [
        (500, OCR_FAILED),
        (500, OCR_FAILED),
        (200, None),
    ]
    assert journal[0]["hint"] == f"fault rule {rule['id']}"


@pytest.mark.parametrize("status", OVERRIDE_STATUSES)
def test_fault_answers_the_live_message_of_its_status(
    control: MockControl,
    ocr: Callable[..., requests.Response],
    assert_api_error: CheckError,
    status: int,
) -> None:
    control.add_fault(status, times=1)
    expected = {
        400: errors.InvalidRequestBody.message,
        401: errors.InvalidApiToken.message,
        429: errors.MonthlyLimitReached(500, 500).error,  # the Pro plan's quota
        500: OCR_FAILED,
    }
    assert_api_error(ocr(PRO.token), status, expected[status])
    assert control.get_usage(PRO.id)["imagesUsed"] == 0


def test_fault_with_its_own_message_for_one_account(
    control: MockControl,
    ocr: Callable[..., requests.Response],
    assert_api_error: CheckError,
    api_client: Any,
) -> None:
    control.add_fault(500, error="engine on fire", account=PRO.id)  # until deleted
    assert ocr(FREE.token).status_code == 200
    with api_client.documented_only():  # a message of its own is no live service's message
        for _ in range(3):
            assert_api_error(ocr(PRO.token), 500, "engine on fire")
    [rule] = control.list_faults()
    assert (rule["account"], rule["times"]) == (PRO.id, None)
    control.delete_fault(rule["id"])
    assert ocr(PRO.token).status_code == 200
    with pytest.raises(ControlApiError) as gone:
        control.delete_fault(rule["id"])
    assert gone.value.status == 404


def test_faults_apply_only_to_requests_reaching_ocr(
    control: MockControl,
    ocr: Callable[..., requests.Response],
    png: bytes,
    assert_api_error: CheckError,
) -> None:
    control.add_fault(500, times=1)
    assert_api_error(ocr("itsocr_" + "Z" * 32), 401, errors.InvalidApiToken.message)
    assert_api_error(
        ocr(files={"file": ("a.png", png)}), 400, errors.UnsupportedFileType("text/plain").error
    )
    control.set_usage(FREE.id, 10)
    assert_api_error(ocr(), 429, errors.MonthlyLimitReached(10, 10).error)
    assert [f["times"] for f in control.list_faults()] == [1]  # still waiting
    assert_api_error(ocr(PRO.token), 500, OCR_FAILED)


def test_fault_delay(control: MockControl, ocr: Callable[..., requests.Response]) -> None:
    control.add_fault(delay_ms=300, times=1)
    started = time.perf_counter()
    answer = ocr()
    elapsed = time.perf_counter() - started
    assert answer.status_code == 200  # slow, not failed: it counts
    assert elapsed >= 0.3
    assert answer.json()["processingTimeMs"] >= 300
    assert control.get_usage(FREE.id)["imagesUsed"] == 1
    after = ocr()  # the rule was for one request: the OCR step is quick again
    assert after.status_code == 200
    assert after.json()["processingTimeMs"] < 300


def test_fault_delay_then_status(
    control: MockControl, ocr: Callable[..., requests.Response], assert_api_error: CheckError
) -> None:
    control.add_fault(429, delayMs=200, times=1)  # the wire's spelling is accepted too
    started = time.perf_counter()
    assert_api_error(ocr(), 429, errors.MonthlyLimitReached(10, 10).error)
    assert time.perf_counter() - started >= 0.2


def test_fault_drops_the_connection(
    control: MockControl, ocr: Callable[..., requests.Response]
) -> None:
    rule = control.add_fault(drop=True, times=1)
    assert rule["drop"] is True
    with pytest.raises(requests.ConnectionError):
        ocr()
    assert ocr().status_code == 200
    assert control.get_usage(FREE.id)["imagesUsed"] == 1
    assert [e["status"] for e in control.requests()] == [0, 200]


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"status": 418}, 400, "status must be one of 400, 401, 429, 500, got 418"),
        ({"status": 200}, 400, "status must be one of"),
        ({"status": "500"}, 400, "status must be an integer, got a string"),
        ({"status": 500, "drop": True}, 400, "either answers a status or drops the connection"),
        ({"error": "boom"}, 400, "error is the message of a status: give status too"),
        ({"status": 500, "error": ""}, 400, "error must not be empty"),
        ({}, 400, "a rule must do something"),
        ({"delayMs": 0, "times": 1}, 400, "a rule must do something"),
        ({"status": 500, "times": 0}, 400, "times must be at least 1"),
        ({"delayMs": -1}, 400, "delayMs must be between 0 and 300000"),
        ({"delayMs": 300_001}, 400, "delayMs must be between 0 and 300000"),
        ({"drop": "yes"}, 400, "drop must be true or false, got a string"),
        ({"status": 500, "delay": 5}, 400, "unknown field 'delay'"),
        ({"status": 500, "account": "acct_nope"}, 404, "no account with id 'acct_nope'"),
    ],
)
def test_fault_rules_are_validated(url: str, body: Any, status: int, error: str) -> None:
    refused(requests.post(url + "/faults", json=body, timeout=10), status, error)
    assert requests.get(url + "/faults", timeout=10).json() == []


def test_clear_faults(control: MockControl, ocr: Callable[..., requests.Response]) -> None:
    control.add_fault(500)
    control.add_fault(drop=True, account=PRO.id)
    assert [f["status"] for f in control.list_faults()] == [500, None]  # the order they apply
    control.clear_faults()
    assert control.list_faults() == []
    assert ocr().status_code == 200


# -- fixtures ------------------------------------------------------------------------------------


def test_add_fixture(
    control: MockControl, ocr: Callable[..., requests.Response], png: bytes, tmp_path: Path
) -> None:
    image = tmp_path / "receipt.png"
    image.write_bytes(png)
    added = control.add_fixture(image, "  TOTAL 42.00\n", media_type="image/png")
    sha256 = hashlib.sha256(png).hexdigest()
    assert added == {
        "name": "receipt.png",
        "sha256": sha256,
        "prompt": None,
        "mediaType": "image/png",
        "text": "  TOTAL 42.00\n",
    }
    assert control.list_fixtures() == [added]
    answer = ocr(files={"file": ("other-name.webp", png, "image/webp")})  # matched by content
    assert answer.json()["text"] == "TOTAL 42.00"
    [entry] = control.requests()
    assert (entry["fixture"], entry["sha256"]) == ("receipt.png", sha256)


def test_add_fixture_for_one_prompt(
    control: MockControl, ocr: Callable[..., requests.Response], png: bytes
) -> None:
    control.add_fixture(png, "TOTAL ONLY", prompt=" total ", name="receipt")
    [fixture] = control.list_fixtures()
    assert (fixture["name"], fixture["prompt"], fixture["mediaType"]) == ("receipt", "total", None)
    with_prompt = ocr(data={"prompt": "total"})
    assert with_prompt.json()["text"] == "TOTAL ONLY"
    assert ocr().json()["text"] != "TOTAL ONLY"
    control.add_fixture(png, "NEW TOTAL", prompt="total", name="receipt")  # replaces
    assert ocr(data={"prompt": "total"}).json()["text"] == "NEW TOTAL"
    assert len(control.list_fixtures()) == 1


def test_run_time_fixture_prompts_match_as_directory_ones_do(
    control: MockControl, ocr: Callable[..., requests.Response], png: bytes
) -> None:
    """One rule for every fixture: exactly or, failing that, ignoring case and runs of
    whitespace (the rule of `NAME.prompts.yaml`); an exact variant wins over a loose one."""
    control.add_fixture(png, "LOOSE", prompt="Only the total", name="receipt")
    control.add_fixture(png, "ANY PROMPT", name="receipt")
    for sent in ("only the total", "ONLY  THE\tTOTAL", "  Only the   total  "):
        assert ocr(data={"prompt": sent}).json()["text"] == "LOOSE", sent
    assert ocr(data={"prompt": "only the totals"}).json()["text"] == "ANY PROMPT"
    control.add_fixture(png, "EXACT", prompt="only the total", name="receipt")
    assert ocr(data={"prompt": "only the total"}).json()["text"] == "EXACT"
    assert ocr(data={"prompt": "Only the total"}).json()["text"] == "LOOSE"
    assert [entry["fixture"] for entry in control.requests()] == ["receipt"] * 6


def test_add_fixture_errors(url: str, png: bytes) -> None:
    post = requests.post
    image = {"image": ("x.png", png, "image/png")}
    refused(
        post(
            url + "/fixtures",
            files={"image": ("x.png", b"not an image")},
            data={"text": "t"},
            timeout=10,
        ),
        400,
        "the image 'x.png' does not decode as an image",
    )
    refused(post(url + "/fixtures", files=image, timeout=10), 400, "a field named `text`")
    refused(
        post(url + "/fixtures", files={"file": ("x.png", png)}, data={"text": "t"}, timeout=10),
        400,
        "unknown field 'file'",
    )
    refused(
        post(url + "/fixtures", data={"text": "t", "image": "x.png"}, timeout=10),
        415,
        "multipart/form-data",
    )
    refused(
        post(url + "/fixtures", files={**image, "text": ("t.txt", b"t")}, timeout=10),
        400,
        "a field named `text`",
    )
    refused(post(url + "/fixtures", json={"text": "t"}, timeout=10), 415, "multipart/form-data")
    # Found by Schemathesis's fuzzer: a field sent twice is not a string.
    refused(
        post(url + "/fixtures", files=image, data=[("text", "a"), ("text", "b")], timeout=10),
        400,
        "field 'text' was sent more than once; send it once",
    )
    twice = [("image", ("x.png", png, "image/png")), ("image", ("y.png", png, "image/png"))]
    refused(
        post(url + "/fixtures", files=twice, data={"text": "t"}, timeout=10),
        400,
        "field 'image' was sent more than once",
    )
    assert requests.get(url + "/fixtures", timeout=10).json() == []


# -- the journal ---------------------------------------------------------------------------------


def test_journal_records_api_requests_newest_last(
    control: MockControl, ocr: Callable[..., requests.Response], png: bytes
) -> None:
    ocr(data={"prompt": " totals "})
    ocr("itsocr_" + "Z" * 32)
    ocr(PRO.token, files={"file": ("b.png", png, "IMAGE/PNG")})
    journal = requests.get(control.url + "/requests", timeout=10)
    for demo in DEMO_ACCOUNTS:
        assert demo.token not in journal.text
    first, second, third = journal.json()
    assert list(first) == [
        "time", "method", "path", "status", "account", "tokenPrefix", "fileName", "mimeType",
        "fileSize", "sha256", "fixture", "prompt", "error", "hint", "durationMs",
    ]  # fmt: skip
    assert first["time"].endswith("Z")
    assert (first["method"], first["path"], first["status"]) == ("POST", "/api/v1/ocr", 200)
    assert (first["account"], first["tokenPrefix"]) == (FREE.id, FREE.token[:12])
    assert (first["fileName"], first["mimeType"], first["fileSize"]) == (
        "scan.png",
        "image/png",
        len(png),
    )
    assert first["sha256"] == hashlib.sha256(png).hexdigest()
    assert (first["prompt"], first["error"]) == ("totals", None)
    assert first["durationMs"] >= 0
    assert (second["status"], second["error"]) == (401, errors.InvalidApiToken.message)
    assert (second["account"], second["tokenPrefix"], second["fileName"]) == (None, None, None)
    assert (third["account"], third["mimeType"]) == (PRO.id, "image/png")


def test_journal_filters(control: MockControl, ocr: Callable[..., requests.Response]) -> None:
    ocr()
    ocr(PRO.token)
    ocr(None)
    ocr(PRO.token)
    assert [e["account"] for e in control.requests(account=PRO.id)] == [PRO.id, PRO.id]
    assert [e["status"] for e in control.requests(status=401)] == [401]
    assert control.requests(account=PRO.id, status=401) == []
    newest = control.requests(limit=2)
    assert [(e["account"], e["status"]) for e in newest] == [(None, 401), (PRO.id, 200)]
    control.clear_requests()
    assert control.requests() == []


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("status=abc", "?status= must be an integer between 0 and 999, got 'abc'"),
        ("status=-1", "?status= must be an integer"),
        ("status=1000", "?status= must be an integer between 0 and 999"),
        ("limit=0", "?limit= must be an integer 1 or more, got '0'"),
        ("limit=1.5", "?limit= must be an integer 1 or more"),
        ("limit=%D9%A3", "?limit= must be an integer 1 or more, got '\u0663'"),
        ("limit=1&limit=2", "?limit= was given 2 times; give it once"),
        ("account=a&account=b", "?account= was given 2 times; give it once"),
    ],
)
def test_journal_refuses_bad_filters(url: str, query: str, error: str) -> None:
    refused(requests.get(f"{url}/requests?{query}", timeout=10), 400, error)


def test_control_requests_are_never_journalled_nor_counted(
    control: MockControl, url: str, png: bytes
) -> None:
    control.health()
    control.create_account("free")
    control.set_usage(FREE.id, 0)
    control.add_fixture(png, "x")
    control.get_clock()
    requests.post(url + "/accounts", json={"plan": "gold"}, timeout=10)  # a refused one too
    requests.get(url + "/nothing-here", timeout=10)
    assert control.requests() == []
    assert all(control.get_usage(a["id"])["imagesUsed"] == 0 for a in control.list_accounts())


# -- Prefer: code=NNN ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "token", "expected"),
    [
        (500, FREE.token, OCR_FAILED),
        (400, FREE.token, errors.InvalidRequestBody.message),
        (401, PRO.token, errors.InvalidApiToken.message),
        (429, PRO.token, errors.MonthlyLimitReached(500, 500).error),
        (429, None, errors.MonthlyLimitReached(10, 10).error),  # no token: the Free plan's
        (500, "itsocr_" + "Z" * 32, OCR_FAILED),  # before any check
    ],
)
def test_prefer_code_answers_that_status(
    control: MockControl,
    ocr: Callable[..., requests.Response],
    assert_api_error: CheckError,
    code: int,
    token: str | None,
    expected: str,
) -> None:
    answer = ocr(token, headers={"Prefer": f"code={code}"})
    assert_api_error(answer, code, expected)
    assert answer.headers["Preference-Applied"] == f"code={code}"
    assert all(control.get_usage(a.id)["imagesUsed"] == 0 for a in DEMO_ACCOUNTS)
    [entry] = control.requests()
    assert (entry["status"], entry["error"]) == (code, expected)
    assert "Prefer: code=" in entry["hint"]


@pytest.mark.parametrize(
    ("prefer", "hinted"),
    [
        ("code=418", True),
        ("code=200", False),  # asking for the normal answer is no mistake
        ("code=abc", True),
        ("respond-async; code=500", False),  # a parameter of another preference
        ("return=minimal", False),
    ],
)
def test_prefer_anything_else_is_ignored(
    control: MockControl,
    ocr: Callable[..., requests.Response],
    caplog: pytest.LogCaptureFixture,
    prefer: str,
    hinted: bool,
) -> None:
    """An ignored code is the request's hint: journalled, and logged after its access line."""
    caplog.set_level(logging.INFO, logger="itsocr_mock")
    answer = ocr(headers={"Prefer": prefer})
    assert answer.status_code == 200
    assert "Preference-Applied" not in answer.headers
    assert control.get_usage(FREE.id)["imagesUsed"] == 1
    [entry] = control.requests()
    logged = [r.getMessage() for r in caplog.records if r.name.startswith("itsocr_mock")]
    if hinted:
        assert entry["hint"].startswith(f"ignored `Prefer: {prefer}`")
        assert logged[0].startswith("POST /api/v1/ocr 200")
        assert logged[1] == f"hint: {entry['hint']}"
    else:
        assert entry["hint"] is None
        assert not [line for line in logged if line.startswith("hint:")]


def test_prefer_among_other_preferences(
    ocr: Callable[..., requests.Response], assert_api_error: CheckError
) -> None:
    assert_api_error(
        ocr(headers={"Prefer": 'return=minimal, code="429"'}),
        429,
        errors.MonthlyLimitReached(10, 10).error,
    )


# -- switched off, or behind an admin token ------------------------------------------------------


@pytest.fixture(scope="module")
def uncontrolled_mock() -> Iterator[InProcessServer]:
    with InProcessServer(Settings(state=":memory:", control=False)) as server:
        yield server


def _schema_errors(name: str, instance: object) -> Iterator[str]:
    resource: Resource[Any] = Resource.from_contents(
        dict(CONTROL_SPEC), default_specification=DRAFT202012
    )
    registry: Registry[Any] = Registry().with_resource("urn:control", resource)
    schema = {"$ref": f"urn:control#/components/schemas/{name}"}
    for error in Draft202012Validator(schema, registry=registry).iter_errors(instance):
        yield error.message


def test_without_control_only_a_read_only_health_check_answers(
    uncontrolled_mock: InProcessServer,
) -> None:
    """Something for docker-compose or CI to poll, with nothing a client could use: no
    tokens, no state path; validated against openapi-control.yaml."""
    answer = requests.get(uncontrolled_mock.url + "/_mock/health", timeout=10)
    assert answer.status_code == 200
    health = answer.json()
    assert (health["status"], health["control"], health["version"]) == ("ok", False, __version__)
    assert set(health) == {"status", "version", "control", "clock", "plans"}
    assert "itsocr_" not in answer.text
    assert answer.headers["Cache-Control"] == "no-store"
    assert list(_schema_errors("Health", health)) == []
    for method in ("POST", "PUT", "DELETE"):
        refused = requests.request(method, uncontrolled_mock.url + "/_mock/health", timeout=10)
        assert refused.status_code == 405


def test_without_control_there_is_no_mock_api(uncontrolled_mock: InProcessServer) -> None:
    for path in ("/_mock/accounts", "/_mock", "/_mock/", "/_mock/health/", "/_mock/reset"):
        answer = requests.get(uncontrolled_mock.url + path, timeout=10)
        assert answer.status_code == 404
        assert answer.headers["Content-Type"].startswith("text/plain")  # as on the live service
        assert answer.text == "404 Not Found"
    assert requests.post(uncontrolled_mock.url + "/_mock/reset", timeout=10).status_code == 404


def test_without_control_prefer_is_ignored(
    uncontrolled_mock: InProcessServer, make_image: Callable[..., bytes]
) -> None:
    answer = requests.post(
        uncontrolled_mock.base_url + "/ocr",
        headers={"Authorization": f"Bearer {ENTERPRISE.token}", "Prefer": "code=500"},
        files={"file": ("a.png", make_image("image/png"), "image/png")},
        timeout=10,
    )
    assert answer.status_code == 200
    assert "Preference-Applied" not in answer.headers


ADMIN_TOKEN = "s3cret-admin"


@pytest.fixture(scope="module")
def protected_mock() -> Iterator[InProcessServer]:
    with InProcessServer(Settings(state=":memory:", admin_token=ADMIN_TOKEN)) as server:
        yield server


def _operations() -> list[tuple[str, str]]:
    """Every operation of openapi-control.yaml, with `demo-free`-like ids in its path."""
    found = []
    for path, item in CONTROL_SPEC["paths"].items():
        for method in item:
            if method in ("get", "put", "post", "patch", "delete"):
                concrete = path.replace("{accountId}", "demo-free")
                found.append(
                    (method.upper(), concrete.replace("{tokenId}", "t").replace("{faultId}", "f"))
                )
    return found


MISSING_ADMIN = "this mock's control API requires `Authorization: Bearer <admin token>`"


@pytest.mark.parametrize(("method", "path"), _operations())
@pytest.mark.parametrize(
    ("authorization", "error"),
    [
        (None, MISSING_ADMIN),
        (ADMIN_TOKEN, MISSING_ADMIN),  # no scheme
        ("Bearer wrong", "wrong admin token"),
        (f"Bearer {ADMIN_TOKEN}x", "wrong admin token"),
        (f"Basic {ADMIN_TOKEN}", "wrong admin token"),
    ],
)
def test_admin_token_is_required_on_every_operation(
    protected_mock: InProcessServer, method: str, path: str, authorization: str | None, error: str
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    target = protected_mock.url + "/_mock" + path
    refused(requests.request(method, target, headers=headers, timeout=10), 401, error)


def test_admin_token_lets_the_control_api_work(protected_mock: InProcessServer) -> None:
    with MockControl(protected_mock.url, admin_token=ADMIN_TOKEN) as control:
        assert control.health()["status"] == "ok"
        created = control.create_account("pro")
        assert control.get_account(created["id"])["plan"] == "pro"
    answer = requests.get(
        protected_mock.url + "/_mock/health",
        headers={"Authorization": f"bearer  {ADMIN_TOKEN} "},
        timeout=10,
    )
    assert answer.status_code == 200
    unknown = requests.get(protected_mock.url + "/_mock/nope", timeout=10)
    refused(unknown, 401, MISSING_ADMIN)  # nothing about /_mock is told without the token
    assert unknown.headers["WWW-Authenticate"] == 'Bearer realm="itsocr-mock control API"'


def test_admin_token_leaves_the_api_alone(
    protected_mock: InProcessServer, make_image: Callable[..., bytes]
) -> None:
    answer = requests.post(
        protected_mock.base_url + "/ocr",
        headers={"Authorization": f"Bearer {FREE.token}"},
        files={"file": ("a.png", make_image("image/png"), "image/png")},
        timeout=10,
    )
    assert answer.status_code == 200


def test_serve_refuses_a_public_address_without_an_admin_token() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ITSOCR_MOCK_")}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mockserver.cli",
            "serve",
            "--host",
            "0.0.0.0",
            "--port",
            "0",
            "--state",
            ":memory:",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "refusing to serve the control API on 0.0.0.0 without protection" in done.stderr
    assert "--admin-token" in done.stderr
    assert "--no-control" in done.stderr


# -- HTTP details ---------------------------------------------------------------------------------


def test_unknown_paths_and_methods(url: str) -> None:
    refused(requests.get(url + "/nope", timeout=10), 404, "the control API has no /_mock/nope")
    wrong = requests.put(url + "/accounts", timeout=10)
    refused(wrong, 405, "PUT /_mock/accounts is not allowed")
    assert set(wrong.headers["Allow"].split(", ")) >= {"GET", "POST"}


def test_no_answer_is_cached(url: str) -> None:
    # One path of each area (each a blueprint of its own, nested in the control API's), an
    # answer and a refusal alike.
    paths = ["/health", "/accounts", "/accounts/demo-free/usage", "/clock", "/faults"]
    paths += ["/fixtures", "/requests", "/accounts/no-such-account"]
    for path in paths:
        answer = requests.get(url + path, timeout=10)
        assert answer.headers["Cache-Control"] == "no-store", (path, answer.status_code)
    refused = requests.post(url + "/reset", json=[], timeout=10)
    assert refused.status_code == 400
    assert refused.headers["Cache-Control"] == "no-store"


def test_client_errors_carry_status_and_message(control: MockControl) -> None:
    with pytest.raises(ControlApiError) as caught:
        control.create_account("gold")
    failure = caught.value
    assert (failure.method, failure.status) == ("POST", 400)
    assert failure.error.startswith("unknown plan 'gold'")
    assert str(failure) == f"POST {control.url}/accounts answered 400: {failure.error}"


def test_client_takes_an_origin_or_the_control_url(mock_server: InProcessServer) -> None:
    for given in (mock_server.url, mock_server.url + "/", mock_server.url + "/_mock/"):
        with MockControl(given) as client:
            assert client.url == mock_server.url + "/_mock"
            assert client.health()["status"] == "ok"


def test_client_ids_cannot_escape_their_path_segment(control: MockControl) -> None:
    with pytest.raises(ControlApiError) as caught:
        control.get_usage("../../health")
    assert caught.value.status == 404


# -- the spec and the code agree -----------------------------------------------------------------


def test_control_spec_is_valid_openapi_3_1() -> None:
    assert CONTROL_SPEC["openapi"].startswith("3.1")
    validate(dict(CONTROL_SPEC))


def test_control_spec_names_what_the_code_does() -> None:
    schemas = CONTROL_SPEC["components"]["schemas"]
    assert schemas["Plan"]["enum"] == list(plans())
    assert schemas["FaultRequest"]["properties"]["status"]["enum"] == [*OVERRIDE_STATUSES, None]
    app = create_app(Settings(state=":memory:"))
    app.extensions[EXTENSION_KEY].store.close()  # only its routes are of use here
    routes = {
        (method, rule.rule.removeprefix("/_mock").replace("<", "{").replace(">", "}"))
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/_mock") and not rule.endpoint.startswith("ui.")  # the web page
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    ids = {"{account_id}": "{accountId}", "{token_id}": "{tokenId}", "{fault_id}": "{faultId}"}
    for python, spec in ids.items():
        routes = {(m, p.replace(python, spec)) for m, p in routes}
    documented = {
        (method.upper(), path)
        for path, item in CONTROL_SPEC["paths"].items()
        for method in item
        if method != "parameters"
    }
    assert routes == documented


# -- several worker processes share one state ---------------------------------------------------


@pytest.mark.slow
def test_control_changes_reach_every_gunicorn_worker(
    tmp_path: Path, make_image: Callable[..., bytes]
) -> None:
    png = make_image("image/png")
    headers = {"Authorization": f"Bearer {FREE.token}"}
    with ServerProcess(args=["--workers", "3"], state=tmp_path / "state.sqlite3") as server:
        control = MockControl(server.url)
        control.set_usage(FREE.id, 3)
        control.add_fault(500, times=2)
        control.add_fault(drop=True, times=1)
        outcomes = []
        for _ in range(5):  # a new connection each: any worker may take it
            try:
                answer = requests.post(
                    server.base_url + "/ocr",
                    headers={**headers, "Connection": "close"},
                    files={"file": ("a.png", png, "image/png")},
                    timeout=10,
                )
                outcomes.append(answer.status_code)
            except requests.ConnectionError:
                outcomes.append(0)
        assert outcomes == [500, 500, 0, 200, 200]
        assert control.get_usage(FREE.id)["imagesUsed"] == 5
        assert [e["status"] for e in control.requests()] == outcomes
        control.close()
