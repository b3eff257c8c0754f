"""Domain errors → HTTP responses, in one place."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from serving.batcher import Overloaded
from switchboard.errors import (
    BundleError,
    ConflictError,
    Forbidden,
    InputError,
    NotFoundError,
    StorageError,
    SwitchboardError,
    Unauthenticated,
    describe_validation,
)

_TAGS = {"body", "single", "batch"}


class PayloadTooLarge(SwitchboardError):
    """A request carries more than the configured limit."""


def describe_request_errors(errors: Sequence[Mapping[str, Any]]) -> str:
    """Validation errors of a request body, without FastAPI's "body" and our union tags in the paths."""
    return describe_validation(errors, skip=_TAGS)


def _json(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(status_code=status, content={"detail": detail}, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": [p for p in e.get("loc", ()) if p not in _TAGS], "msg": e.get("msg"), "type": e.get("type")}
            for e in exc.errors()
        ]
        return JSONResponse(status_code=422, content={"detail": describe_request_errors(errors), "errors": errors})

    simple: dict[type[SwitchboardError], int] = {
        InputError: 422,
        PayloadTooLarge: 413,
        NotFoundError: 404,
        ConflictError: 409,
        Forbidden: 403,
    }
    for error_type, status in simple.items():

        async def _handler(_: Request, exc: Exception, status: int = status) -> JSONResponse:
            return _json(status, str(exc))

        app.add_exception_handler(error_type, _handler)

    @app.exception_handler(Unauthenticated)
    async def _unauthenticated(_: Request, exc: Unauthenticated) -> JSONResponse:
        return _json(401, str(exc), {"WWW-Authenticate": "Bearer"})

    @app.exception_handler(Overloaded)
    async def _overloaded(_: Request, exc: Overloaded) -> JSONResponse:
        app.state.metrics.overloaded.inc()
        return _json(503, str(exc), {"Retry-After": str(exc.retry_after_s)})

    @app.exception_handler(BundleError)
    async def _bundle(_: Request, exc: BundleError) -> JSONResponse:
        return _json(503, f"model unavailable: {exc}", {"Retry-After": "5"})

    @app.exception_handler(StorageError)
    async def _storage(_: Request, exc: StorageError) -> JSONResponse:
        return _json(503, f"storage unavailable: {exc}", {"Retry-After": "5"})
