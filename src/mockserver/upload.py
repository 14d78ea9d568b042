"""The uploaded file as the OCR pipeline sees it, and what to tell a client about its mistakes.

The HTTP layer (`api.read_upload`) parses the multipart body into an `Upload`; the pipeline
(`backend.Backend`) judges it. The hints are the mock's addition to the live service's terse
errors: the journal and the log say why an upload was refused and how to send it right.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO

from mockserver.imaging import Decoding


@dataclass(frozen=True)
class Upload:
    """The `file` part of a request (and its `prompt`), as the HTTP layer parsed it."""

    file_name: str
    declared_type: str | None  # the part's Content-Type as sent; None when it had none
    size: int
    sha256: str
    stream: BinaryIO
    prompt: str = ""  # first `prompt` field, trimmed

    @property
    def mime_type(self) -> str:
        """The type the live service sees: lower-cased, ``text/plain`` when the part had no
        Content-Type header (a header present but empty is the empty type)."""
        return "text/plain" if self.declared_type is None else self.declared_type.lower()

    def type_hint(self) -> str | None:
        """How to declare the file's type, when the type it was sent with is refused."""
        if self.declared_type is None:
            return (
                f"the file part {self.file_name!r} was sent without a Content-Type, which the "
                "service reads as text/plain. Python requests does this for files={'file': f} "
                "(the vendor's own example); declare the type: "
                "files={'file': ('document.jpg', f, 'image/jpeg')}"
            )
        if self.declared_type == "":
            return (
                f"the file part {self.file_name!r} has an empty Content-Type header (the live "
                "service reports the empty type); declare the image's type, e.g. image/png"
            )
        if self.mime_type == "application/octet-stream":
            return (
                f"the file part {self.file_name!r} was declared application/octet-stream, the "
                "type Node.js sends for a Blob without one (and curl -F for an unknown file "
                "extension); give the Blob its type: new Blob([bytes], {type: 'image/png'}) "
                "(curl: -F 'file=@scan;type=image/png')"
            )
        if self.mime_type == "image/jpg":
            return "image/jpg is not a registered media type; declare JPEG files as image/jpeg"
        if ";" in self.mime_type:
            return (
                "the declared type must be the bare media type, without parameters such as charset"
            )
        return None

    def undecodable_hint(self, decoding: Decoding) -> str:
        """Why the bytes are no image OCR can read (the live 500's reason)."""
        if self.size == 0:
            return "the file is empty; the live OCR model fails on it the same way"
        return (
            f"the bytes of {self.file_name!r} do not decode as an image (declared "
            f"{self.mime_type}): {decoding.problem}; the live OCR model fails on them the same "
            "way"
        )
