"""The `itsocr-mock` command.

``serve`` runs the mock. The control commands (``accounts``, ``usage``, ``tokens``, ``reset``,
``fixtures``) act on a running mock over its control API (``--url``, env ``ITSOCR_MOCK_URL``) or
directly on a state file (``--state``, env ``ITSOCR_MOCK_STATE``; by default the file ``serve``
uses), which a mock serving that file sees at once. ``check URL`` runs the contract suite.

Exit codes: 0 done, 1 not found / mock unreachable / contract broken, 2 usage error. ``--json``
prints the control API's JSON, for scripts.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mockserver import __version__
from mockserver.settings import ENVIRONMENT, Settings, default_state_path

if TYPE_CHECKING:
    from mockserver.client import ControlApiError, MockControl

URL_ENV = "ITSOCR_MOCK_URL"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `itsocr-mock` and its subcommands."""
    parser = argparse.ArgumentParser(
        prog="itsocr-mock", description="A faithful, controllable mock of the itsOCR API."
    )
    parser.add_argument("--version", action="version", version=f"itsocr-mock {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser("serve", help="run the mock server (gunicorn)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 = any free)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    serve.add_argument(
        "--state",
        help=f"SQLite state file, or :memory: (env {ENVIRONMENT['state']}; "
        "default ~/.local/state/itsocr-mock/state.sqlite3)",
    )
    serve.add_argument(
        "--fixtures", action="append", help="a directory of user fixtures (repeatable)"
    )
    serve.add_argument(
        "--admin-token",
        help=f"require this bearer token on /_mock (env {ENVIRONMENT['admin_token']})",
    )
    serve.add_argument(
        "--no-control", action="store_true", help="serve no /_mock control API and ignore Prefer"
    )
    serve.add_argument("--log-level", help="DEBUG, INFO (default), WARNING...")
    serve.add_argument(
        "--client-timeout",
        type=float,
        help="seconds an upload's body may take to arrive before the connection is cut "
        f"(default 30; env {ENVIRONMENT['client_timeout']})",
    )
    serve.set_defaults(handler=serve_command)
    _add_control_commands(commands)
    _add_check_command(commands)
    return parser


def serve_command(args: argparse.Namespace) -> int:
    """`itsocr-mock serve`."""
    from pathlib import Path

    from mockserver.serving import MockServer, configure_logging, is_loopback

    settings = Settings.from_environment(
        state=args.state,
        fixtures=tuple(Path(p) for p in args.fixtures) if args.fixtures else None,
        admin_token=args.admin_token,
        control=False if args.no_control else None,
        log_level=args.log_level,
        client_timeout=args.client_timeout,
    )
    if args.workers < 1:
        return _fail("--workers must be at least 1")
    if settings.client_timeout <= 0:
        return _fail("--client-timeout must be a positive number of seconds")
    if settings.in_memory and args.workers > 1:
        return _fail("an in-memory state cannot be shared by several workers; use --state PATH")
    if settings.control and not settings.admin_token and not is_loopback(args.host):
        return _fail(
            f"refusing to serve the control API on {args.host} without protection: "
            "pass --admin-token TOKEN (or set ITSOCR_MOCK_ADMIN_TOKEN), or --no-control"
        )
    configure_logging(settings.log_level)
    try:
        server = MockServer(settings, args.host, args.port, args.workers)
    except OSError as failure:  # the port, reserved up front for several workers
        return _fail(f"cannot listen on {args.host}:{args.port}: {failure.strerror or failure}")
    server.run()
    return 0


# -- control commands: accounts, usage, tokens, reset, fixtures ---------------------------------


class CommandError(Exception):
    """A failure told in one line, saying what to do, with the exit code to end with."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, got {value}")
    return value


def _instant(text: str) -> str:
    from mockserver.clock import format_instant, parse_instant

    try:
        return format_instant(parse_instant(text))
    except ValueError as failure:
        raise argparse.ArgumentTypeError(f"{failure} (e.g. 2030-01-31T00:00:00Z)") from None


def _target_options() -> argparse.ArgumentParser:
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


def _add_control_commands(commands: Any) -> None:
    from mockserver.plans import plans

    target = _target_options()
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
    _add_fixture_commands(commands, target)


def _add_fixture_commands(commands: Any, target: argparse.ArgumentParser) -> None:
    fixtures = commands.add_parser("fixtures", help="list, add or verify OCR fixtures")
    actions = fixtures.add_subparsers(dest="action", required=True, metavar="ACTION")
    directories = argparse.ArgumentParser(add_help=False)
    directories.add_argument(
        "--fixtures",
        action="append",
        type=Path,
        default=[],
        metavar="DIR",
        help="also a directory of user fixtures, as `serve --fixtures` takes (repeatable)",
    )
    listing = actions.add_parser(
        "list",
        parents=[target, directories],
        help="the fixture catalogue and the fixtures added at run time",
    )
    listing.set_defaults(handler=fixtures_list)
    add = actions.add_parser(
        "add", parents=[target], help="make the mock answer TEXT for the image IMAGE"
    )
    add.add_argument("image", metavar="IMAGE", type=Path, help="an image file")
    add.add_argument("text", metavar="TEXT", help="the text the mock returns for it")
    add.add_argument("--prompt", help="only for requests with this prompt")
    add.set_defaults(handler=fixtures_add)
    verify = actions.add_parser(
        "verify",
        parents=[directories],
        help="check the catalogue: files, SHA-256, types, images decode",
        description="Check the built-in fixtures (and --fixtures directories): every file is "
        "there, matches its SHA-256 and declared type, and decodes. With --url, also send each "
        "image once to that running mock (Enterprise demo token) and compare the text.",
    )
    verify.add_argument("--url", help=f"a running mock to check too (env {URL_ENV})")
    verify.add_argument("--json", action="store_true", help="print JSON, for scripts")
    verify.set_defaults(handler=fixtures_verify)


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


def _catalogue(directories: Sequence[Path]) -> Any:
    from mockserver.fixtures import FixtureCatalogue

    try:
        return FixtureCatalogue.load(tuple(directories))
    except (ValueError, OSError) as failure:
        raise CommandError(str(failure), EXIT_USAGE) from None


def fixtures_list(args: argparse.Namespace) -> int:
    """`itsocr-mock fixtures list`: the catalogue, then the fixtures added at run time."""
    catalogue = [
        {
            "name": fixture.name,
            "sha256": fixture.sha256,
            "mediaType": fixture.media_type,
            "text": fixture.text,
            "prompts": dict(fixture.prompts),
        }
        for fixture in _catalogue(args.fixtures)
    ]
    with open_target(args) as target:
        added = target.control.list_fixtures()
    rows = [(f["name"], f["sha256"][:12], "catalogue", _preview(f["text"])) for f in catalogue]
    rows += [(a.get("name"), str(a["sha256"])[:12], "added", _preview(a["text"])) for a in added]
    return _emit(
        args,
        {"catalogue": catalogue, "added": added},
        _table(rows, ("NAME", "SHA-256", "SOURCE", "TEXT")),
    )


def _preview(text: object, width: int = 40) -> str:
    flat = " ".join(str(text or "").split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def fixtures_add(args: argparse.Namespace) -> int:
    """`itsocr-mock fixtures add IMAGE TEXT [--prompt P]`."""
    import mimetypes

    try:
        image = args.image.read_bytes()
    except OSError as failure:
        raise CommandError(f"cannot read {args.image}: {failure.strerror}", EXIT_USAGE) from None
    media_type = mimetypes.guess_type(args.image.name)[0] or "application/octet-stream"
    with open_target(args) as target:
        added = target.control.add_fixture(
            image, args.text, prompt=args.prompt, name=args.image.name, media_type=media_type
        )
    prompt = f" with the prompt {args.prompt!r}" if args.prompt else ""
    return _emit(
        args, added, f"{target.where}: {args.image.name}{prompt} -> {_preview(args.text)!r}"
    )


@dataclass
class FixtureCheck:
    """The verdict on one fixture: where it comes from and what is wrong with it."""

    source: str  # "built-in" or the user directory
    name: str
    problems: list[str]
    path: Path | None = None
    fixture: Any = None  # the catalogue's Fixture

    def to_json(self) -> dict[str, object]:
        """The verdict for ``--json``."""
        return {"source": self.source, "name": self.name, "problems": self.problems}


def fixtures_verify(args: argparse.Namespace) -> int:
    """`itsocr-mock fixtures verify [--fixtures DIR] [--url URL]`."""
    from mockserver.resources import data_path

    checks = _verify_manifest(data_path("fixtures"))
    for directory in args.fixtures:
        checks += _verify_directory(directory)
    url = args.url or os.environ.get(URL_ENV)
    if url:
        _verify_served(url.rstrip("/"), checks)
    bad = [check for check in checks if check.problems]
    lines = [f"{c.source}: {c.name}: {'; '.join(c.problems)}" for c in bad]
    lines.append(f"{len(checks) - len(bad)} of {len(checks)} fixtures verified")
    report = {"fixtures": [check.to_json() for check in checks], "ok": not bad}
    _emit(args, report, "\n".join(lines))
    return EXIT_FAILED if bad else EXIT_OK


def _verify_manifest(directory: Path) -> list[FixtureCheck]:
    import hashlib

    from mockserver.fixtures import FixtureCatalogue

    try:
        catalogue = FixtureCatalogue.from_manifest(directory / "manifest.yaml")
    except (OSError, KeyError, TypeError, ValueError) as failure:
        return [FixtureCheck("built-in", "manifest.yaml", [f"unreadable: {failure!r}"])]
    checks = []
    for fixture in catalogue:
        path = directory / fixture.name
        if not path.is_file():
            checks.append(FixtureCheck("built-in", fixture.name, ["file missing"]))
            continue
        data = path.read_bytes()
        problems = _image_problems(fixture, path, data)
        actual = hashlib.sha256(data).hexdigest()
        if actual != fixture.sha256:
            problems.insert(0, f"sha256 is {actual}, the manifest says {fixture.sha256}")
        checks.append(FixtureCheck("built-in", fixture.name, problems, path, fixture))
    return checks


def _verify_directory(directory: Path) -> list[FixtureCheck]:
    from mockserver.fixtures import FixtureCatalogue

    try:
        catalogue = FixtureCatalogue.from_directory(directory)
    except (OSError, ValueError) as failure:
        return [FixtureCheck(str(directory), "-", [str(failure)])]
    checks = []
    for fixture in catalogue:
        path = directory / fixture.name
        problems = _image_problems(fixture, path, path.read_bytes())
        checks.append(FixtureCheck(str(directory), fixture.name, problems, path, fixture))
    return checks


def _image_problems(fixture: Any, path: Path, data: bytes) -> list[str]:

    from mockserver.contract import allowed_media_types
    from mockserver.fixtures import MEDIA_TYPES
    from mockserver.imaging import is_decodable

    problems = []
    if fixture.media_type not in allowed_media_types():
        problems.append(f"type {fixture.media_type} is not one the service accepts")
    if MEDIA_TYPES.get(path.suffix.lower()) != fixture.media_type:
        problems.append(f"type {fixture.media_type} does not match the extension {path.suffix}")
    if not is_decodable(io.BytesIO(data)):
        problems.append("does not decode as an image (the live OCR would answer 500)")
    return problems  # an empty text is fine: a blank page reads as ""


def _verify_served(url: str, checks: list[FixtureCheck]) -> None:
    """Send each sound fixture to the mock at `url` and compare the text it answers."""
    import requests

    from mockserver.backend import DEMO_ACCOUNTS

    token = next(demo.token for demo in DEMO_ACCOUNTS if demo.plan == "enterprise")
    for check in checks:
        if check.problems or check.path is None:
            continue
        fixture = check.fixture
        try:
            answer = requests.post(
                f"{url}/api/v1/ocr",
                headers={"Authorization": f"Bearer {token}"},
                files={"file": (fixture.name, check.path.read_bytes(), fixture.media_type)},
                timeout=60,
            )
        except requests.ConnectionError:
            raise CommandError(
                f"no mock answers at {url}: start one with `itsocr-mock serve`"
            ) from None
        received = answer.json().get("text") if answer.status_code == 200 else None
        if received != fixture.recognise("").text:
            check.problems.append(f"{url} answered {answer.status_code} {answer.text[:200]!r}")


# -- check: the contract suite against a URL ----------------------------------------------------


def _add_check_command(commands: Any) -> None:
    check = commands.add_parser(
        "check",
        usage="itsocr-mock check [options] URL [-- PYTEST_ARGS...]",
        epilog="Arguments after -- go to pytest as they are, e.g. -- -x -k quota.",
        help="run the contract suite against URL and print the clause table",
        description="Run the contract suite (contract_tests) against the implementation at URL "
        "and print the clause table: passed, failed, skipped and why. Against a target without "
        "the mock's control API, only what --token allows runs, within --budget billable "
        "requests. Exit code 0 when the contract holds, 1 when a clause fails, 2 on bad usage.",
    )
    check.add_argument(
        "url", metavar="URL", help="the target's origin or API base, e.g. https://itsocr.com/api/v1"
    )
    check.add_argument(
        "--token", help="an API token of the target (env ITSOCR_TOKEN); its requests may be billed"
    )
    check.add_argument("--plan", help="the plan of --token's account (default free)")
    check.add_argument(
        "--level",
        help="documented: what the vendor docs promise; observed: every observed behaviour "
        "(default observed on a mock, documented otherwise)",
    )
    check.add_argument(
        "--budget", type=_count, metavar="N", help="at most N billable requests (default 10)"
    )
    check.add_argument(
        "--admin-token", help="the mock's admin token, if its control API requires one"
    )
    check.add_argument(
        "--json",
        action="store_true",
        help="print the clause table as JSON (pytest's output goes to stderr)",
    )
    check.set_defaults(handler=check_command)


def check_command(args: argparse.Namespace) -> int:
    """`itsocr-mock check URL`: `pytest --pyargs contract_tests --base-url URL ...`."""
    import tempfile
    from contextlib import nullcontext, redirect_stdout

    import pytest

    if not args.url.startswith(("http://", "https://")):
        raise CommandError(
            f"URL must be http(s), e.g. https://itsocr.com/api/v1 (got {args.url!r})", EXIT_USAGE
        )
    with tempfile.TemporaryDirectory(prefix="itsocr-check-") as scratch:
        report = Path(scratch) / "clauses.json"
        argv = suite_arguments(args, Path(scratch), report if args.json else None)
        argv += args.pytest_args
        # Hypothesis keeps caches in ./.hypothesis: not in the caller's directory.
        os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", str(Path(scratch) / "hypothesis"))
        with redirect_stdout(sys.stderr) if args.json else nullcontext():
            code = pytest.main(argv)
        if args.json and report.exists():
            print(report.read_text(encoding="utf-8"))
    return _check_exit(int(code))


def suite_arguments(args: argparse.Namespace, scratch: Path, report: Path | None) -> list[str]:
    """The pytest command line that runs the installed contract suite against ``args.url``.

    The suite runs the same from any directory: its own options plugin is loaded explicitly
    (whether or not the kit is pip-installed), and the caller's pytest configuration, conftest
    files and cache directory are kept out of it (an empty ini file in `scratch` stands for
    the configuration).
    """
    import importlib.util

    spec = importlib.util.find_spec("contract_tests")
    if spec is None or not spec.submodule_search_locations:
        raise CommandError("the contract suite (contract_tests) is not installed with the kit")
    rootdir = Path(next(iter(spec.submodule_search_locations))).parent
    options = {
        "--itsocr-token": args.token,
        "--itsocr-plan": args.plan,
        "--itsocr-level": args.level,
        "--itsocr-budget": args.budget,
        "--itsocr-admin-token": args.admin_token,
        "--itsocr-report": report,
    }
    argv = ["--pyargs", "contract_tests", "--base-url", args.url, "-q"]
    ini = scratch / "pytest.ini"
    ini.write_text("[pytest]\n", encoding="utf-8")
    argv += ["-c", str(ini), "--rootdir", str(rootdir), "-p", "no:cacheprovider"]
    argv += ["-p", "no:itsocr_contract", "-p", "contract_tests.plugin"]
    for option, value in options.items():
        if value is not None:
            argv += [option, str(value)]
    return argv


def _check_exit(pytest_code: int) -> int:
    import pytest

    if pytest_code == pytest.ExitCode.OK:
        return EXIT_OK
    if pytest_code == pytest.ExitCode.USAGE_ERROR:
        return EXIT_USAGE
    if pytest_code == pytest.ExitCode.INTERRUPTED:
        return 130
    if pytest_code != pytest.ExitCode.TESTS_FAILED:
        print(
            f"itsocr-mock: error: the contract suite did not run to the end (pytest exit code "
            f"{pytest_code}); the contract is not verified",
            file=sys.stderr,
        )
    return EXIT_FAILED


def _fail(message: str, code: int = EXIT_USAGE) -> int:
    print(f"itsocr-mock: error: {message}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `itsocr-mock` console script."""
    words = list(sys.argv[1:] if argv is None else argv)
    # argparse cannot take another program's options after its positionals: split them off.
    cut = words.index("--") if "--" in words else len(words)
    words, pytest_args = words[:cut], words[cut + 1 :]
    parser = build_parser()
    args = parser.parse_args(words)
    if pytest_args and args.command != "check":
        parser.error("only `check` passes arguments after -- (to pytest)")
    args.pytest_args = pytest_args
    try:
        return int(args.handler(args))
    except CommandError as failure:
        return _fail(str(failure), failure.code)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
