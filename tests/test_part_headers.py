"""Part headers the live service's form parser refuses, over real HTTP (hand-built bodies: no
client library writes them) -- and the contract suite's oracle, which asserts nothing on them.

Under the runtime the live code was observed on, an unquoted ``name=file``, a backslash-escaped
quote in a filename and a file part named only by ``filename*=`` make the whole body invalid:
400 ``Invalid request body. Expected multipart/form-data.``. Production runs another runtime,
whose parser may read them, so the suite's oracle allows any answer there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from contract_tests import oracle
from mockserver import contract as spec
from mockserver.backend import DEMO_ACCOUNTS, Backend
from mockserver.plans import plans

FREE = DEMO_ACCOUNTS[0]
INVALID_BODY = "Invalid request body. Expected multipart/form-data."
BOUNDARY = "part-headers-boundary"
REFUSED = {
    "unquoted-name": ('form-data; name=file; filename="a.png"', "unquoted name"),
    "escaped-quote": ('form-data; name="file"; filename="a\\"b.png"', "past its closing quote"),
    "filename-star-only": (
        "form-data; name=\"file\"; filename*=UTF-8''a.png",
        "filename*=",
    ),
    "unquoted-prompt-name": ("form-data; name=prompt", "unquoted name"),
}


def body_with(disposition: str, content: bytes, content_type: str | None = "image/png") -> bytes:
    typed = f"Content-Type: {content_type}\r\n" if content_type is not None else ""
    return (
        f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n{typed}\r\n".encode()
        + content
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )


@pytest.fixture
def send(raw_http: Callable[..., Any], ocr_url: str) -> Callable[[bytes], Any]:
    headers = {
        "Authorization": f"Bearer {FREE.token}",
        "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
    }
    return lambda body: raw_http("POST", ocr_url, body, headers)


@pytest.mark.parametrize("case", list(REFUSED))
def test_part_headers_the_live_parser_refuses_are_an_invalid_body(
    send: Callable[[bytes], Any],
    make_image: Callable[..., bytes],
    assert_api_error: Callable[..., None],
    backend: Backend,
    images_used: Callable[[str], int],
    case: str,
) -> None:
    disposition, why = REFUSED[case]
    png = make_image("image/png")
    if case == "unquoted-prompt-name":  # a good file part, then the refused field
        body = body_with('form-data; name="file"; filename="a.png"', png)
        body = body.removesuffix(f"--{BOUNDARY}--\r\n".encode()) + body_with(
            disposition, b"read this", None
        )
    else:
        body = body_with(disposition, png)
    response = send(body)
    assert_api_error(response, 400, INVALID_BODY)  # never a 200 echoing a name cut at a quote
    assert images_used(FREE.id) == 0
    [entry] = backend.store.journal()
    assert why in (entry.hint or "")


@pytest.mark.parametrize(
    ("disposition", "echoed"),
    [
        ('form-data; name="file"; filename="a\\.png"', "a\\.png"),  # a backslash alone stays
        ('form-data; name="file"; filename="say %22hi%22.png"', 'say "hi".png'),
        ('form-data; name="file"; filename="a.png"; filename*=UTF-8\'\'b.png', "a.png"),
        ('form-data; name="file"; filename="a;b.png"', "a;b.png"),
    ],
    ids=["backslash", "percent-quote", "both-filenames", "semicolon"],
)
def test_part_headers_the_live_parser_reads_are_accepted(
    send: Callable[[bytes], Any],
    make_image: Callable[..., bytes],
    assert_ocr_success: Callable[..., Any],
    disposition: str,
    echoed: str,
) -> None:
    response = send(body_with(disposition, make_image("image/png")))
    assert_ocr_success(response, fileName=echoed)


@pytest.mark.parametrize("case", list(REFUSED))
def test_the_oracle_asserts_nothing_on_them_and_the_mock_is_within_it(
    send: Callable[[bytes], Any], make_image: Callable[..., bytes], case: str
) -> None:
    """Another runtime may read these headers: the suite allows a 200 as well as the 400."""
    body = body_with(REFUSED[case][0], make_image("image/png"))
    content_type = f"multipart/form-data; boundary={BOUNDARY}"
    outcome = oracle.predict(content_type, body, plans()["free"])
    assert outcome == oracle.RUNTIME_DEPENDENT
    assert {200, 400} <= set(outcome.statuses)
    assert (outcome.errors, outcome.fields) == ((), {})
    assert send(body).status_code in outcome.statuses


def test_the_oracle_still_judges_well_formed_headers(make_image: Callable[..., bytes]) -> None:
    content_type = f"multipart/form-data; boundary={BOUNDARY}"
    png = make_image("image/png")
    good = oracle.predict(
        content_type,
        body_with('form-data; name="file"; filename="a.png"', png),
        plans()["free"],
    )
    assert (good.statuses, good.fields["fileName"]) == ((200,), "a.png")
    empty_type = oracle.predict(
        content_type,
        body_with('form-data; name="file"; filename="a.png"', png, ""),
        plans()["free"],
    )
    assert empty_type.errors == (spec.unsupported_type_message(""),)
    urlencoded = oracle.predict("application/x-www-form-urlencoded", b"", plans()["free"])
    assert urlencoded.errors == (spec.example_message(400, "missingFile"),)
