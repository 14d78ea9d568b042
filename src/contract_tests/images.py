"""Real images of every allowed type, drawn with Pillow (HEIC/HEIF through pillow-heif).

A correct server answers 200 to each of them, so the suite never blames an implementation for
bytes it could not decode. `image_strategy` gives Hypothesis (and Schemathesis) the same images
with drawn sizes, colours and text; `padded_png` makes a decodable PNG of an exact size.
"""

from __future__ import annotations

import io
import random
import zlib
from collections.abc import Mapping
from functools import cache

from hypothesis import strategies as st
from PIL import Image, ImageDraw

# Pillow's save format for each allowed type. HEIF has no encoder of its own: image/heic and
# image/heif both get an HEVC-coded HEIF file, which is what phones produce.
PILLOW_FORMATS: Mapping[str, str] = {
    "image/jpeg": "JPEG",
    "image/png": "PNG",
    "image/gif": "GIF",
    "image/webp": "WEBP",
    "image/heic": "HEIF",
    "image/heif": "HEIF",
    "image/tiff": "TIFF",
    "image/bmp": "BMP",
}
EXTENSIONS: Mapping[str, str] = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/gif": "gif",
    "image/webp": "webp",
    "image/heic": "heic",
    "image/heif": "heif",
    "image/tiff": "tiff",
    "image/bmp": "bmp",
}


@cache
def _register_heif() -> None:
    import pillow_heif  # imported on first use: it loads a native library

    pillow_heif.register_heif_opener()


@cache
def make_image(
    media_type: str = "image/png",
    *,
    width: int = 96,
    height: int = 32,
    text: str = "itsOCR",
    background: tuple[int, int, int] = (255, 255, 255),
) -> bytes:
    """A decodable image of `media_type` with `text` drawn on it (same arguments, same bytes)."""
    if media_type not in PILLOW_FORMATS:
        raise ValueError(f"no image maker for {media_type!r}; known: {', '.join(PILLOW_FORMATS)}")
    if PILLOW_FORMATS[media_type] == "HEIF":
        _register_heif()
    image = Image.new("RGB", (width, height), background)
    ImageDraw.Draw(image).text((2, 2), text, fill=(0, 0, 0))
    buffer = io.BytesIO()
    image.save(buffer, format=PILLOW_FORMATS[media_type])
    return buffer.getvalue()


def file_name(media_type: str, stem: str = "scan") -> str:
    """A file name with the usual extension of `media_type`."""
    return f"{stem}.{EXTENSIONS.get(media_type, 'bin')}"


def padded_png(size: int, text: str = "itsOCR") -> bytes:
    """A decodable PNG of exactly `size` bytes: a real image, zero bytes after its IEND chunk.

    Decoders stop at IEND, so the file stays a valid image whatever its padding.
    """
    image = make_image("image/png", text=text)
    if size < len(image):
        raise ValueError(f"a PNG of {size} bytes is too small for an image ({len(image)} bytes)")
    return image + bytes(size - len(image))


def noise_png(width: int, height: int, noisy_rows: int, seed: int = 9) -> bytes:
    """A PNG whose first `noisy_rows` rows are random pixels (incompressible), the rest white.

    The noise fixes the size: 200x100 with 16 noisy rows is about 10 KB; all rows noisy and
    no compression gives a file of about width*height*3 bytes (the bench's large uploads).
    """
    rng = random.Random(seed)
    image = Image.new("RGB", (width, height), "white")
    noise = Image.frombytes("RGB", (width, noisy_rows), rng.randbytes(width * noisy_rows * 3))
    image.paste(noise, (0, 0))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=0 if noisy_rows == height else 6)
    return buffer.getvalue()


def undecodable_bytes() -> bytes:
    """Bytes that no image decoder accepts (a PNG signature followed by a broken chunk)."""
    return b"\x89PNG\r\n\x1a\n" + zlib.compress(b"not an image") + b"\x00" * 16


def image_strategy(media_type: str) -> st.SearchStrategy[bytes]:
    """Images of `media_type` with drawn sizes, background and text."""
    return st.builds(
        lambda width, height, shade, text: make_image(
            media_type, width=width, height=height, text=text, background=(shade, shade, 255)
        ),
        st.integers(8, 64),
        st.integers(8, 32),
        st.integers(160, 255),
        st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ", min_size=1, max_size=8),
    )
