"""The `itsocr-mock` command: every subcommand for real, against a running mock and on a state file.

Control commands run in-process through `main()` (argparse's exits caught) against the session's
in-process mock over HTTP (``--url``) or a state file (``--state``); what they did is checked in
the mock's own state. `serve` and `check` run as real child processes.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from PIL import Image

import contract_tests
import contract_tests.plugin as contract_plugin
from mockserver import errors
from mockserver.backend import DEMO_ACCOUNTS, OVERRIDE_STATUSES, Backend
from mockserver.cli import main, suite_arguments
from mockserver.cli.check import _check_exit
from mockserver.cli.common import CommandError, refuse_an_open_control_api
from mockserver.clock import period_of
from mockserver.fixtures import FixtureCatalogue
from mockserver.resources import data_path
from mockserver.settings import Settings
from mockserver.store import JournalEntry, Store
from mockserver.store.redis import RedisStore
from mockserver.testing import InProcessServer, RedisServer, ServerProcess

MANIFEST = data_path("fixtures") / "manifest.yaml"


@dataclass(frozen=True)
class Result:
    """What one `itsocr-mock` invocation did."""

    code: int
    out: str
    err: str

    def json(self) -> object:
        """The standard output parsed as JSON (``--json``)."""
        return json.loads(self.out)


Cli = Callable[..., Result]


@pytest.fixture(autouse=True)
def hermetic(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No target from the developer's environment; the default state file in tmp_path."""
    for name in ("ITSOCR_MOCK_URL", "ITSOCR_MOCK_STATE", "ITSOCR_MOCK_ADMIN_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))


def test_the_default_target_is_the_state_file_serve_uses(cli: Cli, tmp_path: Path) -> None:
    assert cli("usage", "demo-free", "--set", "2").code == 0
    state = tmp_path / "xdg" / "itsocr-mock" / "state.sqlite3"
    assert cli("reset", "--json").json() == {"reset": str(state)}


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    """``cli("accounts", "list", ...)`` -> Result: `main()` in-process, usage errors included."""

    def run(*args: str) -> Result:
        capsys.readouterr()
        try:
            code = main(list(args))
        except SystemExit as exit_:  # argparse: --help (0) and usage errors (2)
            code = int(exit_.code or 0)
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return run


@dataclass(frozen=True)
class Target:
    """Where the control commands act, and the backend to check what they did."""

    args: tuple[str, ...]
    backend: Backend
    url: str | None  # the mock's origin when the target is a running mock


@pytest.fixture(params=["running mock", "state file", "redis state"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    """Each control command is tested against a running mock (--url), a state file and a
    Redis state (--state redis://... --state-prefix)."""
    if request.param == "running mock":
        server: InProcessServer = request.getfixturevalue("mock_server")
        yield Target(("--url", server.url), server.backend, server.url)
        return
    if request.param == "redis state":
        redis: RedisServer = request.getfixturevalue("redis_server")
        prefix: str = request.getfixturevalue("redis_prefix")
        backend = Backend(RedisStore(redis.url, prefix))
        backend.ensure_initialised()
        yield Target(("--state", redis.url, "--state-prefix", prefix), backend, None)
        backend.store.close()
        return
    path = tmp_path / "state.sqlite3"
    backend = Backend(Store(path))
    backend.ensure_initialised()
    yield Target(("--state", str(path)), backend, None)
    backend.store.close()


def png(text: str = "x") -> bytes:
    """A real PNG, distinct per `text`."""
    buffer = io.BytesIO()
    Image.new("RGB", (30 + len(text), 20), "white").save(buffer, format="PNG")
    return buffer.getvalue()


def authenticate(backend: Backend, token: str) -> None:
    """Raise the live 401 for `token`, or return when it is valid now."""
    backend.authenticate(f"Bearer {token}", backend.now())


# -- accounts ------------------------------------------------------------------------------------


def test_accounts_create(cli: Cli, target: Target) -> None:
    done = cli("accounts", "create", "--plan", "pro", "--json", *target.args)
    assert done.code == 0, done.err
    created = done.json()
    assert isinstance(created, dict)
    assert set(created) >= {"id", "plan", "token", "tokenId"}
    stored = target.backend.store.get_account(created["id"])
    assert stored is not None
    assert stored.plan == "pro"
    authenticate(target.backend, created["token"])


def test_accounts_create_says_what_it_made(cli: Cli, target: Target) -> None:
    done = cli("accounts", "create", *target.args)
    assert done.code == 0, done.err
    found = re.search(r"created account (\S+) on plan free\n  token: (itsocr_\w{32}) ", done.out)
    assert found, done.out
    assert target.backend.store.get_account(found.group(1)) is not None
    authenticate(target.backend, found.group(2))


def test_accounts_list(cli: Cli, target: Target) -> None:
    account, _ = target.backend.create_account("enterprise")
    listed = cli("accounts", "list", "--json", *target.args)
    assert listed.code == 0, listed.err
    rows = listed.json()
    assert isinstance(rows, list)
    assert [(row["id"], row["plan"]) for row in rows] == [
        *((demo.id, demo.plan) for demo in DEMO_ACCOUNTS),
        (account.id, "enterprise"),
    ]
    table = cli("accounts", "list", *target.args).out.splitlines()
    assert table[0].split() == ["ID", "PLAN", "TOKENS", "CREATED"]
    assert table[-1].split()[:3] == [account.id, "enterprise", "1"]


# -- usage ---------------------------------------------------------------------------------------


def test_usage_shows_and_sets(cli: Cli, target: Target) -> None:
    shown = cli("usage", "demo-free", "--json", *target.args)
    assert shown.code == 0, shown.err
    period = period_of(target.backend.now())
    usage = shown.json()
    assert isinstance(usage, dict)
    assert (usage["period"], usage["imagesUsed"], usage["limit"]) == (period, 0, 10)
    done = cli("usage", "demo-free", "--set", "10", *target.args)
    assert done.code == 0, done.err
    assert done.out.strip().startswith(f"demo-free in {period}: 10 of 10 images used")
    assert target.backend.store.usage("demo-free", period)[0] == 10
    unlimited = cli("usage", "demo-enterprise", *target.args)
    assert "0 unlimited images used" in unlimited.out


def test_usage_set_makes_the_next_call_429(cli: Cli, mock_server: InProcessServer) -> None:
    assert cli("usage", "demo-free", "--set", "10", "--url", mock_server.url).code == 0
    answer = requests.post(
        mock_server.base_url + "/ocr",
        headers={"Authorization": f"Bearer {DEMO_ACCOUNTS[0].token}"},
        files={"file": ("a.png", png(), "image/png")},
        timeout=10,
    )
    assert answer.status_code == 429
    assert answer.json()["error"] == errors.MonthlyLimitReached(10, 10).error


def test_usage_of_an_unknown_account(cli: Cli, target: Target) -> None:
    done = cli("usage", "acct_nope", *target.args)
    assert done.code == 1
    assert "acct_nope" in done.err
    assert done.out == ""


# -- tokens --------------------------------------------------------------------------------------


def test_tokens_create_with_an_expiry_in_the_past(cli: Cli, target: Target) -> None:
    done = cli(
        "tokens", "create", "demo-pro", "--expires", "2020-01-01T00:00:00Z", "--json", *target.args
    )
    assert done.code == 0, done.err
    token = done.json()
    assert isinstance(token, dict)
    assert token["expiresAt"].startswith("2020-01-01T00:00:00")
    with pytest.raises(errors.TokenExpired):
        authenticate(target.backend, token["token"])


def test_tokens_create_and_revoke(cli: Cli, target: Target) -> None:
    created = cli("tokens", "create", "demo-free", *target.args)
    assert created.code == 0, created.err
    found = re.match(r"(itsocr_\w{32})  \(id (\S+), never expires", created.out)
    assert found, created.out
    token, token_id = found.groups()
    authenticate(target.backend, token)
    revoked = cli("tokens", "revoke", token_id, *target.args)
    assert revoked.code == 0, revoked.err
    with pytest.raises(errors.TokenRevoked):
        authenticate(target.backend, token)


def test_tokens_beyond_the_active_limit(cli: Cli, target: Target) -> None:
    active = len(target.backend.tokens("demo-free"))
    for _ in range(10 - active):
        assert cli("tokens", "create", "demo-free", *target.args).code == 0
    done = cli("tokens", "create", "demo-free", *target.args)
    assert done.code == 1
    assert "10 active tokens" in done.err


def test_tokens_of_unknown_things(cli: Cli, target: Target) -> None:
    assert cli("tokens", "create", "acct_nope", *target.args).code == 1
    done = cli("tokens", "revoke", "tok_nope", *target.args)
    assert done.code == 1
    assert "tok_nope" in done.err


def test_tokens_list_shows_ids_never_tokens(cli: Cli, target: Target) -> None:
    second = target.backend.create_token("demo-pro").row
    listed = cli("tokens", "list", "demo-pro", "--json", *target.args)
    assert listed.code == 0, listed.err
    rows = listed.json()
    assert isinstance(rows, list)
    assert [row["id"] for row in rows] == ["demo-pro-token", second.id]
    assert {"prefix", "createdAt", "expiresAt", "revokedAt"} <= set(rows[0])
    table = cli("tokens", "list", "demo-pro", *target.args).out
    assert table.splitlines()[0].split() == ["ID", "TOKEN", "CREATED", "EXPIRES", "REVOKED"]
    assert DEMO_ACCOUNTS[1].token not in table  # only the display prefix
    assert DEMO_ACCOUNTS[1].token[:12] + "…" in table
    assert cli("tokens", "list", "acct_nope", *target.args).code == 1


def test_tokens_revoke_given_a_token_names_its_id(cli: Cli, target: Target) -> None:
    done = cli("tokens", "revoke", DEMO_ACCOUNTS[0].token, *target.args)
    assert done.code == 2
    assert done.err == (
        "itsocr-mock: error: that is a token, not a token id; its id is demo-free-token: "
        "`itsocr-mock tokens revoke demo-free-token`\n"
    )
    authenticate(target.backend, DEMO_ACCOUNTS[0].token)  # not revoked
    unknown = cli("tokens", "revoke", "itsocr_" + "Z" * 32, *target.args)
    assert unknown.code == 2
    assert "tokens list ACCOUNT" in unknown.err


# -- reset ---------------------------------------------------------------------------------------


def test_reset(cli: Cli, target: Target) -> None:
    target.backend.create_account("pro")
    target.backend.store.set_images_used("demo-free", period_of(target.backend.now()), 4)
    done = cli("reset", *target.args)
    assert done.code == 0, done.err
    assert [a.id for a in target.backend.store.list_accounts()] == [d.id for d in DEMO_ACCOUNTS]
    assert target.backend.store.usage("demo-free", period_of(target.backend.now()))[0] == 0


# -- clock, faults, requests ----------------------------------------------------------------------


def test_clock_set_show_real(cli: Cli, target: Target) -> None:
    frozen = cli("clock", "set", "2030-01-31T23:59:59+01:00", *target.args)
    assert frozen.code == 0, frozen.err
    assert frozen.out == "2030-01-31T22:59:59.000Z (frozen)\n"
    assert target.backend.now().isoformat() == "2030-01-31T22:59:59+00:00"
    shown = cli("clock", "show", "--json", *target.args).json()
    assert shown == {"now": "2030-01-31T22:59:59.000Z", "frozen": True}
    real = cli("clock", "real", *target.args)
    assert real.code == 0, real.err
    assert real.out.endswith(" (real time)\n")
    assert not target.backend.clock_is_frozen()
    assert cli("clock", "set", "soon", *target.args).code == 2


def test_faults_add_list_clear(cli: Cli, target: Target) -> None:
    added = cli("faults", "add", "--status", "500", "--times", "2", "--json", *target.args)
    assert added.code == 0, added.err
    rule = added.json()
    assert isinstance(rule, dict)
    assert (rule["status"], rule["times"], rule["drop"]) == (500, 2, False)
    slow = cli("faults", "add", "--delay-ms", "250", "--account", "demo-pro", *target.args)
    assert slow.code == 0, slow.err
    assert re.fullmatch(
        r"added flt_\w+: every OCR request of demo-pro: wait 250 ms, then "
        r"succeed\n",
        slow.out,
    ), slow.out
    assert [f.id for f in target.backend.faults()][:1] == [rule["id"]]
    table = cli("faults", "list", *target.args).out.splitlines()
    assert table[0].split()[:3] == ["ID", "STATUS", "DELAY_MS"]
    assert table[1].split()[:4] == [rule["id"], "500", "0", "2"]
    assert cli("faults", "clear", rule["id"], *target.args).code == 0
    assert [f.account_id for f in target.backend.faults()] == ["demo-pro"]
    assert cli("faults", "clear", *target.args).code == 0
    assert target.backend.faults() == []
    assert cli("faults", "clear", "flt_nope", *target.args).code == 1
    refused = cli("faults", "add", "--status", "500", "--drop", *target.args)
    assert refused.code == 2
    assert "not both" in refused.err


def test_requests_lists_the_journal(cli: Cli, target: Target) -> None:
    for status in (200, 429, 500):
        entry = JournalEntry(time="2030-01-01T00:00:00.000Z", method="POST", path="/api/v1/ocr")
        entry.status, entry.account_id = status, "demo-free" if status != 500 else "demo-pro"
        target.backend.store.record(entry)
    every = cli("requests", "--json", *target.args).json()
    assert isinstance(every, list)
    assert [e["status"] for e in every] == [200, 429, 500]
    assert [
        e["status"]
        for e in cli("requests", "--account", "demo-free", "--json", *target.args).json()
    ] == [200, 429]
    assert [
        e["status"] for e in cli("requests", "--status", "500", "--json", *target.args).json()
    ] == [500]
    newest = cli("requests", "--limit", "1", *target.args).out.splitlines()
    assert newest[0].split()[:3] == ["TIME", "STATUS", "ACCOUNT"]
    assert newest[1].split()[1:3] == ["500", "demo-pro"]
    assert len(newest) == 2
    assert cli("requests", "--limit", "0", *target.args).code == 2


# -- fixtures ------------------------------------------------------------------------------------


def test_fixtures_add_and_list(cli: Cli, target: Target, tmp_path: Path) -> None:
    image = tmp_path / "receipt.png"
    image.write_bytes(png("receipt"))
    sha256 = hashlib.sha256(image.read_bytes()).hexdigest()
    added = cli("fixtures", "add", str(image), "TOTAL 42.00", "--prompt", "total", *target.args)
    assert added.code == 0, added.err
    assert target.backend.store.find_fixture(sha256, "total") == ("receipt.png", "TOTAL 42.00")
    listed = cli("fixtures", "list", "--json", *target.args)
    assert listed.code == 0, listed.err
    listing = listed.json()
    assert isinstance(listing, dict)
    assert [(a["sha256"], a["text"]) for a in listing["added"]] == [(sha256, "TOTAL 42.00")]
    builtin = FixtureCatalogue.from_manifest(MANIFEST)
    assert {f["sha256"] for f in listing["catalogue"]} == {f.sha256 for f in builtin}
    table = cli("fixtures", "list", *target.args).out.splitlines()
    assert table[0].split() == ["NAME", "SHA-256", "SOURCE", "TEXT"]
    assert table[-1].split()[:4] == ["receipt.png", sha256[:12], "added", "TOTAL"]
    if target.url:  # and the running mock answers it
        answer = requests.post(
            target.url + "/api/v1/ocr",
            headers={"Authorization": f"Bearer {DEMO_ACCOUNTS[0].token}"},
            files={"file": ("r.png", image.read_bytes(), "image/png")},
            data={"prompt": "total"},
            timeout=10,
        )
        assert answer.json()["text"] == "TOTAL 42.00"


def test_fixtures_add_of_a_missing_file(cli: Cli, target: Target, tmp_path: Path) -> None:
    done = cli("fixtures", "add", str(tmp_path / "nope.png"), "x", *target.args)
    assert done.code == 2
    assert "cannot read" in done.err
    assert "nope.png" in done.err


def _user_fixtures(root: Path, files: dict[str, bytes | str]) -> Path:
    """A user fixture directory (``serve --fixtures`` style): images with ``NAME.txt`` texts."""
    root.mkdir()
    for name, content in files.items():
        path = root / name
        if isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        else:
            path.write_bytes(content)
    return root


def test_fixtures_verify_the_builtin_catalogue(cli: Cli) -> None:
    done = cli("fixtures", "verify")
    assert done.code == 0, done.out + done.err
    found = re.search(r"^(\d+) of \1 fixtures verified$", done.out, re.MULTILINE)
    assert found, done.out
    assert int(found.group(1)) == len(FixtureCatalogue.from_manifest(MANIFEST))


def test_fixtures_verify_user_directories(cli: Cli, tmp_path: Path) -> None:
    good = _user_fixtures(tmp_path / "good", {"a.png": png("a"), "a.txt": "A"})
    done = cli("fixtures", "verify", "--fixtures", str(good), "--json")
    assert done.code == 0, done.out
    report = done.json()
    assert isinstance(report, dict)
    assert report["ok"] is True
    assert {"source": str(good), "name": "a.png", "problems": []} in report["fixtures"]
    broken = _user_fixtures(tmp_path / "broken", {"b.png": b"not a png", "b.txt": "B"})
    done = cli("fixtures", "verify", "--fixtures", str(good), "--fixtures", str(broken))
    assert done.code == 2  # what `serve --fixtures` refuses is a usage error here too
    assert f"{broken}: b.png: does not decode as an image" in done.out
    unpaired = _user_fixtures(
        tmp_path / "unpaired",
        {"c.png": png("c"), "d.png": png("d"), "d.txt": b"\xff", "e.prompts.yaml": "a: b"},
    )
    done = cli("fixtures", "verify", "--fixtures", str(unpaired))
    assert done.code == 2
    # Every problem, one line each, then the count.
    *problems, count = done.out.splitlines()
    assert problems == [
        f"{unpaired}: e.prompts.yaml: has no image e.EXT beside it",
        f"{unpaired}: c.png: the fixture image has no text sidecar c.txt",
        f"{unpaired}: d.txt: is not UTF-8 text (byte 0xff at offset 0); save it as UTF-8",
    ]
    assert re.fullmatch(r"(\d+) of (\d+) fixtures verified", count), count


def test_fixtures_verify_against_a_running_mock(
    cli: Cli, mock_server: InProcessServer, tmp_path: Path
) -> None:
    assert cli("fixtures", "verify", "--url", mock_server.url).code == 0
    # A user directory the running mock was not started with: it answers other text.
    extra = _user_fixtures(tmp_path / "extra", {"d.png": png("d"), "d.txt": "D"})
    done = cli("fixtures", "verify", "--url", mock_server.url, "--fixtures", str(extra))
    assert done.code == 1
    assert f"{extra}: d.png: {mock_server.url} answered 200" in done.out


def _shape(value: object) -> object:
    """The keys of a JSON value, recursively: what `--json` promises scripts."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shape(item) for item in value[:1]]
    return type(value).__name__


def test_both_targets_print_the_same_json(
    cli: Cli, mock_server: InProcessServer, tmp_path: Path
) -> None:
    running = ("--url", mock_server.url)
    state = ("--state", str(tmp_path / "state.sqlite3"))
    Store(state[1]).close()
    for command in (
        ("accounts", "create", "--plan", "pro"),
        ("accounts", "list"),
        ("usage", "demo-pro", "--set", "3"),
        ("tokens", "create", "demo-pro", "--expires", "2031-01-01T00:00:00Z"),
        ("reset",),
    ):
        over_http = cli(*command, "--json", *running)
        on_file = cli(*command, "--json", *state)
        assert (over_http.code, on_file.code) == (0, 0), (command, over_http.err, on_file.err)
        if command[0] != "reset":  # reset names its target
            assert _shape(over_http.json()) == _shape(on_file.json()), command


# -- targets, usage errors, help -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("accounts", "create", "--plan", "gold"), "invalid choice: 'gold'"),
        (("usage", "demo-free", "--set", "-1"), "expected 0 or more"),
        (("usage", "demo-free", "--set", "ten"), "expected a whole number"),
        (("tokens", "create", "demo-free", "--expires", "tomorrow"), "not an ISO-8601"),
        (("accounts", "list", "--url", "http://x", "--state", "s"), "not allowed with"),
        (("accounts", "list", "--state", ":memory:"), "use --url"),
        (("accounts",), "required: ACTION"),
        (("check", "itsocr.com"), "URL must be http(s)"),
    ],
)
def test_usage_errors_exit_2_and_say_what_to_do(
    cli: Cli, args: tuple[str, ...], message: str
) -> None:
    done = cli(*args)
    assert done.code == 2
    assert message in done.err


def test_an_unreachable_mock(cli: Cli) -> None:
    done = cli("accounts", "list", "--url", "http://127.0.0.1:9")
    assert done.code == 1
    assert "no mock answers at http://127.0.0.1:9: start one with `itsocr-mock serve`" in done.err


def test_environment_names_the_target(
    cli: Cli, mock_server: InProcessServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ITSOCR_MOCK_URL", mock_server.url)
    done = cli("accounts", "create", "--json")
    assert done.code == 0, done.err
    created = done.json()
    assert isinstance(created, dict)
    assert mock_server.backend.store.get_account(created["id"]) is not None
    # --state beats the environment's URL; ITSOCR_MOCK_STATE names the default state file.
    state = tmp_path / "env.sqlite3"
    assert cli("reset", "--state", str(state)).code == 0
    monkeypatch.delenv("ITSOCR_MOCK_URL")
    monkeypatch.setenv("ITSOCR_MOCK_STATE", str(state))
    assert cli("reset", "--json").json() == {"reset": str(state)}


def test_a_new_state_file_starts_with_the_demo_accounts(cli: Cli, tmp_path: Path) -> None:
    state = tmp_path / "deep" / "new.sqlite3"
    refused = cli("accounts", "list", "--state", str(state))  # a typo must not make a state
    assert refused.code == 2
    assert f"no state file at {state}" in refused.err
    assert not state.exists()
    assert cli("reset", "--state", str(state)).code == 0  # only reset (and serve) make one
    rows = cli("accounts", "list", "--json", "--state", str(state)).json()
    assert isinstance(rows, list)
    assert [row["id"] for row in rows] == [demo.id for demo in DEMO_ACCOUNTS]


def test_a_redis_state_is_named_by_its_url_and_prefix_and_never_made_by_mistake(
    cli: Cli, redis_server: RedisServer, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = redis_server.url
    refused = cli("accounts", "list", "--state", url, "--state-prefix", redis_prefix)
    assert refused.code == 2
    assert f"no state in {url} under the prefix {redis_prefix!r}" in refused.err
    assert f"`itsocr-mock reset --state {url} --state-prefix {redis_prefix}`" in refused.err
    store = RedisStore(url, redis_prefix)
    assert store.is_empty()  # nothing was made
    assert cli("reset", "--state", url, "--state-prefix", redis_prefix).code == 0
    # The prefix from the environment, as `serve` reads it: the same state.
    monkeypatch.setenv("ITSOCR_MOCK_STATE_PREFIX", redis_prefix)
    assert cli("usage", "demo-free", "--set", "4", "--state", url).code == 0
    free = DEMO_ACCOUNTS[0].id
    assert store.usage(free, period_of(datetime.now(UTC)))[0] == 4
    store.close()
    empty = cli("accounts", "list", "--state", url, "--state-prefix", "")
    assert empty.code == 2
    assert "--state-prefix must not be empty" in empty.err


def test_a_redis_password_stays_out_of_what_the_cli_prints(
    cli: Cli, redis_server: RedisServer, redis_prefix: str
) -> None:
    host = redis_server.url.removeprefix("redis://")
    url = f"redis://:hunter2@{host}"  # a Redis without a password ignores one (Redis < 6)
    done = cli("reset", "--state", url, "--state-prefix", redis_prefix)
    refused = cli("accounts", "list", "--state", url, "--state-prefix", redis_prefix + "x")
    assert "hunter2" not in done.out + done.err + refused.out + refused.err
    assert refused.code == 2


def test_admin_token_of_a_protected_mock(cli: Cli) -> None:
    settings = Settings(state=":memory:", admin_token="s3cret")
    with InProcessServer(settings) as server:
        refused = cli("accounts", "list", "--url", server.url)
        assert refused.code == 1
        assert "--admin-token" in refused.err
        assert cli("accounts", "list", "--url", server.url, "--admin-token", "s3cret").code == 0


@pytest.mark.parametrize(
    ("command", "way_out"),
    [(("serve", "--state", ":memory:"), "--no-control"), (("proxy",), None)],
)
def test_serve_and_proxy_refuse_an_open_control_api(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, command: tuple[str, ...], way_out: str | None
) -> None:
    """Both commands serve a control API and refuse, before binding anything, to serve it on
    an address other machines reach without an admin token; only `serve` can switch it off."""
    monkeypatch.delenv("ITSOCR_MOCK_ADMIN_TOKEN", raising=False)
    monkeypatch.delenv("ITSOCR_MOCK_CONTROL", raising=False)
    refused = cli(*command, "--host", "0.0.0.0", "--port", "0")
    assert refused.code == 2
    assert refused.err == (
        "itsocr-mock: error: refusing to serve the control API on 0.0.0.0 without protection: "
        "pass --admin-token TOKEN (or set ITSOCR_MOCK_ADMIN_TOKEN)"
        + (f", or {way_out}" if way_out else "")
        + "\n"
    )


def test_a_control_api_is_open_only_on_loopback_or_behind_a_token() -> None:
    for host in ("127.0.0.1", "::1", "[::1]", "localhost"):
        refuse_an_open_control_api(host, None)  # reachable from this machine only: allowed
    refuse_an_open_control_api("0.0.0.0", "s3cret")
    with pytest.raises(CommandError, match=r"on 192\.0\.2\.1 without protection"):
        refuse_an_open_control_api("192.0.2.1", None)
    with pytest.raises(CommandError, match=r"on 0\.0\.0\.0 without protection"):
        refuse_an_open_control_api("0.0.0.0", "")  # an empty token protects nothing


def test_help_is_consistent(cli: Cli) -> None:
    top = cli("--help")
    assert top.code == 0
    for command in ("serve", "accounts", "usage", "tokens", "reset", "fixtures", "check"):
        assert command in top.out
    for command in ("clock", "faults", "requests"):
        assert command in top.out
    for command in (
        ("accounts", "create"),
        ("accounts", "list"),
        ("usage",),
        ("tokens", "list"),
        ("tokens", "create"),
        ("tokens", "revoke"),
        ("reset",),
        ("clock", "show"),
        ("clock", "set"),
        ("clock", "real"),
        ("faults", "add"),
        ("faults", "list"),
        ("faults", "clear"),
        ("requests",),
        ("fixtures", "list"),
        ("fixtures", "add"),
    ):
        shown = cli(*command, "--help")
        assert shown.code == 0
        assert "--json" in shown.out, command
        # The options naming the target stand together under their heading.
        target = shown.out.split("\ntarget (default: the state file `serve` uses):\n")[1]
        for option in ("--url", "--state", "--admin-token"):
            assert f"\n  {option} " in "\n" + target, (command, option)


def test_help_lists_the_choices(cli: Cli) -> None:
    assert "{free,pro,enterprise}" in cli("accounts", "create", "--help").out
    check = cli("check", "--help").out
    # The suite's own options take the same values.
    assert f"--plan {{{','.join(contract_plugin.PLANS)}}}" in check
    assert f"--level {{{','.join(contract_plugin.LEVELS)}}}" in check
    *others, last = OVERRIDE_STATUSES
    assert f"({', '.join(map(str, others))} or {last})" in cli("faults", "add", "--help").out
    assert "{DEBUG,INFO,WARNING,ERROR,CRITICAL}" in cli("serve", "--help").out


# -- serve and check, as child processes ---------------------------------------------------------


def test_serve_banner_access_log_and_a_state_file_shared_with_the_cli(tmp_path: Path) -> None:
    state = tmp_path / "served.sqlite3"
    with ServerProcess(state=state) as server:
        banner = "".join(server.output)
        assert f"itsOCR mock listening on {server.url}" in banner
        assert f"OCR endpoint: {server.base_url}/ocr\n" in banner
        assert f"state: {state}" in banner
        for demo in DEMO_ACCOUNTS:
            assert demo.token in banner
        token = DEMO_ACCOUNTS[0].token

        def ocr() -> requests.Response:
            return requests.post(
                server.base_url + "/ocr",
                headers={"Authorization": f"Bearer {token}"},
                files={"file": ("a.png", png("served"), "image/png")},
                timeout=10,
            )

        assert ocr().status_code == 200
        line = _wait_for(server, r"POST /api/v1/ocr 200 token=itsocr_Free")
        assert re.search(rf"fixture=\S+ size={len(png('served'))} time=[\d.]+ms", line), line
        # The CLI writes the state file; the running server sees it at once.
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "mockserver.cli",
                "usage",
                "demo-free",
                "--set",
                "10",
                "--state",
                str(state),
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        refused = ocr()
        assert refused.status_code == 429
        line = _wait_for(server, r"POST /api/v1/ocr 429 ")
        assert f'error="{errors.MonthlyLimitReached(10, 10).error}"' in line


def _wait_for(server: ServerProcess, pattern: str, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in list(server.output):
            if re.search(pattern, line):
                return line
        time.sleep(0.02)
    raise AssertionError(f"no log line matches {pattern!r}:\n{''.join(server.output)}")


def test_check_arguments_run_the_installed_suite_in_isolation(tmp_path: Path) -> None:
    from argparse import Namespace

    args = Namespace(
        url="https://example.com/api/v1",
        token="itsocr_" + "a" * 32,
        plan="pro",
        level=None,
        budget=3,
        admin_token=None,
        allow_exhaust=True,
        concurrency=4,
        revoked_token="itsocr_" + "r" * 32,
        expired_token=None,
    )
    argv = suite_arguments(args, tmp_path, tmp_path / "report.json")
    assert argv[:4] == ["--pyargs", "contract_tests", "--base-url", "https://example.com/api/v1"]
    pairs = dict(itertools.pairwise(argv))
    assert pairs["--itsocr-token"] == "itsocr_" + "a" * 32
    assert pairs["--itsocr-budget"] == "3"
    assert pairs["--itsocr-concurrency"] == "4"
    assert pairs["--itsocr-revoked-token"] == "itsocr_" + "r" * 32
    assert "--itsocr-allow-exhaust" in argv
    assert "--itsocr-expired-token" not in argv
    assert pairs["--itsocr-report"] == str(tmp_path / "report.json")
    assert "--itsocr-level" not in argv  # not given: the suite decides
    assert Path(pairs["-c"]).read_text() == "[pytest]\n"  # none of the caller's configuration
    # Where contract_tests/ is: this checkout, or site-packages when the kit is installed.
    assert pairs["--rootdir"] == str(Path(contract_tests.__file__).parents[1])
    assert "no:cacheprovider" in argv


@pytest.mark.parametrize(
    ("pytest_code", "failed", "code"),
    [
        (0, [], 0),
        (0, ["auth.missing-header"], 1),  # the report, not pytest's status, has the last word
        (1, ["auth.missing-header"], 1),
        (0, None, 1),  # no report: the contract is not verified
        (4, None, 2),
        (2, None, 130),
    ],
)
def test_check_exits_0_only_when_no_clause_failed(
    pytest_code: int, failed: list[str] | None, code: int
) -> None:
    assert _check_exit(pytest_code, failed) == code


def _check(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mockserver.cli", "check", *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
        check=False,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])},
    )


@pytest.mark.slow
def test_check_passes_against_the_mock(tmp_path: Path) -> None:
    with ServerProcess() as server:
        done = _check(server.base_url, "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    results = {clause["clause"]: clause["result"] for clause in report["clauses"]}
    assert len(results) > 20, results
    assert "failed" not in results.values(), results
    assert not list(tmp_path.iterdir())  # nothing left behind in the caller's directory
    assert "warning" not in (done.stdout + done.stderr).lower()


@pytest.mark.slow
def test_check_takes_the_suites_options_against_a_live_like_target(tmp_path: Path) -> None:
    """A mock without its control API, tokens in each state made with the CLI beforehand."""
    state = str(tmp_path / "state.sqlite3")

    def cli(*args: str) -> dict[str, Any]:
        command = [sys.executable, "-m", "mockserver.cli", *args, "--state", state, "--json"]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        return dict(json.loads(done.stdout))

    reset = [sys.executable, "-m", "mockserver.cli", "reset", "--state", state]
    subprocess.run(reset, capture_output=True, check=True)  # the one command that makes a state
    expired = cli("tokens", "create", "demo-free", "--expires", "2020-01-01T00:00:00Z")
    revoked = cli("tokens", "create", "demo-free")
    cli("tokens", "revoke", revoked["id"])
    report = tmp_path / "clauses.json"
    options = ["--token", DEMO_ACCOUNTS[0].token, "--report", str(report), "--allow-exhaust"]
    options += ["--concurrency", "4", "--budget", "14", "--revoked-token", revoked["token"]]
    options += ["--expired-token", expired["token"], "--", "-k", "auth or quota"]
    with ServerProcess(state=state, args=("--no-control",)) as server:
        workdir = tmp_path / "caller"
        workdir.mkdir()
        done = _check(server.base_url, *options, cwd=workdir)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "warning" not in output.lower()
    results = {row["clause"]: row["result"] for row in json.loads(report.read_text())["clauses"]}
    for clause in ("auth.revoked-token", "auth.expired-token", "quota.concurrency"):
        assert results[clause] == "passed", (clause, output[-3000:])
    assert results["quota.exact-limit"] == "passed"
    assert cli("usage", "demo-free")["imagesUsed"] == 10


@pytest.mark.slow
def test_check_fails_against_a_broken_implementation(tmp_path: Path) -> None:
    from pytest_httpserver import HTTPServer

    broken = HTTPServer(host="127.0.0.1", port=0)
    broken.expect_request("/api/v1/ocr").respond_with_json({"ok": True})
    broken.start()
    try:
        done = _check(
            broken.url_for("/api/v1"),
            "--token",
            "itsocr_" + "a" * 32,
            "--budget",
            "3",
            cwd=tmp_path,
        )
    finally:
        broken.stop()
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    # The clause table names what broke: it answers 200 without a token, with the wrong body.
    assert re.search(r"^auth\.\S+ +documented +failed", done.stdout, re.MULTILINE), done.stdout


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ({}, "does not exist"),
        ({"scan.png": "image"}, "has no text sidecar scan.txt"),
    ],
)
def test_serve_refuses_a_bad_fixture_directory_in_one_line(
    tmp_path: Path, layout: dict[str, str], message: str
) -> None:
    directory = tmp_path / "fixtures"
    if layout:
        directory.mkdir()
        shutil.copy(data_path("fixtures") / "short-line.png", directory / "scan.png")
    command = [sys.executable, "-m", "mockserver.cli", "serve", "--port", "0"]
    command += ["--state", ":memory:", "--fixtures", str(directory)]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert finished.returncode == 2
    assert message in finished.stderr
    assert "Traceback" not in finished.stderr
    assert "itsocr-mock fixtures verify" in finished.stderr


def test_a_reader_that_stops_reading_gets_no_traceback(tmp_path: Path) -> None:
    """`itsocr-mock fixtures list | head -1`: the pipe closes before the table is written."""
    state = str(tmp_path / "state.sqlite3")
    Store(state).close()
    command = [sys.executable, "-m", "mockserver.cli", "fixtures", "list", "--state", state]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        assert process.stdout is not None
        assert process.stderr is not None
        process.stdout.close()  # the reader is gone before the first write
        error = process.stderr.read().decode()
        process.wait(timeout=30)
    assert "Traceback" not in error
    assert "BrokenPipe" not in error
    assert process.returncode == 1
