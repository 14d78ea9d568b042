"""The public API, `/api/v1`: thin views that parse, call the backend and serialise."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, redirect, request
from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge
from werkzeug.http import parse_options_header
from werkzeug.wrappers import Response as BaseResponse

from mockserver import errors
from mockserver.connection import Deadline, body_deadline
from mockserver.contract import cors_headers, max_file_size
from mockserver.multipart import MalformedForm, RefusedPartHeaders, UnreadableBody, read_form
from mockserver.quoting import for_log
from mockserver.state import OVERRIDE_STATUSES
from mockserver.store import JournalEntry
from mockserver.turns import GivingWay
from mockserver.upload import Upload
from mockserver.web import current_backend, json_response

OCR_PATH = "/api/v1/ocr"
PREFLIGHT_MAX_AGE = "86400"
# A body this much over the file ceiling cannot hold an acceptable file: refuse it unread.
MULTIPART_OVERHEAD = 1024 * 1024
URLENCODED = "application/x-www-form-urlencoded"
URLENCODED_HINT = (
    "the body is application/x-www-form-urlencoded, a form that cannot carry a file; send "
    "multipart/form-data (curl -F, requests' files=, a FormData in JavaScript)"
)
UNREADABLE_BODY = "itsocr_mock.unreadable_body"  # environ key: the body broke HTTP's framing

api = Blueprint("api", __name__, url_prefix="/api/v1")


@api.route("/ocr", methods=["POST"], provide_automatic_options=False)
def ocr() -> Response:
    """`POST /api/v1/ocr`: the OCR endpoint."""
    preferred, ignored = preferred_status()
    # Stamped by the backend with the mock's clock, which may be frozen; an ignored `Prefer`
    # is a hint of the request, logged and journalled with it like any other.
    entry = JournalEntry(time="", method="POST", path=request.path, hint=ignored)
    authorization = request.headers.get("Authorization")
    if preferred is not None:
        failure = current_backend().preferred_failure(preferred, authorization, entry)
        response = json_response(failure.to_json(), failure.status)
        response.headers["Preference-Applied"] = f"code={preferred}"  # RFC 7240
        return response
    result = current_backend().ocr(authorization, read_upload, entry)
    return json_response(result.to_json())


def preferred_status() -> tuple[int | None, str | None]:
    """The status a ``Prefer: code=NNN`` header asks for, while the control API is on, and
    the hint for a code it ignored.

    In the spirit of Prism's override, for client developers who cannot reach the control
    API: the request is answered that status with its live message, and nothing else happens.
    Only statuses with a live message (`OVERRIDE_STATUSES`) can be asked for; any other is
    ignored, as RFC 7240 asks of a server that cannot honour a preference, and the request's
    hint says so. Without the header (or with the control API off) the mock is the live service.
    """
    # Most requests have no Prefer header: looked up in the environ, it costs nothing.
    if "HTTP_PREFER" not in request.environ or not current_app.config["ITSOCR_SETTINGS"].control:
        return None, None
    ignored = None
    for preference in ",".join(request.headers.getlist("Prefer")).split(","):
        name, _, value = preference.split(";")[0].partition("=")
        if name.strip().lower() != "code":
            continue
        code = value.strip().strip('"')
        if code.isascii() and code.isdigit() and int(code) in OVERRIDE_STATUSES:
            return int(code), None
        if code != "200":  # asking for the normal answer is not a mistake
            can = ", ".join(map(str, OVERRIDE_STATUSES))
            ignored = (
                f"ignored `Prefer: code={for_log(code)}`: the mock can answer {can} this way; "
                "the request was handled as usual"
            )
    return None, ignored


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
    # The header as written (`json_response` writes exactly this), not .mimetype: no parsing.
    if response.content_type == "application/json" or request.method == "OPTIONS":
        response.headers.extend(cors_headers())  # not there yet: no need to replace
    return response


def read_upload() -> Upload:
    """Parse the request body into an Upload; called by the backend after auth and quota."""
    # Parsed once here: request.mimetype and .mimetype_params would each parse the header again.
    mimetype, params = parse_options_header(request.content_type)
    if mimetype.lower() == URLENCODED:
        # The live form parser reads it as a form, which then has no file part (it is not
        # read here: it cannot hold one, and the lingering close drains it).
        raise errors.MissingFile(hint=URLENCODED_HINT)
    if mimetype.lower() != "multipart/form-data" or not params.get("boundary"):
        raise errors.InvalidRequestBody()
    ceiling = max_file_size() + MULTIPART_OVERHEAD
    declared_length = request.content_length
    if declared_length is not None and declared_length > ceiling:
        raise errors.FileTooLarge()  # refused from its Content-Length, before it is read
    request.max_content_length = ceiling  # a chunked body is cut off there (before .stream)
    try:
        boundary = params["boundary"].encode("latin-1")
    except UnicodeEncodeError:  # `boundary*=UTF-8''%E2%82%AC`: no boundary a body can hold
        raise errors.InvalidRequestBody(hint="the boundary is not a latin-1 string") from None
    timeout = current_app.config["ITSOCR_SETTINGS"].client_timeout
    with body_deadline(request.environ, timeout) as deadline:
        try:
            # No deadline: no read waits for the client (the server read the body whole,
            # worker.py), so none gives the turn up either.
            stream = request.stream
            form = read_form(
                stream if deadline is None else GivingWay(stream, declared_length), boundary
            )
        except RefusedPartHeaders as refused:
            raise errors.InvalidRequestBody(hint=str(refused)) from None
        except UnreadableBody as problem:
            # Answered, then the connection ends: what follows cannot be told from a request.
            request.environ[UNREADABLE_BODY] = True
            raise errors.InvalidRequestBody(hint=str(problem)) from None
        except (MalformedForm, ClientDisconnected):  # ClientDisconnected: the body ended early
            raise errors.InvalidRequestBody(hint=_timeout_hint(deadline, timeout)) from None
        except RequestEntityTooLarge:  # a body without Content-Length that grew past the ceiling
            raise errors.FileTooLarge() from None
    if deadline is not None and deadline.expired:  # complete as a form, short of its length
        if form.file is not None:
            form.file.spool.close()
        raise errors.InvalidRequestBody(hint=_timeout_hint(deadline, timeout))
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


def _timeout_hint(deadline: Deadline | None, timeout: float) -> str | None:
    if deadline is None or not deadline.expired:
        return None
    return (
        f"the request body did not arrive within {timeout:g} s (--client-timeout) and the "
        "connection was cut; a client this slow holds a server thread"
    )


def _missing_file_hint(file_parts: list[str], file_was_text: bool) -> str:
    if file_was_text:
        return "`file` was sent as a text field; send it as a file part with a filename"
    if file_parts:
        return f"the image was sent in a part named {file_parts[0]!r}; the field must be `file`"
    return "the form has no `file` part"
