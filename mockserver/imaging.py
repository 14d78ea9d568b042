"""Whether uploaded bytes are an image the OCR model could read.

The live service never sniffs the bytes; its OCR model simply fails on what is not a decodable
image (empty files included), and the service answers 500. The mock asks Pillow the same
question. Small images are decoded fully; large ones are only parsed and verified, so that a
20 MiB upload does not turn into hundreds of MiB of pixels in a worker.
"""

from __future__ import annotations

import warnings
from functools import cache
from typing import BinaryIO

FULL_DECODE_LIMIT = 2 * 1024 * 1024  # bytes; above this, parse and verify only


@cache
def _register_heif() -> None:
    # Imported on first use: the HEIF plugin costs start-up time the server does not need
    # until the first unknown image arrives.
    import pillow_heif

    pillow_heif.register_heif_opener()


def is_decodable(stream: BinaryIO) -> bool:
    """True when Pillow can read `stream` as an image. The stream is rewound afterwards."""
    from PIL import Image

    _register_heif()
    try:
        with warnings.catch_warnings():
            # A decompression bomb is what a real OCR model chokes on too.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return _decodes(stream)
    except Exception:
        return False
    finally:
        stream.seek(0)


def _decodes(stream: BinaryIO) -> bool:
    from PIL import Image

    size = stream.seek(0, 2)
    if size == 0:
        return False
    stream.seek(0)
    with Image.open(stream) as opened:
        opened.verify()  # checks structure (and PNG checksums) without holding pixels
    if size <= FULL_DECODE_LIMIT:
        stream.seek(0)
        with Image.open(stream) as opened:
            opened.load()
    return True
