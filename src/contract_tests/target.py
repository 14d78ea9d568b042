"""The implementation under test: where it lives, whether it has a control API, its accounts.

`Target.locate` turns ``--base-url`` (an origin such as ``https://itsocr.com`` or an API base
such as ``https://itsocr.com/api/v1``) into the API base and the control API's address, and
probes ``GET /_mock/health``: a mock answers it, the live service does not. The control API is
driven with the kit's `MockControl` client.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests

from contract_tests.plugin import SuiteOptions
from mockserver.client import ControlApiError, MockControl
from mockserver.contract import api_prefix

PROBE_TIMEOUT = 5.0  # seconds: a live service without /_mock should not hold the run up
CONTROL_TIMEOUT = 30.0


@dataclass(frozen=True)
class Account:
    """An account the suite may send requests for: its token, plan and (on a mock) ids."""

    token: str
    plan: str
    id: str | None = None  # set for accounts the suite created through the control API
    token_id: str | None = None

    @property
    def is_users(self) -> bool:
        """True for the user's own token (--itsocr-token): its requests may be billed."""
        return self.id is None


class ControlApi:
    """The mock's control API in the suite's terms: accounts in, accounts out.

    A thin adapter over the kit's `MockControl` client (one method per ``/_mock`` endpoint);
    its errors are faults of the set-up, not of the contract, and propagate as they are.
    """

    def __init__(self, client: MockControl) -> None:
        self.client = client

    def create_account(self, plan: str) -> Account:
        """A new account on `plan` with one token."""
        created = self.client.create_account(plan)
        return Account(created["token"], plan, created["id"], created["tokenId"])

    def create_token(self, account: Account, expires_at: str | None = None) -> Account:
        """Another token of `account` (optionally expiring at an ISO-8601 instant)."""
        created = self.client.create_token(_id(account.id), expires_at=expires_at)
        return Account(created["token"], account.plan, account.id, created["id"])

    def revoke_token(self, account: Account) -> None:
        """Revoke the token of `account`."""
        self.client.revoke_token(_id(account.token_id))

    def delete_account(self, account: Account) -> None:
        """Delete the account (its tokens then answer "User not found")."""
        self.client.delete_account(_id(account.id))

    def images_used(self, account: Account) -> int:
        """The account's usage in the mock's current month."""
        return int(self.client.get_usage(_id(account.id))["imagesUsed"])

    def set_images_used(self, account: Account, images_used: int) -> None:
        """Set the account's usage in the mock's current month."""
        self.client.set_usage(_id(account.id), images_used)

    def set_clock(self, now: str) -> None:
        """Freeze the mock's clock at an ISO-8601 instant."""
        self.client.set_clock(now)

    def real_clock(self) -> None:
        """Back to real time."""
        self.client.reset_clock()

    def add_fault(self, account: Account, **rule: Any) -> None:
        """A fault rule for `account`'s OCR requests (``status``, ``delay_ms``, ``times``...)."""
        self.client.add_fault(account=_id(account.id), **rule)


def _id(value: str | None) -> str:
    if value is None:
        raise ValueError("the user's own token has no account id on the control API")
    return value


@dataclass
class Target:
    """The implementation under test, as the suite found it."""

    api_url: str  # e.g. https://itsocr.com/api/v1
    control: ControlApi | None
    control_note: str  # why there is no control API, for skip reasons
    in_process: bool = False

    @property
    def ocr_url(self) -> str:
        """The URL of the OCR endpoint."""
        return self.api_url + "/ocr"

    @property
    def is_mock(self) -> bool:
        """True when the target has a control API (the suite owns its state)."""
        return self.control is not None

    @classmethod
    def locate(cls, base_url: str, options: SuiteOptions) -> Target:
        """Find the API base and probe the control API of the target at `base_url`."""
        parts = urlsplit(base_url.rstrip("/"))
        mount = parts.path.removesuffix(api_prefix())
        api_url = urlunsplit((parts.scheme, parts.netloc, mount + api_prefix(), "", ""))
        origin = urlunsplit((parts.scheme, parts.netloc, mount, "", ""))
        client = MockControl(origin, admin_token=options.itsocr_admin_token, timeout=PROBE_TIMEOUT)
        note = _probe(client)
        if note is None:
            client.timeout = CONTROL_TIMEOUT
            return cls(api_url, ControlApi(client), "")
        client.close()
        return cls(api_url, None, note)


def _probe(client: MockControl) -> str | None:
    """None when the control API answers its health check, else why not (for skip reasons)."""
    try:
        health = client.health()
    except ControlApiError as error:
        if error.status == 401:
            return (
                f"the control API at {client.url} requires an admin token: pass "
                "--itsocr-admin-token (or ITSOCR_MOCK_ADMIN_TOKEN)"
            )
        return f"no control API: GET {client.url}/health answered {error.status}"
    except (requests.RequestException, TypeError) as error:
        return f"no control API at {client.url} ({type(error).__name__})"
    if health.get("status") != "ok":
        return f"no control API: {client.url}/health is not an itsOCR mock's"
    if health.get("control") is False:  # a production-like mock answers its health check only
        return f"no control API: the mock at {client.url} runs without one (--no-control)"
    return None
