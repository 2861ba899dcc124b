"""One application error family, rendered as RFC 9457 problem+json.

Routes and use cases raise `AppError` subclasses; the handlers installed by
`install_error_handlers` turn them (and FastAPI's own validation and HTTP errors) into
`application/problem+json` bodies. Validation errors always name the field that failed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://sa.example.gov.cn/problems/"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FieldError:
    """One field-level reason: `field` is a dotted path such as `body.id_number`."""

    field: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "reason": self.reason}


@dataclass
class AppError(Exception):
    """Base of every error a use case may raise on purpose."""

    detail: str
    errors: list[FieldError] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    status: int = 400
    code: str = "bad-request"
    title: str = "Bad request"

    def __post_init__(self) -> None:
        super().__init__(self.detail)

    def to_problem(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": PROBLEM_BASE + self.code,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        if self.errors:
            body["errors"] = [e.as_dict() for e in self.errors]
        body.update(self.extra)
        return body


@dataclass
class InvalidInput(AppError):
    status: int = 422
    code: str = "invalid-input"
    title: str = "Invalid input"


@dataclass
class Unauthorized(AppError):
    status: int = 401
    code: str = "unauthorized"
    title: str = "Authentication required"


@dataclass
class Forbidden(AppError):
    status: int = 403
    code: str = "forbidden"
    title: str = "Not allowed"


@dataclass
class NotFound(AppError):
    status: int = 404
    code: str = "not-found"
    title: str = "Not found"


@dataclass
class Conflict(AppError):
    status: int = 409
    code: str = "conflict"
    title: str = "Conflict"


@dataclass
class PreconditionFailed(AppError):
    """`If-Match` named a version that is no longer current (optimistic concurrency)."""

    status: int = 412
    code: str = "precondition-failed"
    title: str = "Precondition failed"


@dataclass
class RuleViolation(AppError):
    """A policy rule refused the request; `extra["rule"]` cites the clause."""

    status: int = 422
    code: str = "rule-violation"
    title: str = "Refused by policy"


@dataclass
class Unavailable(AppError):
    status: int = 503
    code: str = "unavailable"
    title: str = "Service unavailable"


def invalid(field_path: str, reason: str, detail: str | None = None) -> InvalidInput:
    """Shorthand for a single-field validation failure."""
    return InvalidInput(detail=detail or reason, errors=[FieldError(field_path, reason)])


def problem_response(
    problem: dict[str, Any], headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        problem, status_code=problem["status"], media_type=PROBLEM_JSON, headers=headers
    )


def _loc_to_field(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(p) for p in loc)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(request: Request, exc: AppError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return problem_response(exc.to_problem(str(request.url.path)), headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            FieldError(_loc_to_field(err.get("loc", ())), str(err.get("msg", "invalid")))
            for err in exc.errors()
        ]
        err = InvalidInput(detail="The request has invalid fields; see `errors`.", errors=errors)
        return problem_response(err.to_problem(str(request.url.path)))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        status = exc.status_code
        phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
        body = {
            "type": "about:blank",
            "title": phrase,
            "status": status,
            "detail": str(exc.detail),
            "instance": str(request.url.path),
        }
        return problem_response(body, dict(exc.headers) if exc.headers else None)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Never echo internals (they may hold personal data); log them instead.
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        body = {
            "type": "about:blank",
            "title": "Internal Server Error",
            "status": 500,
            "detail": "An unexpected error occurred; it has been logged.",
            "instance": str(request.url.path),
        }
        return problem_response(body)
