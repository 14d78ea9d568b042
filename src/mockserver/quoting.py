"""Text a client sent, as the mock keeps and logs it: bounded in size, control characters escaped.

The API answers with what the client sent (a 40 MB `fileName` is echoed whole, as live), but
the journal, the per-worker caches and the log keep at most `KEPT_CHARACTERS` of it: a long
value is cut there and summarised with its length and SHA-256, so that repeating a request --
free when it fails -- cannot grow the state file or the log without bound. Log lines escape
control characters, so that a filename cannot forge a line or drive the terminal.
"""

from __future__ import annotations

import hashlib
import re

KEPT_CHARACTERS = 2048

# C0 and C1 controls, DEL, and the Unicode line and paragraph separators.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def abbreviated(text: str, keep: int = KEPT_CHARACTERS) -> str:
    """`text`, or its first `keep` characters and a summary of the whole when it is longer."""
    if len(text) <= keep:
        return text
    whole = text.encode("utf-8", "surrogatepass")
    digest = hashlib.sha256(whole).hexdigest()
    return f"{text[:keep]}… [{len(text)} characters in all, sha256 {digest}]"


def for_log(text: str) -> str:
    """`text` abbreviated and with its control characters escaped (``\\n``, ``\\x1b``), for
    one log line."""
    return escaped(abbreviated(text))


def escaped(text: str) -> str:
    """`text` with its control characters escaped: for text already abbreviated (a journal
    entry's fields), which need not be measured and cut again."""
    return _CONTROL.sub(_escape, text)


def _escape(control: re.Match[str]) -> str:
    return control.group().encode("unicode_escape").decode("ascii")
