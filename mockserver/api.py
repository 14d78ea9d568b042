"""The public API, `/api/v1`: thin views that parse, call the backend and serialise."""

from __future__ import annotations

from flask import Blueprint, Response, redirect, request
from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge
from werkzeug.wrappers import Response as BaseResponse

from mockserver import errors
from mockserver.backend import Upload
from mockserver.clock import format_instant, utc_now
from mockserver.contract import max_file_size
from mockserver.multipart import MalformedForm, read_form
from mockserver.store import JournalEntry
from mockserver.web import cors_headers, current_backend, json_response

OCR_PATH = "/api/v1/ocr"
PREFLIGHT_MAX_AGE = "86400"
# A body this much over the file ceiling cannot hold an acceptable file: refuse it unread.
MULTIPART_OVERHEAD = 1024 * 1024

api = Blueprint("api", __name__, url_prefix="/api/v1")


@api.route("/ocr", methods=["POST"], provide_automatic_options=False)
def ocr() -> Response:
    """`POST /api/v1/ocr`: the OCR endpoint."""
    entry = JournalEntry(time=format_instant(utc_now()), method="POST", path=request.path)
    result = current_backend().ocr(request.headers.get("Authorization"), read_upload, entry)
    return json_response(result.to_json())


@api.route("/ocr", methods=["OPTIONS"], provide_automatic_options=False)
def preflight() -> Response:
    """The CORS preflight: no authorization needed."""
    response = Response(status=204, headers={"Access-Control-Max-Age": PREFLIGHT_MAX_AGE})
    del response.headers["Content-Type"]  # no body, so no type
    return response


@api.before_app_request
def trailing_slash() -> BaseResponse | None:
    """The live service redirects `/ocr/` to `/ocr`, whatever the method (308 keeps it).

    A hook rather than a route: a `/ocr/` rule would make Werkzeug redirect `GET /ocr` to it.
    """
    if request.path != OCR_PATH + "/":
        return None
    query = request.query_string.decode("latin-1")
    return redirect(OCR_PATH + (f"?{query}" if query else ""), code=308)


@api.after_request
def add_cors(response: Response) -> Response:
    """Every JSON response, and the preflight, carries the CORS headers."""
    if response.mimetype == "application/json" or request.method == "OPTIONS":
        response.headers.update(cors_headers())
    return response


def read_upload() -> Upload:
    """Parse the request body into an Upload; called by the backend after auth and quota."""
    if request.mimetype != "multipart/form-data" or not request.mimetype_params.get("boundary"):
        raise errors.InvalidRequestBody()
    ceiling = max_file_size() + MULTIPART_OVERHEAD
    declared_length = request.content_length
    if declared_length is not None and declared_length > ceiling:
        raise errors.FileTooLarge()  # refused from its Content-Length, before it is read
    request.max_content_length = ceiling  # a chunked body is cut off there (before .stream)
    try:
        form = read_form(request.stream, request.mimetype_params["boundary"].encode("latin-1"))
    except (MalformedForm, ClientDisconnected):  # ClientDisconnected: the body ended early
        raise errors.InvalidRequestBody() from None
    except RequestEntityTooLarge:  # a body without Content-Length that grew past the ceiling
        raise errors.FileTooLarge() from None
    if form.file is None:
        raise errors.MissingFile(hint=_missing_file_hint(form.file_parts, form.file_was_text))
    spool = form.file.spool
    return Upload(
        file_name=form.file.file_name,
        declared_type=form.file.content_type,
        size=spool.size,
        sha256=spool.hash.hexdigest(),
        stream=spool.rewound(),
        prompt=(form.prompt or "").strip(),
    )


def _missing_file_hint(file_parts: list[str], file_was_text: bool) -> str:
    if file_was_text:
        return "`file` was sent as a text field; send it as a file part with a filename"
    if file_parts:
        return f"the image was sent in a part named {file_parts[0]!r}; the field must be `file`"
    return "the form has no `file` part"
