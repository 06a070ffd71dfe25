"""One error shape for every failure: ``{"error": code, "message": sentence}``.

Clients and the support page can rely on a stable ``error`` code; the ``message`` says what
to do next in plain words. Framework errors (unknown route, validation) get the same shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from projectors.reads import StoreBehind
from query_api.models import ErrorOut


class ApiError(Exception):
    """An error the API answers with deliberately (status, stable code, human message)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """The JSON response for an error."""
    return JSONResponse({"error": code, "message": message}, status_code=status, headers=headers)


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the given error statuses, plus 422, all in the error shape."""
    return {code: {"model": ErrorOut} for code in (*codes, 422)}


def text_responses(media_type: str, *codes: int) -> dict[int | str, dict[str, Any]]:
    """``responses`` for a route whose success is text (CSV, plain) but whose errors are JSON.

    The route keeps the default JSON response class so FastAPI documents errors as JSON, and
    documents the 200 body under ``media_type``.
    """
    ok = {
        "description": "Successful Response",
        "content": {media_type: {"schema": {"type": "string"}}},
    }
    return {**error_responses(*codes), 200: ok}


def not_found(kind: str, ident: str) -> ApiError:
    """404 for a record nobody has sent (or whose every trace is gone)."""
    return ApiError(404, f"{kind}_not_found", f"No {kind} {ident!r} is known within retention.")


_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "too_large"}


def install_error_handlers(app: FastAPI) -> None:
    """Route every error through ``error_response``."""

    async def api_error(_: Request, exc: Exception) -> JSONResponse:
        if not isinstance(exc, ApiError):  # registered for that type only
            raise exc
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    async def http_error(_: Request, exc: Exception) -> JSONResponse:
        if not isinstance(exc, StarletteHTTPException):  # registered for that type only
            raise exc
        code = _CODES.get(exc.status_code, "error")
        return error_response(exc.status_code, code, str(exc.detail), exc.headers)

    async def invalid(_: Request, exc: Exception) -> JSONResponse:
        if not isinstance(exc, RequestValidationError):  # registered for that type only
            raise exc
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("path", "query"))
            parts.append(f"{where}: {err.get('msg', 'invalid')}")
        return error_response(422, "invalid_request", "; ".join(parts) or "invalid request")

    async def behind(_: Request, exc: Exception) -> JSONResponse:
        if not isinstance(exc, StoreBehind):  # registered for that type only
            raise exc
        return error_response(503, "storage_behind", str(exc), {"Retry-After": "5"})

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(StoreBehind, behind)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid)
