"""Whether uploaded bytes are an image the OCR model could read: the one definition.

The live service never sniffs the bytes; its OCR model simply fails on what is not a decodable
image (empty files included), and the service answers 500. The mock asks Pillow the same
question, for the kinds of image the service accepts, and decodes the whole image: a file whose
header parses but whose data is truncated or corrupt fails as it would live. The contract
suite's oracle asks this very function (`contract_tests.oracle`), so that the suite and the
mock cannot disagree on what "decodable" means.

A small upload can describe a huge image (a "decompression bomb": 9400 x 9400 pixels in a
343 KB interlaced PNG), or one that takes minutes to decode (a JPEG with thousands of scans).
Every decode therefore keeps to three budgets, each checked from the header before any pixel
is decoded; an image over one of them is "not decodable" (the live 500, at no quota cost):

- **memory**: what the decode would allocate, estimated per format from the header (width x
  height x bytes per pixel, times what the format's decoder keeps besides), at most
  `DECODE_MEMORY`. Decodes that need little memory do not hold it: a non-interlaced PNG is
  inflated as a stream without building the image, a large baseline JPEG is decoded at 1/8
  scale (libjpeg still reads and checks every byte). A process runs at most `DECODE_MEMORY`
  worth of decodes at once (`MemoryGate`); the others wait for room.
- **work**: at most `MAX_JPEG_SCANS` scans in a JPEG (each scan is a pass over the whole
  image; cameras write 1, progressive encoders about 10), and Pillow's pixel limit.
- **time**: a decode, its wait for room included, ends after `DECODE_SECONDS`: the decoder's
  reads are cut off there.
"""

from __future__ import annotations

import math
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import IO

from PIL import Image, ImageFile

# Pillow's names for the allowed types (its JPEG opener also reads the MPO files many phone
# cameras write). Naming them keeps Pillow away from formats the service refuses, EPS above
# all, whose decoder would run Ghostscript on an upload.
FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "TIFF", "BMP", "HEIF")
JPEG_DRAFT_PIXELS = 4_000_000  # above this, JPEGs decode at reduced scale (all data, less RAM)
DECODE_MEMORY = 160 * 1024 * 1024  # the most memory decodes take at once, in one process
DECODE_SECONDS = 4.0  # the longest a decode takes, waiting for room included
MAX_JPEG_SCANS = 100
_READ_BLOCK = 16 * 1024  # decoders are fed this much at a time: the deadline's granularity


@dataclass(frozen=True)
class Decoding:
    """The verdict on some bytes: an image the OCR model could read, or why not."""

    decodable: bool
    problem: str | None = None  # why not, in words, for the hint
    # False when the verdict depends on the moment (no room to decode in time), not only on
    # the bytes: it must not be remembered for them.
    lasting: bool = True


DECODABLE = Decoding(True)
NOT_AN_IMAGE = Decoding(False, "not a decodable image of an accepted type")


class DecodeTimeout(Exception):
    """A decode went past its deadline."""


class MemoryGate:
    """Lets decodes run together only while their memory, summed, stays within a capacity."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._used = 0
        self._freed = threading.Condition()

    @contextmanager
    def room(self, size: int, timeout: float) -> Iterator[bool]:
        """Reserve `size` bytes for the block; yields False if there was no room in time."""
        with self._freed:
            granted = self._freed.wait_for(
                lambda: self._used + size <= self.capacity, max(timeout, 0.0)
            )
            if granted:
                self._used += size
        try:
            yield granted
        finally:
            if granted:
                with self._freed:
                    self._used -= size
                    self._freed.notify_all()


_gate = MemoryGate(DECODE_MEMORY)


class _Deadlined:
    """A stream whose reads fail once the deadline has passed.

    Decoders are fed in blocks read as they go (`_READ_BLOCK`), so a decode that takes too
    long stops at its next read instead of running on.
    """

    def __init__(self, stream: IO[bytes], deadline: float) -> None:
        self._stream = stream
        self.deadline = deadline

    def read(self, size: int = -1, /) -> bytes:
        if time.monotonic() > self.deadline:
            raise DecodeTimeout
        return self._stream.read(size)

    def seek(self, offset: int, whence: int = 0, /) -> int:
        return self._stream.seek(offset, whence)

    def tell(self) -> int:
        return self._stream.tell()


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
    """True when `stream` is an image of an allowed type that decodes in full, within the
    budgets (see the module's docstring). The stream is read from its start and left rewound
    to it."""
    return examine(stream).decodable


def examine(stream: IO[bytes], seconds: float = DECODE_SECONDS) -> Decoding:
    """The verdict on `stream` (read from its start, left rewound): `is_decodable` with the
    reason when it is not. `seconds` is the time budget."""
    _register_plugins()
    deadline = time.monotonic() + seconds
    try:
        stream.seek(0)
        head = stream.read(12)
        if not head:
            return Decoding(False, "the file is empty")
        if head[4:8] == b"ftyp":  # an ISO media file, as HEIF is: its first box is `ftyp`
            _register_heif()
        return _examine(_Deadlined(stream, deadline))
    except DecodeTimeout:
        return Decoding(False, f"decoding it took longer than the mock's {seconds:g} s")
    finally:
        stream.seek(0)


def _examine(stream: _Deadlined) -> Decoding:
    stream.seek(0)
    try:
        registered = [name for name in FORMATS if name in Image.OPEN]  # HEIF: once seen
        with Image.open(stream, formats=registered) as image:  # type: ignore[arg-type]
            refused = _over_budget(image, stream)
            if refused is not None:
                return refused
            if image.format == "PNG" and not image.info.get("interlace"):
                whole = _png_data_is_whole(stream)
                if whole is not None:
                    return DECODABLE if whole else NOT_AN_IMAGE
            return _decode(image, stream)
    except DecodeTimeout:
        raise
    except Image.DecompressionBombError:
        return Decoding(False, f"it has more than {2 * _max_pixels()} pixels")
    except Exception:  # whatever a decoder raises, the live OCR would fail on it too
        return NOT_AN_IMAGE


def _decode(image: Image.Image, stream: _Deadlined) -> Decoding:
    need = memory_needed(image)
    with _gate.room(need, stream.deadline - time.monotonic()) as room:
        if not room:
            problem = "the mock was busy decoding other large images; try again"
            return Decoding(False, problem, lasting=False)
        if image.format == "HEIF":
            # pillow-heif's own buffer is the decoded image: building a Pillow image of it
            # would take as much memory again.
            import pillow_heif

            stream.seek(0)
            pillow_heif.open_heif(stream, convert_hdr_to_8bit=True).data  # noqa: B018
            return DECODABLE
        if image.format in ("JPEG", "MPO") and image.width * image.height > JPEG_DRAFT_PIXELS:
            # libjpeg still reads and checks every byte, but builds 1/8 of the pixels.
            image.draft(image.mode, (image.width // 8, image.height // 8))
        assert isinstance(image, ImageFile.ImageFile)
        image.decodermaxblock = _READ_BLOCK
        image.load()
    return DECODABLE


def _over_budget(image: Image.Image, stream: _Deadlined) -> Decoding | None:
    pixels = image.width * image.height
    limit = _max_pixels()
    if limit and pixels > limit:
        return Decoding(False, f"it has {pixels} pixels, more than the mock's {limit}")
    streamed = image.format == "PNG" and not image.info.get("interlace")
    need = memory_needed(image)
    if not streamed and need > DECODE_MEMORY:
        return Decoding(
            False,
            f"a {image.width}x{image.height} {image.format} takes about {need // 2**20} MiB to "
            f"decode, more than the mock's {DECODE_MEMORY // 2**20} MiB",
        )
    if image.format in ("JPEG", "MPO"):
        scans = _jpeg_scans(stream)
        if scans > MAX_JPEG_SCANS:
            return Decoding(False, f"it has {scans} scans, more than the mock's {MAX_JPEG_SCANS}")
    return None


def _max_pixels() -> int:
    return int(Image.MAX_IMAGE_PIXELS or 0)


# Memory a decoder takes beyond the image itself, as measured with Pillow 13 (peak RSS):
# WebP's decoder keeps two RGBA canvases besides the image, libtiff a strip or tile buffer.
_DECODER_OVERHEAD = {"WEBP": 4.25, "TIFF": 1.5}
_HEIF_BYTES_PER_PIXEL = 6  # libheif's planes and its RGB output (measured: about 5)


def memory_needed(image: Image.Image) -> int:
    """The memory, in bytes, decoding `image` in full takes (estimated from its header)."""
    pixels = image.width * image.height
    if image.format == "HEIF":
        return pixels * _HEIF_BYTES_PER_PIXEL
    # Pillow keeps 1 byte per pixel for 1, L and P, 2 for I;16, and 4 for everything else.
    per_pixel = 1 if image.mode in ("1", "L", "P") else 2 if image.mode.startswith("I;16") else 4
    whole = pixels * per_pixel
    if image.format not in ("JPEG", "MPO"):
        return math.ceil(whole * _DECODER_OVERHEAD.get(str(image.format), 1.25))
    need = whole // 64 if pixels > JPEG_DRAFT_PIXELS else whole
    if image.info.get("progressive"):
        need += _jpeg_coefficients(image)  # kept whole until the last scan, whatever the scale
    return need


def _jpeg_coefficients(image: Image.Image) -> int:
    # A progressive JPEG's decoder keeps every DCT coefficient (2 bytes) of every component.
    layers = getattr(image, "layer", None) or [("", 1, 1, 0)] * len(image.getbands())
    wide = max(layer[1] for layer in layers) or 1
    tall = max(layer[2] for layer in layers) or 1
    blocks: int = sum(
        math.ceil(image.width * layer[1] / wide / 8) * math.ceil(image.height * layer[2] / tall / 8)
        for layer in layers
    )
    return blocks * 64 * 2


_SOS = b"\xff\xda"  # start of scan: never in entropy-coded data, where 0xFF is followed by 0


def _jpeg_scans(stream: _Deadlined) -> int:
    """How many scans a JPEG has (its start-of-scan markers), counted before decoding."""
    stream.seek(0)
    scans, carry = 0, b""
    while chunk := stream.read(1024 * 1024):
        scans += (carry + chunk[:1]).count(_SOS) + chunk.count(_SOS)
        carry = chunk[-1:]
    stream.seek(0)
    return scans


_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # by colour type
_PNG_FILTERS = 4  # a scanline starts with its filter type, 0 to 4
_INFLATE_STEP = 256 * 1024


def _png_data_is_whole(stream: _Deadlined) -> bool | None:
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
