"""The backend's rules with no HTTP: Backend + a store + uploads built from bytes.

Every test runs against both implementations of the storage interface: SQLite (in memory) and
Redis (a real redis-server, see the `redis_server` fixture)."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from mockserver import errors
from mockserver.backend import (
    DEMO_ACCOUNTS,
    DISPLAY_PREFIX_LENGTH,
    MAX_ACTIVE_TOKENS,
    Backend,
    OcrResult,
    Upload,
    digest,
    parse_authorization,
)
from mockserver.clock import parse_instant, period_of
from mockserver.contract import max_file_size
from mockserver.plans import MIB, get_plan
from mockserver.store import JournalEntry, StateStore, Store
from mockserver.store.redis import RedisStore

FREE, PRO, ENTERPRISE = DEMO_ACCOUNTS
TOKEN = "itsocr_" + "a" * 32
JANUARY = "2026-01-15T12:00:00.000Z"


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest) -> Iterator[StateStore]:
    """A private store of each implementation: SQLite in memory, keys of its own in Redis."""
    if request.param == "sqlite":
        opened: StateStore = Store(":memory:")
    else:
        server = request.getfixturevalue("redis_server")
        opened = RedisStore(server.url, request.getfixturevalue("redis_prefix"))
    yield opened
    opened.close()


@pytest.fixture
def backend(store: StateStore) -> Backend:
    """A fresh backend on a private store (shadows the HTTP mock's `backend`)."""
    backend = Backend(store)
    backend.reset()
    return backend


@pytest.fixture
def png(make_image: Callable[..., bytes]) -> bytes:
    return make_image("image/png")


def upload(
    data: bytes,
    declared_type: str | None = "image/png",
    *,
    file_name: str = "scan.png",
    prompt: str = "",
) -> Upload:
    return Upload(
        file_name=file_name,
        declared_type=declared_type,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        stream=io.BytesIO(data),
        prompt=prompt,
    )


def entry() -> JournalEntry:
    return JournalEntry(time="", method="POST", path="/api/v1/ocr")


def bearer(token: str) -> str:
    return f"Bearer {token}"


def ocr(backend: Backend, token: str, the_upload: Upload) -> OcrResult:
    return backend.ocr(bearer(token), lambda: the_upload, entry())


def used(backend: Backend, account_id: str) -> int:
    return backend.store.usage(account_id, period_of(backend.now()))[0]


def set_used(backend: Backend, account_id: str, images: int) -> None:
    backend.store.set_images_used(account_id, period_of(backend.now()), images)


def never_read() -> Upload:
    raise AssertionError("the body was read although an earlier check should have failed")


# -- the Authorization header ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "failure"),
    [
        (None, errors.MissingAuthorizationHeader),
        ("", errors.MissingAuthorizationHeader),
        ("   ", errors.MissingAuthorizationHeader),
        (TOKEN, errors.InvalidAuthorizationFormat),
        ("Token " + TOKEN, errors.InvalidAuthorizationFormat),
        ("Basic " + TOKEN, errors.InvalidAuthorizationFormat),
        ("Bearer  " + TOKEN, errors.InvalidAuthorizationFormat),
        ("Bearer\t" + TOKEN, errors.InvalidAuthorizationFormat),
        ("Bearer " + TOKEN + " extra", errors.InvalidAuthorizationFormat),
        ("Bearer", errors.InvalidAuthorizationFormat),
        ("Bearer ", errors.InvalidAuthorizationFormat),
        ("Bearer itsocr_short", errors.InvalidTokenFormat),
        ("Bearer " + TOKEN[:-1], errors.InvalidTokenFormat),
        ("Bearer " + TOKEN + "a", errors.InvalidTokenFormat),
        ("Bearer ITSOCR_" + "a" * 32, errors.InvalidTokenFormat),
        ("Bearer itsocr-" + "a" * 32, errors.InvalidTokenFormat),
        ("Bearer xitsocr_" + "a" * 31, errors.InvalidTokenFormat),
    ],
)
def test_malformed_authorization_is_refused_with_the_live_message(
    header: str | None, failure: type[errors.ApiError]
) -> None:
    with pytest.raises(failure) as raised:
        parse_authorization(header)
    assert raised.value.status == 401
    assert raised.value.error == failure.message


@pytest.mark.parametrize(
    "header",
    [
        "Bearer " + TOKEN,
        "bearer " + TOKEN,
        "BEARER " + TOKEN,
        "bEaReR " + TOKEN,
        "  Bearer " + TOKEN + " \t",
        "Bearer itsocr_" + "!-+é/." * 5 + "xy",  # characters after the prefix are not checked
    ],
)
def test_well_formed_authorization_yields_the_token(header: str) -> None:
    token = parse_authorization(header)
    assert token == header.strip().split(" ")[1]
    assert len(token) == 39


# -- token states ----------------------------------------------------------------------------


def test_a_demo_token_authenticates_to_its_account_and_plan(backend: Backend) -> None:
    for demo in DEMO_ACCOUNTS:
        principal = backend.authenticate(bearer(demo.token), backend.now())
        assert (principal.account.id, principal.plan.name) == (demo.id, demo.plan)


@pytest.mark.parametrize("token", [TOKEN, "itsocr_" + "!" * 32, FREE.token[:-1] + "1"])
def test_a_well_formed_unknown_token_is_an_invalid_api_token(backend: Backend, token: str) -> None:
    with pytest.raises(errors.InvalidApiToken):
        backend.authenticate(bearer(token), backend.now())


def test_a_revoked_token_is_refused(backend: Backend) -> None:
    _, new = backend.create_account("pro")
    backend.store.revoke_token(new.row.id, "2026-01-01T00:00:00.000Z")
    with pytest.raises(errors.TokenRevoked):
        backend.authenticate(bearer(new.token), backend.now())


def test_revocation_is_checked_before_expiry(backend: Backend) -> None:
    backend.store.set_frozen_now(JANUARY)
    new = backend.create_token(FREE.id, expires_at=parse_instant(JANUARY) - timedelta(days=1))
    backend.store.revoke_token(new.row.id, JANUARY)
    with pytest.raises(errors.TokenRevoked):
        backend.authenticate(bearer(new.token), backend.now())


def test_a_token_expires_at_its_expiry_instant(backend: Backend) -> None:
    """Decision: a token is expired from the instant `expiresAt` onwards (the docs say "past its
    expiry"; at the exact instant the mock already refuses it, as `now >= expiresAt` would)."""
    backend.store.set_frozen_now(JANUARY)
    expiry = parse_instant(JANUARY) + timedelta(days=1)
    new = backend.create_token(FREE.id, expires_at=expiry)
    backend.store.set_frozen_now((expiry - timedelta(milliseconds=1)).isoformat())
    assert backend.authenticate(bearer(new.token), backend.now()).account.id == FREE.id
    backend.store.set_frozen_now(expiry.isoformat())
    with pytest.raises(errors.TokenExpired):
        backend.authenticate(bearer(new.token), backend.now())


def test_a_token_of_a_deleted_account_is_user_not_found(backend: Backend) -> None:
    account, new = backend.create_account("free")
    assert backend.store.delete_account(account.id)
    with pytest.raises(errors.UserNotFound):
        backend.authenticate(bearer(new.token), backend.now())


def test_a_revoked_token_of_a_deleted_account_is_revoked(backend: Backend) -> None:
    account, new = backend.create_account("free")
    backend.store.revoke_token(new.row.id, JANUARY)
    backend.store.delete_account(account.id)
    with pytest.raises(errors.TokenRevoked):
        backend.authenticate(bearer(new.token), backend.now())


def test_tokens_are_stored_only_as_digest_and_display_prefix(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.sqlite3")
    backend = Backend(store)
    backend.reset()
    _, new = backend.create_account("pro")
    assert new.row.digest == hashlib.sha256(new.token.encode()).hexdigest() == digest(new.token)
    assert new.row.prefix == new.token[:DISPLAY_PREFIX_LENGTH]
    on_disk = b"".join(path.read_bytes() for path in tmp_path.iterdir())  # database + WAL
    store.close()
    for token in (new.token, *(demo.token for demo in DEMO_ACCOUNTS)):
        assert token.encode() not in on_disk
        assert digest(token).encode() in on_disk


def test_generated_tokens_have_the_live_format(backend: Backend) -> None:
    tokens = {backend.create_token(FREE.id).token for _ in range(5)}
    assert len(tokens) == 5
    for token in tokens:
        assert parse_authorization(bearer(token)) == token
        assert token[7:].isascii()
        assert token[7:].isalnum()


def test_an_account_holds_at_most_ten_active_tokens(backend: Backend) -> None:
    backend.store.set_frozen_now(JANUARY)
    extra = [backend.create_token(FREE.id) for _ in range(MAX_ACTIVE_TOKENS - 1)]  # + demo token
    with pytest.raises(errors.Conflict):
        backend.create_token(FREE.id)
    backend.store.revoke_token(extra[0].row.id, JANUARY)
    backend.create_token(FREE.id, expires_at=parse_instant(JANUARY) + timedelta(days=1))
    with pytest.raises(errors.Conflict):
        backend.create_token(FREE.id)
    backend.store.set_frozen_now("2026-01-17T00:00:00Z")  # `short` has expired: a slot is free
    backend.create_token(FREE.id)


def test_tokens_of_one_account_share_its_usage(backend: Backend, png: bytes) -> None:
    second = backend.create_token(FREE.id)
    ocr(backend, FREE.token, upload(png))
    ocr(backend, second.token, upload(png))
    assert used(backend, FREE.id) == 2


# -- quota -----------------------------------------------------------------------------------


def test_the_last_image_of_the_quota_is_allowed_and_the_next_refused(
    backend: Backend, png: bytes
) -> None:
    limit = get_plan("free").images_per_month
    assert limit is not None
    set_used(backend, FREE.id, limit - 1)
    ocr(backend, FREE.token, upload(png))
    assert used(backend, FREE.id) == limit
    with pytest.raises(errors.MonthlyLimitReached) as refused:
        ocr(backend, FREE.token, upload(png))
    assert refused.value.status == 429
    assert refused.value.error == (
        f"Monthly limit reached. You have used {limit} of {limit} images this month."
    )
    assert used(backend, FREE.id) == limit


def test_the_429_message_shows_the_stored_count_after_a_downgrade(
    backend: Backend, png: bytes
) -> None:
    set_used(backend, PRO.id, 12)
    backend.store.set_plan(PRO.id, "free")
    with pytest.raises(errors.MonthlyLimitReached) as refused:
        ocr(backend, PRO.token, upload(png))
    assert refused.value.error == "Monthly limit reached. You have used 12 of 10 images this month."


def test_enterprise_is_unlimited(backend: Backend, png: bytes) -> None:
    set_used(backend, ENTERPRISE.id, 10**9)
    ocr(backend, ENTERPRISE.token, upload(png))
    assert used(backend, ENTERPRISE.id) == 10**9 + 1


def test_an_upgrade_lifts_quota_and_size_limit_at_once(backend: Backend, png: bytes) -> None:
    set_used(backend, FREE.id, 10)
    big = png + bytes(6 * MIB)
    with pytest.raises(errors.MonthlyLimitReached):
        ocr(backend, FREE.token, upload(big))
    assert backend.store.set_plan(FREE.id, "pro")
    assert ocr(backend, FREE.token, upload(big)).file_size == len(big)
    assert used(backend, FREE.id) == 11


def test_the_count_starts_at_zero_on_the_first_of_each_utc_month(
    backend: Backend, png: bytes
) -> None:
    backend.store.set_frozen_now("2026-01-31T23:59:59.999Z")
    set_used(backend, FREE.id, 10)
    with pytest.raises(errors.MonthlyLimitReached):
        ocr(backend, FREE.token, upload(png))
    # 00:30 on 1 February at UTC+01:00 is still January in UTC.
    backend.store.set_frozen_now("2026-02-01T00:30:00+01:00")
    with pytest.raises(errors.MonthlyLimitReached):
        ocr(backend, FREE.token, upload(png))
    backend.store.set_frozen_now("2026-02-01T00:00:00.000Z")
    ocr(backend, FREE.token, upload(png))
    assert backend.store.usage(FREE.id, "2026-02") == (1, len(png))
    assert backend.store.usage(FREE.id, "2026-01")[0] == 10


# -- the order of checks ---------------------------------------------------------------------


def test_authorization_is_checked_before_anything_else(backend: Backend) -> None:
    set_used(backend, FREE.id, 10)
    with pytest.raises(errors.InvalidApiToken):
        backend.ocr(bearer(TOKEN), never_read, entry())


def test_an_exhausted_quota_is_refused_before_the_body_is_read(backend: Backend) -> None:
    set_used(backend, FREE.id, 10)
    with pytest.raises(errors.MonthlyLimitReached):
        backend.ocr(bearer(FREE.token), never_read, entry())


def test_body_errors_come_after_the_quota(backend: Backend) -> None:
    def garbage() -> Upload:
        raise errors.InvalidRequestBody()

    with pytest.raises(errors.InvalidRequestBody):
        backend.ocr(bearer(FREE.token), garbage, entry())


def test_type_is_checked_before_size(backend: Backend) -> None:
    pdf = b"%PDF-1.7\n" + bytes(5 * MIB + 1 - 9)
    with pytest.raises(errors.UnsupportedFileType) as refused:
        ocr(backend, FREE.token, upload(pdf, "application/pdf"))
    assert refused.value.error.startswith("Unsupported file type: application/pdf. Allowed types: ")


def test_the_global_ceiling_is_checked_before_the_plan_limit(backend: Backend) -> None:
    with pytest.raises(errors.FileTooLarge) as refused:
        ocr(backend, FREE.token, upload(bytes(max_file_size() + 1)))
    assert refused.value.error == "File too large. Maximum size: 50MB"


def test_size_is_checked_before_ocr(backend: Backend) -> None:
    with pytest.raises(errors.FileTooLargeForPlan) as refused:
        ocr(backend, FREE.token, upload(bytes(5 * MIB + 1)))  # zeros: undecodable, too
    assert refused.value.error == "File too large for your plan. Maximum size: 5MB"


@pytest.mark.parametrize("plan", ["free", "pro", "enterprise"])
def test_plan_limits_are_inclusive(backend: Backend, png: bytes, plan: str) -> None:
    demo = next(d for d in DEMO_ACCOUNTS if d.plan == plan)
    limit = get_plan(plan).max_file_size
    exact = png + bytes(limit - len(png))
    assert ocr(backend, demo.token, upload(exact)).file_size == limit
    expected = errors.FileTooLarge if limit == max_file_size() else errors.FileTooLargeForPlan
    with pytest.raises(expected):
        ocr(backend, demo.token, upload(exact + b"\0"))


# -- what counts -----------------------------------------------------------------------------


def test_only_a_successful_ocr_counts(backend: Backend, png: bytes) -> None:
    failures: list[tuple[str, Callable[[], Upload]]] = [
        (TOKEN, lambda: upload(png)),  # 401
        (FREE.token, lambda: upload(png, "image/jpg")),  # 400 type
        (FREE.token, lambda: upload(b"not an image")),  # 500
        (FREE.token, lambda: upload(b"")),  # 500, empty
    ]
    for token, make in failures:
        with pytest.raises(errors.ApiError):
            backend.ocr(bearer(token), make, entry())
    assert used(backend, FREE.id) == 0
    result = ocr(backend, FREE.token, upload(png, "IMAGE/PNG", file_name="a b.png", prompt="x"))
    assert used(backend, FREE.id) == 1
    assert (result.mime_type, result.file_name, result.file_size) == (
        "image/png",
        "a b.png",
        len(png),
    )


def test_undecodable_bytes_are_the_live_ocr_failure(backend: Backend) -> None:
    for data in (b"", b"\x89PNG\r\n\x1a\n" + b"\0" * 64):
        with pytest.raises(errors.OcrFailed) as failed:
            ocr(backend, FREE.token, upload(data))
        assert failed.value.status == 500
        assert failed.value.error == "OCR processing failed. Please try again."
        assert failed.value.hint  # the log says why
    assert used(backend, FREE.id) == 0


def test_a_request_that_loses_the_last_image_to_a_concurrent_one_gets_429(
    backend: Backend, png: bytes
) -> None:
    """The quota check passes at 9 of 10, then a concurrent request takes the 10th while this
    one's body is read: the atomic increment refuses it, and it is answered as a 429."""
    set_used(backend, FREE.id, 9)

    def read_while_another_request_counts() -> Upload:
        set_used(backend, FREE.id, 10)
        return upload(png)

    with pytest.raises(errors.MonthlyLimitReached) as refused:
        backend.ocr(bearer(FREE.token), read_while_another_request_counts, entry())
    assert refused.value.error == "Monthly limit reached. You have used 10 of 10 images this month."
    assert used(backend, FREE.id) == 10
    assert [e.status for e in backend.store.journal()] == [429]


def test_every_request_is_journalled_once(backend: Backend, png: bytes) -> None:
    ocr(backend, FREE.token, upload(png, file_name="ok.png", prompt="  tables  "))
    with pytest.raises(errors.UnsupportedFileType):
        ocr(backend, FREE.token, upload(png, None, file_name="plain.png"))
    ok, refused = backend.store.journal()
    assert (ok.status, ok.file_name, ok.mime_type, ok.account_id) == (
        200,
        "ok.png",
        "image/png",
        FREE.id,
    )
    assert ok.sha256 == hashlib.sha256(png).hexdigest()
    assert ok.token_prefix == FREE.token[:12]
    assert (refused.status, refused.mime_type) == (400, "text/plain")
    assert refused.hint is not None
    assert "files={'file': (" in refused.hint


def test_reset_wipes_usage_clock_and_accounts(backend: Backend, png: bytes) -> None:
    backend.create_account("pro")
    backend.store.set_frozen_now(JANUARY)
    ocr(backend, FREE.token, upload(png))
    backend.reset()
    backend.reset()  # idempotent
    assert backend.store.frozen_now() is None
    assert [a.id for a in backend.store.list_accounts()] == [d.id for d in DEMO_ACCOUNTS]
    assert used(backend, FREE.id) == 0
    assert backend.store.journal() == []


# -- the atomic increment --------------------------------------------------------------------


@pytest.mark.parametrize("where", ["memory", "file"])
def test_count_image_is_exact_under_threads(tmp_path: Path, where: str) -> None:
    store = Store(":memory:" if where == "memory" else tmp_path / "state.sqlite3")
    backend = Backend(store)
    backend.reset()
    limit, attempts = 10, 48
    start = threading.Barrier(attempts)
    outcomes: list[bool] = []

    def attempt() -> None:
        start.wait()
        outcomes.append(store.count_image(FREE.id, "2026-01", limit, 100, entry()))

    threads = [threading.Thread(target=attempt) for _ in range(attempts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count(True) == limit
    assert store.usage(FREE.id, "2026-01") == (limit, limit * 100)
    assert len(store.journal()) == limit  # the entry is written with the count, atomically
    store.close()


# -- one journal entry per request, and a counted image is a 200 -----------------------------


class _ClosingFails(io.BytesIO):
    def close(self) -> None:
        super().close()
        raise OSError("the spooled body could not be removed")


def test_a_counted_image_is_answered_200_even_if_freeing_its_body_fails(
    backend: Backend, png: bytes
) -> None:
    the_upload = dataclasses.replace(upload(png), stream=_ClosingFails(png))
    result = ocr(backend, FREE.token, the_upload)
    assert result.file_size == len(png)
    assert used(backend, FREE.id) == 1
    assert [e.status for e in backend.journal()] == [200]  # once, with its count


def test_a_journal_that_cannot_be_written_hides_no_error_and_skips_no_log_line(
    backend: Backend, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(_: JournalEntry) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(backend.store, "record", broken)
    with caplog.at_level(logging.INFO, logger="itsocr_mock"), pytest.raises(errors.InvalidApiToken):
        backend.ocr(bearer(TOKEN), never_read, entry())  # the client's 401 stands
    messages = [record.getMessage() for record in caplog.records]
    assert any(m.startswith("could not journal the request (401") for m in messages)
    assert any(" 401 token=- " in m for m in messages)  # the access line is still written


def test_every_failed_request_is_journalled_exactly_once(backend: Backend, png: bytes) -> None:
    set_used(backend, FREE.id, 10)
    with pytest.raises(errors.MonthlyLimitReached):
        ocr(backend, FREE.token, upload(png))
    with pytest.raises(errors.UnsupportedFileType):
        ocr(backend, PRO.token, upload(png, "text/plain"))
    with pytest.raises(errors.OcrFailed):
        ocr(backend, PRO.token, upload(b"", "image/png"))  # an empty file: the live 500
    assert ocr(backend, PRO.token, upload(png)).file_size == len(png)
    assert [e.status for e in backend.journal()] == [429, 400, 500, 200]
    assert used(backend, PRO.id) == 1
