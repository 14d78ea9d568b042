"""The mock's one stateful facade: the live service's rules, with no HTTP in sight.

`Backend.ocr` runs the live service's order of checks -- authorization, quota, body, file,
declared type, 50 MiB ceiling, plan size, OCR, usage +1 -- and journals the request. The HTTP
layer hands it the Authorization header and a callable that parses the upload, so that the body
is read only after authorization and quota have passed, exactly as the live service does.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import secrets
import string
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, BinaryIO

from mockserver import errors
from mockserver.clock import format_instant, parse_instant, period_of, utc_now
from mockserver.contract import allowed_media_types, max_file_size
from mockserver.faults import MAX_COUNT, FaultRule
from mockserver.fixtures import FixtureCatalogue, Recognition, fallback_text
from mockserver.imaging import Decoding, examine
from mockserver.plans import Plan, get_plan, plans
from mockserver.store import AccountRow, FaultRow, JournalEntry, Overrides, StateStore, TokenRow
from mockserver.turns import waiting

log = logging.getLogger("itsocr_mock")
access_log = logging.getLogger("itsocr_mock.access")

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
        """The type the live service sees: lower-cased, ``text/plain`` when the part had no
        Content-Type header (a header present but empty is the empty type)."""
        return "text/plain" if self.declared_type is None else self.declared_type.lower()


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


@dataclass(frozen=True)
class Usage:
    """An account's usage in one period (a UTC calendar month, ``YYYY-MM``)."""

    period: str
    images_used: int
    limit: int | None  # the plan's quota; None = unlimited
    bytes_processed: int


@dataclass(frozen=True)
class RegisteredFixture:
    """A fixture registered at run time: the text returned for an image (and prompt)."""

    name: str
    sha256: str
    prompt: str  # "" = any prompt
    media_type: str | None
    text: str


def known_plan(name: str) -> Plan:
    """The plan called `name`, or the control API's 400 naming the plans that exist."""
    if name not in plans():
        raise errors.BadControlRequest(
            f"unknown plan {name!r}; expected one of {', '.join(plans())}"
        )
    return get_plan(name)


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


class UnknownImages:
    """What OCR made of the images recently seen that no fixture knows, by hash and prompt.

    Whether the bytes decode, and the text generated for them, depend on the bytes (and the
    prompt) alone, and cost more than the rest of a request together (a full decode, a Faker
    document): a test suite posting the same images again pays for them once per worker.
    """

    def __init__(self, remembered: int = 1024) -> None:
        self._remembered = remembered
        self._outcomes: OrderedDict[tuple[str, str], Recognition | Decoding] = OrderedDict()
        self._lock = threading.Lock()

    def recognise(self, upload: Upload) -> Recognition | Decoding:
        """The generated text for `upload`, or the verdict when its bytes are not a decodable
        image (within the decode budgets)."""
        # Hashed: a prompt may be megabytes long, and this cache is kept per worker.
        key = (upload.sha256, hashlib.sha256(upload.prompt.encode()).hexdigest())
        with self._lock:
            if key in self._outcomes:
                self._outcomes.move_to_end(key)
                return self._outcomes[key]
        with waiting():  # a decoder (C code) may take a while on a large image
            decoding = examine(upload.stream)
        outcome = fallback_text(upload.sha256, upload.prompt) if decoding.decodable else decoding
        if decoding.lasting:  # not "no room to decode in time": that one is for now only
            with self._lock:
                self._outcomes[key] = outcome
                if len(self._outcomes) > self._remembered:
                    self._outcomes.popitem(last=False)
        return outcome


@dataclass
class Backend:
    """State and rules of the mock itsOCR service."""

    store: StateStore
    catalogue: FixtureCatalogue = field(default_factory=FixtureCatalogue.load)
    unknown_images: UnknownImages = field(default_factory=UnknownImages, repr=False)

    # -- state ------------------------------------------------------------------------------

    def reset(self) -> None:
        """Back to a fresh state: demo accounts only, no usage, faults, fixtures or journal,
        real clock. The one reset path: the control API, the pytest plugin and tests call it."""
        created = format_instant(utc_now())
        with self.store.transaction() as db:
            self.store.wipe(db)
            for demo in DEMO_ACCOUNTS:
                self.store.insert_account(db, AccountRow(demo.id, demo.plan, created))
                self.store.insert_token(
                    db, self._token_row(demo.id, demo.token, f"{demo.id}-token", None, created)
                )

    def ensure_initialised(self) -> None:
        """Seed the demo accounts on a fresh state file; keep an existing state as it is."""
        if self.store.is_empty():
            self.reset()

    def now(self, overrides: Overrides | None = None) -> datetime:
        """The mock's current time: frozen by the control API, or real UTC time.

        `overrides`, already read by the caller, saves reading the clock again.
        """
        frozen = overrides.frozen_now if overrides is not None else self.store.frozen_now()
        return parse_instant(frozen) if frozen else utc_now()

    # -- accounts and tokens ----------------------------------------------------------------

    def create_account(self, plan: str) -> tuple[AccountRow, NewToken]:
        """A new account on `plan` with one fresh token."""
        known_plan(plan)  # before anything is written
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
        self.account(account_id)  # 404 for an unknown account
        token = generate_token()
        expiry = format_instant(expires_at) if expires_at else None
        row = self._token_row(account_id, token, None, expiry, format_instant(now))
        with self.store.transaction() as db:
            active = self.store.count_active_tokens(db, account_id, format_instant(now))
            if active >= MAX_ACTIVE_TOKENS:
                raise errors.Conflict(
                    f"An account may hold at most {MAX_ACTIVE_TOKENS} active tokens; "
                    "revoke one first"
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

    # -- the control API: accounts, tokens, usage, clock, faults, fixtures, journal ----------

    def account(self, account_id: str) -> AccountRow:
        """The account with that id, or 404."""
        account = self.store.get_account(account_id)
        if account is None:
            raise errors.NotFound(f"no account with id {account_id!r}")
        return account

    def accounts(self) -> list[AccountRow]:
        """Every account, oldest first."""
        return self.store.list_accounts()

    def tokens(self, account_id: str) -> list[TokenRow]:
        """An account's tokens (revoked and expired ones included), oldest first."""
        return self.store.list_tokens(account_id)

    def delete_account(self, account_id: str) -> None:
        """Delete an account and its usage; its tokens then answer "User not found"."""
        if not self.store.delete_account(account_id):
            raise errors.NotFound(f"no account with id {account_id!r}")

    def change_plan(self, account_id: str, plan: str) -> AccountRow:
        """Move an account to another plan; its usage this month stays."""
        known_plan(plan)
        if not self.store.set_plan(account_id, plan):
            raise errors.NotFound(f"no account with id {account_id!r}")
        return self.account(account_id)

    def revoke_token(self, token_id: str) -> TokenRow:
        """Revoke a token (again: no change); it then answers "API token has been revoked"."""
        revoked = None
        if self.store.revoke_token(token_id, format_instant(self.now())):
            revoked = self.store.get_token(token_id)  # None only if a reset came in between
        if revoked is None:
            raise errors.NotFound(f"no token with id {token_id!r}")
        return revoked

    def usage(self, account_id: str) -> Usage:
        """The account's usage in the current period of the mock's clock."""
        account = self.account(account_id)
        period = period_of(self.now())
        used, processed = self.store.usage(account_id, period)
        return Usage(period, used, get_plan(account.plan).images_per_month, processed)

    def set_usage(self, account_id: str, images_used: int) -> Usage:
        """Set the images used in the current period (bytes processed are kept)."""
        if not 0 <= images_used <= MAX_COUNT:
            raise errors.BadControlRequest(f"imagesUsed must be between 0 and {MAX_COUNT}")
        self.account(account_id)
        self.store.set_images_used(account_id, period_of(self.now()), images_used)
        return self.usage(account_id)

    def freeze_clock(self, instant: datetime) -> datetime:
        """Stop the mock's clock at `instant`: month boundaries, expiry and usage follow it."""
        stored = format_instant(instant)
        self.store.set_frozen_now(stored)
        return parse_instant(stored)

    def real_clock(self) -> None:
        """Back to real time."""
        self.store.set_frozen_now(None)

    def clock_is_frozen(self) -> bool:
        """True while the control API holds the clock."""
        return self.store.frozen_now() is not None

    def add_fault(self, rule: FaultRule) -> FaultRow:
        """Store a fault rule; its status must be one the mock can answer."""
        if rule.status is not None:
            self.error_for_status(rule.status)  # 400 for a status without a live message
        if rule.account_id is not None:
            self.account(rule.account_id)
        row = rule.to_row("flt_" + uuid.uuid4().hex[:16], format_instant(self.now()))
        self.store.add_fault(row)
        return row

    def faults(self) -> list[FaultRow]:
        """The fault rules in the order they apply."""
        return self.store.list_faults()

    def delete_fault(self, fault_id: str) -> None:
        """Delete one fault rule."""
        if not self.store.delete_faults(fault_id):
            raise errors.NotFound(f"no fault rule with id {fault_id!r}")

    def clear_faults(self) -> None:
        """Delete every fault rule."""
        self.store.delete_faults()

    def add_fixture(
        self, image: IO[bytes], text: str, *, name: str, prompt: str = "", media_type: str | None
    ) -> RegisteredFixture:
        """Make OCR answer `text` for this image (with this prompt, or any when empty).

        The image must decode, as an OCR model would need it to: a fixture that no real
        service could answer is a mistake in the test, said at once rather than later.
        """
        decoding = examine(image)
        if not decoding.decodable:
            raise errors.BadControlRequest(
                f"the image {name!r} does not decode as an image: {decoding.problem}"
            )
        hashed = hashlib.sha256()
        for chunk in iter(lambda: image.read(1024 * 1024), b""):
            hashed.update(chunk)
        fixture = RegisteredFixture(name, hashed.hexdigest(), prompt.strip(), media_type, text)
        self.store.add_fixture(fixture.sha256, fixture.prompt, name, text, media_type)
        return fixture

    def fixtures(self) -> list[RegisteredFixture]:
        """The fixtures registered at run time, in the order they were added."""
        return [
            RegisteredFixture(
                row["name"], row["sha256"], row["prompt"], row["media_type"], row["text"]
            )
            for row in self.store.list_fixtures()
        ]

    def journal(
        self, account_id: str | None = None, status: int | None = None, limit: int | None = None
    ) -> list[JournalEntry]:
        """The API requests received, oldest first (the newest `limit` of them)."""
        return self.store.journal(account_id, status, limit)

    def clear_journal(self) -> None:
        """Forget every request received."""
        self.store.clear_journal()

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
        """Handle one `POST /ocr` in the live order of checks, journalling it in `entry`.

        Every request is journalled exactly once: a counted image in the transaction that
        counts it (`StateStore.count_image`), any other request here, at the end. Nothing
        that can fail runs after an image is counted, so a counted image is always answered
        200; and a journal that cannot be written never hides the request's own outcome.
        """
        started = time.perf_counter()
        journalled = False
        try:
            result = self._ocr(authorization, read_upload, entry, started)
            journalled = result.file_size > 0  # counted, and journalled with its count
            return result
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
            self._journal(entry, journalled)

    def _journal(self, entry: JournalEntry, journalled: bool) -> None:
        try:
            if not journalled:
                self.store.record(entry)
        except Exception:  # the client's answer stands; the log says what the journal lost
            log.exception("could not journal the request (%s %s)", entry.status, entry.error)
        finally:
            log_access(entry)

    def _ocr(
        self,
        authorization: str | None,
        read_upload: Callable[[], Upload],
        entry: JournalEntry,
        started: float,
    ) -> OcrResult:
        overrides = self.store.overrides()
        now = self.now(overrides)
        entry.time = format_instant(now)
        principal = self.authenticate(authorization, now)
        entry.account_id, entry.token_prefix = principal.account.id, principal.token.prefix
        period = period_of(now)
        self.check_quota(principal, period)
        upload = read_upload()
        try:
            return self._process(principal, upload, entry, started, period, overrides)
        finally:
            with contextlib.suppress(OSError):  # nothing may fail a counted image
                upload.stream.close()  # the spooled body is ours now: free it once answered

    def _process(
        self,
        principal: Principal,
        upload: Upload,
        entry: JournalEntry,
        started: float,
        period: str,
        overrides: Overrides,
    ) -> OcrResult:
        self._describe(entry, upload)
        self.validate(principal, upload)
        recognition = self.recognise(principal, upload, overrides)
        entry.fixture = recognition.fixture
        result = OcrResult(  # built before the count: nothing may fail once it is counted
            id=str(uuid.uuid4()),
            text=recognition.text,
            processing_time_ms=recognition.processing_time_ms or 0,
            file_name=upload.file_name,
            file_size=upload.size,
            mime_type=upload.mime_type,
        )
        self._finish(entry, started, 200, None, None)
        # The live service counts only non-empty files. A counted one is journalled with the
        # usage, in one transaction.
        if upload.size > 0 and not self.store.count_image(
            principal.account.id, period, principal.plan.images_per_month, upload.size, entry
        ):
            # Lost the race for the last image of the quota to a concurrent request: answer as
            # the live service would have, had this request arrived a moment later.
            limit = principal.plan.images_per_month or 0
            raise errors.MonthlyLimitReached(limit, limit)
        return result

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

    def recognise(self, principal: Principal, upload: Upload, overrides: Overrides) -> Recognition:
        """The OCR step: fault rules first, then fixtures, then deterministic text.

        `overrides` (read when the request arrived) tells which of the control API's tables to
        look in: a request that started before a rule or fixture was added does not see it.
        """
        started = time.perf_counter()
        fault = self.store.take_fault(principal.account.id) if overrides.any_faults else None
        if fault is not None:
            self._apply_fault(fault, principal)
        recognition = self._lookup(upload, overrides.any_fixtures)
        if recognition.processing_time_ms is None:
            elapsed = round((time.perf_counter() - started) * 1000)
            recognition = Recognition(recognition.text, elapsed, recognition.fixture)
        return recognition

    def _lookup(self, upload: Upload, any_registered: bool) -> Recognition:
        registered = (
            self.store.find_fixture(upload.sha256, upload.prompt) if any_registered else None
        )
        if registered is not None:
            return Recognition(registered[1].strip(), None, registered[0])
        known = self.catalogue.lookup(upload.sha256, upload.prompt)
        if known is not None:
            return known
        generated = self.unknown_images.recognise(upload)
        if isinstance(generated, Decoding):
            raise errors.OcrFailed(hint=_undecodable_hint(upload, generated))
        return generated

    def _apply_fault(self, fault: FaultRow, principal: Principal) -> None:
        if fault.delay_ms:
            with waiting():  # others are served meanwhile (turns.py)
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
                f"status must be one of {', '.join(map(str, OVERRIDE_STATUSES))}, got {status}"
            )
        return chosen()

    def preferred_failure(
        self, status: int, authorization: str | None, entry: JournalEntry
    ) -> errors.ApiError:
        """The answer to ``Prefer: code=<status>`` (a status of `OVERRIDE_STATUSES`): the live
        error for that status, journalled in `entry`. No check runs and no state changes; a
        valid token only lends its plan to the numbers of a 429."""
        started = time.perf_counter()
        now = self.now()
        entry.time = format_instant(now)
        principal = None
        try:
            principal = self.authenticate(authorization, now)
            entry.account_id, entry.token_prefix = principal.account.id, principal.token.prefix
        except errors.ApiError:
            pass  # the override answers whoever asks
        failure = self.error_for_status(status, principal)
        hint = f"answered from the request's `Prefer: code={status}` header; no check ran"
        self._finish(entry, started, failure.status, failure.error, hint)
        self.store.record(entry)
        log_access(entry)
        return failure

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
OVERRIDE_STATUSES: tuple[int, ...] = tuple(sorted([429, *_ERROR_FOR_STATUS]))
"""The statuses a fault rule or ``Prefer: code=`` can ask for (each has its live message)."""


def log_access(entry: JournalEntry) -> None:
    """One access-log line per API request, plus the hint when the request went wrong."""
    fixture = f"hit:{entry.fixture}" if entry.fixture else ("miss" if entry.status == 200 else "-")
    access_log.info(
        "%s %s %s token=%s fixture=%s size=%s time=%.1fms%s",
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
    if upload.declared_type == "":
        return (
            f"the file part {upload.file_name!r} has an empty Content-Type header (the live "
            "service reports the empty type); declare the image's type, e.g. image/png"
        )
    if upload.mime_type == "application/octet-stream":
        return (
            f"the file part {upload.file_name!r} was declared application/octet-stream, the "
            "type Node.js sends for a Blob without one (and curl -F for an unknown file "
            "extension); give the Blob its type: new Blob([bytes], {type: 'image/png'}) "
            "(curl: -F 'file=@scan;type=image/png')"
        )
    if upload.mime_type == "image/jpg":
        return "image/jpg is not a registered media type; declare JPEG files as image/jpeg"
    if ";" in upload.mime_type:
        return "the declared type must be the bare media type, without parameters such as charset"
    return None


def _undecodable_hint(upload: Upload, decoding: Decoding) -> str:
    if upload.size == 0:
        return "the file is empty; the live OCR model fails on it the same way"
    return (
        f"the bytes of {upload.file_name!r} do not decode as an image (declared "
        f"{upload.mime_type}): {decoding.problem}; the live OCR model fails on them the same way"
    )
