"""Accounts and their tokens: create, list, change plan, delete; issue and revoke tokens."""

from __future__ import annotations

from flask import Blueprint, Response

from mockserver.control.common import instant, json_body, no_content, required, string
from mockserver.store import AccountRow, TokenRow
from mockserver.web import current_backend, json_response

views = Blueprint("accounts", __name__)


@views.get("/accounts")
def list_accounts() -> Response:
    """Every account, oldest first."""
    return json_response([_account_json(row) for row in current_backend().accounts()])


@views.post("/accounts")
def create_account() -> Response:
    """A new account (Free unless told) with one fresh token."""
    body = json_body(("plan",))
    plan = required(string(body, "plan"), "plan") if "plan" in body else "free"
    account, token = current_backend().create_account(plan)
    created = {
        "id": account.id,
        "plan": account.plan,
        "token": token.token,
        "tokenId": token.row.id,
    }
    return json_response(created, 201)


@views.get("/accounts/<account_id>")
def get_account(account_id: str) -> Response:
    """One account and its tokens."""
    return json_response(_account_json(current_backend().account(account_id)))


@views.patch("/accounts/<account_id>")
def change_plan(account_id: str) -> Response:
    """Move an account to another plan."""
    body = json_body(("plan",), required=("plan",))
    plan = required(string(body, "plan"), "plan")
    return json_response(_account_json(current_backend().change_plan(account_id, plan)))


@views.delete("/accounts/<account_id>")
def delete_account(account_id: str) -> Response:
    """Delete an account; its tokens then answer "User not found"."""
    current_backend().delete_account(account_id)
    return no_content()


@views.post("/accounts/<account_id>/tokens")
def create_token(account_id: str) -> Response:
    """Another token of the account, optionally with an expiry (past ones included)."""
    body = json_body(("expiresAt",))
    expires = body.get("expiresAt")
    expiry = None if expires is None else instant(expires, "expiresAt")
    new = current_backend().create_token(account_id, expiry)
    token = {
        "id": new.row.id,
        "token": new.token,
        "prefix": new.row.prefix,
        "createdAt": new.row.created_at,
        "expiresAt": new.row.expires_at,
    }
    return json_response(token, 201)


@views.delete("/tokens/<token_id>")
def revoke_token(token_id: str) -> Response:
    """Revoke a token; it then answers "API token has been revoked"."""
    current_backend().revoke_token(token_id)
    return no_content()


def _account_json(account: AccountRow) -> dict[str, object]:
    tokens = current_backend().tokens(account.id)
    return {
        "id": account.id,
        "plan": account.plan,
        "createdAt": account.created_at,
        "tokens": [_token_json(token) for token in tokens],
    }


def _token_json(token: TokenRow) -> dict[str, object]:
    return {
        "id": token.id,
        "prefix": token.prefix,
        "createdAt": token.created_at,
        "expiresAt": token.expires_at,
        "revokedAt": token.revoked_at,
    }
