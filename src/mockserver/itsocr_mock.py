"""`ItsocrMock`: the mock a client's test runs against, and the one-liners that put it into a
state (the object the ``itsocr_mock`` pytest fixture gives). Everything goes through the
control API, so it drives the in-process mock and a running ``itsocr-mock serve`` alike."""

from __future__ import annotations

import mimetypes
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mockserver.client import MockControl

__all__ = ["Account", "ItsocrMock"]


@dataclass(frozen=True)
class Account:
    """An account created on the mock, with its one token (`token_id`: the token's id in the
    control API, e.g. for ``itsocr_mock.control.revoke_token(account.token_id)``)."""

    id: str
    plan: str
    token: str
    token_id: str


class ItsocrMock:
    """The mock a test runs against, and the one-liners to put it into a state.

    Everything goes through the mock's control API (`control`, a `MockControl`), so the same
    calls work against the in-process mock and against a running ``itsocr-mock serve``; only
    the in-process mock's reset calls `Backend.reset` directly (the same code path, no HTTP).
    """

    def __init__(
        self,
        url: str,
        control: MockControl,
        reset: Callable[[], None],
        demo_tokens: Mapping[str, str],
    ) -> None:
        self.url = url
        self.control = control
        self._reset = reset
        self._demo_tokens = dict(demo_tokens)

    def __repr__(self) -> str:
        return f"<ItsocrMock {self.base_url}>"

    @property
    def base_url(self) -> str:
        """The API base URL, e.g. ``http://127.0.0.1:49152/api/v1`` (the docs' base URL)."""
        return self.url + "/api/v1"

    @property
    def ocr_url(self) -> str:
        """The URL of ``POST /api/v1/ocr``."""
        return self.base_url + "/ocr"

    @property
    def demo_tokens(self) -> dict[str, str]:
        """The fixed token of each demo account, by plan: ``{"free": ..., "pro": ..., ...}``."""
        return dict(self._demo_tokens)

    def reset(self) -> None:
        """Back to a fresh state (done before each test already): demo accounts only."""
        self._reset()

    def new_account(self, plan: str = "free") -> Account:
        """A new account on `plan` (``free``, ``pro``, ``enterprise``) with a fresh token."""
        created = self.control.create_account(plan)
        return Account(created["id"], created["plan"], created["token"], created["tokenId"])

    def usage(self, account: Account | str) -> int:
        """Images the account used this month (in the mock's clock)."""
        return int(self.control.get_usage(account_id(account))["imagesUsed"])

    def set_usage(self, account: Account | str, images_used: int) -> None:
        """Set the account's usage this month, e.g. to its quota to get 429 on the next call."""
        self.control.set_usage(account_id(account), images_used)

    def set_clock(self, now: datetime | str | None) -> None:
        """Freeze the mock's clock at `now` (ISO-8601, or a datetime: a naive one is UTC);
        None: real time again. Months, usage periods and token expiry follow it."""
        if now is None:
            self.control.reset_clock()
        else:
            self.control.set_clock(now)

    def fail_next(
        self,
        status: int = 500,
        times: int = 1,
        delay_ms: int = 0,
        *,
        account: Account | str | None = None,
        error: str | None = None,
        counts_usage: bool = False,
    ) -> None:
        """Make the next `times` OCR calls (of all accounts, or one) fail with `status`.

        They answer the live service's message for that status (or `error`) after `delay_ms`;
        failures consume no quota, unless `counts_usage` (with status 500): the image is then
        counted before the 500, as the live service may do -- for testing a client's retries.
        ``status=200`` with a delay makes calls slow, not fail.
        """
        self.control.add_fault(
            None if status == 200 else status,  # the control API's "no failure, only a delay"
            error=error,
            delay_ms=delay_ms,
            times=times,
            account=account_id(account) if account is not None else None,
            counts_usage=counts_usage,
        )

    def add_fixture(self, image: bytes | Path, text: str, prompt: str | None = None) -> None:
        """Make the mock answer `text` for this image (only with `prompt`, if given).

        The image must decode, as the OCR model needs; an undecodable one is refused here.
        """
        media_type = None
        if isinstance(image, Path):
            media_type = mimetypes.guess_type(image.name)[0]
        self.control.add_fixture(
            image, text, prompt=prompt, media_type=media_type or "application/octet-stream"
        )

    def requests(
        self, account: Account | str | None = None, status: int | None = None
    ) -> list[dict[str, Any]]:
        """The API requests the mock received, oldest first, as the control API's journal
        entries (``status``, ``fileName``, ``mimeType``, ``fileSize``, ``sha256``, ...)."""
        owner = account_id(account) if account is not None else None
        return self.control.requests(account=owner, status=status)


def account_id(account: Account | str) -> str:
    return account.id if isinstance(account, Account) else account
