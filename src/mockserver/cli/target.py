"""Where the control commands act, and how they print what they got.

A control command acts on a running mock over its control API (``--url``, env
``ITSOCR_MOCK_URL``) or directly on a state file or Redis state (``--state``, env
``ITSOCR_MOCK_STATE``, with ``--state-prefix`` for Redis; by default the file ``serve`` uses),
which a mock serving that state sees at once. Either way it
goes through the control API: a state file's is served in-process by the mock's own handlers.
``--json`` prints the control API's JSON.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mockserver.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, URL_ENV, CommandError
from mockserver.settings import ENVIRONMENT, Settings, default_state_path
from mockserver.store import DEFAULT_PREFIX, describe_state, is_redis_url

if TYPE_CHECKING:
    from flask import Flask

    from mockserver.client import ControlApiError, MockControl

TARGET_HEADING = "target (default: the state file `serve` uses)"


def add_target_options(parser: argparse.ArgumentParser, *, creates_state: bool = False) -> None:
    """Add ``--url | --state`` and ``--admin-token`` under the target heading, and ``--json``.

    Added to each command rather than inherited from a parent parser: argparse (before 3.12)
    copies a parent's mutually exclusive group out of its heading, into "options".
    """
    where = parser.add_argument_group(TARGET_HEADING)
    exclusive = where.add_mutually_exclusive_group()
    exclusive.add_argument(
        "--url", help=f"a running mock's origin, e.g. http://127.0.0.1:8080 (env {URL_ENV})"
    )
    exclusive.add_argument(
        "--state",
        metavar="PATH",
        help=f"act directly on this state file{'' if creates_state else ', which must exist'}, "
        f"or Redis URL (env {ENVIRONMENT['state']})",
    )
    where.add_argument(
        "--state-prefix",
        metavar="PREFIX",
        help="with a Redis --state: the prefix of the deployment's keys, as given to `serve` "
        f"(default {DEFAULT_PREFIX}; env {ENVIRONMENT['state_prefix']})",
    )
    where.add_argument(
        "--admin-token",
        metavar="TOKEN",
        help=f"the running mock's admin token, if it has one (env {ENVIRONMENT['admin_token']})",
    )
    parser.add_argument("--json", action="store_true", help="print JSON, for scripts")


def add_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    handler: Callable[[argparse.Namespace], int],
    help: str,
    description: str | None = None,
    **defaults: object,
) -> argparse.ArgumentParser:
    """A subcommand acting on a target: its parser, with the target options, calling `handler`
    (`defaults` are set on the parsed arguments, as `set_defaults` does)."""
    parser = commands.add_parser(name, help=help, description=description or help)
    add_target_options(parser, creates_state=bool(defaults.get("creates_state")))
    parser.set_defaults(handler=handler, **defaults)
    return parser


@dataclass(frozen=True)
class Target:
    """Where a control command acts: the control API of a running mock, or of a state file."""

    control: MockControl
    where: str  # the mock's origin, or the state file's path


@contextmanager
def open_target(args: argparse.Namespace) -> Iterator[Target]:
    """The target the command line names: --url, --state, their environment, or the default.

    Control-API failures inside the block become one-line CommandErrors saying what to do.
    """
    import requests

    from mockserver.client import ControlApiError, MockControl

    url = args.url or (None if args.state else os.environ.get(URL_ENV))
    if url:
        check_origin(url, "--url" if args.url else URL_ENV)
        admin_token = args.admin_token or os.environ.get(ENVIRONMENT["admin_token"])
        control = MockControl(url, admin_token=admin_token)
        target, close = Target(control, url.rstrip("/")), control.close
    else:
        target, close = _state_file_target(args)
    try:
        yield target
    except requests.ConnectionError:
        raise CommandError(
            f"no mock answers at {target.where}: start one with `itsocr-mock serve`, or act on "
            "its state file with --state PATH"
        ) from None
    except requests.RequestException as failure:  # a timeout, endless redirects...
        raise CommandError(f"{target.where} did not answer as a mock does: {failure}") from None
    except ControlApiError as failure:
        raise _control_failure(failure) from None
    finally:
        close()


def check_origin(url: str, option: str) -> None:
    """Raise a usage CommandError unless `url` is an http(s) origin (a path is allowed)."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        usable = parts.scheme in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
    except ValueError:
        usable = False
    if not usable:
        raise CommandError(
            f"{option} must be a mock's http(s) origin, e.g. http://127.0.0.1:8080 (got {url!r})",
            EXIT_USAGE,
        )


LOCAL_ORIGIN = "http://state-file.itsocr-mock.invalid"  # never resolved: no socket is opened


def _state_file_target(args: argparse.Namespace) -> tuple[Target, Callable[[], None]]:
    """The control API of a state file, served in-process: the running mock's own handlers,
    rules and JSON over the file's store and backend, so that both targets behave alike."""
    from mockserver.client import MockControl, WsgiAdapter
    from mockserver.web import EXTENSION_KEY

    named = args.state or os.environ.get(ENVIRONMENT["state"])
    prefix = getattr(args, "state_prefix", None)
    if prefix == "":
        raise CommandError("--state-prefix must not be empty", EXIT_USAGE)
    settings = Settings(
        state=named or default_state_path(),
        state_prefix=prefix or os.environ.get(ENVIRONMENT["state_prefix"]) or DEFAULT_PREFIX,
    )
    if settings.in_memory:
        raise CommandError(
            "an in-memory state lives only inside its server: use --url to reach it", EXIT_USAGE
        )
    creates = getattr(args, "creates_state", False)
    if named and not creates:  # a typo must not make a state
        _check_state_exists(settings)
    app = _state_app(settings, replace=creates and getattr(args, "force", False))
    control = MockControl(LOCAL_ORIGIN)
    control.session.mount(LOCAL_ORIGIN + "/", WsgiAdapter(app))

    def close() -> None:
        control.close()
        app.extensions[EXTENSION_KEY].store.close()

    return Target(control, describe_state(settings.state)), close


def _check_state_exists(settings: Settings) -> None:
    """Refuse a state that is not there (nothing is created): a file path that names nothing,
    or a Redis with no accounts under the prefix -- a mistyped database number or prefix."""
    state, shown, prefix = settings.state, describe_state(settings.state), settings.state_prefix
    if not is_redis_url(state):
        if not os.path.lexists(state):
            raise CommandError(
                f"no state file at {state}: check the path, or create it with "
                f"`itsocr-mock reset --state {state}` (or `itsocr-mock serve --state {state}`)",
                EXIT_USAGE,
            )
        return
    if _redis_is_empty(settings):
        named_prefix = "" if prefix == DEFAULT_PREFIX else f" --state-prefix {prefix}"
        raise CommandError(
            f"no state in {shown} under the prefix {prefix!r}: check the URL and --state-prefix "
            f"(env {ENVIRONMENT['state_prefix']}), or create it with "
            f"`itsocr-mock reset --state {shown}{named_prefix}`",
            EXIT_USAGE,
        )


def _redis_is_empty(settings: Settings) -> bool:
    from mockserver.errors import StateUnavailable
    from mockserver.store import StateError, open_store

    try:
        store = open_store(settings.state, prefix=settings.state_prefix)
    except (StateError, StateUnavailable) as failure:
        raise CommandError(str(failure), EXIT_USAGE) from None
    try:
        return store.is_empty()
    finally:
        store.close()


def _state_app(settings: Settings, *, replace: bool) -> Flask:
    """The mock's app on the state file, or a one-line CommandError saying why the file cannot
    be used; with `replace`, a file that is not a usable state of this kit is deleted and made
    anew (``reset --force``). A place that cannot be written is refused even then."""
    from mockserver.errors import StateUnavailable
    from mockserver.store import StateError, UnusableState

    state = settings.state
    try:
        return _app(settings)
    except UnusableState as failure:
        if not replace:
            raise CommandError(str(failure), EXIT_USAGE) from None
    except (StateError, StateUnavailable) as failure:
        raise CommandError(str(failure), EXIT_USAGE) from None
    for leftover in ("", "-wal", "-shm", "-journal"):  # SQLite's files beside it go too
        try:
            os.unlink(state + leftover)
        except FileNotFoundError:
            pass
        except OSError as failure:
            raise CommandError(
                f"state file {state} cannot be replaced ({failure.strerror}): use another --state",
                EXIT_USAGE,
            ) from None
    try:
        return _app(settings)
    except (StateError, StateUnavailable) as failure:
        raise CommandError(str(failure), EXIT_USAGE) from None


def _app(settings: Settings) -> Flask:
    from mockserver.app import create_app

    return create_app(settings)


def _control_failure(failure: ControlApiError) -> CommandError:
    if failure.status == 401:
        return CommandError(
            f"the mock's control API refused the request ({failure.error}): pass its admin "
            f"token with --admin-token or {ENVIRONMENT['admin_token']}"
        )
    # 400: the request was wrong (bad plan, bad image...); 404 unknown id; 409 a limit.
    return CommandError(failure.error, EXIT_USAGE if failure.status == 400 else EXIT_FAILED)


def emit(args: argparse.Namespace, data: object, text: str) -> int:
    """Print `data` as JSON with ``--json``, else `text`; the command is done."""
    print(json.dumps(data, indent=2, ensure_ascii=False) if args.json else text)
    return EXIT_OK


def table(rows: Sequence[Sequence[object]], header: Sequence[str]) -> str:
    """`rows` in aligned columns under `header`; None shows as ``-``."""
    cells = [list(header), *([("-" if v is None else str(v)) for v in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in cells
    )
