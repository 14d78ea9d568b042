"""The upload: body, `file` part, declared type, and what a successful OCR answers.

Refused uploads cost no quota on a correct server, so these clauses are cheap against a live
service; the ones that expect a 200 reserve their requests from the budget first.
"""

from __future__ import annotations

import pytest

from contract_tests.forms import Part, upload
from contract_tests.harness import Contract
from contract_tests.images import file_name, make_image, undecodable_bytes
from mockserver import contract as spec
from mockserver.contract import example_message, unsupported_type_message

INVALID_BODY = example_message(400, "invalidBody")
MISSING_FILE = example_message(400, "missingFile")
OCR_FAILED = example_message(500, "ocrFailed")
# The types the vendor's docs name ("JPEG, PNG, GIF, WebP, and other common image formats").
DOCUMENTED_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
OTHER_TYPES = tuple(t for t in spec.allowed_media_types() if t not in DOCUMENTED_TYPES)
PNG = make_image("image/png")


@pytest.mark.clause("upload.not-multipart")
@pytest.mark.parametrize(
    ("content_type", "data"),
    [
        ("application/json", b'{"file": "scan.png"}'),
        ("text/plain", b"scan.png"),
        (None, b""),
        ("multipart/form-data", b"--x\r\n\r\n--x--\r\n"),
    ],
    ids=["json", "text", "empty", "no-boundary"],
)
def test_not_multipart(contract: Contract, content_type: str | None, data: bytes) -> None:
    """A body that is not multipart/form-data: 400 Invalid request body."""
    account = contract.account()
    reply = contract.post_ocr(account, data=data, content_type=content_type)
    contract.expect(reply, 400, error=INVALID_BODY)


@pytest.mark.clause("upload.urlencoded-form", level="observed")
@pytest.mark.parametrize("data", [b"file=scan.png&prompt=x", b""], ids=["fields", "empty"])
def test_urlencoded_form_has_no_file(contract: Contract, data: bytes) -> None:
    """An application/x-www-form-urlencoded body is a form without a file part: 400 Missing
    required field: file (the live form parser accepts it), not Invalid request body."""
    account = contract.account()
    reply = contract.post_ocr(account, data=data, content_type="application/x-www-form-urlencoded")
    contract.expect(reply, 400, error=MISSING_FILE)


@pytest.mark.clause("upload.missing-file")
@pytest.mark.parametrize(
    "parts",
    [
        [Part("prompt", b"read this")],
        [Part("file", b"scan.png")],
        [Part("image", PNG, "scan.png", "image/png")],
        [],
    ],
    ids=["no-file", "file-as-text-field", "wrong-field-name", "no-parts"],
)
def test_missing_file(contract: Contract, parts: list[Part]) -> None:
    """No `file` part, or `file` sent as a text field: 400 Missing required field: file."""
    account = contract.account()
    reply = contract.post_ocr(account, parts=parts)
    contract.expect(reply, 400, error=MISSING_FILE)


@pytest.mark.clause("upload.unsupported-type")
@pytest.mark.parametrize("declared", ["application/pdf", "text/plain", "application/octet-stream"])
def test_unsupported_type(contract: Contract, declared: str) -> None:
    """A declared type that is not an image: 400 Unsupported file type, listing the allowed."""
    account = contract.account()
    reply = contract.post_ocr(account, parts=upload(PNG, declared, "scan.pdf"))
    contract.expect(reply, 400, error=unsupported_type_message(declared))


@pytest.mark.clause("upload.type-strict", level="observed")
@pytest.mark.parametrize(
    ("declared", "reported"),
    [
        (None, "text/plain"),  # the vendor's own Python example sends no type
        ("", ""),  # a Content-Type header present but empty: the empty type
        ("image/jpg", "image/jpg"),
        ("IMAGE/JPG", "image/jpg"),
        ("image/png; charset=utf-8", "image/png; charset=utf-8"),
        ("image/svg+xml", "image/svg+xml"),
    ],
    ids=["no-type", "empty-type", "image-jpg", "upper-case-jpg", "with-parameter", "svg"],
)
def test_type_is_matched_exactly(contract: Contract, declared: str | None, reported: str) -> None:
    """The declared type must be in the list exactly (lower-cased, no parameters)."""
    account = contract.account()
    reply = contract.post_ocr(account, parts=upload(PNG, declared, "scan.png"))
    contract.expect(reply, 400, error=unsupported_type_message(reported))


@pytest.mark.clause("success.common-types")
@pytest.mark.parametrize("media_type", DOCUMENTED_TYPES)
def test_common_types(contract: Contract, media_type: str) -> None:
    """A real image of each type the docs name: 200, echoing fileName, fileSize and mimeType."""
    _accepts(contract, media_type)


@pytest.mark.clause("success.other-types", level="observed")
@pytest.mark.parametrize("media_type", OTHER_TYPES)
def test_other_types(contract: Contract, media_type: str) -> None:
    """A real image of each other allowed type (HEIC, HEIF, TIFF, BMP): 200."""
    _accepts(contract, media_type)


def _accepts(contract: Contract, media_type: str) -> None:
    account = contract.account()
    contract.reserve(account, 1)
    image, name = make_image(media_type), file_name(media_type)
    reply = contract.post_ocr(account, parts=upload(image, media_type, name), billable=True)
    contract.expect(reply, 200, fileName=name, fileSize=len(image), mimeType=media_type)


@pytest.mark.clause("success.echo", level="observed")
def test_file_name_and_type_are_echoed_as_sent(contract: Contract) -> None:
    """fileName is echoed verbatim, mimeType lower-cased, and every id is new."""
    account = contract.account()
    contract.reserve(account, 2)
    odd = "../ünïcode scan (1).PNG"
    first = contract.post_ocr(account, parts=upload(PNG, "Image/PNG", odd), billable=True)
    body = contract.expect(first, 200, fileName=odd, mimeType="image/png", fileSize=len(PNG))
    second = contract.post_ocr(account, parts=upload(PNG, "image/png"), billable=True)
    again = contract.expect(second, 200)
    if body["id"] == again["id"]:
        contract.fail(
            second, f"id: expected a new UUID per request, received {again['id']!r} twice"
        )


@pytest.mark.clause("upload.type-not-sniffed", level="observed")
def test_declared_type_is_trusted(contract: Contract) -> None:
    """PNG bytes declared image/jpeg are processed and echoed as image/jpeg."""
    account = contract.account()
    contract.reserve(account, 1)
    reply = contract.post_ocr(account, parts=upload(PNG, "image/jpeg", "scan.jpg"), billable=True)
    contract.expect(reply, 200, mimeType="image/jpeg", fileName="scan.jpg")


@pytest.mark.clause("upload.first-field-wins", level="observed")
def test_first_file_part_wins(contract: Contract) -> None:
    """With two `file` parts, the first is the one processed."""
    account = contract.account()
    contract.reserve(account, 1)
    gif = make_image("image/gif")
    parts = [
        Part("file", PNG, "first.png", "image/png"),
        Part("file", gif, "second.gif", "image/gif"),
    ]
    reply = contract.post_ocr(account, parts=parts, billable=True)
    contract.expect(reply, 200, fileName="first.png", mimeType="image/png", fileSize=len(PNG))


@pytest.mark.clause("upload.first-field-wins", level="observed")
def test_first_file_entry_as_text_hides_a_later_file(contract: Contract) -> None:
    """A `file` text field before a `file` part: the text field wins, so no file."""
    account = contract.account()
    parts = [Part("file", b"scan.png"), Part("file", PNG, "scan.png", "image/png")]
    reply = contract.post_ocr(account, parts=parts)
    contract.expect(reply, 400, error=MISSING_FILE)


@pytest.mark.clause("ocr.undecodable-image", level="observed")
@pytest.mark.parametrize("content", [undecodable_bytes(), b""], ids=["corrupt", "empty"])
def test_undecodable_image(contract: Contract, content: bytes) -> None:
    """Bytes that are not an image, under an allowed type: 500 OCR processing failed."""
    account = contract.account()
    reply = contract.post_ocr(account, parts=upload(content, "image/png"))
    contract.expect(reply, 500, error=OCR_FAILED)
