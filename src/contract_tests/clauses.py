"""Contract clauses: their ids, their outcomes, the final table, and how failures read.

Every hand-written check of the suite belongs to a clause with a stable id (``auth.missing-header``,
``quota.exact-limit``...), declared on the test with ``@pytest.mark.clause(id, level=...)``. A
clause passes when all its tests pass, fails when any fails, and is skipped (with the reasons)
when all were skipped. Failures are `Violation`s, whose message starts with the clause id and
shows what the contract expected and what was received, with tokens masked.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import requests

# A token (itsocr_ + 32 characters) or one a test derived from it (a character more or less, the
# prefix changed): shown as its first 11 characters, the way the vendor's dashboard shows one.
_TOKEN = re.compile(r"(?i)(itsocr[_-][A-Za-z0-9]{4})[A-Za-z0-9]{20,}")
_SECRETS: list[re.Pattern[str]] = []  # the user's tokens, found wherever a test put them
LEVELS = ("documented", "observed")


def keep_secret(token: str) -> None:
    """Mask `token`'s secret part in every failure, even where a test moved or cut it."""
    secret = token.removeprefix("itsocr_")
    if len(secret) >= 16:
        _SECRETS.append(re.compile(re.escape(secret[:16]) + "[A-Za-z0-9]*"))


def mask(text: str) -> str:
    """`text` with every token masked, e.g. ``itsocr_Free…``."""
    text = _TOKEN.sub(r"\1…", text)
    for secret in _SECRETS:
        text = secret.sub(lambda found: found.group()[:4] + "…", text)
    return text


class Violation(AssertionError):
    """A response that breaks a clause: the message names the clause, expected and received,
    and (given the request sent) a curl command that sends it again, tokens masked."""

    def __init__(
        self,
        clause: str,
        request: str,
        problems: Iterable[str],
        received: str,
        sent: requests.PreparedRequest | None = None,
    ) -> None:
        self.clause = clause
        self.problems = [mask(problem) for problem in problems]
        lines = [f"[{clause}] {request}", *(f"  - {problem}" for problem in self.problems)]
        lines.append(f"  received: {received}")
        if sent is not None:
            lines.append(f"  reproduce: {curl_command(sent)}")
        super().__init__(mask("\n".join(lines)))


# Headers that requests adds on its own and curl adds or needs not: left out of the command.
_IMPLIED = {"host", "content-length", "accept-encoding", "connection", "user-agent", "accept"}
SHOWN_BODY = 4096  # bytes of a body written into the command; a larger one is described


def curl_command(sent: requests.PreparedRequest) -> str:
    """A shell command that sends `sent` again (its token masked: put yours back in).

    A body up to SHOWN_BODY bytes is piped in from ``printf %b``, every byte as sent (NUL
    included, which no shell string can hold); a larger one (an image) is named, to be put
    into a file first.
    """
    words = ["curl", "-i", "-X", sent.method or "GET", shlex.quote(sent.url or "")]
    for name, value in sent.headers.items():
        if name.lower() not in _IMPLIED:
            words += ["-H", shlex.quote(f"{name}: {value}")]
    body = sent.body.encode() if isinstance(sent.body, str) else sent.body
    if not isinstance(body, bytes) or not body:
        return mask(" ".join(words))
    if len(body) > SHOWN_BODY:
        return mask(
            " ".join([*words, "--data-binary", f"@body.bin  # its {len(body):,}-byte body"])
        )
    return mask(
        f"printf %b '{_octal_escaped(body)}' | " + " ".join([*words, "--data-binary", "@-"])
    )


def _octal_escaped(data: bytes) -> str:
    """`data` for ``printf %b '...'`` in any POSIX shell: printable ASCII as is, the rest (and
    the quote and backslash) as \\0ddd octal escapes."""
    return "".join(
        chr(byte) if 32 <= byte < 127 and byte not in (39, 92) else f"\\0{byte:03o}"
        for byte in data
    )


@dataclass
class ClauseResult:
    """The outcome of one clause over all of its tests."""

    clause: str
    level: str
    summary: str = ""
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    reasons: list[str] = field(default_factory=list)  # skip reasons and failure headlines

    @property
    def outcome(self) -> str:
        """failed if any test failed; passed if any passed; skipped otherwise."""
        if self.failed:
            return "failed"
        return "passed" if self.passed else "skipped"

    def add(self, outcome: str, reason: str | None) -> None:
        """Count one test's outcome (passed, failed or skipped) and its reason."""
        setattr(self, outcome, getattr(self, outcome) + 1)
        if reason and reason not in self.reasons:
            self.reasons.append(mask(reason))

    def as_json(self) -> dict[str, object]:
        """The row as the JSON report writes it."""
        return {
            "clause": self.clause,
            "level": self.level,
            "result": self.outcome,
            "passed": self.passed,
            "failed": self.failed,
            "skipped": self.skipped,
            "reasons": self.reasons,
            "summary": self.summary,
        }


@dataclass
class Ledger:
    """The clause results of a session, in the order clauses were first seen."""

    results: dict[str, ClauseResult] = field(default_factory=dict)

    def declare(self, clause: str, level: str, summary: str) -> ClauseResult:
        """The result row of `clause`, created on first sight."""
        if clause not in self.results:
            self.results[clause] = ClauseResult(clause, level, summary)
        return self.results[clause]

    def table(self) -> list[str]:
        """The clause table as text lines: clause | level | result (reason)."""
        rows = sorted(self.results.values(), key=lambda row: row.clause)
        width = max((len(row.clause) for row in rows), default=6)
        lines = [f"{'clause':<{width}}  {'level':<10}  result"]
        for row in rows:
            counts = f"{row.passed}/{row.passed + row.failed + row.skipped}"
            result = f"{row.outcome} ({counts})" if row.outcome != "skipped" else "skipped"
            reason = f": {row.reasons[0]}" if row.reasons and row.outcome != "passed" else ""
            lines.append(f"{row.clause:<{width}}  {row.level:<10}  {result}{reason}")
        return lines

    def write_json(self, path: Path, totals: dict[str, object]) -> None:
        """Write the table and the session's totals to `path`."""
        rows = [row.as_json() for row in sorted(self.results.values(), key=lambda r: r.clause)]
        path.write_text(json.dumps({"clauses": rows, **totals}, indent=2) + "\n", encoding="utf-8")
