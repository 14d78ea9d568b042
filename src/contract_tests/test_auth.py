"""Authentication: every request without a valid token is a 401, before anything else happens.

Each request carries a real image, so that a server that lets it through answers 200 and is
caught. Headers built from the user's token are sent as that account's (rejectable) requests.
"""

from __future__ import annotations

import pytest

from contract_tests.forms import Part, upload
from contract_tests.harness import Contract
from contract_tests.images import make_image
from mockserver.contract import example_message

MISSING = example_message(401, "missingHeader")
FORMAT = example_message(401, "badHeaderFormat")
TOKEN_FORMAT = example_message(401, "badTokenFormat")
UNKNOWN = example_message(401, "unknownToken")
REVOKED = example_message(401, "revokedToken")
EXPIRED = example_message(401, "expiredToken")
USER_NOT_FOUND = example_message(401, "userNotFound")
PAST = "2001-01-01T00:00:00Z"


def image() -> list[Part]:
    return upload(make_image("image/png"), "image/png", "scan.png")


@pytest.mark.clause("auth.missing-header")
@pytest.mark.parametrize("authorization", [None, ""], ids=["absent", "empty"])
def test_missing_header(contract: Contract, authorization: str | None) -> None:
    """No Authorization header, or an empty one: 401 Missing Authorization header."""
    reply = contract.post_ocr(authorization=authorization, parts=image())
    contract.expect(reply, 401, error=MISSING)


@pytest.mark.clause("auth.header-format")
@pytest.mark.parametrize(
    "template",
    ["{token}", "Token {token}", "Basic {token}", "Bearer", "Bearer: {token}"],
    ids=["no-scheme", "token-scheme", "basic-scheme", "no-token", "colon"],
)
def test_header_format(contract: Contract, template: str) -> None:
    """A header that is not `Bearer <token>`: 401, even around a valid token."""
    account = contract.account()
    reply = contract.post_ocr(
        account, authorization=template.format(token=account.token), parts=image()
    )
    contract.expect(reply, 401, error=FORMAT)


@pytest.mark.clause("auth.header-format-strict", level="observed")
@pytest.mark.parametrize(
    "template",
    ["Bearer  {token}", "Bearer\t{token}", "Bearer {token} extra"],
    ids=["two-spaces", "tab", "third-word"],
)
def test_header_format_strict(contract: Contract, template: str) -> None:
    """The header must split on single spaces into exactly two parts."""
    account = contract.account()
    reply = contract.post_ocr(
        account, authorization=template.format(token=account.token), parts=image()
    )
    contract.expect(reply, 401, error=FORMAT)


@pytest.mark.clause("auth.scheme-case", level="observed")
def test_scheme_is_case_insensitive(contract: Contract) -> None:
    """`bearer` and `BEARER` are accepted as well as `Bearer`."""
    account = contract.account()
    headers = [f"bearer {account.token}", f"BEARER {account.token}"]
    contract.reserve(account, len(headers))
    for authorization in headers:
        reply = contract.post_ocr(
            account, authorization=authorization, parts=image(), billable=True
        )
        contract.expect(reply, 200)


@pytest.mark.clause("auth.token-format")
@pytest.mark.parametrize(
    "derive",
    [
        lambda token: token[:-1],
        lambda token: token + "0",
        lambda token: "ITSOCR_" + token[7:],
        lambda token: "itsocr-" + token[7:],
        lambda token: token[7:] + "itsocr_",
    ],
    ids=["38-characters", "40-characters", "upper-case-prefix", "dash-prefix", "no-prefix"],
)
def test_token_format(contract: Contract, derive) -> None:  # type: ignore[no-untyped-def]
    """A token that is not `itsocr_` + 32 characters: 401, never the account's."""
    account = contract.account()
    reply = contract.post_ocr(
        account, authorization=f"Bearer {derive(account.token)}", parts=image()
    )
    contract.expect(reply, 401, error=TOKEN_FORMAT)


@pytest.mark.clause("auth.unknown-token")
@pytest.mark.parametrize(
    "token", ["itsocr_" + "Z" * 32, "itsocr_" + "-" * 32], ids=["alphanumeric", "punctuation"]
)
def test_unknown_token(contract: Contract, token: str) -> None:
    """A well-formed token that does not exist: 401 Invalid API token."""
    reply = contract.post_ocr(authorization=f"Bearer {token}", parts=image())
    contract.expect(reply, 401, error=UNKNOWN)


@pytest.mark.clause("auth.revoked-token")
def test_revoked_token(contract: Contract) -> None:
    """A revoked token: 401 API token has been revoked."""
    token = contract.suite.options.itsocr_revoked_token
    if token is None:
        control = contract.control_or("--itsocr-revoked-token")
        account = control.create_token(contract.account())
        control.revoke_token(account)
        token = account.token
    reply = contract.post_ocr(authorization=f"Bearer {token}", parts=image())
    contract.expect(reply, 401, error=REVOKED)


@pytest.mark.clause("auth.revoked-before-expired", level="observed")
def test_revoked_is_checked_before_expiry(contract: Contract) -> None:
    """A token both revoked and expired is reported revoked."""
    control = contract.control
    account = control.create_token(contract.account(), expires_at=PAST)
    control.revoke_token(account)
    reply = contract.post_ocr(account, parts=image())
    contract.expect(reply, 401, error=REVOKED)


@pytest.mark.clause("auth.expired-token")
def test_expired_token(contract: Contract) -> None:
    """A token past its expiry: 401 API token has expired."""
    token = contract.suite.options.itsocr_expired_token
    if token is None:
        control = contract.control_or("--itsocr-expired-token")
        token = control.create_token(contract.account(), expires_at=PAST).token
    reply = contract.post_ocr(authorization=f"Bearer {token}", parts=image())
    contract.expect(reply, 401, error=EXPIRED)


@pytest.mark.clause("auth.user-not-found", level="observed")
def test_deleted_account(contract: Contract) -> None:
    """A token whose account no longer exists: 401 User not found."""
    control = contract.control
    account = contract.account()
    control.delete_account(account)
    reply = contract.post_ocr(account, parts=image())
    contract.expect(reply, 401, error=USER_NOT_FOUND)


@pytest.mark.clause("auth.before-body", level="observed")
def test_auth_is_checked_before_the_body(contract: Contract) -> None:
    """A bad token with a body that is not multipart: the 401, not the 400."""
    reply = contract.post_ocr(
        authorization="Bearer itsocr_" + "Z" * 32,
        data=b'{"file": 1}',
        content_type="application/json",
    )
    contract.expect(reply, 401, error=UNKNOWN)
