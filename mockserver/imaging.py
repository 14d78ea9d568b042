"""Whether uploaded bytes are an image the OCR model could read.

The live service never sniffs the bytes; its OCR model simply fails on what is not a decodable
image (empty files included), and the service answers 500. The mock asks Pillow the same
question, for the kinds of image the service accepts, and decodes the whole image: a file whose
header parses but whose data is truncated or corrupt fails as it would live.
"""

from __future__ import annotations

from functools import cache
from typing import IO

from PIL import Image

# Pillow's names for the allowed types (its JPEG opener also reads the MPO files many phone
# cameras write). Naming them keeps Pillow away from formats the service refuses, EPS above
# all, whose decoder would run Ghostscript on an upload.
FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "TIFF", "BMP", "HEIF")
JPEG_DRAFT_PIXELS = 4_000_000  # above this, JPEGs decode at reduced scale (all data, less RAM)


@cache
def _register_plugins() -> None:
    # On first use: Pillow registers only its commonest plugins at import (TIFF and WebP are
    # not among them), and the HEIF plugin costs start-up time the server does not need
    # until the first unknown image arrives.
    import pillow_heif

    Image.init()
    pillow_heif.register_heif_opener()


def is_decodable(stream: IO[bytes]) -> bool:
    """True when Pillow can open and fully load `stream` as an allowed image type.

    Anything else is False: empty or truncated data, other formats, decoder errors and
    decompression bombs (more pixels than ``PIL.Image.MAX_IMAGE_PIXELS``). The stream is read
    from its start and left rewound to it.
    """
    _register_plugins()
    try:
        stream.seek(0)
        return bool(stream.read(1)) and _loads(stream)
    finally:
        stream.seek(0)


def _loads(stream: IO[bytes]) -> bool:
    stream.seek(0)
    try:
        with Image.open(stream, formats=FORMATS) as image:
            pixels = image.width * image.height
            if Image.MAX_IMAGE_PIXELS and pixels > Image.MAX_IMAGE_PIXELS:
                return False  # Pillow only warns between the limit and twice it
            if image.format in ("JPEG", "MPO") and pixels > JPEG_DRAFT_PIXELS:
                # libjpeg still reads and checks every byte, but builds 1/8 of the pixels.
                image.draft(image.mode, (image.width // 8, image.height // 8))
            image.load()
    except Exception:  # whatever a decoder raises, the live OCR would fail on it too
        return False
    return True
