"""OCR fixtures registered at run time: the text OCR returns for an image (and prompt).

The one control request that is not JSON: the image comes as a multipart form, as an upload to
the OCR endpoint does, within the largest size any plan accepts.
"""

from __future__ import annotations

from flask import Blueprint, Response, request
from werkzeug.exceptions import RequestEntityTooLarge

from mockserver.api import MULTIPART_OVERHEAD
from mockserver.contract import max_file_size
from mockserver.control.common import PayloadTooLarge, repeated_field
from mockserver.errors import BadControlRequest
from mockserver.state import RegisteredFixture
from mockserver.web import current_backend, json_response

views = Blueprint("fixtures", __name__)

_FIELDS = ("image", "text", "prompt", "name")


@views.get("/fixtures")
def list_fixtures() -> Response:
    """The fixtures registered at run time."""
    return json_response([_fixture_json(fixture) for fixture in current_backend().fixtures()])


@views.post("/fixtures")
def add_fixture() -> Response:
    """Register the text OCR returns for an image: multipart `image` and `text` (+ `prompt`,
    `name`)."""
    if request.mimetype != "multipart/form-data":
        raise BadControlRequest(
            "send multipart/form-data with an `image` file part and a `text` field"
        )
    request.max_content_length = max_file_size() + MULTIPART_OVERHEAD
    try:
        form, files = request.form, request.files
    except RequestEntityTooLarge:
        limit = max_file_size() + MULTIPART_OVERHEAD
        raise PayloadTooLarge(
            f"the form is over {limit} bytes, the most POST /_mock/fixtures takes (an image "
            f"of up to {max_file_size()} bytes, the largest any plan accepts, and "
            f"{MULTIPART_OVERHEAD} bytes for the rest of the form)"
        ) from None
    unknown = sorted((set(form) | set(files)) - set(_FIELDS))
    if unknown:
        raise BadControlRequest(f"unknown field {unknown[0]!r}; expected {', '.join(_FIELDS)}")
    repeated = [f for f in _FIELDS if len(form.getlist(f)) + len(files.getlist(f)) > 1]
    if repeated:
        raise repeated_field(repeated[0])
    image = files.get("image")
    if image is None:
        raise BadControlRequest("send the image as a file part named `image`")
    if "text" not in form:
        raise BadControlRequest("send the OCR text as a field named `text`")
    name = form.get("name") or image.filename or "image"
    fixture = current_backend().add_fixture(
        image.stream,
        form["text"],
        name=name,
        prompt=form.get("prompt", ""),
        media_type=image.mimetype or None,
    )
    return json_response(_fixture_json(fixture), 201)


def _fixture_json(fixture: RegisteredFixture) -> dict[str, object]:
    return {
        "name": fixture.name,
        "sha256": fixture.sha256,
        "prompt": fixture.prompt or None,
        "mediaType": fixture.media_type,
        "text": fixture.text,
    }
