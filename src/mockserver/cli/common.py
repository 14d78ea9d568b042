"""What every `itsocr-mock` command shares: exit codes, the one-line failure, argument types,
the checks of an address to serve on."""

from __future__ import annotations

import argparse
import errno
import socket
import sys

URL_ENV = "ITSOCR_MOCK_URL"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class CommandError(Exception):
    """A failure told in one line, saying what to do, with the exit code to end with."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


def fail(message: str, code: int = EXIT_USAGE) -> int:
    """Print `message` as the one line ``itsocr-mock: error: ...`` and return `code`."""
    print(f"itsocr-mock: error: {message}", file=sys.stderr)
    return code


def count_argument(text: str) -> int:
    """argparse type: a count (a whole number of 0 or more)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, got {value}")
    return value


def instant_argument(text: str) -> str:
    """argparse type: an ISO-8601 instant, returned in the control API's UTC form."""
    from mockserver.clock import format_instant, parse_instant

    try:
        return format_instant(parse_instant(text))
    except ValueError as failure:
        raise argparse.ArgumentTypeError(f"{failure} (e.g. 2030-01-31T00:00:00Z)") from None


def refuse_an_open_control_api(host: str, admin_token: str | None, *, or_else: str = "") -> None:
    """Raise a CommandError (exit 2) when the control API would be served on `host`, an address
    other machines reach, without an admin token: anyone there could reset the state and read
    the demo tokens. `or_else` names the command's other way out (``--no-control``)."""
    from mockserver.control_access import is_loopback
    from mockserver.settings import ENVIRONMENT

    if admin_token or is_loopback(host):
        return
    remedy = f"pass --admin-token TOKEN (or set {ENVIRONMENT['admin_token']})"
    raise CommandError(
        f"refusing to serve the control API on {host} without protection: "
        f"{remedy}{', or ' + or_else if or_else else ''}",
        EXIT_USAGE,
    )


def check_address(host: str, port: int) -> None:
    """Raise a CommandError (exit 2) unless `host:port` can be bound now.

    The probe binds as gunicorn does (SO_REUSEADDR, so a port left in TIME_WAIT is fine) and
    lets go at once: another program could still take the port in the instant before gunicorn
    binds it, but the common mistake -- a second mock on the same port -- is told at once.
    """
    try:
        family, kind, _, _, address = socket.getaddrinfo(
            host.strip("[]"), port, type=socket.SOCK_STREAM
        )[0]
    except (socket.gaierror, UnicodeError, OverflowError) as failure:  # Overflow: port > 65535
        reason = getattr(failure, "strerror", None) or str(failure)
        raise CommandError(f"cannot listen on {host}: {reason}", EXIT_USAGE) from None
    with socket.socket(family, kind) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as failure:
            raise _address_error(host, port, failure) from None


def _address_error(host: str, port: int, failure: OSError) -> CommandError:
    if failure.errno == errno.EADDRINUSE:
        return CommandError(
            f"port {port} on {host} is in use; pick another or --port 0", EXIT_USAGE
        )
    reason = failure.strerror or str(failure)
    return CommandError(f"cannot listen on {host}:{port}: {reason}", EXIT_USAGE)
