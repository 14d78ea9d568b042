"""`itsocr-mock serve --workers 2` shares its connections between its workers by load
(balancing.py), on the real server: which worker holds a connection is read from /proc.

- Two connections of a client, one after the other, are held by different workers (the
  kernel's hash of a socket per worker put them on one worker half the time).
- A burst of 16 connections is split 8/8 or 7/9 (the hash gave 11/5).
- With one worker stopped, the other still answers every new connection, a few milliseconds
  late: a connection declined for a sibling is never lost.

Every socket has a timeout, so that a connection left waiting fails the test instead of
hanging it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from test_reliability import Reply, all_workers, read_reply, worker_pids

from mockserver.testing import ServerProcess

pytestmark = pytest.mark.skipif(
    not Path("/proc/net/tcp").exists(), reason="finds a connection's worker in /proc (Linux)"
)
SOCKET_TIMEOUT = 5  # seconds; balancing delays a connection by 20 ms at the most
ROUNDS = 8  # pairs of connections; the kernel's hash passed them all 1 time in 256
BURSTS = 5  # bursts of 16; the hash split all of them within 7/9 about 1 time in 20
LISTEN = "0A"  # a TCP state as /proc/net/tcp writes it


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Two workers on a state file, both taking connections."""
    state = tmp_path_factory.mktemp("balancing") / "state.sqlite3"
    with ServerProcess(args=["--workers", "2"], state=state, stop_signal=signal.SIGINT) as server:
        all_workers(server, 2)
        wait_until_both_workers_accept(server)
        yield server


def wait_until_both_workers_accept(server: ServerProcess) -> None:
    """Return once a pair of connections is held by both workers: a worker process exists a
    moment before it takes connections."""
    deadline = time.monotonic() + SOCKET_TIMEOUT
    while True:
        with kept_open(server, 2) as pair:
            if len({worker_of(server, sock) for sock in pair}) == 2:
                break
        wait_until_closed(server)
        assert time.monotonic() < deadline, "a worker never took a connection"
        time.sleep(0.05)
    wait_until_closed(server)


# -- connections and their workers -----------------------------------------------------------


def health_request(server: ServerProcess) -> bytes:
    """A cheap request that keeps its connection open."""
    host = urlsplit(server.url).netloc
    return f"GET /_mock/health HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()


def connect(server: ServerProcess) -> socket.socket:
    """A new connection to `server`, answered once (so that a worker holds it), kept open."""
    origin = urlsplit(server.url)
    sock = socket.create_connection((origin.hostname, origin.port), timeout=SOCKET_TIMEOUT)
    try:
        assert ask(server, sock).status == 200
    except BaseException:
        sock.close()
        raise
    return sock


def ask(server: ServerProcess, sock: socket.socket) -> Reply:
    """Send a health request on `sock` and read its reply."""
    began = time.monotonic()
    sock.sendall(health_request(server))
    return read_reply(sock, began)


@contextlib.contextmanager
def kept_open(server: ServerProcess, count: int) -> Iterator[list[socket.socket]]:
    """`count` connections opened and answered one after the other, closed on leaving."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sockets.append(connect(server))
        yield sockets
    finally:
        for sock in sockets:
            sock.close()


def tcp_table() -> Iterator[list[str]]:
    """The rows of the system's TCP tables (IPv4 and IPv6): local address, remote address,
    state... as /proc/net/tcp writes them."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                yield line.split()


def port_of(address: str) -> int:
    return int(address.rsplit(":", 1)[1], 16)


def sockets_of(pid: int) -> set[str]:
    """The sockets process `pid` holds, as its descriptors name them (``socket:[inode]``)."""
    links = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):  # a descriptor closed while listed
            links.add(os.readlink(fd))
    return links


def server_sockets(server: ServerProcess, *, listening: bool = False) -> list[set[str]]:
    """The server's connections (or, `listening`, its listening sockets) each worker holds."""
    port = urlsplit(server.url).port
    inodes = {
        f"socket:[{row[9]}]"
        for row in tcp_table()
        if port_of(row[1]) == port and (row[3] == LISTEN) == listening
    }
    return [sockets_of(pid) & inodes for pid in sorted(worker_pids(server))]


def worker_of(server: ServerProcess, client: socket.socket) -> int:
    """The worker that holds the server's end of `client`'s connection."""
    port, client_port = urlsplit(server.url).port, client.getsockname()[1]
    inodes = {
        f"socket:[{row[9]}]"
        for row in tcp_table()
        if port_of(row[1]) == port and port_of(row[2]) == client_port
    }
    holders = [pid for pid in worker_pids(server) if sockets_of(pid) & inodes]
    assert len(holders) == 1, (holders, inodes)
    return holders[0]


def wait_until_closed(server: ServerProcess) -> None:
    """Return once the workers have closed every connection the client closed: each then
    counts none (or the next test's first connection would find a worker still busy)."""
    deadline = time.monotonic() + SOCKET_TIMEOUT
    while any(server_sockets(server)):
        assert time.monotonic() < deadline, server_sockets(server)
        time.sleep(0.01)


# -- the connections are shared --------------------------------------------------------------


def test_two_connections_one_after_the_other_go_to_different_workers(
    served: ServerProcess,
) -> None:
    """The second connection goes to the worker that holds none: a test suite's two parallel
    clients use both workers (with a socket per worker, both landed on one half the time)."""
    pairs = []
    for _ in range(ROUNDS):
        with kept_open(served, 2) as (first, second):
            pairs.append((worker_of(served, first), worker_of(served, second)))
        wait_until_closed(served)
    assert all(first != second for first, second in pairs), pairs


def test_a_burst_of_16_connections_is_split_evenly(served: ServerProcess) -> None:
    """All 16 opened at once, then answered: each worker holds 7 to 9 of them."""
    listening = server_sockets(served, listening=True)
    assert len(set.union(*listening)) == 1, "the workers share one listening socket"
    origin = urlsplit(served.url)
    splits = []
    for _ in range(BURSTS):
        sockets = [
            socket.create_connection((origin.hostname, origin.port), timeout=SOCKET_TIMEOUT)
            for _ in range(16)
        ]
        try:
            for sock in sockets:
                sock.sendall(health_request(served))
            assert [read_reply(sock).status for sock in sockets] == [200] * 16
            splits.append(sorted(len(held) for held in server_sockets(served)))
        finally:
            for sock in sockets:
                sock.close()
        wait_until_closed(served)
    assert all(sum(split) == 16 for split in splits), splits
    assert all(split[1] - split[0] <= 2 for split in splits), splits


# -- a stopped worker loses no connection ----------------------------------------------------


@contextlib.contextmanager
def lighter_worker_stopped(server: ServerProcess) -> Iterator[socket.socket]:
    """One connection kept open on one worker while the other, which holds none and so is
    the one to take the next connection, is stopped (SIGSTOP); it goes on (SIGCONT) after."""
    with kept_open(server, 1) as (held,):
        (idle,) = worker_pids(server) - {worker_of(server, held)}
        os.kill(idle, signal.SIGSTOP)
        try:
            yield held
        finally:
            os.kill(idle, signal.SIGCONT)
    wait_until_closed(server)


def replies_while_stopped(server: ServerProcess, count: int) -> list[Reply]:
    """`count` new connections' first replies, each kept open until all are in."""
    with lighter_worker_stopped(server) as held:
        origin = urlsplit(server.url)
        replies = []
        with contextlib.ExitStack() as connections:
            for _ in range(count):
                began = time.monotonic()
                sock = connections.enter_context(
                    socket.create_connection((origin.hostname, origin.port), SOCKET_TIMEOUT)
                )
                sock.sendall(health_request(server))
                replies.append(read_reply(sock, began))
        replies.append(ask(server, held))  # the connection held all along still works
    return replies


def test_a_connection_declined_for_a_stopped_worker_is_still_answered(
    served: ServerProcess,
) -> None:
    """The running worker declines each new connection for its stopped sibling, which holds
    fewer, and takes it once it has waited the cap: none is left waiting."""
    replies = replies_while_stopped(served, 6)
    assert [reply.status for reply in replies] == [200] * 7


@pytest.mark.timing
def test_a_stopped_worker_delays_a_new_connection_by_milliseconds(
    served: ServerProcess,
) -> None:
    """A connection waits for a stopped sibling for the cap (20 ms), not for ever."""
    replies = replies_while_stopped(served, 6)
    assert [reply.status for reply in replies] == [200] * 7
    assert max(reply.seconds for reply in replies) < 0.5, [reply.seconds for reply in replies]
