"""`itsocr-mock fixtures`: list, add or verify the OCR fixtures.

``list`` and ``add`` act on a control command's target (see `mockserver.cli.target`);
``verify`` checks the catalogue on disk and, with ``--url``, what a running mock answers.
"""

from __future__ import annotations

import argparse
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mockserver.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, URL_ENV, CommandError
from mockserver.cli.target import (
    TARGET_HEADING,
    add_command,
    check_origin,
    emit,
    open_target,
    table,
)


def add_fixture_commands(commands: Any) -> None:
    """Add ``fixtures list|add|verify`` to `commands`."""
    fixtures = commands.add_parser("fixtures", help="list, add or verify OCR fixtures")
    actions = fixtures.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = add_command(
        actions, "list", fixtures_list, "the fixture catalogue and the fixtures added at run time"
    )
    _directories(listing)
    add = add_command(actions, "add", fixtures_add, "make the mock answer TEXT for the image IMAGE")
    add.add_argument("image", metavar="IMAGE", type=Path, help="an image file")
    add.add_argument("text", metavar="TEXT", help="the text the mock returns for it")
    add.add_argument("--prompt", help="only for requests with this prompt")
    verify = actions.add_parser(
        "verify",
        help="check the catalogue: files, SHA-256, types, images decode",
        description="Check the built-in fixtures (and --fixtures directories): every file is "
        "there, matches its SHA-256 and declared type, and decodes; every problem is listed. "
        "With --url, also send each image once to that running mock (Enterprise demo token) "
        "and compare the text.",
    )
    _directories(verify)
    where = verify.add_argument_group(TARGET_HEADING.partition(" (")[0] + " (optional)")
    where.add_argument("--url", help=f"a running mock to check too (env {URL_ENV})")
    verify.add_argument("--json", action="store_true", help="print JSON, for scripts")
    verify.set_defaults(handler=fixtures_verify)


def _directories(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--fixtures",
        action="append",
        type=Path,
        default=[],
        metavar="DIR",
        help="also a directory of user fixtures, as `serve --fixtures` takes (repeatable)",
    )


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
    return emit(
        args,
        {"catalogue": catalogue, "added": added},
        table(rows, ("NAME", "SHA-256", "SOURCE", "TEXT")),
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
    return emit(
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
    # A directory `serve --fixtures` would refuse (exit 2) is a usage error here too.
    refused = any(check.problems for check in checks if check.source != "built-in")
    url = args.url or os.environ.get(URL_ENV)
    if url:
        check_origin(url, "--url" if args.url else URL_ENV)
        _verify_served(url.rstrip("/"), checks)
    bad = [check for check in checks if check.problems]
    lines = [f"{c.source}: {c.name}: {'; '.join(c.problems)}" for c in bad]
    lines.append(f"{len(checks) - len(bad)} of {len(checks)} fixtures verified")
    report = {"fixtures": [check.to_json() for check in checks], "ok": not bad}
    emit(args, report, "\n".join(lines))
    return EXIT_USAGE if refused else EXIT_FAILED if bad else EXIT_OK


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
    """A verdict per file of a user directory: every problem, and the sound fixtures."""
    from mockserver.fixtures import read_directory

    fixtures, problems = read_directory(directory)
    checks = [
        FixtureCheck(str(directory), _relative(problem.path, directory), [problem.problem])
        for problem in problems
    ]
    for fixture in fixtures:
        path = directory / fixture.name
        checks.append(FixtureCheck(str(directory), fixture.name, [], path, fixture))
    return checks


def _relative(path: Path, directory: Path) -> str:
    return path.name if path.parent == directory else "-"


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

    from mockserver.tokens import DEMO_ACCOUNTS

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
