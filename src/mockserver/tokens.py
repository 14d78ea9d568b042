"""Tokens in the live format: parsing the Authorization header, issuing, storing by digest.

Real tokens are ``itsocr_`` + 32 characters of ``[A-Za-z0-9]``, stored only as a SHA-256 hex
digest with a 12-character display prefix. The demo accounts' tokens are fixed and documented.
"""

from __future__ import annotations

import hashlib
import secrets
import string
import uuid
from dataclasses import dataclass

from mockserver import errors
from mockserver.store import TokenRow

TOKEN_PREFIX = "itsocr_"  # noqa: S105 - the format of every token, not a secret
TOKEN_LENGTH = 39  # "itsocr_" + 32 characters of [A-Za-z0-9]
DISPLAY_PREFIX_LENGTH = 12
MAX_ACTIVE_TOKENS = 10
_TOKEN_ALPHABET = string.ascii_letters + string.digits


@dataclass(frozen=True)
class DemoAccount:
    """An account every fresh state starts with, with a fixed and documented token."""

    id: str
    plan: str
    token: str


DEMO_ACCOUNTS: tuple[DemoAccount, ...] = (
    DemoAccount("demo-free", "free", TOKEN_PREFIX + "FreeDemoToken" + "0" * 19),
    DemoAccount("demo-pro", "pro", TOKEN_PREFIX + "ProDemoToken" + "0" * 20),
    DemoAccount("demo-enterprise", "enterprise", TOKEN_PREFIX + "EnterpriseDemoToken" + "0" * 13),
)


@dataclass(frozen=True)
class NewToken:
    """A freshly issued token: the only moment its clear text exists."""

    token: str
    row: TokenRow


def digest(token: str) -> str:
    """The SHA-256 hex digest under which a token is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


def generate_token() -> str:
    """A new random token in the live format."""
    return TOKEN_PREFIX + "".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(32))


def parse_authorization(header: str | None) -> str:
    """The token of an Authorization header, parsed exactly as the live service parses it."""
    value = (header or "").strip()
    if not value:
        raise errors.MissingAuthorizationHeader()
    parts = value.split(" ")
    if len(parts) != 2 or parts[0].lower() != "bearer":
        raise errors.InvalidAuthorizationFormat()
    token = parts[1]
    if not token.startswith(TOKEN_PREFIX) or len(token) != TOKEN_LENGTH:
        raise errors.InvalidTokenFormat()
    return token


def token_row(
    account_id: str, token: str, token_id: str | None, expires_at: str | None, created: str
) -> TokenRow:
    """The stored form of `token`: its digest and display prefix, never the token."""
    return TokenRow(
        id=token_id or "tok_" + uuid.uuid4().hex[:16],
        account_id=account_id,
        digest=digest(token),
        prefix=token[:DISPLAY_PREFIX_LENGTH],
        created_at=created,
        expires_at=expires_at,
        revoked_at=None,
    )
