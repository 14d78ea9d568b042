"""The catalogue of defects: each broken implementation, how it is built, what must catch it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from broken import backends as broken
from broken import middleware as skin
from broken.server import Served
from mockserver.app import create_app
from mockserver.backend import Backend
from mockserver.settings import Settings
from mockserver.store import MEMORY, Store


@dataclass(frozen=True)
class Defect:
    """One way to break the contract, and the clauses of the suite that must fail on it."""

    id: str
    description: str
    caught_by: tuple[str, ...]  # clause ids that must all fail against it
    build: Callable[[], Served]  # a new server with the defect, not started yet


def backend_defect(
    backend: type[Backend] = Backend, store: type[Store] = Store, *, control: bool = True
) -> Callable[[], Served]:
    """The mock app on a `backend` class over a fresh in-memory `store` class; without its
    control API when `control` is False (a live-like target: one demo token per plan)."""

    def build() -> Served:
        instance = backend(store(MEMORY))
        instance.ensure_initialised()
        app = create_app(Settings(state=MEMORY, control=control), backend=instance)
        return Served(app, close=instance.store.close)

    return build


def http_defect(
    change: skin.Change | None = None,
    intercept: skin.Intercept | None = None,
    prepare: skin.Prepare | None = None,
) -> Callable[[], Served]:
    """The faithful mock app wrapped in a `skin.Rewrite` middleware."""

    def build() -> Served:
        instance = Backend(Store(MEMORY))
        instance.ensure_initialised()
        app = create_app(Settings(state=MEMORY), backend=instance)
        wrapped = skin.Rewrite(app, change, intercept, prepare)
        return Served(wrapped, close=instance.store.close)

    return build


FAITHFUL = Defect("faithful-mock", "the mock itself: no defect", (), backend_defect())

_DEFECTS = (
    # -- authentication
    Defect(
        "auth-not-enforced",
        "a missing or bad token is served (as the Enterprise demo account)",
        ("auth.missing-header", "auth.token-format", "auth.unknown-token"),
        backend_defect(broken.AuthNotEnforced),
    ),
    Defect(
        "bare-token-accepted",
        "a header holding the bare token, without `Bearer`, is accepted",
        ("auth.header-format",),
        backend_defect(broken.BareTokenAccepted),
    ),
    Defect(
        "body-checked-before-auth",
        "the body is parsed before the token is looked at",
        ("auth.before-body",),
        backend_defect(broken.BodyCheckedBeforeAuth),
    ),
    Defect(
        "long-token-accepted",
        "only the first 39 characters of the token are compared",
        ("auth.token-format",),
        backend_defect(broken.LongTokenAccepted),
    ),
    Defect(
        "unknown-token-message",
        "401 'Unauthorized' instead of 'Invalid API token'",
        ("auth.unknown-token",),
        backend_defect(broken.UnknownTokenMessage),
    ),
    Defect(
        "expired-token-accepted",
        "an expired token still works",
        ("auth.expired-token",),
        backend_defect(broken.ExpiredTokenAccepted),
    ),
    Defect(
        "header-split-on-whitespace",
        "`Bearer<tab>token` and `Bearer  token` are accepted",
        ("auth.header-format-strict",),
        backend_defect(broken.HeaderSplitOnWhitespace),
    ),
    Defect(
        "scheme-case-sensitive",
        "`bearer` and `BEARER` are refused",
        ("auth.scheme-case",),
        backend_defect(broken.SchemeCaseSensitive),
    ),
    Defect(
        "revoked-checked-after-expiry",
        "a revoked and expired token is reported expired",
        ("auth.revoked-before-expired",),
        backend_defect(broken.RevokedCheckedAfterExpiry),
    ),
    Defect(
        "deleted-account-token-accepted",
        "the tokens of a deleted account still work",
        ("auth.user-not-found",),
        backend_defect(broken.DeletedAccountTokenAccepted),
    ),
    Defect(
        "revoked-token-accepted",
        "a revoked token still works",
        ("auth.revoked-token",),
        backend_defect(broken.RevokedTokenAccepted),
    ),
    Defect(
        "preflight-requires-auth",
        "OPTIONS without a token is a 401",
        ("cors.preflight",),
        http_defect(intercept=skin.preflight_requires_auth),
    ),
    Defect(
        "preflight-max-age-missing",
        "the preflight has no Access-Control-Max-Age",
        ("cors.preflight",),
        http_defect(skin.max_age_missing),
    ),
    # -- the shape of responses
    Defect(
        "id-missing",
        "no `id` in the 200 body",
        ("success.common-types",),
        http_defect(skin.on_success(skin.drop_id)),
    ),
    Defect(
        "id-not-uuid",
        "`id` is not a UUID",
        ("success.common-types",),
        http_defect(skin.on_success(skin.id_not_uuid)),
    ),
    Defect(
        "id-reused",
        "the same `id` for every request",
        ("success.echo",),
        http_defect(skin.on_success(skin.id_reused)),
    ),
    Defect(
        "file-size-string",
        '`fileSize` is a string ("1234")',
        ("success.common-types",),
        http_defect(skin.on_success(skin.file_size_as_string)),
    ),
    Defect(
        "processing-time-float",
        "`processingTimeMs` is a float",
        ("success.common-types",),
        http_defect(skin.on_success(skin.processing_time_unrounded)),
    ),
    Defect(
        "html-errors",
        "errors are HTML pages",
        ("auth.missing-header", "upload.missing-file"),
        http_defect(skin.on_error(skin.html_errors)),
    ),
    Defect(
        "plain-text-errors",
        "errors are the bare message in text/plain",
        ("auth.missing-header", "upload.missing-file"),
        http_defect(skin.on_error(skin.plain_text_errors)),
    ),
    Defect(
        "success-true-on-error",
        "`success: true` in error bodies",
        ("auth.missing-header", "upload.missing-file"),
        http_defect(skin.on_error(skin.success_true_on_errors)),
    ),
    Defect(
        "not-multipart-is-missing-file",
        "a body that is not multipart: 'Missing required field: file'",
        ("upload.not-multipart",),
        backend_defect(broken.NotMultipartIsMissingFile),
    ),
    Defect(
        "missing-file-422",
        "422 instead of 400 for a missing `file`",
        ("upload.missing-file",),
        http_defect(skin.on_error(skin.missing_file_is_422)),
    ),
    Defect(
        "cors-headers-missing",
        "no CORS headers on POST responses",
        ("cors.headers",),
        http_defect(skin.drop_cors_headers),
    ),
    Defect(
        "no-allow-on-405",
        "405 without an `Allow` header",
        ("http.method-not-allowed",),
        http_defect(skin.no_allow_on_405),
    ),
    Defect(
        "typed-405",
        "the 405 carries a Content-Type",
        ("http.method-not-allowed",),
        http_defect(skin.typed_405),
    ),
    Defect(
        "merged-slashes",
        "`//api/v1/ocr` reaches the endpoint instead of a 404",
        ("http.unknown-path",),
        http_defect(prepare=skin.merge_slashes),
    ),
    Defect(
        "urlencoded-invalid-body",
        "a urlencoded body is an invalid body, not a form without a file",
        ("upload.urlencoded-form",),
        http_defect(skin.urlencoded_is_an_invalid_body),
    ),
    Defect(
        "unknown-path-unauthorized",
        "an unknown path is a 401, not a 404",
        ("http.unknown-path",),
        http_defect(intercept=skin.unknown_path_unauthorized),
    ),
    Defect(
        "trailing-slash-not-found",
        "`/ocr/` is a 404, not a redirect",
        ("http.trailing-slash",),
        http_defect(skin.trailing_slash_not_found),
    ),
    # -- the quota
    Defect(
        "quota-not-enforced",
        "usage is counted but never refused",
        ("quota.exact-limit",),
        backend_defect(broken.QuotaNotEnforced, broken.UncountedLimitStore),
    ),
    Defect(
        "quota-off-by-one",
        "one image more than the quota per month",
        ("quota.exact-limit",),
        backend_defect(broken.QuotaOffByOne, broken.OffByOneStore),
    ),
    Defect(
        "errors-consume-quota",
        "400 and 500 answers count an image",
        ("quota.errors-free",),
        backend_defect(broken.ErrorsConsumeQuota),
    ),
    Defect(
        "quota-after-body",
        "the quota is checked after the body is parsed",
        ("quota.before-body",),
        backend_defect(broken.QuotaAfterBody),
    ),
    Defect(
        "quota-non-atomic",
        "check-then-increment: concurrent requests overshoot the quota",
        ("quota.concurrency",),
        backend_defect(store=broken.UncountedLimitStore),
    ),
    Defect(
        "quota-race-capped",
        "the live service's race: quota checked before OCR, counted after it, capped at the "
        "limit, so a burst overshoots while the stored usage reads exactly the limit",
        ("quota.concurrency",),
        backend_defect(broken.SlowOcr, broken.CappedCountStore),
    ),
    Defect(
        "unlimited-plan-capped",
        "a hidden monthly cap on the unlimited plan",
        ("quota.unlimited",),
        backend_defect(broken.UnlimitedPlanCapped),
    ),
    Defect(
        "usage-never-resets",
        "usage counts in the account's signup month, forever",
        ("quota.month-reset",),
        backend_defect(store=broken.SignupMonthStore),
    ),
    Defect(
        "months-in-local-time",
        "months are counted in the server's local time (UTC+1), not UTC",
        ("quota.month-utc",),
        backend_defect(broken.ServerLocalTime),
    ),
    Defect(
        "retry-after-on-429",
        "a Retry-After header on the monthly limit's 429",
        ("quota.exact-limit",),
        http_defect(skin.retry_after_on_429),
    ),
    Defect(
        "limit-message-shows-limit",
        "the 429 message shows the limit as the usage",
        ("quota.error-message",),
        http_defect(skin.on_error(skin.limit_message_shows_the_limit)),
    ),
    # -- size limits
    Defect(
        "size-limit-exclusive",
        "a file of exactly the plan's maximum is refused",
        ("size.plan-inclusive",),
        backend_defect(broken.SizeLimitExclusive),
    ),
    Defect(
        "plan-size-not-enforced",
        "only the 50 MiB ceiling applies, whatever the plan",
        ("size.plan-limit",),
        backend_defect(broken.PlanSizeNotEnforced),
    ),
    Defect(
        "global-ceiling-missing",
        "no 50 MiB ceiling: the plan's message for any oversized file",
        ("size.global-ceiling",),
        backend_defect(broken.GlobalCeilingMissing),
    ),
    Defect(
        "size-checked-before-type",
        "an oversized file of a refused type is 'too large'",
        ("size.after-type",),
        backend_defect(broken.SizeCheckedBeforeType),
    ),
    # -- declared type, echo, OCR
    Defect(
        "mime-type-sniffed",
        "the type is taken from the bytes, not the declared type",
        ("upload.type-not-sniffed", "upload.unsupported-type"),
        backend_defect(broken.MimeTypeSniffed),
    ),
    Defect(
        "other-types-refused",
        "only JPEG, PNG, GIF and WebP are accepted",
        ("success.other-types",),
        backend_defect(broken.OtherTypesRefused),
    ),
    Defect(
        "image-jpg-accepted",
        "the unregistered image/jpg is taken for image/jpeg",
        ("upload.type-strict",),
        backend_defect(broken.ImageJpgAccepted),
    ),
    Defect(
        "last-file-wins",
        "of two `file` parts the last is used",
        ("upload.first-field-wins",),
        http_defect(prepare=skin.last_field_wins("file")),
    ),
    Defect(
        "mime-type-not-lower-cased",
        "`mimeType` echoes the declared type unnormalised",
        ("success.echo",),
        backend_defect(broken.MimeTypeNotLowerCased),
    ),
    Defect(
        "ocr-lines-joined",
        "multi-line text comes back on one line",
        ("ocr.fixture-text",),
        backend_defect(broken.OcrLinesJoined),
    ),
    Defect(
        "last-prompt-wins",
        "of two `prompt` fields the last is used",
        ("ocr.prompt",),
        http_defect(prepare=skin.last_field_wins("prompt")),
    ),
    Defect(
        "undecodable-image-accepted",
        "bytes that are not an image: 200 with empty text",
        ("ocr.undecodable-image",),
        backend_defect(broken.UndecodableImageAccepted),
    ),
    Defect(
        "prompt-ignored",
        "the `prompt` field is not passed on to OCR",
        ("ocr.fixture-text",),
        backend_defect(broken.PromptIgnored),
    ),
)

DEFECTS: dict[str, Defect] = {defect.id: defect for defect in _DEFECTS}

# The live service's own race, served as the live service is: no control API, so that the
# suite can only find it from what its token receives.
LIVE_RACE = Defect(
    "quota-race-live",
    "the live service's race, without a control API",
    ("quota.concurrency",),
    backend_defect(broken.SlowOcr, broken.CappedCountStore, control=False),
)
