"""Hand-built multipart/form-data bodies: the kit's one multipart builder.

The suite, the kit's own tests and the bench build every upload here, part by part, so that a
body can be exactly as a client sends it -- or exactly as it should not: a part without a
filename or a Content-Type, a filename in another encoding, parts in any order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

BOUNDARY = "itsocr-contract-suite-boundary"


@dataclass(frozen=True)
class Part:
    """One part of a hand-built multipart body; None leaves the filename or type out."""

    name: str
    content: bytes = b""
    filename: str | bytes | None = None  # bytes: sent as they are (not UTF-8, say)
    content_type: str | None = None

    def encode(self) -> bytes:
        """The part's headers and content, as browsers and curl write them."""
        disposition = f'Content-Disposition: form-data; name="{self.name}"'.encode()
        if self.filename is not None:
            raw = self.filename if isinstance(self.filename, bytes) else self.filename.encode()
            disposition += b'; filename="' + raw + b'"'
        headers = [disposition]
        if self.content_type is not None:
            headers.append(f"Content-Type: {self.content_type}".encode())
        return b"\r\n".join(headers) + b"\r\n\r\n" + self.content

    def describe(self) -> str:
        """The part in a few words, for failure messages."""
        if self.filename is None:
            return f"text field {self.name!r} ({len(self.content)} bytes)"
        kind = self.content_type if self.content_type is not None else "no Content-Type"
        name = (
            self.filename.decode(errors="replace")
            if isinstance(self.filename, bytes)
            else self.filename
        )
        return f"{self.name!r} file {name!r} {kind}, {len(self.content)} bytes"


def upload(content: bytes, content_type: str | None, filename: str = "scan.png") -> list[Part]:
    """The parts of a plain upload: one `file` part."""
    return [Part("file", content, filename, content_type)]


def multipart(parts: Sequence[Part], boundary: str = BOUNDARY) -> bytes:
    """A multipart/form-data body holding `parts`, closed by the final boundary: the kit's one
    multipart builder (the suite, the kit's tests and the bench)."""
    delimiter = b"--" + boundary.encode()
    chunks = [delimiter + b"\r\n" + part.encode() + b"\r\n" for part in parts]
    return b"".join(chunks) + delimiter + b"--\r\n"


MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"
