"""The streaming form reader: its boundary search, its chunk handling, and its turn-taking."""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.sansio.multipart import MultipartDecoder

from mockserver import turns
from mockserver.multipart import MalformedForm, Readable, _DelimiterSearch, read_form

BOUNDARY = b"b0undary"
# Bytes the delimiter pattern cares about, so that near-misses are common.
PIECES = st.sampled_from(
    [b"\r", b"\n", b"\r\n", b"-", b"--", b"--b0undary", b"b0undary", b" ", b"\t", b"x", b"\x00"]
)


# Boundaries with regex syntax and dashes in them: Werkzeug escapes them, the search finds them.
BOUNDARIES = [BOUNDARY, b"-", b"--x-", b"a.b+c*(?:)", b"\\d"]


@settings(max_examples=1000, deadline=None)
@given(
    st.sampled_from(BOUNDARIES).flatmap(
        lambda boundary: st.tuples(
            st.just(boundary),
            st.lists(PIECES | st.just(b"--" + boundary), max_size=40).map(b"".join),
        )
    ),
    st.integers(min_value=0, max_value=8),
    st.booleans(),
)
def test_the_delimiter_search_finds_what_the_regex_finds(
    case: tuple[bytes, bytes], pos: int, after_line_break: bool
) -> None:
    boundary, data = case
    werkzeug = MultipartDecoder(boundary)
    pattern = werkzeug.boundary_re if after_line_break else werkzeug.preamble_re
    assert isinstance(pattern, re.Pattern)
    search = _DelimiterSearch(b"--" + boundary, after_line_break=after_line_break)
    fast = search.search(bytearray(data), pos)
    slow = pattern.search(data, pos)
    assert (fast and (fast.span(), fast.groups())) == (slow and (slow.span(), slow.groups()))


def test_a_new_boundary_compiles_no_regex() -> None:
    """Every client sends a new boundary: reading its form must not compile a pattern."""
    outcome(io.BytesIO(form_body(b"\x89PNG", "p")))  # the first form compiles what all share
    body = form_body(b"\x89PNG", "p").replace(BOUNDARY, b"never-seen-before-7f3a")
    before = re._cache.copy()  # type: ignore[attr-defined]
    form = read_form(io.BytesIO(body), b"never-seen-before-7f3a")
    assert form.file is not None
    assert form.prompt == "p"
    form.file.spool.close()
    added = [key for key in re._cache if key not in before]  # type: ignore[attr-defined]
    assert added == []


class Trickle:
    """A body delivered in the chunk sizes given, as a socket may deliver it."""

    def __init__(self, body: bytes, sizes: list[int]) -> None:
        self._body = io.BytesIO(body)
        self._sizes = iter(sizes)

    def read(self, size: int, /) -> bytes:
        return self._body.read(min(size, next(self._sizes, size)))


def form_body(image: bytes, prompt: str) -> bytes:
    return (
        b"--" + BOUNDARY + b"\r\n"
        b'Content-Disposition: form-data; name="prompt"\r\n\r\n' + prompt.encode() + b"\r\n"
        b"--" + BOUNDARY + b"\r\n"
        b'Content-Disposition: form-data; name="file"; filename="a.png"\r\n'
        b"Content-Type: image/png\r\n\r\n" + image + b"\r\n"
        b"--" + BOUNDARY + b"--\r\n"
    )


def outcome(stream: Readable) -> tuple[bytes, str | None] | str:
    """What the reader made of a body: the file's bytes and the prompt, or the error's type."""
    try:
        form = read_form(stream, BOUNDARY)
    except MalformedForm:
        return "MalformedForm"
    assert form.file is not None
    with contextlib.closing(form.file.spool):
        return form.file.spool.rewound().read(), form.prompt


@settings(max_examples=500, deadline=None)
@given(
    st.lists(PIECES, max_size=60).map(b"".join),
    st.text(max_size=20),
    st.lists(st.integers(min_value=1, max_value=64), max_size=200),
)
def test_any_chunking_of_a_body_reads_the_form_as_sent(
    image: bytes, prompt: str, sizes: list[int]
) -> None:
    body = form_body(image, prompt)
    read = outcome(Trickle(body, sizes))
    if BOUNDARY not in image + prompt.encode():  # a client's boundary never is
        assert read == (image, prompt)


IMAGE = b"\r\r\x89PNG\r"
FILE_PART = (
    b'Content-Disposition: form-data; name="file"; filename="a.png"\r\n'
    b"Content-Type: image/png\r\n\r\n" + IMAGE
)


@pytest.mark.parametrize(
    ("body", "cut_after"),
    [
        # The file last: its closing delimiter, cut before, inside and after its `--`.
        (b"--b0undary\r\n" + FILE_PART + b"\r\n--b0undary--\r\n", suffix)
        for suffix in (b"", b"-", b"--")
    ]
    + [
        # The file first, the next delimiter padded (RFC 2046 allows it), cut in its padding.
        (
            b"--b0undary\r\n" + FILE_PART + b"\r\n--b0undary \t \r\n"
            b'Content-Disposition: form-data; name="prompt"\r\n\r\n\r\n--b0undary--\r\n',
            suffix,
        )
        for suffix in (b"", b" ", b" \t", b" \t \r")
    ],
)
def test_a_delimiter_cut_just_after_its_boundary_stays_out_of_the_file(
    body: bytes, cut_after: bytes
) -> None:
    # Werkzeug's own decoder puts the delimiter's CR into the file when the chunk ends one
    # byte after the boundary (found by the test above), and the whole delimiter when it
    # ends inside the padding.
    delimiter = b"\r\n--" + BOUNDARY
    cut = body.index(delimiter, body.index(IMAGE)) + len(delimiter) + len(cut_after)
    read = outcome(Trickle(body, [cut]))
    assert not isinstance(read, str)
    assert read[0] == IMAGE


@pytest.fixture
def handoffs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the reads that gave the turn up (turns.waiting entered)."""
    entered: list[int] = []

    @contextmanager
    def counting() -> Iterator[None]:
        entered.append(1)
        yield

    monkeypatch.setattr(turns, "waiting", counting)
    return entered


def test_body_reads_give_the_turn_up_but_not_the_read_that_finds_the_end(
    handoffs: list[int],
) -> None:
    body = form_body(b"\x89PNG" * 5000, "total")
    stream = turns.GivingWay(io.BytesIO(body), len(body))
    form = read_form(stream, BOUNDARY)
    assert form.file is not None
    assert form.file.spool.size == 20000
    form.file.spool.close()
    reads_with_data = -(-len(body) // (64 * 1024))  # ceil: the reader asks for 64 KiB at a time
    assert len(handoffs) == reads_with_data


def test_a_body_without_length_gives_the_turn_up_for_every_read(handoffs: list[int]) -> None:
    body = form_body(b"\x89PNG", "")
    form = read_form(turns.GivingWay(io.BytesIO(body)), BOUNDARY)
    assert form.file is not None
    form.file.spool.close()
    assert len(handoffs) == 2  # the data, then the end: either may wait for the client
