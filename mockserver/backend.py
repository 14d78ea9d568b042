"""The mock's one stateful facade: the live service's rules, with no HTTP in sight.

`Backend.ocr` runs the live service's order of checks -- authorization, quota, body, file,
declared type, 50 MiB ceiling, plan size, OCR, usage +1 -- and journals the request. The HTTP
layer hands it the Authorization header and a callable that parses the upload, so that the body
is read only after authorization and quota have passed, exactly as the live service does.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import string
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import BinaryIO

from mockserver import errors
from mockserver.clock import format_instant, parse_instant, period_of, utc_now
from mockserver.contract import allowed_media_types, max_file_size
from mockserver.fixtures import FixtureCatalogue, Recognition, fallback_text
from mockserver.imaging import is_decodable
from mockserver.plans import Plan, get_plan
from mockserver.store import AccountRow, FaultRow, JournalEntry, Store, TokenRow

log = logging.getLogger("itsocr_mock")
access_log = logging.getLogger("itsocr_mock.access")

TOKEN_PREFIX = "itsocr_"
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
class Upload:
    """The `file` part of a request (and its `prompt`), as the HTTP layer parsed it."""

    file_name: str
    declared_type: str | None  # the part's Content-Type as sent; None when it had none
    size: int
    sha256: str
    stream: BinaryIO
    prompt: str = ""  # first `prompt` field, trimmed

    @property
    def mime_type(self) -> str:
        """The type the live service sees: lower-cased, ``text/plain`` when none was sent."""
        return (self.declared_type or "text/plain").lower()


@dataclass(frozen=True)
class Principal:
    """Who a request is from: a valid token and its account's plan."""

    token: TokenRow
    account: AccountRow
    plan: Plan


@dataclass(frozen=True)
class OcrResult:
    """A successful OCR, with the fields of the live response."""

    id: str
    text: str
    processing_time_ms: int
    file_name: str
    file_size: int
    mime_type: str

    def to_json(self) -> dict[str, object]:
        """The response body, keys in the live service's order."""
        return {
            "id": self.id,
            "text": self.text,
            "processingTimeMs": self.processing_time_ms,
            "fileName": self.file_name,
            "fileSize": self.file_size,
            "mimeType": self.mime_type,
            "success": True,
        }


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


@dataclass
class Backend:
    """State and rules of the mock itsOCR service."""

    store: Store
    catalogue: FixtureCatalogue = field(default_factory=FixtureCatalogue.load)

    # -- state ------------------------------------------------------------------------------

    def reset(self) -> None:
        """Back to a fresh state: demo accounts only, no usage, faults, fixtures or journal,
        real clock. The one reset path: the control API, the pytest plugin and tests call it."""
        created = format_instant(utc_now())
        with self.store.transaction() as db:
            self.store.wipe(db)
            for demo in DEMO_ACCOUNTS:
                self.store.insert_account(db, AccountRow(demo.id, demo.plan, created))
                self.store.insert_token(db, self._token_row(demo.id, demo.token, f"{demo.id}-token", None, created))

    def ensure_initialised(self) -> None:
        """Seed the demo accounts on a fresh state file; keep an existing state as it is."""
        if self.store.is_empty():
            self.reset()

    def now(self) -> datetime:
        """The mock's current time: frozen by the control API, or real UTC time."""
        frozen = self.store.frozen_now()
        return parse_instant(frozen) if frozen else utc_now()

    # -- accounts and tokens ----------------------------------------------------------------

    def create_account(self, plan: str) -> tuple[AccountRow, NewToken]:
        """A new account on `plan` with one fresh token."""
        get_plan(plan)  # KeyError for an unknown plan, before anything is written
        created = format_instant(self.now())
        account = AccountRow("acct_" + uuid.uuid4().hex[:16], plan, created)
        token = generate_token()
        row = self._token_row(account.id, token, None, None, created)
        with self.store.transaction() as db:
            self.store.insert_account(db, account)
            self.store.insert_token(db, row)
        return account, NewToken(token, row)

    def create_token(self, account_id: str, expires_at: datetime | None = None) -> NewToken:
        """Issue a token for an account, within the limit of active tokens per account."""
        now = self.now()
        if self.store.get_account(account_id) is None:
            raise errors.NotFound(f"No account with id {account_id!r}")
        token = generate_token()
        expiry = format_instant(expires_at) if expires_at else None
        row = self._token_row(account_id, token, None, expiry, format_instant(now))
        with self.store.transaction() as db:
            if self.store.count_active_tokens(db, account_id, format_instant(now)) >= MAX_ACTIVE_TOKENS:
                raise errors.Conflict(
                    f"An account may hold at most {MAX_ACTIVE_TOKENS} active tokens; revoke one first"
                )
            self.store.insert_token(db, row)
        return NewToken(token, row)

    @staticmethod
    def _token_row(
        account_id: str, token: str, token_id: str | None, expires_at: str | None, created: str
    ) -> TokenRow:
        return TokenRow(
            id=token_id or "tok_" + uuid.uuid4().hex[:16],
            account_id=account_id,
            digest=digest(token),
            prefix=token[:DISPLAY_PREFIX_LENGTH],
            created_at=created,
            expires_at=expires_at,
            revoked_at=None,
        )

    # -- the OCR endpoint -------------------------------------------------------------------

    def authenticate(self, authorization: str | None, now: datetime) -> Principal:
        """The token's account and plan, or the live service's 401 for this header."""
        found = self.store.find_token(digest(parse_authorization(authorization)))
        if found is None:
            raise errors.InvalidApiToken()
        token, account = found
        if token.revoked_at is not None:
            raise errors.TokenRevoked()
        if token.expires_at is not None and parse_instant(token.expires_at) <= now:
            raise errors.TokenExpired()
        if account is None:
            raise errors.UserNotFound()
        return Principal(token, account, get_plan(account.plan))

    def check_quota(self, principal: Principal, period: str) -> None:
        """429 when the account has used its month's quota (before the body is read)."""
        used, _ = self.store.usage(principal.account.id, period)
        if not principal.plan.allows_another_image(used):
            raise errors.MonthlyLimitReached(used, principal.plan.images_per_month or 0)

    def ocr(
        self, authorization: str | None, read_upload: Callable[[], Upload], entry: JournalEntry
    ) -> OcrResult:
        """Handle one `POST /ocr` in the live order of checks, journalling it in `entry`."""
        started = time.perf_counter()
        counted = False
        try:
            result, counted = self._ocr(authorization, read_upload, entry, started)
        except errors.ApiError as failure:
            self._finish(entry, started, failure.status, failure.error, failure.hint)
            raise
        except errors.ConnectionDropped:
            self._finish(entry, started, 0, "connection dropped by a fault rule", None)
            raise
        except Exception as failure:  # answered as the live 500 by the HTTP layer
            self._finish(entry, started, 500, errors.UnexpectedError.message, repr(failure))
            raise
        finally:
            if not counted:
                self.store.record(entry)
            log_access(entry)
        return result

    def _ocr(
        self,
        authorization: str | None,
        read_upload: Callable[[], Upload],
        entry: JournalEntry,
        started: float,
    ) -> tuple[OcrResult, bool]:
        now = self.now()
        entry.time = format_instant(now)
        principal = self.authenticate(authorization, now)
        entry.account_id, entry.token_prefix = principal.account.id, principal.token.prefix
        period = period_of(now)
        self.check_quota(principal, period)
        upload = read_upload()
        try:
            return self._process(principal, upload, entry, started, period)
        finally:
            upload.stream.close()  # the spooled body is ours now: free it once answered

    def _process(
        self, principal: Principal, upload: Upload, entry: JournalEntry, started: float, period: str
    ) -> tuple[OcrResult, bool]:
        self._describe(entry, upload)
        self.validate(principal, upload)
        recognition = self.recognise(principal, upload)
        entry.fixture = recognition.fixture
        self._finish(entry, started, 200, None, None)
        if upload.size == 0:  # the live service counts only non-empty files
            counted = False
        elif self.store.count_image(
            principal.account.id, period, principal.plan.images_per_month, upload.size, entry
        ):
            counted = True  # the journal entry was written with the usage, in one transaction
        else:
            # Lost the race for the last image of the quota to a concurrent request: answer as
            # the live service would have, had this request arrived a moment later.
            limit = principal.plan.images_per_month or 0
            raise errors.MonthlyLimitReached(limit, limit)
        result = OcrResult(
            id=str(uuid.uuid4()),
            text=recognition.text,
            processing_time_ms=recognition.processing_time_ms or 0,
            file_name=upload.file_name,
            file_size=upload.size,
            mime_type=upload.mime_type,
        )
        return result, counted

    @staticmethod
    def _describe(entry: JournalEntry, upload: Upload) -> None:
        entry.file_name, entry.mime_type = upload.file_name, upload.mime_type
        entry.file_size, entry.sha256 = upload.size, upload.sha256
        entry.prompt = upload.prompt or None

    def validate(self, principal: Principal, upload: Upload) -> None:
        """Declared type, then the global ceiling, then the plan's limit (all 400)."""
        if upload.mime_type not in allowed_media_types():
            raise errors.UnsupportedFileType(upload.mime_type, hint=_type_hint(upload))
        if upload.size > max_file_size():
            raise errors.FileTooLarge()
        if upload.size > principal.plan.max_file_size:
            raise errors.FileTooLargeForPlan(principal.plan.max_file_size_mb)

    def recognise(self, principal: Principal, upload: Upload) -> Recognition:
        """The OCR step: fault rules first, then fixtures, then deterministic text."""
        started = time.perf_counter()
        fault = self.store.take_fault(principal.account.id)
        if fault is not None:
            self._apply_fault(fault, principal)
        recognition = self._lookup(upload)
        if recognition.processing_time_ms is None:
            elapsed = round((time.perf_counter() - started) * 1000)
            recognition = Recognition(recognition.text, elapsed, recognition.fixture)
        return recognition

    def _lookup(self, upload: Upload) -> Recognition:
        registered = self.store.find_fixture(upload.sha256, upload.prompt)
        if registered is not None:
            return Recognition(registered[1].strip(), None, registered[0])
        known = self.catalogue.lookup(upload.sha256, upload.prompt)
        if known is not None:
            return known
        if not is_decodable(upload.stream):
            raise errors.OcrFailed(hint=_undecodable_hint(upload))
        return fallback_text(upload.sha256, upload.prompt)

    def _apply_fault(self, fault: FaultRow, principal: Principal) -> None:
        if fault.delay_ms:
            time.sleep(fault.delay_ms / 1000)
        if fault.drop_connection:
            raise errors.ConnectionDropped()
        if fault.status is not None:
            failure = self.error_for_status(fault.status, principal)
            if fault.error:
                failure.error = fault.error
            failure.hint = f"fault rule {fault.id}"
            raise failure

    def error_for_status(self, status: int, principal: Principal | None = None) -> errors.ApiError:
        """The live service's error for a status, for fault rules and ``Prefer: code=``."""
        if status == 429:
            limit = principal.plan.images_per_month if principal else None
            used = limit if limit is not None else get_plan("free").images_per_month or 0
            return errors.MonthlyLimitReached(used, used)
        chosen = _ERROR_FOR_STATUS.get(status)
        if chosen is None:
            raise errors.BadControlRequest(
                f"status must be one of {', '.join(map(str, sorted([429, *_ERROR_FOR_STATUS])))}"
            )
        return chosen()

    @staticmethod
    def _finish(
        entry: JournalEntry, started: float, status: int, error: str | None, hint: str | None
    ) -> None:
        entry.status, entry.error, entry.hint = status, error, hint
        entry.duration_ms = round((time.perf_counter() - started) * 1000, 3)


_ERROR_FOR_STATUS: dict[int, type[errors.ApiError]] = {
    400: errors.InvalidRequestBody,
    401: errors.InvalidApiToken,
    500: errors.OcrFailed,
}


def log_access(entry: JournalEntry) -> None:
    """One access-log line per API request, plus the hint when the request went wrong."""
    fixture = f"hit:{entry.fixture}" if entry.fixture else ("miss" if entry.status == 200 else "-")
    access_log.info(
        '%s %s %s token=%s fixture=%s size=%s time=%.1fms%s',
        entry.method,
        entry.path,
        entry.status,
        entry.token_prefix or "-",
        fixture,
        entry.file_size if entry.file_size is not None else "-",
        entry.duration_ms or 0.0,
        f' error="{entry.error}"' if entry.error else "",
    )
    if entry.hint:
        log.warning("hint: %s", entry.hint)


def _type_hint(upload: Upload) -> str | None:
    if upload.declared_type is None:
        return (
            f"the file part {upload.file_name!r} was sent without a Content-Type, which the "
            "service reads as text/plain. Python requests does this for files={'file': f} (the "
            "vendor's own example); declare the type: "
            "files={'file': ('document.jpg', f, 'image/jpeg')}"
        )
    if upload.mime_type == "image/jpg":
        return "image/jpg is not a registered media type; declare JPEG files as image/jpeg"
    if ";" in upload.mime_type:
        return "the declared type must be the bare media type, without parameters such as charset"
    return None


def _undecodable_hint(upload: Upload) -> str:
    if upload.size == 0:
        return "the file is empty; the live OCR model fails on it the same way"
    return (
        f"the bytes of {upload.file_name!r} do not decode as an image (declared "
        f"{upload.mime_type}); the live OCR model fails on them the same way"
    )
