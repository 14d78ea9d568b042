"""Whether uploaded bytes are an image the OCR model could read.

The live service never sniffs the bytes; its OCR model simply fails on what is not a decodable
image (empty files included), and the service answers 500. The mock asks Pillow the same
question, for the kinds of image the service accepts, and decodes the whole image: a file whose
header parses but whose data is truncated or corrupt fails as it would live. (A PNG's data is
decoded as a stream, without building the image, so that large uploads cost no memory.)
"""

from __future__ import annotations

import struct
import zlib
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
    # On first use, and only the allowed types' plugins: Pillow registers its commonest at
    # import (TIFF and WebP are not among them); Image.init() would load all forty of them,
    # for 3 MB and 25 ms more.
    from PIL import (  # noqa: F401 - importing a plugin registers it
        BmpImagePlugin,
        GifImagePlugin,
        JpegImagePlugin,
        MpoImagePlugin,
        PngImagePlugin,
        TiffImagePlugin,
        WebPImagePlugin,
    )


@cache
def _register_heif() -> None:
    # Only once a HEIF arrives: pillow-heif's library costs each worker about 8 MB of memory
    # and 35 ms, which a mock that never sees one need not pay.
    import pillow_heif

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
        head = stream.read(12)
        if head[4:8] == b"ftyp":  # an ISO media file, as HEIF is: its first box is `ftyp`
            _register_heif()
        return bool(head) and _loads(stream)
    finally:
        stream.seek(0)


def _loads(stream: IO[bytes]) -> bool:
    stream.seek(0)
    try:
        registered = [name for name in FORMATS if name in Image.OPEN]  # HEIF: once seen
        with Image.open(stream, formats=registered) as image:
            pixels = image.width * image.height
            if Image.MAX_IMAGE_PIXELS and pixels > Image.MAX_IMAGE_PIXELS:
                return False  # Pillow only warns between the limit and twice it
            if image.format == "PNG" and not image.info.get("interlace"):
                whole = _png_data_is_whole(stream)
                if whole is not None:
                    return whole
            if image.format in ("JPEG", "MPO") and pixels > JPEG_DRAFT_PIXELS:
                # libjpeg still reads and checks every byte, but builds 1/8 of the pixels.
                image.draft(image.mode, (image.width // 8, image.height // 8))
            image.load()
    except Exception:  # whatever a decoder raises, the live OCR would fail on it too
        return False
    return True


_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # by colour type
_PNG_FILTERS = 4  # a scanline starts with its filter type, 0 to 4
_INFLATE_STEP = 256 * 1024


def _png_data_is_whole(stream: IO[bytes]) -> bool | None:
    """Decode a (non-interlaced) PNG's pixel data as Pillow's decoder does -- inflate the IDAT
    chunks until every scanline is there, each with a valid filter type -- without building
    the image: a 20 MiB PNG holds 20 MB of pixels or more, all of it in memory otherwise (as
    `draft` spares for a JPEG). Like Pillow's decoder, it stops at the last scanline and does
    not check chunk CRCs or what follows.

    None when the zlib data is damaged: Pillow's decoder may still have every scanline before
    the damage (zlib here gives up a whole step at once), so it is left to decide.
    """
    stream.seek(8)  # the signature, already checked by Pillow
    length, kind = struct.unpack(">I4s", stream.read(8))
    header = stream.read(length + 4)
    if kind != b"IHDR" or len(header) < 13:
        return False
    width, height, depth, colour = struct.unpack(">IIBB", header[:10])
    row = 1 + (width * depth * _PNG_CHANNELS.get(colour, 0) + 7) // 8
    expected, inflated, inflate = row * height, 0, zlib.decompressobj()
    while True:
        head = stream.read(8)
        if len(head) < 8:
            return False  # the data ends before the last scanline
        length, kind = struct.unpack(">I4s", head)
        if kind != b"IDAT":
            stream.seek(length + 4, 1)
            continue
        data = stream.read(length)
        stream.seek(4, 1)
        while True:  # in steps: memory stays flat whatever the image's size
            try:
                rows = inflate.decompress(data, _INFLATE_STEP)[: expected - inflated]
            except zlib.error:
                return None
            if not rows:
                break  # this chunk is used up: on to the next
            first = -inflated % row  # where, in these bytes, the next scanline starts
            if max(rows[first::row], default=0) > _PNG_FILTERS:
                return False
            inflated += len(rows)
            if inflated == expected:
                return True
            data = inflate.unconsumed_tail
