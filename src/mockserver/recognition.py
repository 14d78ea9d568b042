"""OCR of the images no fixture knows: whether they decode, and the text generated for them.

Both depend on the bytes (and the prompt) alone, and cost more than the rest of a request
together (a full decode, a Faker document): `UnknownImages` remembers the outcome, so a test
suite posting the same images again pays for them once per worker.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

from mockserver.fixtures import Recognition, fallback_text
from mockserver.imaging import Decoding, examine
from mockserver.turns import waiting
from mockserver.upload import Upload


class UnknownImages:
    """What OCR made of the images recently seen that no fixture knows, by hash and prompt."""

    def __init__(self, remembered: int = 1024) -> None:
        self._remembered = remembered
        self._outcomes: OrderedDict[tuple[str, str], Recognition | Decoding] = OrderedDict()
        self._lock = threading.Lock()

    def recognise(self, upload: Upload) -> Recognition | Decoding:
        """The generated text for `upload`, or the verdict when its bytes are not a decodable
        image (within the decode budgets)."""
        # Hashed: a prompt may be megabytes long, and this cache is kept per worker.
        key = (upload.sha256, hashlib.sha256(upload.prompt.encode()).hexdigest())
        with self._lock:
            if key in self._outcomes:
                self._outcomes.move_to_end(key)
                return self._outcomes[key]
        with waiting():  # a decoder (C code) may take a while on a large image
            decoding = examine(upload.stream)
        outcome = fallback_text(upload.sha256, upload.prompt) if decoding.decodable else decoding
        if decoding.lasting:  # not "no room to decode in time": that one is for now only
            with self._lock:
                self._outcomes[key] = outcome
                if len(self._outcomes) > self._remembered:
                    self._outcomes.popitem(last=False)
        return outcome
