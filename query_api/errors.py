"""One error shape for every failure: ``{"error": code, "message": sentence}``.

Clients and the support page can rely on a stable ``error`` code; the ``message`` says what
to do next in plain words. Framework errors (unknown route, validation) get the same shape.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from projectors.reads import StoreBehind
from query_api.models import ErrorOut
from redaction_rules.engine import id_problem


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


def refuse_unstorable_id(kind: str, ident: str) -> None:
    """404, before any access-log entry, for an ID that reads as a secret or personal data.

    Ingest refuses such IDs, so no record can have one; what was sent is most likely a secret
    pasted into the wrong place, and it must not be echoed back nor kept as a ``record_id``.
    """
    if id_problem(ident) is not None:
        raise ApiError(404, f"{kind}_not_found", f"That is not a valid {kind} ID.")


_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "too_large"}


# What the support page says for a framework error: never the path or the input, which may hold
# whatever was pasted into the address bar.
_PAGE_ERRORS = {
    404: ("Page not found", "There is no such page on the support site."),
    405: ("Page not found", "That page cannot be opened this way."),
}
_PAGE_ERROR_OTHER = ("Request refused", "The support page could not use that request.")


def _is_page(request: Request) -> bool:
    path = request.url.path
    return path == "/support" or path.startswith("/support/")


async def _page_error(request: Request, status: int) -> Response:
    # People read /support in a browser: an HTML page with a way back, not the API's JSON.
    # Imported here: the page renderer needs ``query_api.auth``, which needs this module.
    from query_api.pages_render import PageError, page_error_handler

    title, message = _PAGE_ERRORS.get(status, _PAGE_ERROR_OTHER)
    return await page_error_handler(request, PageError(status, title, message))


_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]{0,63}")


def _loc_part(part: object) -> str:
    # A key a client sent where none is allowed is named by pydantic as sent: it may be an
    # email or a token pasted as a key, which the answer must not repeat.
    text = str(part)
    return text if _FIELD_NAME.fullmatch(text) and id_problem(text) is None else "<unexpected key>"


def install_error_handlers(app: FastAPI) -> None:
    """Route every error through ``error_response`` (under ``/support``: an HTML page)."""

    async def api_error(_: Request, exc: Exception) -> JSONResponse:
        if not isinstance(exc, ApiError):  # registered for that type only
            raise exc
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    async def http_error(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, StarletteHTTPException):  # registered for that type only
            raise exc
        if _is_page(request):
            return await _page_error(request, exc.status_code)
        code = _CODES.get(exc.status_code, "error")
        return error_response(exc.status_code, code, str(exc.detail), exc.headers)

    async def invalid(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, RequestValidationError):  # registered for that type only
            raise exc
        if _is_page(request):
            return await _page_error(request, 400)
        parts = []
        for err in exc.errors():
            where = ".".join(_loc_part(p) for p in err.get("loc", ()) if p not in ("path", "query"))
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
