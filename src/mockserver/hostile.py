"""Hostile uploads, made on the spot: small files that describe huge or slow images.

For the kit's tests (`tests/test_hostile.py`) and the benchmark (`bench/hostile.py`), which
check that the mock refuses them within its decode budgets (see `mockserver.imaging`). Each is
built with Pillow (and pillow-heif) or by hand in a second or so, so none is kept in the
repository.
"""

from __future__ import annotations

import io
import math
import struct
import zlib
from collections.abc import Callable, Mapping

from PIL import Image

BOMB_SIDE = 9400  # 88 million pixels: just under Pillow's own limit (89.5 million)

# Adam7: where each of the seven passes starts and how far apart its pixels are.
_ADAM7 = (
    (0, 0, 8, 8),
    (4, 0, 8, 8),
    (0, 4, 4, 8),
    (2, 0, 4, 4),
    (0, 2, 2, 4),
    (1, 0, 2, 2),
    (0, 1, 1, 2),
)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def interlaced_png(side: int = BOMB_SIDE) -> bytes:
    """A black (all-zero data) interlaced RGB PNG, `side` pixels square: about 340 KB at 9400."""
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 1)
    size = sum(
        math.ceil((side - y0) / dy) * (1 + math.ceil((side - x0) / dx) * 3)
        for x0, y0, dx, dy in _ADAM7
    )
    # Every byte is zero (filter type 0, black pixels). A block compressed with a full flush
    # leaves the compressor as it found it, so one compressed block repeated is the whole
    # stream: 88 million pixels in no time, and never held whole.
    block = 8 * 1024 * 1024
    count, rest = divmod(size, block)
    deflate = zlib.compressobj(9, wbits=-15)  # raw deflate: the zlib wrapper is written here
    compressed = deflate.compress(bytes(block)) + deflate.flush(zlib.Z_FULL_FLUSH)
    end = deflate.compress(bytes(rest)) + deflate.flush()
    adler = ((size % 65521) << 16) | 1  # Adler-32 of `size` zero bytes
    data = b"\x78\xda" + compressed * count + end + struct.pack(">I", adler)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", data)
        + _png_chunk(b"IEND", b"")
    )


def _saved(image: Image.Image, format: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def progressive_jpeg(side: int = BOMB_SIDE) -> bytes:
    """A progressive JPEG, `side` pixels square: about 520 KB at 9400."""
    return _saved(Image.new("RGB", (side, side), "white"), "JPEG", progressive=True)


def deflated_tiff(side: int = BOMB_SIDE) -> bytes:
    """A deflate-compressed RGB TIFF, `side` pixels square: about 400 KB at 9400."""
    return _saved(Image.new("RGB", (side, side), "white"), "TIFF", compression="tiff_deflate")


def huge_heic(side: int = BOMB_SIDE) -> bytes:
    """A HEIC whose header says `side` x `side` pixels: a small image with its `ispe` (image
    spatial extents) property rewritten, since encoding 88 million pixels takes half a minute.
    The header is what the budget is judged on."""
    import pillow_heif

    pillow_heif.register_heif_opener()
    data = bytearray(_saved(Image.new("RGB", (64, 64), "white"), "HEIF"))
    at = data.find(b"ispe")
    if at < 0:
        raise ValueError("pillow-heif wrote no ispe box")
    data[at + 8 : at + 16] = struct.pack(">II", side, side)  # after the box's version and flags
    return bytes(data)


def many_scan_jpeg(scans: int = 5000, side: int = 256) -> bytes:
    """A progressive JPEG with its last scan repeated until it has `scans` scans: each one is a
    pass over the whole image for the decoder."""
    data = _saved(Image.new("RGB", (side, side), "white"), "JPEG", progressive=True)
    last = data.rfind(b"\xff\xda")
    end = data.rfind(b"\xff\xd9")
    present = data.count(b"\xff\xda")
    return data[:end] + data[last:end] * max(scans - present, 0) + data[end:]


BOMBS: Mapping[str, tuple[str, Callable[[], bytes]]] = {
    "interlaced-png": ("image/png", interlaced_png),
    "progressive-jpeg": ("image/jpeg", progressive_jpeg),
    "deflated-tiff": ("image/tiff", deflated_tiff),
    "huge-heic": ("image/heic", huge_heic),
}
"""The decompression bombs, by name: (declared type, maker)."""
