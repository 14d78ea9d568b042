"""One class per documented failure of the itsOCR API, and the control API's errors.

Each `ApiError` subclass carries the live service's status code and exact message; the HTTP
layer turns any of them into `{"error": ..., "success": false}` in one place. A `hint` is never
sent to the client (the response stays exactly the live one); it is what the mock's log says
about a mistake a client developer probably did not intend.
"""

from __future__ import annotations

from typing import ClassVar

from mockserver.contract import allowed_media_types


class ApiError(Exception):
    """A failure of `POST /api/v1/ocr`, answered as the live service answers it."""

    status: ClassVar[int] = 500
    message: ClassVar[str] = "An unexpected error occurred"

    def __init__(self, message: str | None = None, *, hint: str | None = None) -> None:
        self.error = message if message is not None else self.message
        self.hint = hint
        super().__init__(self.error)

    def to_json(self) -> dict[str, object]:
        """The response body, keys in the live service's order."""
        return {"error": self.error, "success": False}


# 401 -- authentication, in the order the live service checks


class MissingAuthorizationHeader(ApiError):
    status = 401
    message = "Missing Authorization header"


class InvalidAuthorizationFormat(ApiError):
    status = 401
    message = "Invalid Authorization header format. Expected: Bearer <token>"


class InvalidTokenFormat(ApiError):
    status = 401
    message = "Invalid token format"


class InvalidApiToken(ApiError):
    status = 401
    message = "Invalid API token"


class TokenRevoked(ApiError):
    status = 401
    message = "API token has been revoked"


class TokenExpired(ApiError):
    status = 401
    message = "API token has expired"


class UserNotFound(ApiError):
    status = 401
    message = "User not found"


# 429 -- the monthly quota


class MonthlyLimitReached(ApiError):
    status = 429
    message = "Monthly limit reached. You have used {used} of {limit} images this month."

    def __init__(self, used: int, limit: int) -> None:
        super().__init__(self.message.format(used=used, limit=limit))


# 400 -- the upload


class InvalidRequestBody(ApiError):
    status = 400
    message = "Invalid request body. Expected multipart/form-data."


class MissingFile(ApiError):
    status = 400
    message = "Missing required field: file"


class UnsupportedFileType(ApiError):
    status = 400
    message = "Unsupported file type: {type}. Allowed types: {allowed}"

    def __init__(self, media_type: str, *, hint: str | None = None) -> None:
        allowed = ", ".join(allowed_media_types())
        super().__init__(self.message.format(type=media_type, allowed=allowed), hint=hint)


class FileTooLarge(ApiError):
    status = 400
    message = "File too large. Maximum size: 50MB"


class FileTooLargeForPlan(ApiError):
    status = 400
    message = "File too large for your plan. Maximum size: {n}MB"

    def __init__(self, max_mb: int) -> None:
        super().__init__(self.message.format(n=max_mb))


# 500


class OcrFailed(ApiError):
    status = 500
    message = "OCR processing failed. Please try again."


class UnexpectedError(ApiError):
    status = 500
    message = "An unexpected error occurred"


class ConnectionDropped(Exception):
    """A fault rule asked for the connection to be closed without any response."""


class CountedFailure(Exception):
    """A fault rule's failure that comes after the image was counted (``countsUsage``).

    The backend counts the image, then the client gets `failure`; `journalled` tells whether
    the count (and with it the journal entry) was written.
    """

    def __init__(self, failure: ApiError | ConnectionDropped) -> None:
        self.failure = failure
        self.journalled = False
        super().__init__(str(failure))


class StateUnavailable(Exception):
    """The mock's state (its Redis) cannot be reached. The OCR endpoint answers it as the live
    service's 500 (`OcrFailed`), the control API as a 503; the next request tries again."""


# The control API (/_mock): {"error": ...} with a 4xx status


class ControlError(Exception):
    """A client mistake on the control API."""

    status: ClassVar[int] = 400

    def __init__(self, error: str) -> None:
        self.error = error
        super().__init__(error)

    def to_json(self) -> dict[str, object]:
        """The response body of the control API's errors."""
        return {"error": self.error}


class BadControlRequest(ControlError):
    status = 400


class Unauthorized(ControlError):
    status = 401


class NotFound(ControlError):
    status = 404


class Conflict(ControlError):
    status = 409


API_ERRORS: tuple[type[ApiError], ...] = (
    MissingAuthorizationHeader,
    InvalidAuthorizationFormat,
    InvalidTokenFormat,
    InvalidApiToken,
    TokenRevoked,
    TokenExpired,
    UserNotFound,
    MonthlyLimitReached,
    InvalidRequestBody,
    MissingFile,
    UnsupportedFileType,
    FileTooLarge,
    FileTooLargeForPlan,
    OcrFailed,
    UnexpectedError,
)
"""Every documented failure, in the order the live service checks for them."""
