"""Running the mock for tests: in-process on a free port, or as a real `itsocr-mock serve`.

Shared by the kit's own tests, the contract suite (when no --base-url is given) and the pytest
plugin, so that there is one way to start a mock.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Self

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from mockserver.app import create_app
from mockserver.backend import Backend
from mockserver.settings import Settings
from mockserver.web import EXTENSION_KEY

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment


class ServedApp:
    """Any WSGI app served from a daemon thread of this process on a free loopback port.

    Werkzeug's threaded server is used here only because it runs inside the test process;
    `itsocr-mock serve` always runs on gunicorn. `close` releases what the app holds (its
    store) once it has stopped; `access_log=False` silences Werkzeug's line per request.
    """

    host = "127.0.0.1"

    def __init__(
        self,
        app: WSGIApplication,
        *,
        name: str = "itsocr-mock",
        close: Callable[[], None] | None = None,
        access_log: bool = True,
    ) -> None:
        self.app = app
        self.name = name
        self._close = close
        self._in_flight = 0
        self._idle = threading.Condition()
        self._handler = PathAsSentRequestHandler if access_log else _QuietRequestHandler
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        """Bind a free port and serve until `stop`."""
        self._server = make_server(
            self.host, 0, self._counted, threaded=True, request_handler=self._handler
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=self.name, daemon=True
        )
        self._thread.start()
        return self

    def _counted(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterator[bytes]:
        # Requests in flight, from the call to the last byte written: `stop` waits for them
        # before it releases what they use (the store).
        with self._idle:
            self._in_flight += 1
        answer: Iterable[bytes] = ()
        try:
            answer = self.app(environ, start_response)
            yield from answer
        finally:
            # PEP 3333: the server calls the app's iterable's close() (`yield from` does not).
            close = getattr(answer, "close", None)
            if close is not None:
                close()
            with self._idle:
                self._in_flight -= 1
                self._idle.notify_all()

    @property
    def url(self) -> str:
        """The origin, e.g. ``http://127.0.0.1:49152``."""
        assert self._server is not None, "server not started"
        return f"http://{self.host}:{self._server.server_port}"

    @property
    def base_url(self) -> str:
        """The API base URL, as a user passes it to ``--base-url``."""
        return self.url + "/api/v1"

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving and release the port; then, once no request is in flight (waiting at
        most `timeout`), what `close` releases. A request still running then keeps it: closing
        the store under it would fail that request, not the test that left it running."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        with self._idle:
            idle = self._idle.wait_for(lambda: self._in_flight == 0, timeout)
        if self._close is not None and idle:
            self._close()
            self._close = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


class PathAsSentRequestHandler(WSGIRequestHandler):
    """Werkzeug's handler, keeping the request target exactly as the client sent it.

    Python's http.server collapses a target's leading slashes (``//api/v1/ocr`` becomes
    ``/api/v1/ocr``, against open redirects in its file server), so the app could not tell
    the two apart; the live service, and the mock under gunicorn, answer 404 to the first.
    """

    def parse_request(self) -> bool:  # noqa: D102
        parsed = super().parse_request()
        words = str(self.raw_requestline, "iso-8859-1").split()
        if parsed and len(words) >= 2 and words[1].startswith("//"):
            self.path = words[1]
        return parsed


class _QuietRequestHandler(PathAsSentRequestHandler):
    """Werkzeug's handler without its access log: a suite run sends hundreds of requests."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


class InProcessServer(ServedApp):
    """The mock app, on `settings` (an in-memory state by default), served in-process."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings(state=":memory:")
        app = create_app(self.settings)
        self.backend: Backend = app.extensions[EXTENSION_KEY]
        super().__init__(app, close=self.backend.store.close)


_READY = re.compile(r"itsOCR mock (?:proxy )?listening on (http://\S+)")


@dataclass
class ServerProcess:
    """`itsocr-mock serve` (or `proxy`) in a child process, on a free port unless told
    otherwise."""

    args: Sequence[str] = ()
    command: str = "serve"  # or "proxy"
    state: Path | str | None = ":memory:"  # None: no --state, so serve's own default applies
    env: dict[str, str] | None = None
    startup_timeout: float = 20.0
    # SIGTERM lets gunicorn finish in-flight requests (~2 s); SIGINT is its quick shutdown.
    stop_signal: signal.Signals = signal.SIGTERM
    # How to invoke the CLI: this interpreter by default, or e.g. another environment's
    # `itsocr-mock` console script.
    program: Sequence[str] = (sys.executable, "-m", "mockserver.cli")
    process: subprocess.Popen[str] | None = None
    url: str = ""
    output: list[str] = field(default_factory=list)
    _pump_thread: threading.Thread | None = None
    _ready: threading.Event = field(default_factory=threading.Event)

    def start(self) -> ServerProcess:
        """Start the server and wait for its banner; raises RuntimeError with its output."""
        state = ["--state", str(self.state)] if self.state is not None else []
        command = [*self.program, self.command, "--port", "0", *state, *self.args]
        self.process = subprocess.Popen(
            command,
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env={**os.environ, **(self.env or {})},
        )
        # stderr is read by a thread from the first byte: a server that hangs before its
        # banner, printing nothing, must not hang the caller past `startup_timeout`.
        self._pump_thread = threading.Thread(target=self._pump, daemon=True)
        self._pump_thread.start()
        if self._ready.wait(self.startup_timeout) and self.url:
            return self
        waited = "" if self._ready.is_set() else f" within {self.startup_timeout:g} s"
        self.stop()
        raise RuntimeError(
            f"itsocr-mock {self.command} did not start{waited}:\n" + "".join(self.output)
        )

    def _pump(self) -> None:
        # Keep reading stderr so that the child never blocks on a full pipe; the banner's
        # first line (or the end of the output) sets `_ready`.
        assert self.process is not None
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.output.append(line)
            found = None if self.url else _READY.search(line)
            if found:
                self.url = found.group(1)
                self._ready.set()
        self._ready.set()  # the server exited (or closed stderr) before its banner

    @property
    def base_url(self) -> str:
        """The API base URL."""
        return self.url + "/api/v1"

    def stop(self, timeout: float = 10.0) -> None:
        """Send `stop_signal`, then kill if the server does not go; release the pipe."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(self.stop_signal)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        if self._pump_thread is not None:  # it ends at the pipe's EOF, now that the child is gone
            self._pump_thread.join(timeout)
        if self.process.stderr is not None:
            self.process.stderr.close()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


REDIS_SERVER = "/usr/bin/redis-server"  # Debian's package `redis-server`


@dataclass
class RedisServer:
    """A real `redis-server` for tests and the benchmark: loopback only, on a free port, its
    files in `directory`. `durable` makes it write every change to its append-only file before
    answering, so that a restart (`stop` then `start`, same port and files) keeps the state."""

    directory: Path
    durable: bool = False
    password: str | None = None
    program: str = REDIS_SERVER
    port: int = 0  # 0: a free one, chosen at the first start and kept across restarts
    startup_timeout: float = 20.0
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://[:PASSWORD@]127.0.0.1:PORT/0``."""
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        """Start the server and wait until it answers PING; RuntimeError with its log if not."""
        if not Path(self.program).exists():
            raise RuntimeError(f"{self.program} is missing: apt-get install -y redis-server")
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        persistence = ["--appendonly", "yes", "--appendfsync", "always"] if self.durable else []
        command = [
            self.program, "--port", str(self.port), "--bind", "127.0.0.1",
            "--dir", str(self.directory), "--logfile", "redis.log", "--save", "",
            "--appendonly", "no", *persistence,
            *(["--requirepass", self.password] if self.password else []),
        ]  # fmt: skip
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            if self._answers():
                return self
            time.sleep(0.05)
        self.stop()
        log = self.directory / "redis.log"
        raise RuntimeError(
            "redis-server did not start:\n" + (log.read_text() if log.exists() else "")
        )

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as probe:
                probe.sendall(b"PING\r\n")
                reply = probe.recv(64)
        except OSError:
            return False
        return reply.startswith((b"+PONG", b"-NOAUTH"))

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server (SIGTERM: it finishes the command at hand), then kill if it stays."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        self.process = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def free_port() -> int:
    """A port free on the loopback interface right now (for a server the caller starts)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
