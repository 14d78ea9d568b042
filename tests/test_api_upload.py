"""POST /api/v1/ocr over real HTTP: the upload -- body, `file` part, declared type, sizes, echoes,
OCR failures and the log hints. Real multipart bodies: requests' `files=`, and hand-built ones
(`multipart` + `raw_http`) where requests cannot express the case.

Every response is validated against openapi.yaml by `api_client`/`raw_http` (see conftest).
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from mockserver.backend import DEMO_ACCOUNTS, Backend
from mockserver.contract import allowed_media_types
from mockserver.plans import MIB, get_plan

FREE, PRO, ENTERPRISE = DEMO_ACCOUNTS
INVALID_BODY = "Invalid request body. Expected multipart/form-data."
MISSING_FILE = "Missing required field: file"
OCR_FAILED = "OCR processing failed. Please try again."
ALLOWED = (
    "image/jpeg, image/png, image/gif, image/webp, image/heic, image/heif, image/tiff, image/bmp"
)

Post = Callable[..., requests.Response]
CheckError = Callable[..., None]
CheckSuccess = Callable[..., dict[str, Any]]


def unsupported(media_type: str) -> str:
    return f"Unsupported file type: {media_type}. Allowed types: {ALLOWED}"


@pytest.fixture
def png(make_image: Callable[..., bytes]) -> bytes:
    return make_image("image/png")


@pytest.fixture
def send_raw(raw_http: Callable[..., Any], ocr_url: str, multipart: Any) -> Callable[..., Any]:
    """``send_raw(*parts, token=FREE.token, content_type=<multipart>)``: a hand-built upload."""

    def send(*parts: Any, token: str = FREE.token, content_type: str | None = None) -> Any:
        headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": content_type or multipart.content_type,
        }
        return raw_http("POST", ocr_url, multipart.body(*parts), headers)

    return send


# -- the body must be multipart/form-data ---------------------------------------------------


@pytest.mark.parametrize(
    "request_body",
    [
        {"json": {"file": "scan.png"}},
        {"data": b"just text", "headers": {"Content-Type": "text/plain"}},
        {"data": b""},
        {},
        {"data": b"--x\r\n\r\n--x--\r\n", "headers": {"Content-Type": "multipart/form-data"}},
        {"data": b"x", "headers": {"Content-Type": "multipart/form-data; boundary="}},
        {"data": b"--x--\r\n", "headers": {"Content-Type": "multipart/mixed; boundary=x"}},
        {"data": b"", "headers": {"Content-Type": "multipart/form-data; boundary=x"}},
    ],
    ids=["json", "text", "empty", "no-body", "no-boundary", "empty-boundary", "mixed", "no-parts"],
)
def test_a_body_that_is_not_multipart_form_data_is_refused(
    post_ocr: Post, assert_api_error: CheckError, request_body: dict[str, Any]
) -> None:
    assert_api_error(post_ocr(**request_body), 400, INVALID_BODY)


@pytest.mark.parametrize(
    "body", [b"file=scan.png&prompt=x", b"", b"not even key=value pairs"], ids=str
)
def test_an_urlencoded_body_is_a_form_without_a_file(
    raw_http: Callable[..., Any],
    ocr_url: str,
    assert_api_error: CheckError,
    hints: Callable[[], list[str]],
    body: bytes,
) -> None:
    """The live form parser accepts application/x-www-form-urlencoded, with or without fields,
    and then finds no `file` part."""
    headers = {
        "Authorization": f"Bearer {FREE.token}",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    assert_api_error(raw_http("POST", ocr_url, body, headers), 400, MISSING_FILE)
    [hint] = hints()
    assert "multipart/form-data" in hint


def test_requests_data_is_an_urlencoded_form(post_ocr: Post, assert_api_error: CheckError) -> None:
    response = post_ocr(data={"file": "scan.png"})
    assert response.request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert_api_error(response, 400, MISSING_FILE)


def test_a_multipart_body_with_another_boundary_is_refused(
    raw_http: Callable[..., Any],
    ocr_url: str,
    multipart: Any,
    png: bytes,
    assert_api_error: CheckError,
) -> None:
    body = multipart.body(multipart.Part("file", png, "a.png", "image/png"))
    headers = {
        "Authorization": f"Bearer {FREE.token}",
        "Content-Type": "multipart/form-data; boundary=not-the-one-used",
    }
    assert_api_error(raw_http("POST", ocr_url, body, headers), 400, INVALID_BODY)


def test_a_truncated_multipart_body_is_refused(
    raw_http: Callable[..., Any],
    ocr_url: str,
    multipart: Any,
    png: bytes,
    assert_api_error: CheckError,
    images_used: Callable[[str], int],
) -> None:
    body = multipart.body(multipart.Part("file", png, "a.png", "image/png"))
    headers = {"Authorization": f"Bearer {FREE.token}", "Content-Type": multipart.content_type}
    assert_api_error(raw_http("POST", ocr_url, body[:-20], headers), 400, INVALID_BODY)
    assert images_used(FREE.id) == 0


def test_the_multipart_media_type_is_case_insensitive(
    raw_http: Callable[..., Any],
    ocr_url: str,
    multipart: Any,
    png: bytes,
    assert_ocr_success: CheckSuccess,
) -> None:
    body = multipart.body(multipart.Part("file", png, "a.png", "image/png"))
    headers = {
        "Authorization": f"Bearer {FREE.token}",
        "Content-Type": f"Multipart/Form-Data; boundary={multipart.boundary}",
    }
    assert_ocr_success(raw_http("POST", ocr_url, body, headers), fileName="a.png")


# -- the `file` part -------------------------------------------------------------------------


def test_a_form_without_a_file_part_is_missing_the_file(
    post_ocr: Post, assert_api_error: CheckError
) -> None:
    response = post_ocr(files={"prompt": (None, "read the table")})
    assert_api_error(response, 400, MISSING_FILE)


def test_an_empty_form_is_missing_the_file(
    send_raw: Callable[..., Any], assert_api_error: CheckError
) -> None:
    assert_api_error(send_raw(), 400, MISSING_FILE)


def test_file_sent_as_a_text_field_is_missing_the_file(
    post_ocr: Post, png: bytes, assert_api_error: CheckError
) -> None:
    # `data` + `files` makes requests send multipart with `file` as a plain text field.
    response = post_ocr(data={"file": "scan.png"}, files={"other": ("a.png", png, "image/png")})
    assert_api_error(response, 400, MISSING_FILE)


def test_a_file_part_without_a_filename_is_missing_the_file(
    post_ocr: Post, png: bytes, assert_api_error: CheckError
) -> None:
    response = post_ocr(files={"file": (None, png, "image/png")})
    assert_api_error(response, 400, MISSING_FILE)


def test_an_empty_filename_still_makes_a_file_part(
    send_raw: Callable[..., Any], multipart: Any, png: bytes, assert_ocr_success: CheckSuccess
) -> None:
    """Decision: ``filename=""`` is present, so the part is a file (the WHATWG form-data parser
    the live service uses keys on the parameter's presence); `fileName` is echoed as ``""``."""
    response = send_raw(multipart.Part("file", png, "", "image/png"))
    assert_ocr_success(response, fileName="", fileSize=len(png))


def test_the_first_file_entry_wins(
    send_raw: Callable[..., Any],
    multipart: Any,
    png: bytes,
    assert_ocr_success: CheckSuccess,
    assert_api_error: CheckError,
) -> None:
    first = multipart.Part("file", png, "first.png", "image/png")
    second = multipart.Part("file", b"%PDF-1.7", "second.pdf", "application/pdf")
    assert_ocr_success(send_raw(first, second), fileName="first.png", fileSize=len(png))
    assert_api_error(send_raw(second, first), 400, unsupported("application/pdf"))
    as_text = multipart.Part("file", b"scan.png")  # a text field named file comes first
    assert_api_error(send_raw(as_text, first), 400, MISSING_FILE)


# -- the declared type -----------------------------------------------------------------------


@pytest.mark.parametrize("media_type", allowed_media_types())
def test_every_allowed_type_is_processed_and_echoed(
    post_ocr: Post,
    make_image: Callable[..., bytes],
    assert_ocr_success: CheckSuccess,
    images_used: Callable[[str], int],
    media_type: str,
) -> None:
    image = make_image(media_type)
    name = "scan." + media_type.split("/")[1]
    body = assert_ocr_success(
        post_ocr(files={"file": (name, image, media_type)}),
        fileName=name,
        fileSize=len(image),
        mimeType=media_type,
    )
    assert body["text"] == body["text"].strip()
    assert images_used(FREE.id) == 1


@pytest.mark.parametrize("declared", ["IMAGE/PNG", "Image/Png", "image/PNG"])
def test_the_declared_type_is_matched_and_echoed_lower_cased(
    post_ocr: Post, png: bytes, assert_ocr_success: CheckSuccess, declared: str
) -> None:
    response = post_ocr(files={"file": ("a.png", png, declared)})
    assert_ocr_success(response, mimeType="image/png")


def test_the_bytes_are_not_sniffed(
    post_ocr: Post, png: bytes, assert_ocr_success: CheckSuccess
) -> None:
    response = post_ocr(files={"file": ("really-a.png", png, "image/jpeg")})
    assert_ocr_success(response, mimeType="image/jpeg", fileName="really-a.png")


@pytest.mark.parametrize(
    ("declared", "shown"),
    [
        ("image/jpg", "image/jpg"),
        ("IMAGE/JPG", "image/jpg"),
        ("image/png; charset=x", "image/png; charset=x"),
        ("image/png;charset=utf-8", "image/png;charset=utf-8"),
        ("text/plain", "text/plain"),
        ("application/pdf", "application/pdf"),
        ("application/octet-stream", "application/octet-stream"),
        ("image/svg+xml", "image/svg+xml"),
        ("image/avif", "image/avif"),
        ("image/x-png", "image/x-png"),
        ("image/*", "image/*"),
    ],
)
def test_a_type_outside_the_list_is_unsupported(
    send_raw: Callable[..., Any],
    multipart: Any,
    png: bytes,
    assert_api_error: CheckError,
    images_used: Callable[[str], int],
    declared: str,
    shown: str,
) -> None:
    response = send_raw(multipart.Part("file", png, "a.png", declared))
    assert_api_error(response, 400, unsupported(shown))
    assert images_used(FREE.id) == 0


def test_a_part_without_content_type_counts_as_text_plain(
    send_raw: Callable[..., Any], multipart: Any, png: bytes, assert_api_error: CheckError
) -> None:
    response = send_raw(multipart.Part("file", png, "a.png", None))
    assert_api_error(response, 400, unsupported("text/plain"))


def test_an_empty_part_content_type_is_the_empty_type(
    send_raw: Callable[..., Any],
    multipart: Any,
    png: bytes,
    assert_api_error: CheckError,
    hints: Callable[[], list[str]],
    backend: Backend,
) -> None:
    """`Content-Type: ` present but empty is not "no Content-Type": the live message shows the
    empty type."""
    response = send_raw(multipart.Part("file", png, "a.png", ""))
    assert_api_error(response, 400, unsupported(""))
    assert "Unsupported file type: . Allowed" in response.json()["error"]
    [hint] = hints()
    assert "empty Content-Type" in hint
    [entry] = backend.store.journal()
    assert entry.mime_type == ""


# -- sizes (inclusive, MiB) ----------------------------------------------------------------


def padded_png(png: bytes, size: int) -> bytes:
    """A real PNG of exactly `size` bytes: zeros after IEND, which decoders ignore."""
    return png + bytes(size - len(png))


@pytest.mark.parametrize("plan", ["free", "pro", "enterprise"])
def test_the_plan_limit_is_inclusive_to_the_byte(
    post_ocr: Post,
    png: bytes,
    assert_ocr_success: CheckSuccess,
    assert_api_error: CheckError,
    images_used: Callable[[str], int],
    plan: str,
) -> None:
    demo = next(d for d in DEMO_ACCOUNTS if d.plan == plan)
    limit = get_plan(plan).max_file_size
    assert limit % MIB == 0
    exact = padded_png(png, limit)
    response = post_ocr(token=demo.token, files={"file": ("exact.png", exact, "image/png")})
    assert_ocr_success(response, fileSize=limit)
    over = exact + b"\0"
    response = post_ocr(token=demo.token, files={"file": ("over.png", over, "image/png")})
    message = (
        "File too large. Maximum size: 50MB"
        if plan == "enterprise"  # the plan's limit is the global ceiling
        else f"File too large for your plan. Maximum size: {limit // MIB}MB"
    )
    assert_api_error(response, 400, message)
    assert images_used(demo.id) == 1


def test_over_the_ceiling_is_the_global_message_on_every_plan(
    post_ocr: Post, png: bytes, assert_api_error: CheckError
) -> None:
    over = padded_png(png, 50 * MIB + 1)
    for demo in (FREE, PRO):
        response = post_ocr(token=demo.token, files={"file": ("over.png", over, "image/png")})
        assert_api_error(response, 400, "File too large. Maximum size: 50MB")


# -- echoes and the file system ------------------------------------------------------------


@pytest.mark.parametrize(
    "file_name",
    [
        "scan with spaces.png",
        "ünïcödé 文字 📄.png",
        "../../x.png",
        "/etc/passwd",
        "C:\\Users\\me\\scan.png",
        "no-extension",
        "  padded  ",
    ],
)
def test_the_file_name_is_echoed_verbatim(
    send_raw: Callable[..., Any],
    multipart: Any,
    png: bytes,
    assert_ocr_success: CheckSuccess,
    file_name: str,
) -> None:
    response = send_raw(multipart.Part("file", png, file_name, "image/png"))
    assert_ocr_success(response, fileName=file_name)


def test_the_file_name_is_read_as_the_whatwg_form_data_parser_reads_it(
    send_raw: Callable[..., Any], multipart: Any, png: bytes, assert_ocr_success: CheckSuccess
) -> None:
    """Browsers and requests write a quote in a filename as %22 (and CR/LF as %0D/%0A); the live
    parser decodes exactly those and nothing else: `%41` stays, a backslash stays."""
    response = send_raw(multipart.Part("file", png, "say %22hi%22 %41\\.png", "image/png"))
    assert_ocr_success(response, fileName='say "hi" %41\\.png')


def test_a_file_name_that_is_not_utf8_is_echoed_with_replacement_characters(
    raw_http: Callable[..., Any],
    ocr_url: str,
    multipart: Any,
    png: bytes,
    assert_ocr_success: CheckSuccess,
) -> None:
    """The live parser decodes part headers as UTF-8 without failing (U+FFFD for bad bytes)."""
    body = multipart.body(multipart.Part("file", png, "scan-XX.png", "image/png"))
    body = body.replace(b"scan-XX.png", b"scan-\xe9\xff.png")  # Latin-1 bytes, not UTF-8
    headers = {"Authorization": f"Bearer {FREE.token}", "Content-Type": multipart.content_type}
    response = raw_http("POST", ocr_url, body, headers)
    assert_ocr_success(response, fileName="scan-\ufffd\ufffd.png")


def test_the_file_name_is_never_used_as_a_path(
    post_ocr: Post,
    png: bytes,
    assert_ocr_success: CheckSuccess,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)  # the server thread shares this process's working directory
    temporary = set(os.listdir(tempfile.gettempdir()))
    big = padded_png(png, 2 * MIB)  # large enough to be spooled to disk
    for name in ("../../x.png", "x.png", str(tmp_path / "absolute.png")):
        assert_ocr_success(post_ocr(files={"file": (name, big, "image/png")}), fileName=name)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
    created = set(os.listdir(tempfile.gettempdir())) - temporary
    assert not {n for n in created if "x.png" in n or "absolute" in n}


def test_the_first_prompt_wins_and_is_trimmed(
    backend: Backend,
    send_raw: Callable[..., Any],
    multipart: Any,
    png: bytes,
    assert_ocr_success: CheckSuccess,
) -> None:
    image = multipart.Part("file", png, "a.png", "image/png")
    trimmed = assert_ocr_success(send_raw(image, multipart.Part("prompt", b"tables only")))
    padded = assert_ocr_success(
        send_raw(
            multipart.Part("prompt", b"  tables only \r\n"),
            image,
            multipart.Part("prompt", b"ignored"),
        )
    )
    assert padded["text"] == trimmed["text"]
    assert [entry.prompt for entry in backend.store.journal()] == ["tables only", "tables only"]


def test_a_blank_prompt_is_no_prompt(
    backend: Backend,
    send_raw: Callable[..., Any],
    multipart: Any,
    png: bytes,
    assert_ocr_success: CheckSuccess,
) -> None:
    image = multipart.Part("file", png, "a.png", "image/png")
    without = assert_ocr_success(send_raw(image))
    blank = assert_ocr_success(send_raw(image, multipart.Part("prompt", b" \t ")))
    assert blank["text"] == without["text"]
    assert [entry.prompt for entry in backend.store.journal()] == [None, None]


def test_unknown_fields_are_ignored(
    send_raw: Callable[..., Any], multipart: Any, png: bytes, assert_ocr_success: CheckSuccess
) -> None:
    response = send_raw(
        multipart.Part("language", b"de"),
        multipart.Part("file", png, "a.png", "image/png"),
        multipart.Part("thumbnail", png, "t.png", "image/png"),
    )
    assert_ocr_success(response, fileName="a.png", fileSize=len(png))


# -- OCR failures ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [b"", b"not an image", b"\x89PNG\r\n\x1a\n" + bytes(100), bytes(2 * MIB)],
    ids=["empty", "text", "broken-png", "2MiB-zeros"],
)
def test_undecodable_bytes_fail_ocr_without_using_quota(
    post_ocr: Post, assert_api_error: CheckError, images_used: Callable[[str], int], data: bytes
) -> None:
    response = post_ocr(files={"file": ("scan.png", data, "image/png")})
    assert_api_error(response, 500, OCR_FAILED)
    assert images_used(FREE.id) == 0


# -- the log says what went wrong; the response stays the live one ---------------------------


@pytest.fixture
def hints(caplog: pytest.LogCaptureFixture) -> Callable[[], list[str]]:
    caplog.set_level(logging.INFO, logger="itsocr_mock")

    def messages() -> list[str]:
        return [
            r.getMessage()
            for r in caplog.records
            if r.name == "itsocr_mock" and r.getMessage().startswith("hint: ")
        ]

    return messages


def test_the_vendors_python_example_gets_the_live_400_and_a_hint(
    api_client: requests.Session,
    ocr_url: str,
    make_image: Callable[..., bytes],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    assert_api_error: CheckError,
    assert_ocr_success: CheckSuccess,
    hints: Callable[[], list[str]],
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("document.jpg").write_bytes(make_image("image/jpeg"))
    # The docs' Python example, verbatim but for the URL and token:
    with open("document.jpg", "rb") as f:
        response = api_client.post(
            ocr_url, headers={"Authorization": f"Bearer {FREE.token}"}, files={"file": f}
        )
    assert_api_error(response, 400, unsupported("text/plain"))
    [hint] = hints()
    assert "without a Content-Type" in hint
    assert "files={'file': ('document.jpg', f, 'image/jpeg')}" in hint
    # ... and the fix the hint gives works.
    with open("document.jpg", "rb") as f:
        fixed = api_client.post(
            ocr_url,
            headers={"Authorization": f"Bearer {FREE.token}"},
            files={"file": ("document.jpg", f, "image/jpeg")},
        )
    assert_ocr_success(fixed, fileName="document.jpg", mimeType="image/jpeg")


def test_image_jpg_gets_the_live_400_and_a_hint(
    post_ocr: Post,
    make_image: Callable[..., bytes],
    assert_api_error: CheckError,
    hints: Callable[[], list[str]],
) -> None:
    response = post_ocr(files={"file": ("a.jpg", make_image("image/jpeg"), "image/jpg")})
    assert_api_error(response, 400, unsupported("image/jpg"))
    [hint] = hints()
    assert "image/jpeg" in hint


def test_a_typeless_node_blob_gets_the_live_400_and_a_hint_with_the_node_fix(
    post_ocr: Post, png: bytes, assert_api_error: CheckError, hints: Callable[[], list[str]]
) -> None:
    """Node's FormData sends a Blob made without a type as application/octet-stream."""
    response = post_ocr(files={"file": ("blob", png, "application/octet-stream")})
    assert_api_error(response, 400, unsupported("application/octet-stream"))
    [hint] = hints()
    assert "new Blob([bytes], {type: 'image/png'})" in hint


def test_a_field_named_image_gets_the_live_400_and_a_hint(
    post_ocr: Post, png: bytes, assert_api_error: CheckError, hints: Callable[[], list[str]]
) -> None:
    response = post_ocr(files={"image": ("a.png", png, "image/png")})
    assert_api_error(response, 400, MISSING_FILE)
    [hint] = hints()
    assert "'image'" in hint
    assert "`file`" in hint


def test_a_correct_request_logs_no_hint(
    post_ocr: Post, png: bytes, hints: Callable[[], list[str]]
) -> None:
    assert post_ocr(files={"file": ("a.png", png, "image/png")}).status_code == 200
    assert hints() == []
