"""Load-aware accept: gunicorn workers sharing one listening socket take connections by load.

Measured with two workers: a listening socket per worker (SO_REUSEPORT) lets the kernel pick
the worker from a hash of the connection's addresses, blind to load. wrk's 16 keep-alive
connections landed 11 on one worker and 5 on the other; each worker computes one request at a
time (turns.py), so the first answered at twice the latency of the second, which set the p99
(30-37 ms, target 30 ms) and its variance from run to run. A test suite's two parallel clients
landed on the same worker half the time: one core of two. One shared socket alone is no
better: the workers race to accept, and one can take every connection of a burst.

So the workers share one socket, and each publishes how many connections it holds on a
`LoadBoard`, shared memory that the master sets up before the fork (a slot per worker). A
worker offered a connection while it holds more than its lightest sibling declines it: it
stops watching the socket and looks again a `TICK` later, by which time the sibling has
usually taken it. One still waiting after `DECLINE_CAP` is taken anyway, and then one a tick
while any waits (the sibling may be stuck): balancing delays a connection by a bounded time,
and never refuses or loses one. Equal loads both accept (a race either may win); a lone worker
never declines, and an idle one is never woken to look.
"""

from __future__ import annotations

import mmap
import select
import selectors
import struct
import time
from collections.abc import Callable
from typing import Any

from gunicorn.workers.gthread import ThreadWorker

TICK = 0.001  # seconds between looks at a connection this worker declined
DECLINE_CAP = 0.02  # seconds a connection may wait for a sibling before this worker takes it
UNAVAILABLE = -1  # a slot's value when no worker holds it or its worker does not accept
_SLOT = struct.calcsize("i")  # a slot holds a C int


class LoadBoard:
    """How many connections each worker holds, in memory shared by the master and its workers.

    A slot per worker, given by the master's hooks (`pre_fork`, `child_exit`): a worker writes
    only its own slot, and reads its siblings'.
    """

    def __init__(self, slots: int) -> None:
        self._memory = mmap.mmap(-1, slots * _SLOT)  # anonymous and shared: fork keeps it
        self.loads = memoryview(self._memory).cast("i")
        for slot in range(slots):
            self.loads[slot] = UNAVAILABLE

    def pre_fork(self, server: Any, worker: Any) -> None:
        """gunicorn's master hook, before a worker is forked: give it a slot no live worker
        holds; it shows UNAVAILABLE until the worker accepts."""
        held = {sibling.board_slot for sibling in server.WORKERS.values()}
        slot = next((slot for slot in range(len(self.loads)) if slot not in held), None)
        if slot is None:  # more workers than slots: this one takes whatever it is offered
            return
        self.loads[slot] = UNAVAILABLE  # a dead worker's last count must not linger
        worker.load_board, worker.board_slot = self, slot

    def child_exit(self, server: Any, worker: Any) -> None:
        """gunicorn's master hook, once a worker has exited (however it ended): free its slot."""
        if worker.board_slot is not None:
            self.loads[worker.board_slot] = UNAVAILABLE

    def lightest_sibling(self, slot: int) -> int | None:
        """The fewest connections held by an accepting worker other than `slot`'s; None when
        no other worker accepts."""
        loads = [load for other, load in enumerate(self.loads) if other != slot and load >= 0]
        return min(loads, default=None)


def balancing_hooks(workers: int) -> dict[str, Callable[[Any, Any], None]]:
    """gunicorn's master hooks that let `workers` `BalancedWorker`s share their connections by
    load; none for a single worker, which has no one to share with."""
    if workers < 2:
        return {}
    board = LoadBoard(2 * workers)  # room for a reload's new workers while the old ones finish
    return {"pre_fork": board.pre_fork, "child_exit": board.child_exit}


class BalancedWorker(ThreadWorker):  # type: ignore[misc]
    """gunicorn's gthread worker, taking a new connection only while no sibling holds fewer.

    The master's `balancing_hooks` give it its slot on the board; without one it is gthread.
    """

    load_board: LoadBoard | None = None  # set by LoadBoard.pre_fork, in the master
    board_slot: int | None = None
    _accepting: bool  # gthread's: whether the listening sockets are watched
    _open = False  # gthread's run loop would accept: below worker_connections, running
    _declined_at: float | None = None  # since when a pending connection has been declined
    _next_look = 0.0

    def set_accept_enabled(self, enabled: bool) -> None:
        """gunicorn's hook: its run loop enables accepting whenever `nr_conns <
        worker_connections` disagrees with whether the socket is watched, so on every turn
        while a connection is declined: the socket then stays unwatched until the next look."""
        self._open = enabled
        self._watch(enabled and self._declined_at is None)
        self._publish()

    def wait_for_and_dispatch_events(self, timeout: float) -> None:
        """Wait for events (gunicorn's hook); while a connection is declined, no longer than
        the next look at it. An idle worker is never woken for balancing."""
        self._publish()  # the run loop may have closed connections since the last wait
        if self._declined_at is not None:
            timeout = max(0.0, min(timeout, self._next_look - time.monotonic()))
        super().wait_for_and_dispatch_events(timeout)
        if self._declined_at is not None and time.monotonic() >= self._next_look:
            self._look_again(self._declined_at)

    def _offered(self, listener: Any) -> None:
        # The selector's callback for a listening socket: a connection waits to be accepted.
        if self._heavier():
            self._declined_at = time.monotonic()
            self._next_look = self._declined_at + TICK
            self._watch(False)
        else:
            self._take(listener)

    def _look_again(self, declined_at: float) -> None:
        waiting = next((listener for listener in self.sockets if _pending(listener)), None)
        if waiting is None or not self._accepts():  # taken; or stopping, or at the cap
            self._stop_declining()
        elif time.monotonic() - declined_at >= DECLINE_CAP:
            # The sibling has let a connection wait this long: take one a tick while any waits,
            # leaving it each tick to take some (it may only have been slow to run: a burst
            # all taken here would stay unbalanced for as long as it is kept alive).
            self._take(waiting)
            self._next_look = time.monotonic() + TICK
        elif self._heavier():
            self._next_look = time.monotonic() + TICK
        else:
            self._stop_declining()
            self._take(waiting)

    def _stop_declining(self) -> None:
        self._declined_at = None
        self._watch(self._open)

    def _take(self, listener: Any) -> None:
        self.accept(listener)
        self._publish()  # at once: a burst's next connection is weighed with this one counted

    def _heavier(self) -> bool:
        if self.load_board is None or self.board_slot is None:
            return False
        lightest = self.load_board.lightest_sibling(self.board_slot)
        return lightest is not None and self.nr_conns > lightest

    def _accepts(self) -> bool:
        return bool(self._open and self.alive)

    def _publish(self) -> None:
        if self.load_board is not None and self.board_slot is not None:
            load = self.nr_conns if self._accepts() else UNAVAILABLE
            self.load_board.loads[self.board_slot] = load

    def _watch(self, enabled: bool) -> None:
        # gthread's set_accept_enabled, with `_offered` in place of `accept` as the callback.
        if enabled == self._accepting:
            return
        for listener in self.sockets:
            if enabled:
                listener.setblocking(False)
                self.poller.register(listener, selectors.EVENT_READ, self._offered)
            else:
                self.poller.unregister(listener)
        self._accepting = enabled


def _pending(listener: Any) -> bool:
    """True when a connection waits in `listener`'s queue (to be accepted by any worker)."""
    poll = select.poll()
    poll.register(listener, select.POLLIN)
    return bool(poll.poll(0))
