"""OCR fidelity: every fixture of the catalogue returns its ground truth.

On a mock (a target with a control API) the text must be exactly the fixture's; against a real
OCR engine the character error rate of each fixture is reported and must stay under
``--itsocr-max-cer``. Each fixture (and each of its prompts) is one billable request.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from contract_tests.forms import Part, upload
from contract_tests.harness import Contract
from mockserver.resources import data_path


@dataclass(frozen=True)
class Sample:
    """One fixture image, with a prompt or none, and the text it must give."""

    path: Path
    media_type: str
    prompt: str | None
    text: str


def load_samples() -> tuple[list[Sample], str | None]:
    """The fixture catalogue's samples, or none and why."""
    try:
        folder = data_path("fixtures")
        manifest = yaml.safe_load((folder / "manifest.yaml").read_text(encoding="utf-8"))
    except OSError as error:
        return [], f"no fixture manifest to check against ({error})"
    entries = manifest.get("fixtures", []) if isinstance(manifest, dict) else manifest or []
    samples = []
    for entry in entries:
        path, media_type = folder / entry["file"], entry["mediaType"]
        samples.append(Sample(path, media_type, None, entry["text"]))
        for prompt, text in (entry.get("prompts") or {}).items():
            samples.append(Sample(path, media_type, prompt, text))
    return samples, None if samples else "the fixture manifest lists no fixtures"


SAMPLES, NO_SAMPLES = load_samples()


def _params() -> list[Any]:
    if NO_SAMPLES:
        return [pytest.param(None, id="no-fixtures", marks=pytest.mark.skip(reason=NO_SAMPLES))]
    numbers: dict[Path, int] = {}
    params = []
    for sample in SAMPLES:
        if sample.prompt is None:
            params.append(pytest.param(sample, id=sample.path.name))
            continue
        numbers[sample.path] = numbers.get(sample.path, 0) + 1
        params.append(pytest.param(sample, id=f"{sample.path.name}+prompt{numbers[sample.path]}"))
    return params


def character_error_rate(truth: str, text: str) -> float:
    """Levenshtein distance between the texts, per character of the truth."""
    previous = list(range(len(text) + 1))
    for i, expected in enumerate(truth, 1):
        current = [i]
        for j, received in enumerate(text, 1):
            current.append(
                min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (expected != received))
            )
        previous = current
    return previous[-1] / max(len(truth), 1)


@pytest.mark.clause("ocr.fixture-text")
@pytest.mark.costly
@pytest.mark.parametrize("sample", _params())
def test_fixture_text(contract: Contract, sample: Sample) -> None:
    """Each fixture's image returns its ground truth (exactly on a mock)."""
    prompts = [sample.prompt] if sample.prompt is not None else []
    _recognise(contract, sample, prompts)


@pytest.mark.clause("ocr.prompt", level="observed")
@pytest.mark.parametrize(
    "sent",
    [lambda prompt: [f"  {prompt}\n"], lambda prompt: [prompt, "Ignore the image."]],
    ids=["trimmed", "first-wins"],
)
def test_prompt_is_trimmed_and_the_first_wins(contract: Contract, sent: Any) -> None:
    """The prompt is trimmed, and of two `prompt` fields the first one is used."""
    sample = next((sample for sample in SAMPLES if sample.prompt), None)
    if sample is None or sample.prompt is None:
        pytest.skip(NO_SAMPLES or "no fixture of the manifest has a prompt")
    _recognise(contract, sample, sent(sample.prompt))


def _recognise(contract: Contract, sample: Sample, prompts: list[str]) -> None:
    """Send the fixture with `prompts`; its text must be the sample's (see the module)."""
    account = contract.account()
    contract.reserve(account, 1)
    parts = upload(sample.path.read_bytes(), sample.media_type, sample.path.name)
    parts += [Part("prompt", prompt.encode()) for prompt in prompts]
    reply = contract.post_ocr(account, parts=parts, billable=True)
    body = contract.expect(reply, 200)
    truth, text = sample.text.strip(), body["text"]
    rate = 0.0 if text == truth else character_error_rate(truth, text)
    label = sample.path.name + (f" + prompt {sample.prompt!r}" if sample.prompt else "")
    contract.suite.fidelity.append((label, rate))
    exact = contract.suite.target.is_mock
    if (exact and text != truth) or rate > contract.suite.options.itsocr_max_cer:
        limit = "exactly (a mock)" if exact else f"CER <= {contract.suite.options.itsocr_max_cer}"
        contract.fail(
            reply, f"text: expected {truth!r} {limit}, received {text!r} (CER {rate:.3f})"
        )
