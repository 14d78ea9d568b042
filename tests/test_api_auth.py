"""POST /api/v1/ocr over real HTTP: authorization, token states, quota and the order of checks.

Every response is validated against openapi.yaml by the `api_client` session (see conftest).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import requests

from mockserver.backend import DEMO_ACCOUNTS, Backend
from mockserver.clock import parse_instant
from mockserver.plans import MIB, get_plan

FREE, PRO, ENTERPRISE = DEMO_ACCOUNTS
UNKNOWN = "itsocr_" + "Z" * 32
MISSING = "Missing Authorization header"
FORMAT = "Invalid Authorization header format. Expected: Bearer <token>"
TOKEN_FORMAT = "Invalid token format"
INVALID = "Invalid API token"
LIMIT = "Monthly limit reached. You have used {used} of {limit} images this month."

Post = Callable[..., requests.Response]
CheckError = Callable[..., None]


@pytest.fixture
def png_file(make_image: Callable[..., bytes]) -> dict[str, tuple[str, bytes, str]]:
    return {"file": ("scan.png", make_image("image/png"), "image/png")}


# -- the Authorization header (all 401) -------------------------------------------------------


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        ("", MISSING),
        ("Bearer", FORMAT),
        (FREE.token, FORMAT),
        ("Token " + FREE.token, FORMAT),
        ("Basic " + FREE.token, FORMAT),
        ("Bearer  " + FREE.token, FORMAT),  # two spaces
        ("Bearer\t" + FREE.token, FORMAT),  # a tab
        ("Bearer " + FREE.token + " x", FORMAT),  # a third word
        ("Bearer: " + FREE.token, FORMAT),  # wrong prefix
        ("Bearer " + FREE.token[:-1], TOKEN_FORMAT),  # 38 characters
        ("Bearer " + FREE.token + "0", TOKEN_FORMAT),  # 40 characters
        ("Bearer ITSOCR_" + FREE.token[7:], TOKEN_FORMAT),  # the prefix is case-sensitive
        ("Bearer itsocr-" + FREE.token[7:], TOKEN_FORMAT),
        ("Bearer " + UNKNOWN, INVALID),
        ("Bearer itsocr_" + "-" * 32, INVALID),  # characters after the prefix are not checked
    ],
)
def test_bad_authorization_is_401_with_the_live_message(
    post_ocr: Post, png_file: dict, assert_api_error: CheckError, authorization: str, message: str
) -> None:
    assert_api_error(post_ocr(authorization=authorization, files=png_file), 401, message)


def test_no_authorization_header_is_401(
    post_ocr: Post, png_file: dict, assert_api_error: CheckError
) -> None:
    assert_api_error(post_ocr(token=None, files=png_file), 401, MISSING)


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEARER"])
def test_the_scheme_is_case_insensitive(
    post_ocr: Post, png_file: dict, assert_ocr_success: Callable[..., dict], scheme: str
) -> None:
    assert_ocr_success(post_ocr(authorization=f"{scheme} {FREE.token}", files=png_file))


def test_surrounding_whitespace_of_the_header_is_trimmed(
    raw_http: Callable[..., object],
    ocr_url: str,
    multipart: Any,
    make_image: Callable[..., bytes],
    assert_ocr_success: Callable[..., dict],
) -> None:
    body = multipart.body(multipart.Part("file", make_image(), "a.png", "image/png"))
    headers = {"Authorization": f"  Bearer {FREE.token}  ", "Content-Type": multipart.content_type}
    assert_ocr_success(raw_http("POST", ocr_url, body, headers), fileName="a.png")


# -- token states ------------------------------------------------------------------------------


def test_a_revoked_token_is_refused(
    backend: Backend, post_ocr: Post, png_file: dict, assert_api_error: CheckError
) -> None:
    _, new = backend.create_account("pro")
    backend.store.revoke_token(new.row.id, "2026-01-01T00:00:00.000Z")
    assert_api_error(post_ocr(token=new.token, files=png_file), 401, "API token has been revoked")


def test_an_expired_token_is_refused_and_revocation_wins(
    backend: Backend, post_ocr: Post, png_file: dict, assert_api_error: CheckError
) -> None:
    backend.store.set_frozen_now("2026-03-10T08:00:00Z")
    now = parse_instant("2026-03-10T08:00:00Z")
    fresh = backend.create_token(FREE.id, expires_at=now + timedelta(days=1))
    expired = backend.create_token(FREE.id, expires_at=now - timedelta(seconds=1))
    both = backend.create_token(FREE.id, expires_at=now - timedelta(seconds=1))
    backend.store.revoke_token(both.row.id, "2026-03-10T07:00:00Z")
    assert post_ocr(token=fresh.token, files=png_file).status_code == 200
    assert_api_error(post_ocr(token=expired.token, files=png_file), 401, "API token has expired")
    assert_api_error(post_ocr(token=both.token, files=png_file), 401, "API token has been revoked")
    backend.store.set_frozen_now("2026-03-11T08:00:00Z")  # the clock reaches `fresh`'s expiry
    assert_api_error(post_ocr(token=fresh.token, files=png_file), 401, "API token has expired")


def test_a_token_of_a_deleted_account_is_user_not_found(
    backend: Backend, post_ocr: Post, png_file: dict, assert_api_error: CheckError
) -> None:
    account, new = backend.create_account("enterprise")
    backend.store.delete_account(account.id)
    assert_api_error(post_ocr(token=new.token, files=png_file), 401, "User not found")


def test_every_demo_token_works(
    post_ocr: Post, png_file: dict, assert_ocr_success: Callable[..., dict]
) -> None:
    for demo in DEMO_ACCOUNTS:
        assert_ocr_success(post_ocr(token=demo.token, files=png_file), fileName="scan.png")


# -- quota -------------------------------------------------------------------------------------


def test_quota_allows_exactly_the_plan_limit_then_429(
    backend: Backend,
    post_ocr: Post,
    png_file: dict,
    assert_api_error: CheckError,
    images_used: Callable[[str], int],
) -> None:
    limit = get_plan("free").images_per_month
    assert limit == 10
    statuses = [post_ocr(files=png_file).status_code for _ in range(limit)]
    assert statuses == [200] * limit
    refused = post_ocr(files=png_file)
    assert_api_error(refused, 429, LIMIT.format(used=limit, limit=limit))
    assert images_used(FREE.id) == limit


def test_the_429_shows_the_stored_count(
    backend: Backend, post_ocr: Post, png_file: dict, assert_api_error: CheckError
) -> None:
    backend.store.set_images_used(PRO.id, backend.now().strftime("%Y-%m"), 612)
    assert_api_error(
        post_ocr(token=PRO.token, files=png_file), 429, LIMIT.format(used=612, limit=500)
    )


def test_the_quota_is_per_account_not_per_token(
    backend: Backend, post_ocr: Post, png_file: dict, assert_api_error: CheckError
) -> None:
    second = backend.create_token(FREE.id)
    backend.store.set_images_used(FREE.id, backend.now().strftime("%Y-%m"), 9)
    assert post_ocr(token=second.token, files=png_file).status_code == 200
    assert_api_error(post_ocr(files=png_file), 429, LIMIT.format(used=10, limit=10))


def test_the_quota_restarts_on_the_first_of_the_utc_month(
    backend: Backend,
    post_ocr: Post,
    png_file: dict,
    assert_api_error: CheckError,
    images_used: Callable[[str], int],
) -> None:
    backend.store.set_frozen_now("2026-04-30T23:59:59.999Z")
    backend.store.set_images_used(FREE.id, "2026-04", 10)
    assert_api_error(post_ocr(files=png_file), 429, LIMIT.format(used=10, limit=10))
    backend.store.set_frozen_now("2026-05-01T00:00:00.000Z")
    assert post_ocr(files=png_file).status_code == 200
    assert images_used(FREE.id) == 1


def test_enterprise_has_no_quota(
    backend: Backend, post_ocr: Post, png_file: dict, images_used: Callable[[str], int]
) -> None:
    backend.store.set_images_used(ENTERPRISE.id, backend.now().strftime("%Y-%m"), 10**6)
    assert post_ocr(token=ENTERPRISE.token, files=png_file).status_code == 200
    assert images_used(ENTERPRISE.id) == 10**6 + 1


# -- the order of checks -------------------------------------------------------------------


def exhaust(backend: Backend, account_id: str = FREE.id) -> None:
    account = backend.store.get_account(account_id)
    assert account is not None
    limit = get_plan(account.plan).images_per_month
    backend.store.set_images_used(account_id, backend.now().strftime("%Y-%m"), limit or 0)


def test_authorization_comes_before_the_quota(
    backend: Backend, post_ocr: Post, png_file: dict, assert_api_error: CheckError
) -> None:
    exhaust(backend)
    revoked = backend.create_token(FREE.id)
    backend.store.revoke_token(revoked.row.id, "2026-01-01T00:00:00Z")
    assert_api_error(post_ocr(token=revoked.token, json={}), 401, "API token has been revoked")
    assert_api_error(post_ocr(authorization="Token x", files=png_file), 401, FORMAT)


@pytest.mark.parametrize(
    "body",
    [
        {"json": {"file": "scan.png"}},
        {"data": b"garbage", "headers": {"Content-Type": "text/plain"}},
        {"data": b"", "headers": {"Content-Type": "multipart/form-data"}},
        {"files": {"image": ("scan.pdf", b"%PDF-1.7", "application/pdf")}},
    ],
    ids=["json", "text", "no-boundary", "no-file-part"],
)
def test_an_exhausted_quota_is_429_whatever_the_body(
    backend: Backend, post_ocr: Post, assert_api_error: CheckError, body: dict
) -> None:
    exhaust(backend)
    assert_api_error(post_ocr(**body), 429, LIMIT.format(used=10, limit=10))


def test_an_oversized_body_on_an_exhausted_account_is_429(
    backend: Backend, post_ocr: Post, assert_api_error: CheckError
) -> None:
    """The quota is checked before the body is even parsed: the 50 MiB ceiling comes later."""
    exhaust(backend)
    huge = {"file": ("huge.png", bytes(60 * MIB), "image/png")}
    assert_api_error(post_ocr(files=huge), 429, LIMIT.format(used=10, limit=10))


def test_a_pdf_just_over_the_free_limit_is_an_unsupported_type(
    post_ocr: Post, assert_api_error: CheckError, images_used: Callable[[str], int]
) -> None:
    pdf = b"%PDF-1.7\n" + bytes(get_plan("free").max_file_size + 1 - 9)
    response = post_ocr(files={"file": ("big.pdf", pdf, "application/pdf")})
    assert_api_error(response, 400, unsupported("application/pdf"))
    assert images_used(FREE.id) == 0


def test_the_ceiling_comes_before_the_plan_limit(
    post_ocr: Post, make_image: Callable[..., bytes], assert_api_error: CheckError
) -> None:
    over = make_image() + bytes(50 * MIB + 1 - len(make_image()))
    response = post_ocr(files={"file": ("over.png", over, "image/png")})
    assert_api_error(response, 400, "File too large. Maximum size: 50MB")


def test_the_plan_limit_comes_before_ocr(
    post_ocr: Post, assert_api_error: CheckError, images_used: Callable[[str], int]
) -> None:
    undecodable = bytes(5 * MIB + 1)
    response = post_ocr(files={"file": ("zeros.png", undecodable, "image/png")})
    assert_api_error(response, 400, "File too large for your plan. Maximum size: 5MB")


# -- what counts ---------------------------------------------------------------------------


def test_only_successful_ocr_of_a_non_empty_file_counts(
    backend: Backend,
    post_ocr: Post,
    png_file: dict,
    make_image: Callable[..., bytes],
    assert_api_error: CheckError,
    images_used: Callable[[str], int],
) -> None:
    failures = [
        (post_ocr(token=UNKNOWN, files=png_file), 401),
        (post_ocr(json={}), 400),
        (post_ocr(files={"file": ("a.jpg", make_image(), "image/jpg")}), 400),
        (post_ocr(files={"file": ("a.png", b"not an image", "image/png")}), 500),
        (post_ocr(files={"file": ("empty.png", b"", "image/png")}), 500),
    ]
    assert [response.status_code for response, _ in failures] == [s for _, s in failures]
    assert images_used(FREE.id) == 0
    assert post_ocr(files=png_file).status_code == 200
    assert images_used(FREE.id) == 1
    exhaust(backend)
    assert post_ocr(files=png_file).status_code == 429
    assert images_used(FREE.id) == 10


def test_an_empty_file_fails_ocr_without_counting(
    post_ocr: Post, assert_api_error: CheckError, images_used: Callable[[str], int]
) -> None:
    response = post_ocr(files={"file": ("empty.png", b"", "image/png")})
    assert_api_error(response, 500, "OCR processing failed. Please try again.")
    assert images_used(FREE.id) == 0


def unsupported(media_type: str) -> str:
    return (
        f"Unsupported file type: {media_type}. Allowed types: image/jpeg, image/png, image/gif, "
        "image/webp, image/heic, image/heif, image/tiff, image/bmp"
    )
