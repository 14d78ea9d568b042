"""The OCR fixtures: the committed set, the generator, the catalogue and the fallback text."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
from pathlib import Path

import pillow_heif
import pytest
import requests
from PIL import Image

from mockserver.contract import allowed_media_types
from mockserver.fixtures import Fixture, FixtureCatalogue, fallback_text
from mockserver.imaging import is_decodable
from mockserver.resources import data_path
from mockserver.settings import Settings
from mockserver.testing import InProcessServer, ServerProcess

FIXTURES = data_path("fixtures")
CATALOGUE = FixtureCatalogue.from_manifest(FIXTURES / "manifest.yaml")
PILLOW_FORMAT = {
    "image/jpeg": "JPEG",
    "image/png": "PNG",
    "image/gif": "GIF",
    "image/webp": "WEBP",
    "image/tiff": "TIFF",
    "image/bmp": "BMP",
    "image/heic": "HEIF",
    "image/heif": "HEIF",
}
FIRST_LINE = "Return only the first line."


def _png(text: str = "unknown") -> bytes:
    buffer = io.BytesIO()
    image = Image.new("L", (120, 40), 255)
    image.putpixel((len(text) % 100, 7), 0)
    image.save(buffer, "PNG")
    return buffer.getvalue()


# -- the committed set -----------------------------------------------------------------------


def test_manifest_matches_the_committed_files() -> None:
    listed = {fixture.name for fixture in CATALOGUE}
    images = {p.name for p in FIXTURES.iterdir() if p.suffix not in (".py", ".yaml")}
    assert listed == images
    for fixture in CATALOGUE:
        data = (FIXTURES / fixture.name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == fixture.sha256, fixture.name


def test_media_types_are_what_the_files_are() -> None:
    pillow_heif.register_heif_opener()
    for fixture in CATALOGUE:
        with Image.open(FIXTURES / fixture.name) as image:
            assert image.format == PILLOW_FORMAT[fixture.media_type], fixture.name


def test_the_set_covers_every_allowed_type_and_the_required_cases() -> None:
    fixtures = {fixture.name: fixture for fixture in CATALOGUE}
    assert len(fixtures) >= 12
    assert {f.media_type for f in fixtures.values()} == set(allowed_media_types())
    assert len(fixtures["long-page.png"].text.encode()) >= 2048
    assert fixtures["blank.png"].text == ""
    accented = fixtures["accents.webp"].text
    assert all(letter in accented for letter in "éßñø")
    assert sum(bool(f.prompts) for f in fixtures.values()) >= 2


def test_the_set_is_small_on_disk() -> None:
    total = sum(p.stat().st_size for p in FIXTURES.iterdir() if p.is_file())
    assert total < 1024 * 1024


def test_generator_rebuilds_the_committed_files_byte_for_byte(tmp_path: Path) -> None:
    if not Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf").exists():
        pytest.skip("the accented fixture needs DejaVu Sans (apt-get install fonts-dejavu-core)")
    subprocess.run(
        [sys.executable, str(FIXTURES / "generate.py"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    for produced in tmp_path.iterdir():
        assert produced.read_bytes() == (FIXTURES / produced.name).read_bytes(), produced.name


# -- the catalogue ---------------------------------------------------------------------------


def test_lookup_returns_the_ground_truth_or_the_prompt_variant() -> None:
    receipt = next(f for f in CATALOGUE if f.name == "receipt.png")
    assert CATALOGUE.lookup(receipt.sha256, "").text == receipt.text.strip()
    assert CATALOGUE.lookup(receipt.sha256, FIRST_LINE).text == "CORNER MARKET"
    assert (
        CATALOGUE.lookup(receipt.sha256, "  return ONLY the first   line. ").text == "CORNER MARKET"
    )
    assert CATALOGUE.lookup(receipt.sha256, "Describe the picture").text == receipt.text.strip()
    recognition = CATALOGUE.lookup(receipt.sha256, "")
    assert recognition.fixture == "receipt.png"
    assert recognition.processing_time_ms == receipt.processing_time_ms
    assert CATALOGUE.lookup("0" * 64, "") is None


def test_fallback_is_deterministic_document_like_text() -> None:
    first = fallback_text("a" * 64)
    assert first == fallback_text("a" * 64)
    assert first.text != fallback_text("b" * 64).text
    assert first.text != fallback_text("a" * 64, "Return only the first line.").text
    lines = first.text.splitlines()
    assert len(lines) == 4
    assert lines[-1].startswith("Total: ")
    assert first.fixture is None
    assert first.processing_time_ms is None


def test_fallback_is_the_same_in_another_process() -> None:
    code = "from mockserver.fixtures import fallback_text; print(fallback_text('c' * 64).text)"
    other = subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert other.stdout.rstrip("\n") == fallback_text("c" * 64).text


def _user_dir(tmp_path: Path, image: bytes, text: str, prompts: str | None = None) -> Path:
    (tmp_path / "mine.png").write_bytes(image)
    (tmp_path / "mine.txt").write_text(text, encoding="utf-8")
    if prompts is not None:
        (tmp_path / "mine.prompts.yaml").write_text(prompts, encoding="utf-8")
    return tmp_path


def test_user_directory_overrides_a_builtin_fixture(tmp_path: Path) -> None:
    short = (FIXTURES / "short-line.png").read_bytes()
    _user_dir(tmp_path, short, "  My own text\n", "Return only the first line.: Mine\n")
    merged = FixtureCatalogue.load([tmp_path])
    digest = hashlib.sha256(short).hexdigest()
    assert merged.lookup(digest, "").text == "My own text"
    assert merged.lookup(digest, FIRST_LINE).text == "Mine"
    assert len(merged) == len(CATALOGUE)


def test_user_image_without_sidecar_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "lonely.png").write_bytes(_png())
    with pytest.raises(ValueError, match=r"lonely\.png has no text sidecar lonely\.txt"):
        FixtureCatalogue.from_directory(tmp_path)


def test_missing_user_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        FixtureCatalogue.from_directory(tmp_path / "nope")


# -- decoding --------------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", list(CATALOGUE), ids=lambda f: f.name)
def test_every_fixture_decodes(fixture: Fixture) -> None:
    with (FIXTURES / fixture.name).open("rb") as stream:
        assert is_decodable(stream)
        assert stream.tell() == 0


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00" * 100,
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n",
        _png()[:60],
        b"GIF89a",
        bytes(range(256)) * 4,
    ],
    ids=["empty", "zeros", "pdf", "truncated-png", "gif-header-only", "random"],
)
def test_non_images_do_not_decode(data: bytes) -> None:
    assert not is_decodable(io.BytesIO(data))


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
    response = _ocr(
        mock_server.base_url, demo_tokens["enterprise"], fixture.name, data, fixture.media_type
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["text"] == fixture.text.strip()
    assert body["fileSize"] == len(data)
    if fixture.processing_time_ms is not None:
        assert body["processingTimeMs"] == fixture.processing_time_ms
    for prompt, text in fixture.prompts.items():
        variant = _ocr(
            mock_server.base_url,
            demo_tokens["enterprise"],
            fixture.name,
            data,
            fixture.media_type,
            prompt=f"  {prompt}\n",
        )
        assert variant.json()["text"] == text.strip()


def test_unknown_image_gets_the_same_text_from_two_server_processes(
    demo_tokens: dict[str, str],
) -> None:
    image = _png("two processes")
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
