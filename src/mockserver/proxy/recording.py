"""Recording the upstream's answers as fixtures that `itsocr-mock serve --fixtures DIR` loads.

Each image recorded is one fixture of the directory (see `mockserver.fixtures`): the image under
a stable name (the first 16 hex digits of its SHA-256, with the extension of its format), its
``.txt`` (the text answered without a prompt, or the first answer recorded until one without a
prompt comes) and its ``.prompts.yaml`` (the text answered for each prompt). Recording the same
image with another prompt adds a variant; an answer already recorded changes nothing.

Atomic per fixture: each file is written to a hidden ``.part`` file beside it and renamed over
it, in the order ``.txt``, image, ``.prompts.yaml``, so that whatever moment the proxy is killed
at, the directory holds whole fixtures only (the loader ignores a ``.txt`` without its image and
``.part`` files). An exclusive lock on the directory serialises recordings across workers.
Nothing but the image, the texts and the prompts is written: no header, no token.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import yaml

from mockserver.fixtures import MEDIA_TYPES, PROMPTS_SUFFIX

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: one process, the threading lock suffices
    fcntl = None  # type: ignore[assignment]

NAME_DIGITS = 16  # hex digits of the SHA-256 in a recorded image's name
LOCK_NAME = ".itsocr-mock-record.lock"
_PART_SUFFIX = ".part"
# The first extension `mockserver.fixtures` knows for each type.
EXTENSIONS = {media_type: suffix for suffix, media_type in reversed(MEDIA_TYPES.items())}
# Magic numbers: a recorded image is named by its bytes' format, whatever type was declared.
_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/bmp"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
)


class Recorder:
    """Writes recorded answers into `directory` (created if missing)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._threads = threading.Lock()

    def record(
        self, image: IO[bytes], sha256: str, declared_type: str, prompt: str, text: str
    ) -> tuple[str, str | None]:
        """Record that `image` (positioned at its start) with `prompt` ("" for none) reads `text`.

        Returns the fixture's name and what changed in a few words (for the log), None when
        the answer was already recorded.
        """
        with self._locked():
            path = self._image_path(image, sha256, declared_type)
            sidecar = path.with_suffix(".txt")
            variants_file = path.with_name(path.stem + PROMPTS_SUFFIX)
            variants = _read_variants(variants_file)
            has_image, has_text = path.is_file(), sidecar.is_file()
            if prompt:
                if has_image and has_text and variants.get(prompt) == text:
                    return path.name, None
            elif has_image and has_text and sidecar.read_text(encoding="utf-8-sig") == text:
                return path.name, None
            if not prompt or not has_text:
                self._write(sidecar, lambda out: out.write(text.encode("utf-8")))
            if not has_image:
                self._write(path, lambda out: shutil.copyfileobj(image, out))
            if prompt:
                variants[prompt] = text
                dumped = yaml.safe_dump(variants, allow_unicode=True, sort_keys=False)
                self._write(variants_file, lambda out: out.write(dumped.encode("utf-8")))
        what = "a new fixture" if not has_image else "a prompt variant" if prompt else "its text"
        return path.name, f"recorded {what}: {path.name}" + (
            f" (prompt {prompt!r})" if prompt else ""
        )

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with self._threads, (self.directory / LOCK_NAME).open("a") as lock:
            if fcntl is not None:
                fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _image_path(self, image: IO[bytes], sha256: str, declared_type: str) -> Path:
        stem = sha256[:NAME_DIGITS]
        for suffix in dict.fromkeys(MEDIA_TYPES):  # already recorded under another extension?
            if (self.directory / (stem + suffix)).is_file():
                return self.directory / (stem + suffix)
        head = image.read(16)
        image.seek(0)
        media_type = _sniff(head) or declared_type.lower()
        return self.directory / (stem + EXTENSIONS.get(media_type, ".png"))

    def _write(self, path: Path, fill: Callable[[IO[bytes]], object]) -> None:
        """Write a file atomically: a hidden part file beside it, renamed over it."""
        handle, part = tempfile.mkstemp(
            dir=self.directory, prefix=f".{path.name}.", suffix=_PART_SUFFIX
        )
        hidden = Path(part)
        try:
            with os.fdopen(handle, "wb") as out:
                fill(out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(hidden, path)
        except BaseException:
            hidden.unlink(missing_ok=True)
            raise


def _read_variants(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    loaded = yaml.safe_load(path.read_text(encoding="utf-8-sig")) or {}
    return {str(prompt): str(text) for prompt, text in dict(loaded).items()}


def _sniff(head: bytes) -> str | None:
    for signature, media_type in _SIGNATURES:
        if head.startswith(signature):
            return media_type
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[4:8] == b"ftyp":
        return "image/heif" if head[8:12] in (b"mif1", b"msf1") else "image/heic"
    return None
