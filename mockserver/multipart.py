"""A streaming multipart/form-data reader that keeps only what the OCR endpoint uses.

The live service reads the form with the first `file` and `prompt` entries winning. This reader
walks the parts in order, spools the first `file` part to disk past a small threshold while
hashing it incrementally (so an upload is never held in memory, nor read twice), keeps the
first text `prompt`, and discards everything else as it streams by.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass, field
from typing import BinaryIO

from werkzeug.sansio.multipart import (
    Data,
    Epilogue,
    Field,
    File,
    MultipartDecoder,
    NeedData,
)

CHUNK_SIZE = 64 * 1024
SPOOL_THRESHOLD = 1024 * 1024  # files above this go to a temporary file


class MalformedForm(ValueError):
    """The body is not a well-formed multipart/form-data document."""


class HashingSpool:
    """A write-once spooled file that hashes and counts what is written to it."""

    def __init__(self) -> None:
        self.file: BinaryIO = tempfile.SpooledTemporaryFile(max_size=SPOOL_THRESHOLD)  # noqa: SIM115
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


def read_form(stream: BinaryIO, boundary: bytes) -> Form:
    """Read a multipart body from `stream` (which must end where the body ends).

    Raises MalformedForm when the body is not well-formed multipart, truncated included.
    """
    reader = _Reader(MultipartDecoder(boundary))
    while True:
        chunk = stream.read(CHUNK_SIZE)
        reader.decoder.receive_data(chunk or None)
        try:
            if reader.drain():
                return reader.form
        except ValueError as problem:
            raise MalformedForm(str(problem)) from None
        if not chunk:
            raise MalformedForm("the body ended before the closing boundary")


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
        form.file = FilePart(event.filename, event.headers.get("content-type"), HashingSpool())
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
