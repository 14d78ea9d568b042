"""The control commands ``accounts``, ``usage``, ``tokens`` and ``reset``, and where they act.

They act on a running mock over its control API (``--url``, env ``ITSOCR_MOCK_URL``) or directly
on a state file (``--state``, env ``ITSOCR_MOCK_STATE``; by default the file ``serve`` uses),
which a mock serving that file sees at once. ``--json`` prints the control API's JSON.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mockserver.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    URL_ENV,
    CommandError,
    _count,
    _instant,
)
from mockserver.settings import ENVIRONMENT, Settings, default_state_path

if TYPE_CHECKING:
    from mockserver.client import ControlApiError, MockControl


def target_options() -> argparse.ArgumentParser:
    """The parent parser of the options naming a control command's target, and ``--json``."""
    options = argparse.ArgumentParser(add_help=False)
    where = options.add_argument_group("target (default: the state file `serve` uses)")
    exclusive = where.add_mutually_exclusive_group()
    exclusive.add_argument(
        "--url", help=f"a running mock's origin, e.g. http://127.0.0.1:8080 (env {URL_ENV})"
    )
    exclusive.add_argument(
        "--state", help=f"act directly on this state file (env {ENVIRONMENT['state']})"
    )
    where.add_argument(
        "--admin-token",
        help=f"the running mock's admin token, if it has one (env {ENVIRONMENT['admin_token']})",
    )
    options.add_argument("--json", action="store_true", help="print JSON, for scripts")
    return options


def add_control_commands(commands: Any, target: argparse.ArgumentParser) -> None:
    """Add ``accounts``, ``usage``, ``tokens`` and ``reset``, whose target options are `target`."""
    from mockserver.plans import plans

    accounts = commands.add_parser("accounts", help="create or list accounts")
    actions = accounts.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser("create", parents=[target], help="create an account with one token")
    create.add_argument("--plan", choices=list(plans()), default="free", help="default free")
    create.set_defaults(handler=accounts_create)
    listing = actions.add_parser("list", parents=[target], help="list the accounts")
    listing.set_defaults(handler=accounts_list)

    usage = commands.add_parser(
        "usage", parents=[target], help="show (or --set) an account's usage this month"
    )
    usage.add_argument("account", metavar="ACCOUNT", help="an account id, e.g. demo-free")
    usage.add_argument(
        "--set", type=_count, dest="images_used", metavar="N", help="set the images used"
    )
    usage.set_defaults(handler=usage_command)

    tokens = commands.add_parser("tokens", help="create or revoke tokens")
    actions = tokens.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser("create", parents=[target], help="issue a token for an account")
    create.add_argument("account", metavar="ACCOUNT", help="an account id")
    create.add_argument(
        "--expires",
        type=_instant,
        metavar="WHEN",
        help="an ISO-8601 date-time, past ones included (default: never)",
    )
    create.set_defaults(handler=tokens_create)
    revoke = actions.add_parser("revoke", parents=[target], help="revoke a token by its id")
    revoke.add_argument("token_id", metavar="TOKEN_ID", help="the token's id (not the token)")
    revoke.set_defaults(handler=tokens_revoke)

    reset = commands.add_parser(
        "reset", parents=[target], help="back to a fresh state: demo accounts only"
    )
    reset.set_defaults(handler=reset_command)


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
        admin_token = args.admin_token or os.environ.get(ENVIRONMENT["admin_token"])
        control = MockControl(url, admin_token=admin_token)
        target, close = Target(control, url.rstrip("/")), control.close
    else:
        state = args.state or os.environ.get(ENVIRONMENT["state"]) or default_state_path()
        if state == ":memory:":
            raise CommandError(
                "an in-memory state lives only inside its server: use --url to reach it",
                EXIT_USAGE,
            )
        target, close = _state_file_target(state)
    try:
        yield target
    except requests.ConnectionError:
        raise CommandError(
            f"no mock answers at {target.where}: start one with `itsocr-mock serve`, or act on "
            "its state file with --state PATH"
        ) from None
    except ControlApiError as failure:
        raise _control_failure(failure) from None
    finally:
        close()


LOCAL_ORIGIN = "http://state-file.itsocr-mock.invalid"  # never resolved: no socket is opened


def _state_file_target(state: str) -> tuple[Target, Callable[[], None]]:
    """The control API of a state file, served in-process: the running mock's own handlers,
    rules and JSON over the file's Store and Backend, so that both targets behave alike."""
    from mockserver.app import create_app
    from mockserver.client import MockControl, WsgiAdapter
    from mockserver.web import EXTENSION_KEY

    app = create_app(Settings(state=state))
    control = MockControl(LOCAL_ORIGIN)
    control.session.mount(LOCAL_ORIGIN + "/", WsgiAdapter(app))

    def close() -> None:
        control.close()
        app.extensions[EXTENSION_KEY].store.close()

    return Target(control, state), close


def _control_failure(failure: ControlApiError) -> CommandError:
    if failure.status == 401:
        return CommandError(
            f"the mock's control API refused the request ({failure.error}): pass its admin "
            f"token with --admin-token or {ENVIRONMENT['admin_token']}"
        )
    # 400: the request was wrong (bad plan, bad image...); 404 unknown id; 409 a limit.
    return CommandError(failure.error, EXIT_USAGE if failure.status == 400 else EXIT_FAILED)


def _emit(args: argparse.Namespace, data: object, text: str) -> int:
    print(json.dumps(data, indent=2, ensure_ascii=False) if args.json else text)
    return EXIT_OK


def _table(rows: Sequence[Sequence[object]], header: Sequence[str]) -> str:
    cells = [list(header), *([("-" if v is None else str(v)) for v in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in cells
    )


def accounts_create(args: argparse.Namespace) -> int:
    """`itsocr-mock accounts create [--plan PLAN]`."""
    with open_target(args) as target:
        account = target.control.create_account(args.plan)
    return _emit(
        args,
        account,
        f"created account {account['id']} on plan {account['plan']}\n"
        f"  token: {account['token']}  (id {account['tokenId']}; shown only now)",
    )


def accounts_list(args: argparse.Namespace) -> int:
    """`itsocr-mock accounts list`."""
    with open_target(args) as target:
        accounts = target.control.list_accounts()
    rows = [
        (a["id"], a["plan"], sum(1 for t in a["tokens"] if not t["revokedAt"]), a["createdAt"])
        for a in accounts
    ]
    return _emit(args, accounts, _table(rows, ("ID", "PLAN", "TOKENS", "CREATED")))


def usage_command(args: argparse.Namespace) -> int:
    """`itsocr-mock usage ACCOUNT [--set N]`."""
    with open_target(args) as target:
        if args.images_used is None:
            usage = target.control.get_usage(args.account)
        else:
            usage = target.control.set_usage(args.account, args.images_used)
    limit = "unlimited" if usage["limit"] is None else f"of {usage['limit']}"
    return _emit(
        args,
        usage,
        f"{args.account} in {usage['period']}: {usage['imagesUsed']} {limit} images used, "
        f"{usage['bytesProcessed']} bytes processed",
    )


def tokens_create(args: argparse.Namespace) -> int:
    """`itsocr-mock tokens create ACCOUNT [--expires WHEN]`."""
    with open_target(args) as target:
        token = target.control.create_token(args.account, expires_at=args.expires)
    expiry = f"expires {token['expiresAt']}" if token["expiresAt"] else "never expires"
    return _emit(args, token, f"{token['token']}  (id {token['id']}, {expiry}; shown only now)")


def tokens_revoke(args: argparse.Namespace) -> int:
    """`itsocr-mock tokens revoke TOKEN_ID`."""
    with open_target(args) as target:
        target.control.revoke_token(args.token_id)
    return _emit(args, {"id": args.token_id, "revoked": True}, f"revoked {args.token_id}")


def reset_command(args: argparse.Namespace) -> int:
    """`itsocr-mock reset`."""
    with open_target(args) as target:
        target.control.reset()
    return _emit(args, {"reset": target.where}, f"reset {target.where}: demo accounts only")
