"""The proxy's rules, without HTTP framework: forward, validate, journal, record, keep the budget.

`Proxy.forward` takes a request as received and returns the upstream's answer as a `Relay`: its
status, headers and a body iterable that streams the upstream's body through. When the relay is
closed (the answer sent, or the client gone) the exchange is finished: the answer is validated
against `openapi.yaml` at the observed level with the kit's one validator
(`mockserver.validation`), journalled with its violations, logged, and, with a recorder, a 200
answer of `POST /ocr` is recorded as a fixture.
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import IO, cast

from werkzeug.http import parse_options_header

from mockserver.clock import format_instant, utc_now
from mockserver.multipart import read_form
from mockserver.proxy.recording import Recorder
from mockserver.proxy.upstream import (
    Answer,
    BodyReader,
    ClientGone,
    Upstream,
    UpstreamFailure,
)
from mockserver.store import JournalEntry
from mockserver.store.sqlite import Store
from mockserver.validation import find_operation, find_violations

log = logging.getLogger("itsocr_mock.proxy")

BUDGET_ACCOUNT, BUDGET_PERIOD = "itsocr-mock-proxy", "forwarded"  # the budget's usage row
VALIDATED_BYTES = 1024 * 1024  # an answer longer than this is passed on but not validated
TOKEN_PREFIX_LENGTH = 12  # as the mock's journal shows a token: itsocr_ and 5 characters
_TOKEN = re.compile(r"itsocr_[A-Za-z0-9]{32}")
_SPOOL_IN_MEMORY = 1024 * 1024  # the copy of an upload kept for recording goes to disk past this
OCR_PATH = "/api/v1/ocr"


class ProxyError(Exception):
    """An answer of the proxy itself, never the upstream's: `status` and the message."""

    status = 502

    def __init__(self, message: str) -> None:
        super().__init__(f"itsocr-mock proxy: {message}")
        self.error = str(self)

    def to_json(self) -> dict[str, object]:
        """The body, shaped as the API's errors are."""
        return {"success": False, "error": self.error}


class NoUpstreamAnswer(ProxyError):
    """The upstream could not be reached, did not answer in time, or hung up: 502."""

    status = 502


class BudgetSpent(ProxyError):
    """--budget requests that can consume quota were forwarded already: 503."""

    status = 503


@dataclass(frozen=True)
class Incoming:
    """A request as the proxy received it."""

    method: str
    path: str  # decoded, e.g. /api/v1/ocr
    target: str  # as sent upstream: the path, encoded as received, and the query
    headers: Sequence[tuple[str, str]]
    body: IO[bytes] | None  # None: no body
    length: int | None  # Content-Length; None with a body: chunked

    def header(self, name: str) -> str | None:
        """The first value of header `name`, or None."""
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    @property
    def token(self) -> str | None:
        """The bearer token sent, if any."""
        scheme, _, value = (self.header("Authorization") or "").strip().partition(" ")
        if scheme.lower() != "bearer":
            return None
        return value.strip() or None


def forwarded(store: Store) -> int:
    """Requests that could consume quota the proxy journalling in `store` forwarded so far."""
    return store.usage(BUDGET_ACCOUNT, BUDGET_PERIOD)[0]


class Proxy:
    """Forwards to `upstream`, journals in `store`, records with `recorder`, within `budget`."""

    def __init__(
        self,
        upstream: Upstream,
        store: Store,  # SQLite: its count_image also counts without a journal entry
        recorder: Recorder | None = None,
        budget: int | None = None,
    ) -> None:
        self.upstream = upstream
        self.store = store
        self.recorder = recorder
        self.budget = budget

    def forwarded(self) -> int:
        """Requests that could consume quota forwarded so far."""
        return forwarded(self.store)

    def reset_budget(self) -> None:
        """Start counting the budget from zero (when the proxy starts)."""
        self.store.set_images_used(BUDGET_ACCOUNT, BUDGET_PERIOD, 0)

    def forward(self, incoming: Incoming) -> Relay:
        """Forward `incoming`; its answer, to relay. Raises ProxyError (journalled) for an
        answer of the proxy's own, ClientGone when the client left mid-upload."""
        exchange = Exchange(self, incoming)
        may_consume_quota = incoming.method == "POST" and incoming.token is not None
        if may_consume_quota and not self.store.count_image(
            BUDGET_ACCOUNT, BUDGET_PERIOD, self.budget, 0, None
        ):
            exchange.fail(
                BudgetSpent(
                    f"the budget of {self.budget} requests that can consume quota "
                    "(--budget) is spent; nothing was sent upstream"
                )
            )
        body = None
        if incoming.body is not None:
            body = BodyReader(incoming.body, incoming.length, exchange.tap)
        try:
            answer = self.upstream.send(
                incoming.method, incoming.target, incoming.headers, body, incoming.length
            )
        except UpstreamFailure as failure:
            exchange.fail(NoUpstreamAnswer(str(failure)))
        except ClientGone:
            exchange.finish(0, b"", error="the client went away before its body was sent")
            raise
        return Relay(exchange, answer)


class Relay:
    """The upstream's answer on its way to the client.

    The exchange is finished (validated, journalled, logged, recorded) before the answer's
    last chunk is passed on, so that a client holding the whole answer finds it in the journal;
    a body cut short, by the upstream or by the client leaving, is finished when the relay is
    closed.
    """

    def __init__(self, exchange: Exchange, answer: Answer) -> None:
        self.exchange = exchange
        self.answer = answer
        self.status = answer.status
        self.headers = answer.headers
        self._kept: list[bytes] = []
        self._size = 0
        self._complete = False
        self._failure: str | None = None
        self._finished = False
        if exchange.bodiless(self.status):  # HEAD, 204, 304: nothing will be iterated
            self._complete = True
            self._finish()

    def __iter__(self) -> Iterator[bytes]:
        held: bytes | None = None  # the latest chunk, passed on once the next one came
        try:
            for chunk in self.answer.body:
                self._size += len(chunk)
                if self._size <= VALIDATED_BYTES:
                    self._kept.append(chunk)
                if held is not None:
                    yield held
                held = chunk
        except UpstreamFailure as failure:
            self._failure = str(failure)
            self._finish()
            raise
        self._complete = True
        self._finish()
        if held is not None:
            yield held

    def close(self) -> None:
        """Release the upstream connection; finish the exchange if the body was cut short."""
        self._finish()

    def _finish(self) -> None:
        if self._finished:
            return
        self._finished = True
        self.answer.release(self._complete)
        body = b"".join(self._kept)
        finish = partial(self.exchange.finish, self.status, body, headers=self.headers)
        if self._failure is not None:
            finish(error=self._failure, dropped=True)
        elif not self._complete:
            finish(error="the client went away mid-answer")
        else:
            finish(too_long=self._size > VALIDATED_BYTES)


class Exchange:
    """One request through the proxy: what the journal, the access log and the recorder need."""

    def __init__(self, proxy: Proxy, incoming: Incoming) -> None:
        self.proxy = proxy
        self.incoming = incoming
        self.started = time.perf_counter()
        self.copy: IO[bytes] | None = None  # the upload, kept to record it
        if proxy.recorder is not None and (incoming.method, incoming.path) == ("POST", OCR_PATH):
            spool = tempfile.SpooledTemporaryFile(_SPOOL_IN_MEMORY)  # noqa: SIM115 - closed in finish
            self.copy = cast(IO[bytes], spool)
        token = incoming.token
        self.entry = JournalEntry(
            time=format_instant(utc_now()),
            method=incoming.method,
            path=incoming.path,
            token_prefix=token[:TOKEN_PREFIX_LENGTH] if token and _TOKEN.fullmatch(token) else None,
        )

    def tap(self, chunk: bytes) -> None:
        """A chunk of the request body on its way upstream."""
        if self.copy is not None:
            self.copy.write(chunk)

    def bodiless(self, status: int) -> bool:
        """True when the answer to this request has no body by definition."""
        return self.incoming.method == "HEAD" or status in (204, 304) or 100 <= status < 200

    def fail(self, failure: ProxyError) -> None:
        """Journal the proxy's own answer, then raise it."""
        self.finish(failure.status, b"", error=failure.error, own=True)
        raise failure

    def finish(
        self,
        status: int,
        body: bytes,
        *,
        headers: Sequence[tuple[str, str]] = (),
        error: str | None = None,
        own: bool = False,
        dropped: bool = False,
        too_long: bool = False,
    ) -> None:
        """Validate, journal, log and record the exchange."""
        try:
            violations, verdict = self._judge(status, headers, body, error, own, dropped, too_long)
            answer = _json(body)
            entry = replace(
                self.entry,
                status=status,
                error=error or _error_of(answer),
                duration_ms=round((time.perf_counter() - self.started) * 1000, 1),
                violations=tuple(violations),
            )
            if status == 200:
                entry = _with_ocr_fields(entry, answer)
            if status == 200 and self.copy is not None and self._recordable(headers, body):
                entry = self._record(entry, answer)
            try:
                self.proxy.store.record(entry)
            except Exception:  # the answer went out: a journal that failed must not hide it
                log.exception("could not journal %s %s", entry.method, entry.path)
            log.info(
                "%s %s %s token=%s time=%.1fms %s",
                entry.method,
                entry.path,
                status,
                entry.token_prefix or "-",
                entry.duration_ms or 0.0,
                verdict,
            )
        finally:
            if self.copy is not None:
                self.copy.close()

    def _judge(
        self,
        status: int,
        headers: Sequence[tuple[str, str]],
        body: bytes,
        error: str | None,
        own: bool,
        dropped: bool,
        too_long: bool,
    ) -> tuple[list[str], str]:
        """The violations to journal, and the access log's verdict."""
        if own or status == 0:
            return [], f"contract=unchecked: {error}"
        if dropped:
            return [error or "dropped"], f"contract=violated: {error}"
        if too_long:
            return [], f"contract=unchecked: an answer over {VALIDATED_BYTES} bytes"
        operation = find_operation(self.incoming.method, self.incoming.path)
        if operation is None:
            where = f"{self.incoming.method} {self.incoming.path}"
            return [], f"contract=unchecked: {where} is not an operation of openapi.yaml"
        found = [str(v) for v in find_violations((status, headers, body), operation=operation)]
        return found, ("contract=ok" if not found else f"contract=violated: {found[0]}")

    def _recordable(self, headers: Sequence[tuple[str, str]], body: bytes) -> bool:
        # What the vendor documents is enough to replay an answer: an observed-level detail
        # (a charset, a header) missing from it does not make its text wrong.
        answer = (200, headers, body)
        return not find_violations(answer, operation=("post", "/ocr"), level="documented")

    def _record(self, entry: JournalEntry, answer: dict[str, object]) -> JournalEntry:
        assert self.copy is not None
        assert self.proxy.recorder is not None
        boundary = parse_options_header(self.incoming.header("Content-Type") or "")[1].get(
            "boundary"
        )
        if not boundary:
            return entry
        self.copy.seek(0)
        try:
            form = read_form(self.copy, boundary.encode("latin-1"))
        except ValueError:  # MalformedForm, or part headers the decoder refuses
            return entry
        if form.file is None:
            return entry
        try:
            spool = form.file.spool
            sha256 = spool.hash.hexdigest()
            prompt = (form.prompt or "").strip()
            text = str(answer.get("text", ""))
            name, what = self.proxy.recorder.record(
                spool.rewound(), sha256, form.file.content_type or "", prompt, text
            )
        except OSError as failure:
            where = self.proxy.recorder.directory
            log.error("could not record the answer in %s: %s", where, failure)
            return entry
        finally:
            form.file.spool.close()
        if what:
            log.info("%s", what)
        return replace(entry, sha256=sha256, prompt=prompt or None, fixture=name)


def _json(body: bytes) -> dict[str, object]:
    try:
        loaded = json.loads(body)
    except ValueError:
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _error_of(answer: dict[str, object]) -> str | None:
    error = answer.get("error")
    return error if isinstance(error, str) else None


def _with_ocr_fields(entry: JournalEntry, answer: dict[str, object]) -> JournalEntry:
    """`entry` with the file's name, type and size a 200 answer echoes."""
    name, kind, size = answer.get("fileName"), answer.get("mimeType"), answer.get("fileSize")
    return replace(
        entry,
        file_name=name if isinstance(name, str) else None,
        mime_type=kind if isinstance(kind, str) else None,
        file_size=size if isinstance(size, int) else None,
    )
