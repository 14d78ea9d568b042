"""Running a GitHub Actions workflow's job here, so that the CI recipes cannot rot.

`run_job` executes one job of a workflow file the way the runner does, as far as the recipes
need: every ``run:`` step in bash (``-eo pipefail``) in order, with the workflow's, the job's and
the step's ``env:``, ``if:`` conditions (``success()``, ``failure()``, ``always()``), and
``GITHUB_STEP_SUMMARY`` / ``GITHUB_WORKSPACE``. ``${{ ... }}`` expressions are replaced by the
values the test gives (an expression it does not give fails the run: a recipe cannot use one
that no test exercised). Of ``uses:`` steps, checkout and setup-python do nothing (the test
prepares the directory and this interpreter is the job's Python) and upload-artifact records
which of its paths exist. Steps the test names by id (installing the kit: it is installed
here) are skipped, and must exist.
"""

from __future__ import annotations

import glob
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

BIN = Path(sys.executable).parent
_EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
NO_OP_ACTIONS = ("actions/checkout@", "actions/setup-python@")
UPLOAD_ACTION = "actions/upload-artifact@"


@dataclass
class StepRun:
    """What one step did."""

    name: str
    ran: bool
    returncode: int = 0
    output: str = ""


@dataclass
class JobRun:
    """What a job did: its steps, the summary it wrote, the artifacts it uploaded."""

    steps: list[StepRun] = field(default_factory=list)
    summary: str = ""
    artifacts: dict[str, list[Path]] = field(default_factory=dict)  # name -> files found

    @property
    def failed(self) -> bool:
        """True when a step that ran failed (the job's status)."""
        return any(step.ran and step.returncode != 0 for step in self.steps)

    def log(self) -> str:
        """Every step's output, for assertion messages."""
        return "\n".join(
            f"--- {step.name} ({'exit ' + str(step.returncode) if step.ran else 'skipped'})\n"
            f"{step.output}"
            for step in self.steps
        )


def load(path: Path) -> dict[str, Any]:
    """A workflow file (YAML 1.1 reads the key ``on`` as True: it is put back as "on")."""
    workflow: dict[Any, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    if True in workflow:
        workflow["on"] = workflow.pop(True)
    return workflow


def substitute(text: str, expressions: Mapping[str, str]) -> str:
    """`text` with each ``${{ expr }}`` replaced by ``expressions[expr]``."""

    def value(match: re.Match[str]) -> str:
        if match.group(1) not in expressions:
            raise AssertionError(f"the test gives no value for ${{{{ {match.group(1)} }}}}")
        return expressions[match.group(1)]

    return _EXPRESSION.sub(value, text)


def run_job(
    path: Path,
    job: str,
    workspace: Path,
    *,
    expressions: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
    skip: tuple[str, ...] = (),
    timeout: float = 900.0,
) -> JobRun:
    """Run `job` of the workflow at `path` in `workspace`; `env` overrides the variables of
    the same names wherever the workflow sets them (the URL of a local mock, a free port)."""
    workflow = load(path)
    steps = workflow["jobs"][job]["steps"]
    ids = {step.get("id") for step in steps}
    missing = set(skip) - ids
    assert not missing, f"{path.name} has no step with id {', '.join(sorted(missing))}"
    given = dict(expressions or {})
    summary = workspace / ".step-summary.md"
    summary.touch()
    variables = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "GITHUB_WORKSPACE": str(workspace),
        "GITHUB_STEP_SUMMARY": str(summary),
    }
    for scope in (workflow.get("env", {}), workflow["jobs"][job].get("env", {})):
        variables.update({k: substitute(str(v), given) for k, v in scope.items()})
    overrides = dict(env or {})
    variables.update(overrides)
    result = JobRun()
    for step in steps:
        name = step.get("name") or step.get("uses") or step.get("run", "").splitlines()[0]
        if step.get("id") in skip or not _should_run(step.get("if"), result.failed):
            result.steps.append(StepRun(name, ran=False))
            continue
        step_env = {k: substitute(str(v), given) for k, v in step.get("env", {}).items()}
        step_env.update(overrides)
        if "run" in step:
            result.steps.append(
                _run(name, substitute(step["run"], given), workspace, variables, step_env, timeout)
            )
        else:
            result.steps.append(_use(name, step, workspace, given, result))
    result.summary = summary.read_text(encoding="utf-8")
    return result


def _should_run(condition: str | None, failed: bool) -> bool:
    condition = _EXPRESSION.sub(r"\1", condition or "success()").strip()
    if condition not in ("success()", "failure()", "always()"):
        raise AssertionError(f"the test runner does not know the condition {condition!r}")
    return condition == "always()" or (condition == "failure()") == failed


def _run(
    name: str,
    script: str,
    workspace: Path,
    variables: Mapping[str, str],
    step_env: Mapping[str, str],
    timeout: float,
) -> StepRun:
    completed = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
        cwd=workspace,
        env={**variables, **step_env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return StepRun(name, True, completed.returncode, completed.stdout + completed.stderr)


def _use(
    name: str, step: Mapping[str, Any], workspace: Path, given: Mapping[str, str], job: JobRun
) -> StepRun:
    action = str(step["uses"])
    if action.startswith(NO_OP_ACTIONS):
        return StepRun(name, True)
    if action.startswith(UPLOAD_ACTION):
        inputs = step["with"]
        patterns = substitute(str(inputs["path"]), given).split()
        found = [Path(p) for pattern in patterns for p in glob.glob(str(workspace / pattern))]
        job.artifacts[substitute(str(inputs["name"]), given)] = sorted(found)
        # As upload-artifact's default (if-no-files-found: warn), no file is not a failure.
        return StepRun(name, True, 0, f"uploaded {len(found)} file(s)")
    raise AssertionError(f"the test runner does not know the action {action}")
