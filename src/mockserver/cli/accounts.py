"""The account commands ``accounts``, ``usage``, ``tokens`` and ``reset``.

Each acts on a target (see `mockserver.cli.target`): a running mock's control API, or a
state file's, served in-process by the mock's own handlers.
"""

from __future__ import annotations

import argparse
from typing import Any

from mockserver.cli.common import EXIT_USAGE, CommandError, count_argument, instant_argument
from mockserver.cli.target import add_command, emit, open_target, table


def add_account_commands(commands: Any) -> None:
    """Add ``accounts``, ``usage``, ``tokens`` and ``reset`` to `commands`."""
    from mockserver.plans import plans

    accounts = commands.add_parser("accounts", help="create or list accounts")
    actions = accounts.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = add_command(actions, "create", accounts_create, "create an account with one token")
    create.add_argument("--plan", choices=list(plans()), default="free", help="default free")
    add_command(actions, "list", accounts_list, "list the accounts")

    usage = add_command(
        commands, "usage", usage_command, "show (or --set) an account's usage this month"
    )
    usage.add_argument("account", metavar="ACCOUNT", help="an account id, e.g. demo-free")
    usage.add_argument(
        "--set", type=count_argument, dest="images_used", metavar="N", help="set the images used"
    )

    tokens = commands.add_parser("tokens", help="list, create or revoke tokens")
    actions = tokens.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = add_command(actions, "list", tokens_list, "an account's tokens and their ids")
    listing.add_argument("account", metavar="ACCOUNT", help="an account id, e.g. demo-free")
    create = add_command(actions, "create", tokens_create, "issue a token for an account")
    create.add_argument("account", metavar="ACCOUNT", help="an account id")
    create.add_argument(
        "--expires",
        type=instant_argument,
        metavar="WHEN",
        help="an ISO-8601 date-time, past ones included (default: never)",
    )
    revoke = add_command(actions, "revoke", tokens_revoke, "revoke a token by its id")
    revoke.add_argument(
        "token_id",
        metavar="TOKEN_ID",
        help="the token's id, e.g. demo-free-token (not the token: `tokens list` shows the ids)",
    )

    reset = add_command(
        commands,
        "reset",
        reset_command,
        "back to a fresh state: demo accounts only",
        description="Back to a fresh state: demo accounts only. A --state file that does not "
        "exist yet is created; one that is not a usable state of this kit (another program's "
        "file, a damaged one, one of a newer kit) is refused unless --force.",
        creates_state=True,
    )
    reset.add_argument(
        "--force",
        action="store_true",
        help="replace a --state file that is not a usable state of this kit (its data is lost)",
    )


def accounts_create(args: argparse.Namespace) -> int:
    """`itsocr-mock accounts create [--plan PLAN]`."""
    with open_target(args) as target:
        account = target.control.create_account(args.plan)
    return emit(
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
    return emit(args, accounts, table(rows, ("ID", "PLAN", "TOKENS", "CREATED")))


def usage_command(args: argparse.Namespace) -> int:
    """`itsocr-mock usage ACCOUNT [--set N]`."""
    with open_target(args) as target:
        if args.images_used is None:
            usage = target.control.get_usage(args.account)
        else:
            usage = target.control.set_usage(args.account, args.images_used)
    limit = "unlimited" if usage["limit"] is None else f"of {usage['limit']}"
    return emit(
        args,
        usage,
        f"{args.account} in {usage['period']}: {usage['imagesUsed']} {limit} images used, "
        f"{usage['bytesProcessed']} bytes processed",
    )


def tokens_list(args: argparse.Namespace) -> int:
    """`itsocr-mock tokens list ACCOUNT`: ids, never the tokens themselves (only hashes are
    kept)."""
    with open_target(args) as target:
        tokens = target.control.get_account(args.account)["tokens"]
    rows = [
        (t["id"], t["prefix"] + "…", t["createdAt"], t["expiresAt"], t["revokedAt"]) for t in tokens
    ]
    header = ("ID", "TOKEN", "CREATED", "EXPIRES", "REVOKED")
    return emit(args, tokens, table(rows, header))


def tokens_create(args: argparse.Namespace) -> int:
    """`itsocr-mock tokens create ACCOUNT [--expires WHEN]`."""
    with open_target(args) as target:
        token = target.control.create_token(args.account, expires_at=args.expires)
    expiry = f"expires {token['expiresAt']}" if token["expiresAt"] else "never expires"
    return emit(args, token, f"{token['token']}  (id {token['id']}, {expiry}; shown only now)")


def tokens_revoke(args: argparse.Namespace) -> int:
    """`itsocr-mock tokens revoke TOKEN_ID`; given a token instead, says which id to use."""
    from mockserver.backend import TOKEN_PREFIX

    with open_target(args) as target:
        if args.token_id.startswith(TOKEN_PREFIX):
            raise _token_given(args.token_id, target.control.list_accounts())
        target.control.revoke_token(args.token_id)
    return emit(args, {"id": args.token_id, "revoked": True}, f"revoked {args.token_id}")


def _token_given(token: str, accounts: list[dict[str, Any]]) -> CommandError:
    """The error for a token passed where its id belongs, naming the id when it can be told
    from the token's display prefix (the state keeps only the token's hash and prefix)."""
    ids = [t["id"] for a in accounts for t in a["tokens"] if token.startswith(t["prefix"])]
    if len(ids) == 1:
        advice = f"its id is {ids[0]}: `itsocr-mock tokens revoke {ids[0]}`"
    elif ids:
        advice = f"it is one of {', '.join(ids)} (see `itsocr-mock tokens list ACCOUNT`)"
    else:
        advice = (
            "no token of this state starts like it; `itsocr-mock tokens list ACCOUNT` shows ids"
        )
    return CommandError(f"that is a token, not a token id; {advice}", EXIT_USAGE)


def reset_command(args: argparse.Namespace) -> int:
    """`itsocr-mock reset [--force]`."""
    with open_target(args) as target:
        target.control.reset()
    return emit(args, {"reset": target.where}, f"reset {target.where}: demo accounts only")
