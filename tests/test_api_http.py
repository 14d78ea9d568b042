"""The HTTP details of /api/v1/ocr over real HTTP: CORS, the preflight, 405, the trailing-slash
redirect, 404s, and bodies refused from their Content-Length, cut off, or chunked past the
ceiling. Every response to a documented operation is validated against openapi.yaml.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from mockserver.api import MULTIPART_OVERHEAD
from mockserver.backend import DEMO_ACCOUNTS
from mockserver.contract import cors_headers, max_file_size
from mockserver.plans import MIB

FREE, PRO, ENTERPRISE = DEMO_ACCOUNTS
TOO_LARGE = "File too large. Maximum size: 50MB"
INVALID_BODY = "Invalid request body. Expected multipart/form-data."

Post = Callable[..., requests.Response]
CheckError = Callable[..., None]
CheckSuccess = Callable[..., dict[str, Any]]


@pytest.fixture
def png(make_image: Callable[..., bytes]) -> bytes:
    return make_image("image/png")


# -- JSON responses --------------------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 400, 401, 429, 500])
def test_every_json_response_is_application_json_with_cors_headers(
    post_ocr: Post, backend: Any, png: bytes, status: int
) -> None:
    token, upload = FREE.token, ("a.png", png, "image/png")
    if status == 400:
        upload = ("a.pdf", b"%PDF-1.7", "application/pdf")
    elif status == 401:
        token = "itsocr_" + "0" * 32
    elif status == 429:
        backend.store.set_images_used(FREE.id, backend.now().strftime("%Y-%m"), 10)
    elif status == 500:
        upload = ("a.png", b"garbage", "image/png")
    response = post_ocr(token=token, files={"file": upload})
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/json"
    for header, value in cors_headers().items():
        assert response.headers[header] == value
    assert response.json()["success"] is (status == 200)


# -- the preflight ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Token nonsense"},
        {
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    ],
    ids=["bare", "bad-auth", "browser"],
)
def test_the_preflight_is_204_with_cors_and_max_age_and_needs_no_auth(
    api_client: requests.Session, ocr_url: str, headers: dict[str, str]
) -> None:
    response = api_client.options(ocr_url, headers=headers)
    assert response.status_code == 204
    assert response.content == b""
    assert "Content-Type" not in response.headers
    assert response.headers["Access-Control-Max-Age"] == "86400"
    for header, value in cors_headers().items():
        assert response.headers[header] == value


def test_the_preflight_uses_no_quota_and_leaves_no_journal(
    api_client: requests.Session, ocr_url: str, backend: Any, images_used: Callable[[str], int]
) -> None:
    backend.store.set_images_used(FREE.id, backend.now().strftime("%Y-%m"), 10)
    auth = {"Authorization": f"Bearer {FREE.token}"}
    assert api_client.options(ocr_url, headers=auth).status_code == 204
    assert images_used(FREE.id) == 10
    assert backend.store.journal() == []


# -- other methods ---------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
def test_other_methods_are_405_in_plain_text_without_a_content_type(
    api_client: requests.Session,
    ocr_url: str,
    png: bytes,
    method: str,
    images_used: Callable[[str], int],
) -> None:
    """The live framework builds this body without a Content-Type; no CORS headers either."""
    response = api_client.request(
        method,
        ocr_url,
        headers={"Authorization": f"Bearer {FREE.token}"},
        files={"file": ("a.png", png, "image/png")},
    )
    assert response.status_code == 405
    assert response.content == f"{method} method not allowed".encode()
    assert "Content-Type" not in response.headers
    assert "Access-Control-Allow-Origin" not in response.headers
    assert response.headers["Allow"] == "POST, OPTIONS"
    assert images_used(FREE.id) == 0


def test_head_is_405_without_a_body(api_client: requests.Session, ocr_url: str) -> None:
    """Decision: HEAD is "another method" too -- 405 with the `Allow` header, and no body as
    HEAD never has one. The spec does not list HEAD, so its response is not validated."""
    with api_client.off_contract():
        response = api_client.head(ocr_url)
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST, OPTIONS"
    assert response.content == b""


# -- paths -----------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "GET", "OPTIONS"])
def test_the_trailing_slash_redirects_with_308(
    api_client: requests.Session, ocr_url: str, method: str
) -> None:
    with api_client.off_contract():
        response = api_client.request(method, ocr_url + "/", allow_redirects=False)
    assert response.status_code == 308
    assert response.headers["Location"] in ("/api/v1/ocr", ocr_url)


def test_the_redirect_keeps_the_query_string(api_client: requests.Session, ocr_url: str) -> None:
    with api_client.off_contract():
        response = api_client.post(ocr_url + "/?lang=de", allow_redirects=False)
    assert response.headers["Location"].endswith("/api/v1/ocr?lang=de")


def test_following_the_redirect_repeats_the_upload(
    api_client: requests.Session,
    ocr_url: str,
    png: bytes,
    assert_ocr_success: CheckSuccess,
    images_used: Callable[[str], int],
) -> None:
    with api_client.off_contract():  # the 308 itself; the final response is validated
        response = api_client.post(
            ocr_url + "/",
            headers={"Authorization": f"Bearer {FREE.token}"},
            files={"file": ("a.png", png, "image/png")},
        )
    assert [r.status_code for r in response.history] == [308]
    assert_ocr_success(response, fileName="a.png")
    assert images_used(FREE.id) == 1


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/api",
        "/api/v1",
        "/api/v1/nope",
        "/api/v2/ocr",
        "/api/v1/ocr/extra",
        "/api/v1/OCR",
        "/ocr",
    ],
)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_unknown_paths_are_404(
    api_client: requests.Session,
    mock_server: Any,
    png: bytes,
    path: str,
    method: str,
    images_used: Callable[[str], int],
) -> None:
    with api_client.off_contract():
        response = api_client.request(
            method,
            mock_server.url + path,
            headers={"Authorization": f"Bearer {FREE.token}"},
            files={"file": ("a.png", png, "image/png")},
            allow_redirects=False,
        )
    assert response.status_code == 404
    assert images_used(FREE.id) == 0


def request_line(url: str, method: str, target: str, body: bytes = b"") -> bytes:
    """A request for `target` exactly as written (no client normalises it), with a token."""
    return (
        f"{method} {target} HTTP/1.1\r\nHost: {url.split('/')[2]}\r\n"
        f"Authorization: Bearer {FREE.token}\r\n"
        "Content-Type: multipart/form-data; boundary=b\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body


def one_upload(png: bytes) -> bytes:
    return (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n'
        b"Content-Type: image/png\r\n\r\n" + png + b"\r\n--b--\r\n"
    )


@pytest.mark.parametrize(
    "target",
    ["//api/v1/ocr", "/api//v1/ocr", "/api/v1//ocr", "//api/v1/ocr/", "///api/v1/ocr?x=1"],
)
def test_paths_are_matched_as_sent(
    wire: Callable[..., Any],
    mock_server: Any,
    backend: Any,
    png: bytes,
    target: str,
    images_used: Callable[[str], int],
) -> None:
    """An empty segment makes an unknown path, as on the live service: 404, nothing read,
    nothing counted, nothing journalled -- not the endpoint, and no redirect to it."""
    response = wire(mock_server.url, request_line(mock_server.url, "POST", target, one_upload(png)))
    assert response.status_code == 404
    assert images_used(FREE.id) == 0
    assert backend.store.journal() == []


def test_the_exact_path_still_reaches_the_endpoint_in_origin_and_absolute_form(
    wire: Callable[..., Any], mock_server: Any, png: bytes, images_used: Callable[[str], int]
) -> None:
    for target in ("/api/v1/ocr", mock_server.url + "/api/v1/ocr"):
        request = request_line(mock_server.url, "POST", target, one_upload(png))
        assert wire(mock_server.url, request).status_code == 200, target
    assert images_used(FREE.id) == 2


def test_control_paths_are_matched_as_sent(
    wire: Callable[..., Any], mock_server: Any, backend: Any, images_used: Callable[[str], int]
) -> None:
    """`//_mock/reset` is no reset: the usage set before it stays."""
    backend.store.set_images_used(FREE.id, backend.now().strftime("%Y-%m"), 3)
    for method, target in (("POST", "//_mock/reset"), ("GET", "//_mock/health")):
        assert (
            wire(mock_server.url, request_line(mock_server.url, method, target)).status_code == 404
        )
    assert images_used(FREE.id) == 3


# -- bodies past the ceiling, cut short, or chunked --------------------------------------------


def upload_head(
    ocr_url: str,
    content_length: int,
    token: str = ENTERPRISE.token,
    content_type: str = "multipart/form-data; boundary=b",
) -> bytes:
    return (
        "POST /api/v1/ocr HTTP/1.1\r\n"
        f"Host: {ocr_url.split('/')[2]}\r\n"
        f"Authorization: Bearer {token}\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {content_length}\r\n\r\n"
    ).encode()


def test_a_body_over_the_ceiling_is_refused_from_its_content_length_before_it_is_sent(
    wire: Callable[..., Any], ocr_url: str, assert_api_error: CheckError
) -> None:
    """Only the headers are sent: the JSON 400 arrives without the server waiting for a body."""
    response = wire(ocr_url, upload_head(ocr_url, 60 * MIB))
    assert_api_error(response, 400, TOO_LARGE)


def test_the_content_length_ceiling_is_inclusive(
    wire: Callable[..., Any], ocr_url: str, assert_api_error: CheckError
) -> None:
    """At the ceiling (50 MiB + 1 MiB of multipart overhead) the server starts reading: sending
    a few bytes and closing yields the truncated-body 400. One byte more is refused unread."""
    ceiling = max_file_size() + MULTIPART_OVERHEAD
    read = wire(ocr_url, upload_head(ocr_url, ceiling) + b"--b\r\n", half_close=True)
    assert_api_error(read, 400, INVALID_BODY)
    refused = wire(ocr_url, upload_head(ocr_url, ceiling + 1))
    assert_api_error(refused, 400, TOO_LARGE)


def test_the_content_length_refusal_keeps_the_order_of_checks(
    wire: Callable[..., Any], ocr_url: str, assert_api_error: CheckError
) -> None:
    unknown = wire(ocr_url, upload_head(ocr_url, 60 * MIB, token="itsocr_" + "0" * 32))
    assert_api_error(unknown, 401, "Invalid API token")
    not_multipart = wire(ocr_url, upload_head(ocr_url, 60 * MIB, content_type="image/png"))
    assert_api_error(not_multipart, 400, INVALID_BODY)


def test_a_real_60_mib_upload_gets_the_json_400_not_a_reset(
    post_ocr: Post, png: bytes, assert_api_error: CheckError
) -> None:
    huge = png + bytes(60 * MIB)
    response = post_ocr(token=ENTERPRISE.token, files={"file": ("huge.png", huge, "image/png")})
    assert_api_error(response, 400, TOO_LARGE)


def test_a_body_just_under_the_content_length_ceiling_is_read(
    post_ocr: Post, png: bytes, assert_api_error: CheckError
) -> None:
    """A file of 50 MiB + 1 in a body under ceiling + overhead is read, then refused by size."""
    over = png + bytes(max_file_size() + 1 - len(png))
    response = post_ocr(token=ENTERPRISE.token, files={"file": ("over.png", over, "image/png")})
    assert_api_error(response, 400, TOO_LARGE)


def test_a_body_shorter_than_its_content_length_is_an_invalid_body(
    wire: Callable[..., Any],
    ocr_url: str,
    multipart: Any,
    png: bytes,
    assert_api_error: CheckError,
    images_used: Callable[[str], int],
) -> None:
    body = multipart.body(multipart.Part("file", png, "a.png", "image/png"))
    head = upload_head(
        ocr_url, len(body) + 1000, token=FREE.token, content_type=multipart.content_type
    )
    response = wire(ocr_url, head + body, half_close=True)
    assert_api_error(response, 400, INVALID_BODY)
    assert images_used(FREE.id) == 0


def chunks_of_zeros(total_mib: int, sent: list[int]) -> Iterator[bytes]:
    yield (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.png"\r\n'
        b"Content-Type: image/png\r\n\r\n"
    )
    for _ in range(total_mib):
        sent[0] += 1
        yield bytes(MIB)
    yield b"\r\n--b--\r\n"


def test_a_chunked_body_past_the_ceiling_is_refused(
    post_ocr: Post, assert_api_error: CheckError
) -> None:
    sent = [0]
    response = post_ocr(
        token=ENTERPRISE.token,
        data=chunks_of_zeros(80, sent),
        headers={"Content-Type": "multipart/form-data; boundary=b"},
    )
    assert_api_error(response, 400, TOO_LARGE)


def test_a_chunked_upload_within_the_limit_is_processed(
    post_ocr: Post, png: bytes, assert_ocr_success: CheckSuccess
) -> None:
    def body() -> Iterator[bytes]:
        yield (
            b'--b\r\nContent-Disposition: form-data; name="file"; filename="c.png"\r\n'
            b"Content-Type: image/png\r\n\r\n"
        )
        yield png
        yield b"\r\n--b--\r\n"

    response = post_ocr(data=body(), headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert_ocr_success(response, fileName="c.png", fileSize=len(png))
