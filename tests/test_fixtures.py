"""The OCR fixtures: the committed set, the generator, the catalogue and the fallback text."""

from __future__ import annotations

import hashlib
import io
import os
import re
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import PIL
import pillow_heif
import pytest
import requests
import yaml
from PIL import Image

from mockserver.contract import allowed_media_types
from mockserver.fixtures import (
    MEDIA_TYPES,
    Fixture,
    FixtureCatalogue,
    FixtureError,
    fallback_text,
    read_directory,
)
from mockserver.imaging import is_decodable
from mockserver.resources import data_path
from mockserver.settings import Settings
from mockserver.testing import InProcessServer, ServerProcess

FIXTURES = data_path("fixtures")
MANIFEST = FIXTURES / "manifest.yaml"
CATALOGUE = FixtureCatalogue.from_manifest(MANIFEST)
BY_NAME = {fixture.name: fixture for fixture in CATALOGUE}
GENERATOR = Path(__file__).resolve().parents[1] / "fixtures" / "generate.py"
FIRST_LINE = "Return only the first line."
PILLOW_MEDIA_TYPE = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "GIF": "image/gif",
    "WEBP": "image/webp",
    "TIFF": "image/tiff",
    "BMP": "image/bmp",
}


def _image_files(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir() if p.is_file() and p.suffix in MEDIA_TYPES}


def _png(marker: int = 0, size: tuple[int, int] = (120, 40)) -> bytes:
    buffer = io.BytesIO()
    image = Image.new("L", size, 255)
    image.putpixel((marker % size[0], 7), 0)
    image.save(buffer, "PNG")
    return buffer.getvalue()


def _media_type_from_signature(path: Path) -> str:
    with Image.open(path) as image:
        if image.format == "HEIF":  # Pillow says HEIF for both; the ftyp brand tells them apart
            return str(pillow_heif.get_file_mimetype(path.read_bytes()))
        return PILLOW_MEDIA_TYPE[str(image.format)]


@pytest.fixture(scope="module", autouse=True)
def _heif_opener() -> None:
    pillow_heif.register_heif_opener()


# -- the committed set -----------------------------------------------------------------------


def test_manifest_lists_exactly_the_committed_images() -> None:
    assert {fixture.name for fixture in CATALOGUE} == _image_files(FIXTURES)
    assert len(CATALOGUE) == len(yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))["fixtures"])


@pytest.mark.parametrize("fixture", list(CATALOGUE), ids=lambda f: f.name)
def test_committed_file_matches_its_entry(fixture: Fixture) -> None:
    path = FIXTURES / fixture.name
    assert hashlib.sha256(path.read_bytes()).hexdigest() == fixture.sha256
    assert _media_type_from_signature(path) == fixture.media_type
    assert MEDIA_TYPES[path.suffix.lower()] == fixture.media_type


def test_the_set_covers_every_allowed_type() -> None:
    assert len(CATALOGUE) >= 12
    assert {fixture.media_type for fixture in CATALOGUE} == set(allowed_media_types())


def test_the_set_has_the_cases_clients_and_the_contract_suite_need() -> None:
    assert "\n" not in BY_NAME["short-line.png"].text
    assert len(BY_NAME["paragraph.gif"].text.splitlines()) >= 3
    receipt = BY_NAME["receipt.jpg"].text
    assert re.search(r"\b\d{4}-\d{2}-\d{2}\b", receipt)
    assert len(re.findall(r"\b\d+\.\d{2}\b", receipt)) >= 5
    assert all(letter in BY_NAME["accented.webp"].text for letter in "éßñø")
    assert len(BY_NAME["long-page.tiff"].text.encode()) >= 2048
    assert BY_NAME["blank.bmp"].text == ""
    assert {"small-type.png", "low-contrast.jpeg", "rotated.webp"} <= BY_NAME.keys()
    assert sum(bool(fixture.prompts) for fixture in CATALOGUE) >= 2


def test_ground_truth_is_clean_text() -> None:
    for fixture in CATALOGUE:
        for text in (fixture.text, *fixture.prompts.values()):
            assert text == text.strip(), fixture.name
            assert not any(line != line.rstrip() for line in text.splitlines()), fixture.name


def test_the_set_is_small_on_disk() -> None:
    total = sum((FIXTURES / name).stat().st_size for name in _image_files(FIXTURES))
    assert total < 2_000_000


# -- the generator ---------------------------------------------------------------------------


def _generate(out: Path, hash_seed: str) -> Path:
    environment = {**os.environ, "PYTHONHASHSEED": hash_seed}
    subprocess.run(
        [sys.executable, str(GENERATOR), "--out", str(out)],
        check=True,
        capture_output=True,
        env=environment,
    )
    return out


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One run of the generator into a fresh directory."""
    return _generate(tmp_path_factory.mktemp("generated"), "1")


def _assert_same_files(produced: Path, expected: Path) -> None:
    assert _image_files(produced) == _image_files(expected)
    for name in [*sorted(_image_files(produced)), "manifest.yaml"]:
        assert (produced / name).read_bytes() == (expected / name).read_bytes(), name


def test_generator_reproduces_the_committed_files_byte_for_byte(generated: Path) -> None:
    recorded = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))["generator"]
    installed = {"pillow": PIL.__version__, "pillowHeif": pillow_heif.__version__}
    if recorded != installed:
        pytest.skip(f"fixtures made with {recorded}, this is {installed}: codecs may differ")
    _assert_same_files(generated, FIXTURES)


def test_generator_is_deterministic(generated: Path, tmp_path: Path) -> None:
    _assert_same_files(_generate(tmp_path, "2"), generated)


# -- the catalogue ---------------------------------------------------------------------------


def test_lookup_returns_the_ground_truth_with_the_fixture_and_time() -> None:
    receipt = BY_NAME["receipt.jpg"]
    recognition = CATALOGUE.lookup(receipt.sha256, "")
    assert recognition is not None
    assert recognition.text == receipt.text
    assert recognition.text.startswith("CORNER BAKERY\n")
    assert recognition.fixture == "receipt.jpg"
    assert recognition.processing_time_ms == 1840
    untimed = CATALOGUE.lookup(BY_NAME["small-type.png"].sha256, "")
    assert untimed is not None
    assert untimed.processing_time_ms is None


def test_lookup_returns_a_prompt_variant_when_the_prompt_matches() -> None:
    receipt = BY_NAME["receipt.jpg"]

    def text(prompt: str) -> str | None:
        found = CATALOGUE.lookup(receipt.sha256, prompt)
        return found.text if found else None

    assert text(FIRST_LINE) == "CORNER BAKERY"
    assert text("Return only the total.") == "TOTAL EUR 18.10"
    assert text("RETURN ONLY THE\tFIRST  line.") == "CORNER BAKERY"
    assert text("Return only the first line") == receipt.text  # no full stop: another prompt
    assert text("Describe the picture.") == receipt.text


def test_first_line_variants_are_the_first_line() -> None:
    variants = [f for f in CATALOGUE if FIRST_LINE in f.prompts]
    assert len(variants) >= 2
    for fixture in variants:
        assert fixture.prompts[FIRST_LINE] == fixture.text.splitlines()[0], fixture.name


def test_lookup_of_an_unknown_image_is_none() -> None:
    assert CATALOGUE.lookup("0" * 64, "") is None
    assert CATALOGUE.lookup("0" * 64, FIRST_LINE) is None
    assert CATALOGUE.get(BY_NAME["note.bmp"].sha256.upper()) == BY_NAME["note.bmp"]


def test_load_without_directories_is_the_built_in_set() -> None:
    loaded = FixtureCatalogue.load()
    assert [fixture.name for fixture in loaded] == [fixture.name for fixture in CATALOGUE]


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("- file: a.png\n", "`fixtures:` list"),
        ("fixtures:\n- file: a.png\n  sha256: ab\n  mediaType: image/png\n", "`text`"),
        (
            "fixtures:\n- {file: a.png, sha256: ab, mediaType: image/png, text: x, prompts: [1]}\n",
            "map each prompt",
        ),
        (
            "fixtures:\n- {file: a.png, sha256: ab, mediaType: image/png, text: x,"
            " processingTimeMs: soon}\n",
            "processingTimeMs",
        ),
    ],
)
def test_a_malformed_manifest_is_a_clear_error(tmp_path: Path, document: str, message: str) -> None:
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(document, encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(message)):
        FixtureCatalogue.from_manifest(manifest)


# -- user fixture directories ----------------------------------------------------------------


def _user_dir(directory: Path, image: bytes, text: str, prompts: str | None = None) -> Path:
    directory.mkdir(exist_ok=True)
    (directory / "mine.png").write_bytes(image)
    (directory / "mine.txt").write_text(text, encoding="utf-8")
    if prompts is not None:
        (directory / "mine.prompts.yaml").write_text(prompts, encoding="utf-8")
    return directory


def test_user_directory_overrides_a_built_in_fixture(tmp_path: Path) -> None:
    short = (FIXTURES / "short-line.png").read_bytes()
    _user_dir(tmp_path, short, "  My own text\n", '"Return only the first line.": Mine\n')
    merged = FixtureCatalogue.load([tmp_path])
    digest = hashlib.sha256(short).hexdigest()
    recognition = merged.lookup(digest, "")
    assert recognition is not None
    assert (recognition.text, recognition.fixture) == ("My own text", "mine.png")
    assert recognition.processing_time_ms is None
    assert getattr(merged.lookup(digest, FIRST_LINE), "text", None) == "Mine"
    assert len(merged) == len(CATALOGUE)
    original = CATALOGUE.lookup(digest, "")
    assert original is not None
    assert original.text == BY_NAME["short-line.png"].text  # the built-in set is untouched


def test_a_later_directory_wins(tmp_path: Path) -> None:
    first = _user_dir(tmp_path / "first", _png(), "first")
    second = _user_dir(tmp_path / "second", _png(), "second")
    merged = FixtureCatalogue.load([first, second])
    assert getattr(merged.lookup(hashlib.sha256(_png()).hexdigest(), ""), "text", None) == "second"
    assert len(merged) == len(CATALOGUE) + 1


def test_user_directory_media_types_come_from_extensions(tmp_path: Path) -> None:
    for number, name in enumerate(["a.JPG", "b.jpeg", "c.tif", "d.heif"]):
        (tmp_path / name).write_bytes(_png(number))
        (tmp_path / name).with_suffix(".txt").write_text(f"\ufeff{name}\n", encoding="utf-8")
    (tmp_path / "README.md").write_text("not a fixture", encoding="utf-8")
    found = {f.name: (f.media_type, f.text) for f in FixtureCatalogue.from_directory(tmp_path)}
    assert found == {
        "a.JPG": ("image/jpeg", "a.JPG\n"),
        "b.jpeg": ("image/jpeg", "b.jpeg\n"),
        "c.tif": ("image/tiff", "c.tif\n"),
        "d.heif": ("image/heif", "d.heif\n"),
    }


def test_user_image_without_sidecar_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "lonely.png").write_bytes(_png())
    with pytest.raises(
        ValueError, match=r"lonely\.png: the fixture image has no text sidecar lonely\.txt"
    ):
        FixtureCatalogue.from_directory(tmp_path)


def test_prompts_file_without_image_is_a_clear_error(tmp_path: Path) -> None:
    _user_dir(tmp_path, _png(), "text")
    (tmp_path / "mien.prompts.yaml").write_text("a: b\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"mien\.prompts\.yaml: has no image mien\.EXT"):
        FixtureCatalogue.from_directory(tmp_path)


def test_prompts_file_that_is_not_a_mapping_is_a_clear_error(tmp_path: Path) -> None:
    _user_dir(tmp_path, _png(), "text", "- just\n- a list\n")
    with pytest.raises(ValueError, match=r"mine\.prompts\.yaml: must map each prompt"):
        FixtureCatalogue.from_directory(tmp_path)


def test_missing_user_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        FixtureCatalogue.from_directory(tmp_path / "nope")


def test_a_user_directory_reports_every_problem_and_keeps_the_sound_fixtures(
    tmp_path: Path,
) -> None:
    for name, image in (("good", _png(1)), ("garbled", _png(2)), ("latin", _png(3))):
        (tmp_path / f"{name}.png").write_bytes(image)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    for name in ("good", "garbled", "broken"):
        (tmp_path / f"{name}.txt").write_text(name, encoding="utf-8")
    (tmp_path / "latin.txt").write_bytes("Stra\xdfe".encode("latin-1"))
    (tmp_path / "garbled.prompts.yaml").write_text('"Only the total: [42\n', encoding="utf-8")
    fixtures, problems = read_directory(tmp_path)
    assert [fixture.name for fixture in fixtures] == ["good.png"]
    found = {problem.path.name: problem.problem for problem in problems}
    assert found == {
        "broken.png": "does not decode as an image (the live OCR would answer 500)",
        "garbled.prompts.yaml": found["garbled.prompts.yaml"],
        "latin.txt": "is not UTF-8 text (byte 0xdf at offset 4); save it as UTF-8",
    }
    assert re.fullmatch(r"is not valid YAML at line \d+: .+", found["garbled.prompts.yaml"])
    assert all("\n" not in str(problem) for problem in problems)
    with pytest.raises(
        FixtureError, match=r"broken\.png: does not decode .* \(and 2 more problems\)"
    ):
        FixtureCatalogue.from_directory(tmp_path)


def test_a_file_given_as_the_fixture_directory(tmp_path: Path) -> None:
    (tmp_path / "scan.png").write_bytes(_png())
    with pytest.raises(
        FixtureError, match=r"scan\.png: the fixture directory is a file, not a directory"
    ):
        FixtureCatalogue.from_directory(tmp_path / "scan.png")


# -- the fallback text -----------------------------------------------------------------------


def test_fallback_is_deterministic_per_image_and_prompt() -> None:
    first = fallback_text("a" * 64)
    assert first == fallback_text("a" * 64)
    assert first == fallback_text("A" * 64)  # the same hash, however it is spelt
    assert first.text != fallback_text("b" * 64).text
    assert first.text != fallback_text("a" * 64, FIRST_LINE).text
    assert fallback_text("a" * 64, FIRST_LINE) == fallback_text("a" * 64, FIRST_LINE)
    assert (first.fixture, first.processing_time_ms) == (None, None)


@pytest.mark.parametrize("number", range(20))
def test_fallback_looks_like_a_document(number: int) -> None:
    text = fallback_text(hashlib.sha256(str(number).encode()).hexdigest()).text
    assert text == text.strip()
    title, byline, *body = text.splitlines()
    assert re.fullmatch(r"[A-Z][A-Za-z ]+: [A-Z].+", title), title
    assert re.search(r", \d{4}-\d{2}-\d{2}$", byline), byline
    sentences = re.findall(r"[A-Z][^.]*\.", "\n".join(body))
    assert len(sentences) >= 3
    assert len(text.split()) >= 15


def test_fallback_is_the_same_in_other_processes() -> None:
    hashes = [hashlib.sha256(bytes([n])).hexdigest() for n in range(5)]
    code = (
        "import sys; from mockserver.fixtures import fallback_text\n"
        "for h in sys.argv[1:]: print(repr(fallback_text(h).text))"
    )
    expected = "".join(f"{fallback_text(h).text!r}\n" for h in hashes)
    for seed in ("0", "4242"):
        other = subprocess.run(
            [sys.executable, "-c", code, *hashes],
            check=True,
            capture_output=True,
            text=True,
            cwd=Path(__file__).resolve().parents[1],
            env={**os.environ, "PYTHONHASHSEED": seed},
        )
        assert other.stdout == expected


def test_fallback_is_the_same_from_many_threads() -> None:
    hashes = [hashlib.sha256(str(n).encode()).hexdigest() for n in range(200)]
    alone = [fallback_text(h).text for h in hashes]
    with ThreadPoolExecutor(max_workers=8) as pool:
        together = list(pool.map(lambda h: fallback_text(h).text, hashes))
    assert together == alone


def test_fallback_is_fast_after_warm_up() -> None:
    fallback_text("f" * 64)
    timings = []
    for number in range(200):
        digest = hashlib.sha256(str(number).encode()).hexdigest()
        started = time.perf_counter()
        fallback_text(digest)
        timings.append(time.perf_counter() - started)
    assert statistics.median(timings) < 0.001


# -- decoding --------------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", list(CATALOGUE), ids=lambda f: f.name)
def test_every_fixture_decodes(fixture: Fixture) -> None:
    with (FIXTURES / fixture.name).open("rb") as stream:
        stream.seek(5)
        assert is_decodable(stream)
        assert stream.tell() == 0


def _cut(name: str) -> bytes:
    data = (FIXTURES / name).read_bytes()
    return data[: len(data) // 2]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00" * 100,
        bytes(range(256)) * 4,
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n",
        b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n",
        b"GIF89a",
        _cut("short-line.png"),
        _cut("receipt.jpg"),
        _cut("memo.heic"),
    ],
    ids=[
        "empty",
        "zeros",
        "random",
        "pdf",
        "eps",
        "gif-header",
        "half-png",
        "half-jpeg",
        "half-heic",
    ],
)
def test_non_images_do_not_decode(data: bytes) -> None:
    stream = io.BytesIO(data)
    assert not is_decodable(stream)
    assert stream.tell() == 0


def test_a_large_jpeg_is_checked_to_its_last_byte() -> None:
    buffer = io.BytesIO()
    Image.effect_noise((2600, 2000), 40).save(buffer, "JPEG", quality=60)
    data = buffer.getvalue()
    assert is_decodable(io.BytesIO(data))
    assert not is_decodable(io.BytesIO(data[: len(data) * 9 // 10]))


@pytest.mark.parametrize("limit", [3000, 1000])  # Pillow warns above the limit, fails above 2x
def test_a_decompression_bomb_does_not_decode(monkeypatch: pytest.MonkeyPatch, limit: int) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
    assert not is_decodable(io.BytesIO(_png(size=(60, 60))))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 3600)
    assert is_decodable(io.BytesIO(_png(size=(60, 60))))


# -- through the real server -----------------------------------------------------------------


def _ocr(
    base_url: str, token: str, name: str, data: bytes, media_type: str, prompt: str | None = None
) -> requests.Response:
    return requests.post(
        base_url + "/ocr",
        headers={"Authorization": f"Bearer {token}"},
        files={"file": (name, data, media_type)},
        data={"prompt": prompt} if prompt is not None else None,
        timeout=10,
    )


@pytest.mark.parametrize("fixture", list(CATALOGUE), ids=lambda f: f.name)
def test_every_fixture_round_trips_through_the_server(
    fixture: Fixture, mock_server: InProcessServer, demo_tokens: dict[str, str]
) -> None:
    data = (FIXTURES / fixture.name).read_bytes()
    token = demo_tokens["enterprise"]
    response = _ocr(mock_server.base_url, token, fixture.name, data, fixture.media_type)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["text"] == fixture.text.strip()
    assert body["fileSize"] == len(data)
    if fixture.processing_time_ms is not None:
        assert body["processingTimeMs"] == fixture.processing_time_ms
    for prompt, text in fixture.prompts.items():
        variant = _ocr(
            mock_server.base_url, token, fixture.name, data, fixture.media_type, f"  {prompt}\n"
        )
        assert variant.json()["text"] == text.strip()


# Two gunicorn start-ups: slow; the lean run has test_fallback_is_the_same_in_other_processes.
@pytest.mark.slow
def test_unknown_image_gets_the_same_text_from_two_server_processes(
    demo_tokens: dict[str, str],
) -> None:
    image = _png(42)
    texts = []
    for _ in range(2):
        with ServerProcess() as server:
            response = _ocr(server.base_url, demo_tokens["pro"], "x.png", image, "image/png")
            assert response.status_code == 200, response.text
            texts.append(response.json()["text"])
    assert texts[0] == texts[1] == fallback_text(hashlib.sha256(image).hexdigest()).text


def test_serve_with_a_user_fixture_directory(tmp_path: Path, demo_tokens: dict[str, str]) -> None:
    short = (FIXTURES / "short-line.png").read_bytes()
    _user_dir(tmp_path, short, "Overridden by the user")
    with InProcessServer(Settings(state=":memory:", fixtures=(tmp_path,))) as server:
        response = _ocr(server.base_url, demo_tokens["pro"], "s.png", short, "image/png")
    assert response.json()["text"] == "Overridden by the user"
