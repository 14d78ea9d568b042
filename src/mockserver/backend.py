"""The mock's one stateful facade: the live service's rules, with no HTTP in sight.

`Backend.ocr` runs the live service's order of checks -- authorization, quota, body, file,
declared type, 50 MiB ceiling, plan size, OCR, usage +1 -- and journals the request. The HTTP
layer hands it the Authorization header and a callable that parses the upload, so that the body
is read only after authorization and quota have passed, exactly as the live service does.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from mockserver import errors
from mockserver.clock import format_instant, parse_instant, period_of, utc_now
from mockserver.contract import allowed_media_types, max_file_size
from mockserver.fixtures import Recognition
from mockserver.imaging import Decoding
from mockserver.plans import Plan, get_plan
from mockserver.quoting import abbreviated, escaped
from mockserver.recognition import UnknownImages
from mockserver.state import (  # re-exported: the control state's names
    OVERRIDE_STATUSES,
    MockState,
    RegisteredFixture,
    Usage,
    error_for_status,
    known_plan,
)
from mockserver.store import AccountRow, FaultRow, JournalEntry, Overrides, ReadAhead, TokenRow
from mockserver.tokens import (  # re-exported: the token helpers' names
    DEMO_ACCOUNTS,
    DISPLAY_PREFIX_LENGTH,
    MAX_ACTIVE_TOKENS,
    TOKEN_LENGTH,
    TOKEN_PREFIX,
    DemoAccount,
    NewToken,
    digest,
    generate_token,
    parse_authorization,
)
from mockserver.turns import waiting
from mockserver.upload import Upload  # re-exported: the pipeline's input

__all__ = [  # the pipeline's own names, and (for callers written before the split) the others
    "DEMO_ACCOUNTS",
    "DISPLAY_PREFIX_LENGTH",
    "MAX_ACTIVE_TOKENS",
    "OVERRIDE_STATUSES",
    "TOKEN_LENGTH",
    "TOKEN_PREFIX",
    "Backend",
    "DemoAccount",
    "MockState",
    "NewToken",
    "OcrResult",
    "Principal",
    "RegisteredFixture",
    "UnknownImages",
    "Upload",
    "Usage",
    "digest",
    "error_for_status",
    "generate_token",
    "known_plan",
    "log_access",
    "parse_authorization",
]

log = logging.getLogger("itsocr_mock")
access_log = logging.getLogger("itsocr_mock.access")

DROPPED = "connection dropped by a fault rule"  # the journal's error for a dropped request


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


@dataclass
class Backend(MockState):
    """The mock itsOCR service: the OCR request pipeline over the control state (`MockState`).

    The methods `tests/broken/` overrides to build defective implementations are a protected
    seam -- `authenticate`, `check_quota`, `validate`, `recognise`, `ocr` here, `now` and
    `usage` of `MockState`, `count_image` of the store: keep their signatures and meaning.
    """

    unknown_images: UnknownImages = field(default_factory=UnknownImages, repr=False)

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
        except errors.CountedFailure as counted:  # already finished (and maybe journalled)
            journalled = counted.journalled
            raise counted.failure from None
        except errors.ApiError as failure:
            self._finish(entry, started, failure.status, failure.error, failure.hint)
            raise
        except errors.ConnectionDropped:
            self._finish(entry, started, 0, DROPPED, None)
            raise
        except errors.StateUnavailable as lost:
            # Nothing was counted (a count is written with its journal entry, or not at all):
            # the live service's answer to a failure of its own, and the reason in the log.
            answer = errors.OcrFailed(hint=f"{lost}; answered 500 until it is back")
            self._finish(entry, started, answer.status, answer.error, answer.hint)
            raise answer from lost
        except Exception as failure:  # answered as the live 500 by the HTTP layer
            self._finish(entry, started, 500, errors.UnexpectedError.message, repr(failure))
            raise
        finally:
            self._journal(entry, journalled)

    def _journal(self, entry: JournalEntry, journalled: bool) -> None:
        try:
            if not journalled:
                self.store.record(entry)
        except errors.StateUnavailable:
            pass  # the state is lost: the hint of the answer (logged below) says so already
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
        # The state is read once on arrival, with what authentication and the quota look up
        # next (a state across the network then answers them from that one read).
        ahead = ReadAhead(_digest_of(authorization), period_of(utc_now()))
        with self.store.arriving(ahead) as overrides:
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
        try:
            recognition = self.recognise(principal, upload, overrides)
        except errors.CountedFailure as counted:
            self._count_failed(counted, principal, upload, entry, started, period)
            raise
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
        # What the client sent is kept bounded (a 20 MB prompt is journalled in 2 KiB).
        entry.file_name, entry.mime_type = (
            abbreviated(upload.file_name),
            abbreviated(upload.mime_type),
        )
        entry.file_size, entry.sha256 = upload.size, upload.sha256
        entry.prompt = abbreviated(upload.prompt) or None

    def validate(self, principal: Principal, upload: Upload) -> None:
        """Declared type, then the global ceiling, then the plan's limit (all 400)."""
        if upload.mime_type not in allowed_media_types():
            raise errors.UnsupportedFileType(upload.mime_type, hint=upload.type_hint())
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
            raise errors.OcrFailed(hint=upload.undecodable_hint(generated))
        return generated

    def _apply_fault(self, fault: FaultRow, principal: Principal) -> None:
        if fault.delay_ms:
            with waiting():  # others are served meanwhile (turns.py)
                time.sleep(fault.delay_ms / 1000)
        failure: errors.ApiError | errors.ConnectionDropped
        if fault.drop_connection:
            failure = errors.ConnectionDropped()
        elif fault.status is not None:
            failure = self.error_for_status(fault.status, principal)
            if fault.error:
                failure.error = fault.error
            failure.hint = f"fault rule {fault.id}"
        else:
            return  # a delay only
        raise errors.CountedFailure(failure) if fault.counts_usage else failure

    def _count_failed(
        self,
        counted: errors.CountedFailure,
        principal: Principal,
        upload: Upload,
        entry: JournalEntry,
        started: float,
        period: str,
    ) -> None:
        """Count the image of a request a `countsUsage` fault rule fails, and journal it with
        its failure, in one transaction (as a success is); an empty file is not counted."""
        failure = counted.failure
        if isinstance(failure, errors.ApiError):
            status, error, hint = failure.status, failure.error, failure.hint
        else:
            status, error, hint = 0, DROPPED, None
        hint = f"{hint or 'a fault rule'}: the image was counted first (countsUsage)"
        self._finish(entry, started, status, error, hint)
        counted.journalled = upload.size > 0 and self.store.count_image(
            principal.account.id, period, principal.plan.images_per_month, upload.size, entry
        )

    def error_for_status(self, status: int, principal: Principal | None = None) -> errors.ApiError:
        """The live service's error for a status, for fault rules and ``Prefer: code=``."""
        return error_for_status(status, principal.plan if principal else None)

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
        entry.status = status
        entry.error = abbreviated(error) if error is not None else None
        # A hint the HTTP layer gave the entry (an ignored `Prefer`) stays, the request's added.
        joined = "; ".join(filter(None, (entry.hint, hint))) or None
        entry.hint = abbreviated(joined) if joined is not None else None
        entry.duration_ms = round((time.perf_counter() - started) * 1000, 3)


def _digest_of(authorization: str | None) -> str | None:
    """The digest of the header's token, or None when the header holds none (authentication
    then tells the client why, in the live order of checks)."""
    try:
        return digest(parse_authorization(authorization))
    except errors.ApiError:
        return None


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
        # The entry's error and hint were abbreviated when they were set (`_finish`).
        f' error="{escaped(entry.error)}"' if entry.error else "",
    )
    if entry.hint:
        log.warning("hint: %s", escaped(entry.hint))
