"""Broken backends: the mock's `Backend` (or `Store`) with exactly one rule done wrong.

Each class overrides one public step of the OCR request -- `authenticate`, `check_quota`,
`validate`, `recognise`, `ocr`, the clock's `now` -- or the store's usage count, the way a
reimplementation could plausibly get it wrong. Everything else, the control API included, is
the faithful mock's, so that the contract suite drives the state exactly as it does on the mock.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from PIL import Image, UnidentifiedImageError

from mockserver import errors
from mockserver.backend import (
    DEMO_ACCOUNTS,
    TOKEN_LENGTH,
    TOKEN_PREFIX,
    Backend,
    OcrResult,
    Principal,
    Upload,
    digest,
    parse_authorization,
)
from mockserver.clock import parse_instant, period_of
from mockserver.contract import allowed_media_types, max_file_size
from mockserver.fixtures import Recognition
from mockserver.plans import get_plan
from mockserver.store import AccountRow, JournalEntry, Overrides, Store

ReadUpload = Callable[[], Upload]


def _principal(backend: Backend, token: str) -> Principal:
    """The principal of a stored token, whatever its state (revoked, expired)."""
    found = backend.store.find_token(digest(token))
    assert found is not None, "the token must exist"
    row, account = found
    assert account is not None, "the token's account must exist"
    return Principal(row, account, get_plan(account.plan))


# -- authentication -----------------------------------------------------------------------


class AuthNotEnforced(Backend):
    """Any request is served: without a valid token, as the Enterprise demo account."""

    def authenticate(self, authorization: str | None, now: datetime) -> Principal:
        try:
            return super().authenticate(authorization, now)
        except errors.ApiError as failure:
            if failure.status != 401:
                raise
            return _principal(self, DEMO_ACCOUNTS[-1].token)


class BareTokenAccepted(Backend):
    """Accepts a header holding the bare token, without the ``Bearer`` scheme."""

    def authenticate(self, authorization: str | None, now: datetime) -> Principal:
        if (authorization or "").strip().startswith(TOKEN_PREFIX):
            authorization = f"Bearer {(authorization or '').strip()}"
        return super().authenticate(authorization, now)


class BodyCheckedBeforeAuth(Backend):
    """Parses the body before looking at the token: a bad body is a 400 even without one."""

    def ocr(
        self, authorization: str | None, read_upload: ReadUpload, entry: JournalEntry
    ) -> OcrResult:
        upload = read_upload()  # a 400 here is answered before authentication is even tried
        try:
            return super().ocr(authorization, lambda: upload, entry)
        finally:
            upload.stream.close()  # the mock closes it only once it has read it itself


class LongTokenAccepted(Backend):
    """Compares only the first 39 characters: a token with extra characters is the account's."""

    def authenticate(self, authorization: str | None, now: datetime) -> Principal:
        scheme, _, token = (authorization or "").strip().partition(" ")
        if token.startswith(TOKEN_PREFIX) and len(token) > TOKEN_LENGTH:
            authorization = f"{scheme} {token[:TOKEN_LENGTH]}"
        return super().authenticate(authorization, now)


class UnknownTokenMessage(Backend):
    """Answers an unknown token with a generic message instead of ``Invalid API token``."""

    def authenticate(self, authorization: str | None, now: datetime) -> Principal:
        try:
            return super().authenticate(authorization, now)
        except errors.InvalidApiToken as failure:
            failure.error = "Unauthorized"
            raise


class ExpiredTokenAccepted(Backend):
    """Never looks at the expiry: an expired token still works."""

    def authenticate(self, authorization: str | None, now: datetime) -> Principal:
        try:
            return super().authenticate(authorization, now)
        except errors.TokenExpired:
            return _principal(self, parse_authorization(authorization))


class HeaderSplitOnWhitespace(Backend):
    """Splits the header on any run of whitespace: a tab or two spaces pass (`str.split()`)."""

    def authenticate(self, authorization: str | None, now: datetime) -> Principal:
        words = (authorization or "").split()
        if len(words) == 2:
            authorization = " ".join(words)
        return super().authenticate(authorization, now)


class SchemeCaseSensitive(Backend):
    """Accepts only ``Bearer`` spelled so: ``bearer`` and ``BEARER`` are a format error."""

    def authenticate(self, authorization: str | None, now: datetime) -> Principal:
        scheme = (authorization or "").strip().split(" ")[0]
        if scheme.lower() == "bearer" and scheme != "Bearer":
            raise errors.InvalidAuthorizationFormat()
        return super().authenticate(authorization, now)


class RevokedCheckedAfterExpiry(Backend):
    """Checks the expiry first: a token both revoked and expired is reported expired."""

    def authenticate(self, authorization: str | None, now: datetime) -> Principal:
        try:
            return super().authenticate(authorization, now)
        except errors.TokenRevoked:
            token = _principal(self, parse_authorization(authorization)).token
            if token.expires_at is not None and parse_instant(token.expires_at) <= now:
                raise errors.TokenExpired() from None
            raise


class DeletedAccountTokenAccepted(Backend):
    """Keeps serving the tokens of a deleted account (as a Free account)."""

    def authenticate(self, authorization: str | None, now: datetime) -> Principal:
        try:
            return super().authenticate(authorization, now)
        except errors.UserNotFound:
            found = self.store.find_token(digest(parse_authorization(authorization)))
            assert found is not None
            token = found[0]
            orphan = AccountRow(token.account_id, "free", token.created_at)
            return Principal(token, orphan, get_plan("free"))


class RevokedTokenAccepted(Backend):
    """Never looks at the revocation: a revoked token still works."""

    def authenticate(self, authorization: str | None, now: datetime) -> Principal:
        try:
            return super().authenticate(authorization, now)
        except errors.TokenRevoked:
            return _principal(self, parse_authorization(authorization))


# -- the quota ----------------------------------------------------------------------------


class UncountedLimitStore(Store):
    """Counts every successful image, ignoring the limit: the check is left to `check_quota`
    alone, before the OCR call -- the live service's non-atomic check-then-increment."""

    def count_image(
        self, account_id: str, period: str, limit: int | None, size: int, entry: JournalEntry
    ) -> bool:
        return super().count_image(account_id, period, None, size, entry)


class OffByOneStore(Store):
    """Lets the usage reach the limit + 1."""

    def count_image(
        self, account_id: str, period: str, limit: int | None, size: int, entry: JournalEntry
    ) -> bool:
        bound = None if limit is None else limit + 1
        return super().count_image(account_id, period, bound, size, entry)


class CappedCountStore(Store):
    """The live service's count: +1 after every successful OCR, never stored above the limit,
    and never refusing -- so a request that passed the quota check always gets its 200."""

    def count_image(
        self, account_id: str, period: str, limit: int | None, size: int, entry: JournalEntry
    ) -> bool:
        if limit is None:
            return super().count_image(account_id, period, None, size, entry)
        with self.transaction() as db:
            db.execute(
                "INSERT INTO usage (account_id, period, images_used, bytes_processed) "
                "VALUES (?, ?, MIN(1, ?), ?) ON CONFLICT (account_id, period) DO UPDATE SET "
                "images_used = MIN(images_used + 1, ?), "
                "bytes_processed = bytes_processed + excluded.bytes_processed",
                (account_id, period, limit, size, limit),
            )
            self._insert_journal(db, entry)
        return True


class SlowOcr(Backend):
    """OCR that takes a while, as a real engine does (use with `CappedCountStore`: the live
    service's race, wide enough for simultaneous requests to all pass the quota check)."""

    ocr_seconds = 0.1

    def recognise(self, principal: Principal, upload: Upload, overrides: Overrides) -> Recognition:
        time.sleep(self.ocr_seconds)
        return super().recognise(principal, upload, overrides)


class QuotaNotEnforced(Backend):
    """Counts the usage but never refuses a request for it (use with `UncountedLimitStore`)."""

    def check_quota(self, principal: Principal, period: str) -> None:
        return None


class QuotaOffByOne(Backend):
    """Refuses only once the usage is over the limit: one image too many per month (use with
    `OffByOneStore`)."""

    def check_quota(self, principal: Principal, period: str) -> None:
        used, _ = self.store.usage(principal.account.id, period)
        limit = principal.plan.images_per_month
        if limit is not None and used > limit:
            raise errors.MonthlyLimitReached(used, limit)


class UnlimitedPlanCapped(Backend):
    """Gives a plan without a monthly limit a hidden one of 100,000 images."""

    cap = 100_000

    def check_quota(self, principal: Principal, period: str) -> None:
        super().check_quota(principal, period)
        used, _ = self.store.usage(principal.account.id, period)
        if principal.plan.images_per_month is None and used >= self.cap:
            raise errors.MonthlyLimitReached(used, self.cap)


class ServerLocalTime(Backend):
    """Takes the server's local time (UTC+1) for UTC: its months start an hour early."""

    offset = timedelta(hours=1)

    def now(self, overrides: Overrides | None = None) -> datetime:
        return super().now(overrides) + self.offset


class SignupMonthStore(Store):
    """Counts every image in the month the account was created: the usage never resets."""

    def _signup_period(self, account_id: str, period: str) -> str:
        account = self.get_account(account_id)
        return period_of(parse_instant(account.created_at)) if account else period

    def usage(self, account_id: str, period: str) -> tuple[int, int]:
        return super().usage(account_id, self._signup_period(account_id, period))

    def count_image(
        self, account_id: str, period: str, limit: int | None, size: int, entry: JournalEntry
    ) -> bool:
        period = self._signup_period(account_id, period)
        return super().count_image(account_id, period, limit, size, entry)


class QuotaAfterBody(Backend):
    """Checks the quota only once the upload is read and its type known, not before the body."""

    def check_quota(self, principal: Principal, period: str) -> None:
        return None  # moved to `validate`

    def validate(self, principal: Principal, upload: Upload) -> None:
        Backend.check_quota(self, principal, period_of(self.now()))
        super().validate(principal, upload)


class ErrorsConsumeQuota(Backend):
    """Counts an image for every request that got past authentication and the quota, refused
    (400) or failed (500) as well as successful."""

    def ocr(
        self, authorization: str | None, read_upload: ReadUpload, entry: JournalEntry
    ) -> OcrResult:
        try:
            return super().ocr(authorization, read_upload, entry)
        except errors.ApiError as failure:
            if failure.status in (400, 500) and entry.account_id is not None:
                used = self.usage(entry.account_id).images_used
                self.set_usage(entry.account_id, used + 1)
            raise


# -- size limits --------------------------------------------------------------------------


class NotMultipartIsMissingFile(Backend):
    """Reads any body as a form: one that is not multipart is "Missing required field: file"."""

    def ocr(
        self, authorization: str | None, read_upload: ReadUpload, entry: JournalEntry
    ) -> OcrResult:
        def read() -> Upload:
            try:
                return read_upload()
            except errors.InvalidRequestBody:
                raise errors.MissingFile() from None

        return super().ocr(authorization, read, entry)


class SizeLimitExclusive(Backend):
    """Treats the plan's maximum as exclusive: a file of exactly N MiB is refused."""

    def validate(self, principal: Principal, upload: Upload) -> None:
        super().validate(principal, upload)
        if upload.size == principal.plan.max_file_size:
            raise errors.FileTooLargeForPlan(principal.plan.max_file_size_mb)


class PlanSizeNotEnforced(Backend):
    """Applies the global 50 MiB ceiling to every plan, never the plan's own maximum."""

    def validate(self, principal: Principal, upload: Upload) -> None:
        plan = dataclasses.replace(principal.plan, max_file_size=max_file_size())
        super().validate(dataclasses.replace(principal, plan=plan), upload)


class SizeCheckedBeforeType(Backend):
    """Checks the plan's size before the declared type: an oversized PDF is "too large"."""

    def validate(self, principal: Principal, upload: Upload) -> None:
        if upload.size > principal.plan.max_file_size:
            raise errors.FileTooLargeForPlan(principal.plan.max_file_size_mb)
        super().validate(principal, upload)


class GlobalCeilingMissing(Backend):
    """Checks the declared type and the plan's maximum, but not the global 50 MiB ceiling."""

    def validate(self, principal: Principal, upload: Upload) -> None:
        if upload.mime_type not in allowed_media_types():
            raise errors.UnsupportedFileType(upload.mime_type)
        if upload.size > principal.plan.max_file_size:
            raise errors.FileTooLargeForPlan(principal.plan.max_file_size_mb)


# -- declared type, echo and OCR ----------------------------------------------------------


class OtherTypesRefused(Backend):
    """Accepts only the types the vendor's docs name: JPEG, PNG, GIF and WebP."""

    named = ("image/jpeg", "image/png", "image/gif", "image/webp")

    def validate(self, principal: Principal, upload: Upload) -> None:
        if upload.mime_type not in self.named:
            raise errors.UnsupportedFileType(upload.mime_type)
        super().validate(principal, upload)


class ImageJpgAccepted(Backend):
    """Takes the unregistered ``image/jpg`` for ``image/jpeg``."""

    def validate(self, principal: Principal, upload: Upload) -> None:
        if upload.mime_type == "image/jpg":
            upload = dataclasses.replace(upload, declared_type="image/jpeg")
        super().validate(principal, upload)


def _sniffed(upload: Upload) -> Upload:
    """The upload with its type taken from the bytes (as Pillow identifies them)."""
    try:
        with Image.open(upload.stream) as image:
            sniffed = image.get_format_mimetype()
    except (UnidentifiedImageError, OSError):
        sniffed = None
    upload.stream.seek(0)
    return dataclasses.replace(upload, declared_type=sniffed or upload.declared_type)


class MimeTypeSniffed(Backend):
    """Trusts the bytes instead of the declared type: PNG bytes are image/png whatever the part
    says, so a PNG declared application/pdf is accepted."""

    def ocr(
        self, authorization: str | None, read_upload: ReadUpload, entry: JournalEntry
    ) -> OcrResult:
        return super().ocr(authorization, lambda: _sniffed(read_upload()), entry)


class MimeTypeNotLowerCased(Backend):
    """Validates the lower-cased type but echoes the declared one as sent (``Image/PNG``)."""

    def ocr(
        self, authorization: str | None, read_upload: ReadUpload, entry: JournalEntry
    ) -> OcrResult:
        declared: list[str | None] = []

        def read() -> Upload:
            upload = read_upload()
            declared.append(upload.declared_type)
            return upload

        result = super().ocr(authorization, read, entry)
        return dataclasses.replace(result, mime_type=declared[0] or result.mime_type)


class OcrLinesJoined(Backend):
    """Joins the recognised lines with spaces: every multi-line fixture comes back wrong."""

    def recognise(self, principal: Principal, upload: Upload, overrides: Overrides) -> Recognition:
        recognition = super().recognise(principal, upload, overrides)
        return dataclasses.replace(recognition, text=" ".join(recognition.text.splitlines()))


class UndecodableImageAccepted(Backend):
    """Answers bytes that do not decode as an image with a 200 and empty text, not a 500."""

    def recognise(self, principal: Principal, upload: Upload, overrides: Overrides) -> Recognition:
        try:
            return super().recognise(principal, upload, overrides)
        except errors.OcrFailed:
            return Recognition("", 1, None)


class PromptIgnored(Backend):
    """Never passes the `prompt` field on to OCR: a fixture's prompted text is never returned."""

    def ocr(
        self, authorization: str | None, read_upload: ReadUpload, entry: JournalEntry
    ) -> OcrResult:
        return super().ocr(
            authorization, lambda: dataclasses.replace(read_upload(), prompt=""), entry
        )
