"""A streaming multipart/form-data reader that keeps only what the OCR endpoint uses.

The live service reads the form with the first `file` and `prompt` entries winning. This reader
walks the parts in order, spools the first `file` part to disk past a small threshold while
hashing it incrementally (so an upload is never held in memory, nor read twice), keeps the
first text `prompt`, and discards everything else as it streams by.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol, cast

from werkzeug.datastructures import Headers
from werkzeug.exceptions import HTTPException
from werkzeug.sansio.multipart import (
    LINE_BREAK,
    Data,
    Epilogue,
    Event,
    Field,
    File,
    MultipartDecoder,
    NeedData,
)

CHUNK_SIZE = 64 * 1024
SPOOL_THRESHOLD = 1024 * 1024  # files above this go to a temporary file
_QUOTED_FILENAME = re.compile(r';[ \t]*filename="([^"\r\n]*)"')
_FILENAME_ESCAPES = re.compile(r"%0A|%0D|%22", re.IGNORECASE)
# What may follow a boundary at the end of a chunk and still become a delimiter: the first `-`
# of a closing `--`, or transport padding not yet ended by its line break.
_PENDING_DELIMITER_END = re.compile(rb"-|[^\S\n\r]*")
# What ends a delimiter, as Werkzeug's patterns have it after the boundary (their group 1).
_DELIMITER_END = re.compile(rb"(--[^\S\n\r]*%s?|[^\S\n\r]*%s)" % (LINE_BREAK, LINE_BREAK))
# A quoted header parameter value (unrolled: the runs between escapes are matched at C speed).
_QUOTED_VALUE = re.compile(r'"([^"\\]*(?:\\.[^"\\]*)*)"')
LONG_VALUE = 1024  # quoted values longer than this are parsed apart (see _Decoder)


class Readable(Protocol):
    """A request body: what the reader needs of it."""

    def read(self, size: int, /) -> bytes: ...  # noqa: D102


class MalformedForm(ValueError):
    """The body is not a well-formed multipart/form-data document."""


class RefusedPartHeaders(MalformedForm):
    """Part headers the live service's parser refuses (the message says which and why)."""


class HashingSpool:
    """A write-once spooled file that hashes and counts what is written to it."""

    def __init__(self) -> None:
        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_THRESHOLD)  # noqa: SIM115
        self.file = cast(BinaryIO, spool)  # typeshed's SpooledTemporaryFile is not a BinaryIO
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        """Append a chunk."""
        self.file.write(data)
        self.hash.update(data)
        self.size += len(data)

    def rewound(self) -> BinaryIO:
        """The spooled file, positioned at its start for reading."""
        self.file.seek(0)
        return self.file

    def close(self) -> None:
        """Release the spool (and its temporary file, if it went to disk)."""
        self.file.close()


@dataclass
class FilePart:
    """The first `file` part, when it was a file (had a filename)."""

    file_name: str
    content_type: str | None
    spool: HashingSpool


@dataclass
class Form:
    """What the endpoint needs from the body."""

    file: FilePart | None = None
    file_was_text: bool = False  # the first `file` entry was a plain text field
    prompt: str | None = None
    file_parts: list[str] = field(default_factory=list)  # names of parts that carried a file


def read_form(stream: Readable, boundary: bytes) -> Form:
    """Read a multipart body from `stream` (which must end where the body ends).

    Raises MalformedForm when the body is not well-formed multipart, truncated included.
    """
    reader = _Reader(_Decoder(boundary))
    try:
        return _read(stream, reader)
    except BaseException:
        if reader.form.file is not None:  # a half-read upload is not kept
            reader.form.file.spool.close()
        raise


class UnreadableBody(MalformedForm):
    """The server could not read the body as HTTP (a chunk size that is not hexadecimal...)."""


def _read(stream: Readable, reader: _Reader) -> Form:
    while True:
        try:
            chunk = stream.read(CHUNK_SIZE)
        except HTTPException:  # the limits set on the request, a client gone: the caller's
            raise
        except Exception as problem:  # the server's own parse errors (gunicorn's are its own)
            raise UnreadableBody(f"the body cannot be read: {problem}") from None
        reader.decoder.receive_data(chunk or None)
        try:
            if reader.drain():
                return reader.form
        except MalformedForm:
            raise
        except ValueError as problem:
            raise MalformedForm(str(problem)) from None
        if not chunk:
            raise MalformedForm("the body ended before the closing boundary")


class _Decoder(MultipartDecoder):
    """Werkzeug's decoder (3.1), with five changes:

    - no regex is compiled for the request's boundary (see __init__);
    - part headers are read as the live service's parser reads them: UTF-8 with replacement
      characters, so a non-UTF-8 filename is echoed damaged instead of failing;
    - the end of a part's data is found without scanning the whole part with a regex;
    - a delimiter cut by the end of a chunk just after its boundary (``\r\n--boundary-``,
      the rest still to come) is held back whole: Werkzeug holds back from its LF only, and
      its CR ends up in the file -- one byte more, whenever a body's 64 KiB reads fall so
      (pallets/werkzeug#3285, open as of Werkzeug 3.1.9);
    - a long Content-Disposition (a 40 MB filename) is read in linear time.
    """

    def __init__(self, boundary: bytes) -> None:
        # Werkzeug compiles two regexes with the boundary in them: 350 µs a request, since
        # every client sends a new boundary (and `re` caches only 512 patterns). Built for the
        # empty boundary instead -- the same pattern each time, compiled once -- and given
        # searches that need no compiling (_DelimiterSearch).
        super().__init__(b"")
        self.boundary = boundary
        self._sent_disposition: str | None = None
        self._delimiter = b"--" + boundary
        self.preamble_re = _DelimiterSearch(self._delimiter, after_line_break=False)  # type: ignore[assignment]
        self.boundary_re = _DelimiterSearch(self._delimiter, after_line_break=True)  # type: ignore[assignment]

    def _last_partial_boundary_index(self, data: bytes | bytearray) -> int:
        index = super()._last_partial_boundary_index(data)
        at = data.rfind(self._delimiter)
        if at <= 0 or data[at - 1] not in b"\r\n":
            return index
        if _PENDING_DELIMITER_END.fullmatch(data, at + len(self._delimiter)) is None:
            return index  # not a delimiter, or one the regex would have matched
        return min(index, at - 2 if data[at - 2 : at] == b"\r\n" else at - 1)

    def _parse_headers(self, data: bytes | bytearray) -> Headers:
        headers = super()._parse_headers(bytes(data).decode("utf-8", "replace").encode())
        disposition = headers.get("content-disposition", "")
        if len(disposition) > LONG_VALUE:
            # Werkzeug reads a quoted value a character at a time in Python (3 s a megabyte):
            # a 40 MB filename would hold the worker for minutes. It reads a copy with the long
            # values cut short, and the part keeps the header as sent (see next_event).
            self._sent_disposition = disposition
            headers["content-disposition"] = _QUOTED_VALUE.sub(_cut_short, disposition)
        return headers

    def next_event(self) -> Event:
        """Werkzeug's next event, the part's Content-Disposition as sent."""
        event = super().next_event()
        if isinstance(event, Field | File) and self._sent_disposition is not None:
            event.headers["content-disposition"] = self._sent_disposition
            self._sent_disposition = None
        return event


def _cut_short(quoted: re.Match[str]) -> str:
    value = quoted.group(1)
    return quoted.group() if len(value) <= LONG_VALUE else f'"{value[:LONG_VALUE]}"'


class _DelimiterSearch:
    """Werkzeug's delimiter regex, found without one: ``--boundary`` by `bytes.find`, then the
    line break before it and what may end it (the regex's ending, boundary-free, compiled once).

    Werkzeug's patterns are ``LB --boundary ENDING`` (between parts) and ``LB? --boundary
    ENDING`` (the first), where LB is a line break of at most two bytes. A line break cannot be
    a ``-``, so each ``--boundary`` has one place a match can start; the first occurrence whose
    ending matches is the match `re` finds. Searching this way is also quick where the regex
    is not: its leading line break alternation makes Python's engine try every byte of a part.
    """

    def __init__(self, delimiter: bytes, *, after_line_break: bool) -> None:
        self.delimiter = delimiter
        self.after_line_break = after_line_break  # False: the line break before it is optional

    def search(self, data: bytes | bytearray, pos: int = 0) -> _Delimiter | None:
        """The first match of the pattern in `data` at or after `pos`, as `re` would find it."""
        at = data.find(self.delimiter, pos)
        while at != -1:
            start = self._start(data, at, pos)
            if start is not None:  # a delimiter's place: does its ending follow?
                ending = _DELIMITER_END.match(data, at + len(self.delimiter))
                if ending is not None:
                    return _Delimiter(start, ending.end(), ending.group(1))
            at = data.find(self.delimiter, at + 1)
        return None

    def _start(self, data: bytes | bytearray, at: int, pos: int) -> int | None:
        if at - 2 >= pos and data[at - 2 : at] == b"\r\n":
            return at - 2
        if at - 1 >= pos and data[at - 1] in b"\r\n":
            return at - 1
        return None if self.after_line_break else at


@dataclass(frozen=True)
class _Delimiter:
    """A delimiter found: what Werkzeug's decoder reads of a regex match."""

    begins: int
    ends: int
    ending: bytes  # the regex's group 1: ``--`` and what follows it, or the line break

    def start(self) -> int:  # as re.Match has them
        return self.begins

    def end(self) -> int:
        return self.ends

    def span(self) -> tuple[int, int]:
        return self.begins, self.ends

    def group(self, index: int) -> bytes:
        """Group 1, the ending (the only group Werkzeug reads)."""
        if index != 1:
            raise IndexError(f"only group 1 is kept, not {index}")
        return self.ending

    def groups(self) -> tuple[bytes]:
        return (self.ending,)


def file_name_of(event: File) -> str:
    """The part's filename as the live service's (WHATWG form-data) parser reads it.

    The bytes between the quotes are kept verbatim -- backslashes included, where werkzeug
    would unescape them as in an HTTP quoted-string -- and only ``%0A``, ``%0D`` and ``%22``
    are decoded. Unquoted and RFC 2231 (``filename*=``) forms keep werkzeug's reading.
    """
    found = _QUOTED_FILENAME.search(event.headers.get("content-disposition", ""))
    if found is None:
        return event.filename
    escapes = {"%0a": "\n", "%0d": "\r", "%22": '"'}
    return _FILENAME_ESCAPES.sub(lambda m: escapes[m.group().lower()], found.group(1))


def check_disposition(disposition: str) -> None:
    """Refuse a part's Content-Disposition as the live service's parser does.

    Under the runtime the live code was observed on, its form parser wants each parameter
    value of ``form-data; name="..."; filename="..."`` quoted up to the next quote, and does
    not read RFC 2231 ``filename*=``. So these make the whole body invalid (raised as
    `RefusedPartHeaders`): an unquoted ``name=``; a quoted value that goes on past its closing
    quote, as a backslash-escaped quote does (``filename="a\\"b.png"`` -- never read as a
    name cut at the quote); a part named only by ``filename*=``.
    """
    params: dict[str, bool] = {}  # parameter name -> whether its value was quoted
    header = f"the part header `Content-Disposition: {_shortened(disposition)}`"
    rest = disposition.partition(";")[2]
    while rest.strip():
        key, equals, rest = rest.lstrip(" \t;").partition("=")
        key = key.strip().lower()
        if not equals:
            break
        if rest.startswith('"'):
            value_end = rest.find('"', 1)
            after = rest[value_end + 1 :].lstrip(" \t") if value_end > 0 else ""
            if value_end < 0 or (after and not after.startswith(";")):
                raise RefusedPartHeaders(
                    f"{header} has a quoted {key} "
                    "that goes on past its closing quote (a backslash does not escape a quote "
                    "for the live parser: write it as %22, as browsers and requests do)"
                )
            params.setdefault(key, True)
            rest = after
        else:
            params.setdefault(key, False)
            rest = rest.partition(";")[2]
    if params.get("name") is False:
        raise RefusedPartHeaders(f'{header} has an unquoted name; the live parser wants name="..."')
    if "filename*" in params and "filename" not in params:
        raise RefusedPartHeaders(
            f"{header} names the file only with "
            'filename*=, which the live parser does not read; send filename="..."'
        )


def _shortened(text: str, limit: int = 200) -> str:
    # A hint is logged and journalled: a megabyte of filename is not repeated there.
    return text if len(text) <= limit else text[:limit] + "…"


class _Reader:
    """Routes each part's data: to the file spool, the prompt buffer, or nowhere."""

    def __init__(self, decoder: MultipartDecoder) -> None:
        self.decoder = decoder
        self.form = Form()
        self.target: HashingSpool | list[bytes] | None = None

    def drain(self) -> bool:
        """Consume the events the decoder has ready; True once the closing boundary is seen."""
        while True:
            event = self.decoder.next_event()
            if isinstance(event, NeedData):
                return False
            if isinstance(event, Epilogue):
                return True
            if isinstance(event, File | Field):
                check_disposition(event.headers.get("content-disposition", ""))
            if isinstance(event, File):
                self.target = self._start_file(event)
            elif isinstance(event, Field):
                self.target = self._start_field(event)
            elif isinstance(event, Data):
                self._write(event.data, finished=not event.more_data)

    def _start_file(self, event: File) -> HashingSpool | None:
        form = self.form
        form.file_parts.append(event.name)
        if event.name != "file" or form.file is not None or form.file_was_text:
            return None  # only the first `file` entry counts, as on the live service
        form.file = FilePart(file_name_of(event), event.headers.get("content-type"), HashingSpool())
        return form.file.spool

    def _start_field(self, event: Field) -> list[bytes] | None:
        if event.name == "file" and self.form.file is None:
            self.form.file_was_text = True
        if event.name == "prompt" and self.form.prompt is None:
            return []
        return None

    def _write(self, data: bytes, finished: bool) -> None:
        if isinstance(self.target, HashingSpool):
            self.target.write(data)
        elif self.target is not None:
            self.target.append(data)
            if finished:
                self.form.prompt = b"".join(self.target).decode("utf-8", "replace")
