"""The CI recipes of `examples/ci/` run here, as their workflows run them (issue 15).

Each recipe is a GitHub Actions workflow calling a plain shell script (for any other CI). The
tests copy the scripts where the workflows expect them (``ci/``) into a scratch project and run
the workflow's job with `workflows.run_job`: every shell step for real, only the kit's install
step skipped (the kit is installed here) and every URL pointed at a local mock:

1. client tests: the mock served in the background, a client's tests run against it, the
   journal kept as an artifact when they fail;
2. contract tests of an implementation: the suite and Schemathesis's CLI, JUnit XML out, against
   the mock (passes) and a broken implementation (fails, both reports say so);
3. nightly production check: against a mock started with ``--no-control`` (production has no
   control API; no real quota is spent), the clause table in the job summary, within the budget.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from broken import DEFECTS
from workflows import BIN, JobRun, load, run_job

from mockserver.backend import DEMO_ACCOUNTS
from mockserver.testing import ServerProcess, free_port

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "examples" / "ci"
TOKENS = {demo.plan: demo.token for demo in DEMO_ACCOUNTS}
INSTALL = ("install-kit",)


def project(tmp_path: Path) -> Path:
    """A scratch project with the recipes' scripts where their workflows call them."""
    workspace = tmp_path / "project"
    (workspace / "ci").mkdir(parents=True)
    for script in RECIPES.glob("*.sh"):
        shutil.copy2(script, workspace / "ci" / script.name)
    return workspace


# -- the recipes' shape (default run) ---------------------------------------------------------


@pytest.mark.parametrize("recipe", ["client-tests", "contract-tests", "nightly-production"])
def test_each_recipe_is_a_workflow_calling_its_script(recipe: str) -> None:
    workflow = load(RECIPES / f"{recipe}.yml")
    script = RECIPES / f"{recipe}.sh"
    assert script.stat().st_mode & 0o111, f"{script.name} is not executable"
    subprocess.run(["bash", "-n", str(script)], check=True)  # it parses
    (job,) = workflow["jobs"].values()
    runs = [step["run"] for step in job["steps"] if "run" in step]
    assert any(f"ci/{script.name}" in run for run in runs)
    assert any(step.get("id") == "install-kit" for step in job["steps"])


def test_the_nightly_check_is_scheduled_with_a_secret_token() -> None:
    workflow = load(RECIPES / "nightly-production.yml")
    assert workflow["on"]["schedule"]
    (job,) = workflow["jobs"].values()
    assert job["env"]["ITSOCR_TOKEN"] == "${{ secrets.ITSOCR_TOKEN }}"


# -- 1. a client's tests against the mock -------------------------------------------------------

CLIENT_TEST = """
import io, os
import requests
from PIL import Image

def test_the_client_reads_text_from_a_scan():
    buffer = io.BytesIO()
    Image.new("RGB", (64, 24), "white").save(buffer, format="PNG")
    response = requests.post(
        os.environ["ITSOCR_BASE_URL"] + "/ocr",
        headers={"Authorization": "Bearer " + os.environ["ITSOCR_TOKEN"]},
        files={"file": ("scan.png", buffer.getvalue(){declared_type})},
        timeout=10,
    )
    assert response.status_code == 200, response.text
"""


def client_project(tmp_path: Path, declared_type: str) -> Path:
    workspace = project(tmp_path)
    test = CLIENT_TEST.replace("{declared_type}", declared_type)
    (workspace / "test_client.py").write_text(textwrap.dedent(test), encoding="utf-8")
    return workspace


@pytest.mark.slow
def test_client_recipe_runs_the_clients_tests_against_the_mock(tmp_path: Path) -> None:
    workspace = client_project(tmp_path, ', "image/png"')
    job = run_job(
        RECIPES / "client-tests.yml",
        "client-tests",
        workspace,
        env={"ITSOCR_MOCK_PORT": str(free_port())},
        skip=(*INSTALL, "install-client"),
    )
    assert not job.failed, job.log()
    assert "1 passed" in job.log()
    assert "itsocr-mock-journal" not in job.artifacts  # the upload runs on failure only
    assert not (workspace / "itsocr-mock-journal.json").exists()


@pytest.mark.slow
def test_client_recipe_keeps_the_journal_when_the_client_fails(tmp_path: Path) -> None:
    # The client forgets the part's type, as the vendor's own Python example does: a 400.
    workspace = client_project(tmp_path, "")
    job = run_job(
        RECIPES / "client-tests.yml",
        "client-tests",
        workspace,
        env={"ITSOCR_MOCK_PORT": str(free_port())},
        skip=(*INSTALL, "install-client"),
    )
    assert job.failed, job.log()
    journal = workspace / "itsocr-mock-journal.json"
    assert journal in job.artifacts["itsocr-mock-journal"]
    (entry,) = json.loads(journal.read_text(encoding="utf-8"))
    assert entry["status"] == 400
    assert entry["error"].startswith("Unsupported file type: text/plain")
    assert entry["fileName"] == "scan.png"


# -- 2. contract tests of an implementation ------------------------------------------------


def junit_totals(path: Path) -> tuple[int, int]:
    """(tests, failures + errors) of a JUnit XML report."""
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    tests = sum(int(s.get("tests", 0)) for s in suites)
    bad = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
    return tests, bad


def run_contract_recipe(workspace: Path, url: str) -> tuple[JobRun, dict[str, tuple[int, int]]]:
    job = run_job(
        RECIPES / "contract-tests.yml",
        "contract",
        workspace,
        expressions={"secrets.IMPLEMENTATION_TOKEN": TOKENS["enterprise"]},
        env={"IMPLEMENTATION_URL": url},
        skip=(*INSTALL, "start-implementation"),
    )
    reports = {path.name: junit_totals(path) for path in job.artifacts["itsocr-contract-reports"]}
    return job, reports


@pytest.mark.slow
def test_contract_recipe_passes_the_mock_with_two_junit_reports(tmp_path: Path) -> None:
    workspace = project(tmp_path)
    with ServerProcess() as mock:
        job, reports = run_contract_recipe(workspace, mock.base_url)
    assert not job.failed, job.log()
    assert set(reports) == {"contract-suite.xml", "schemathesis.xml"}
    for name, (tests, bad) in reports.items():
        assert tests > 0, name
        assert bad == 0, (name, tests, bad)
    assert not list(workspace.glob(".schemathesis")), "Schemathesis's cache is not in the project"


@pytest.mark.slow
def test_contract_recipe_fails_a_broken_implementation_in_both_reports(tmp_path: Path) -> None:
    workspace = project(tmp_path)
    # `fileSize` as a string: the suite's common types and Schemathesis's schema check see it.
    with DEFECTS["file-size-string"].build() as server:
        job, reports = run_contract_recipe(workspace, server.base_url)
    assert job.failed, job.log()
    assert set(reports) == {"contract-suite.xml", "schemathesis.xml"}
    for name, (_, bad) in reports.items():
        assert bad > 0, (name, reports)


# -- 3. the nightly production check ---------------------------------------------------------


@pytest.mark.slow
def test_nightly_recipe_writes_the_clause_table_within_its_budget(tmp_path: Path) -> None:
    workspace = project(tmp_path)
    state = tmp_path / "production.sqlite3"
    # Production has no control API: the mock without one stands for it, with a Pro token as
    # the README recommends for this check.
    with ServerProcess(args=["--no-control"], state=state) as production:
        job = run_job(
            RECIPES / "nightly-production.yml",
            "production",
            workspace,
            expressions={"secrets.ITSOCR_TOKEN": TOKENS["pro"]},
            env={"ITSOCR_URL": production.base_url},
            skip=INSTALL,
        )
    assert not job.failed, job.log()
    summary = job.summary
    assert f"## itsOCR contract at {production.base_url}: holds" in summary, summary
    assert "| clause | level | result | tests | why |" in summary
    assert "✅ passed" in summary, summary
    assert "⏭ skipped" in summary, summary
    assert TOKENS["pro"] not in summary + job.log()
    usage = subprocess.run(
        [str(BIN / "itsocr-mock"), "usage", "demo-pro", "--state", str(state), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(usage.stdout)["imagesUsed"] <= 10  # the recipe's default budget
