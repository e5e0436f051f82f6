"""One JSON error shape for every error the API returns::

    {"error": "<code>", "status": <http status>, "message": "...", "fix": "...",
     "details": [...]}   # details: field errors for validation_error, else []
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from trucewatch.errors import TrucewatchError

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["error", "status", "message", "fix", "details"],
    "properties": {"error": {"type": "string"}, "status": {"type": "integer"},
                   "message": {"type": "string"}, "fix": {"type": "string"},
                   "details": {"type": "array", "items": {"type": "object"}}}}
HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
              405: "method_not_allowed", 409: "conflict", 413: "too_large",
              415: "unsupported_media_type", 422: "validation_error",
              429: "too_many_requests", 500: "internal_error"}


def error_body(code: str, status: int, message: str, fix: str = "",
               details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"error": code, "status": status, "message": message, "fix": fix,
            "details": details or []}


def respond(code: str, status: int, message: str, fix: str = "",
            details: list[dict[str, Any]] | None = None,
            headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(code, status, message, fix, details), status_code=status,
                        headers=headers)


_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def allowed_methods(app: FastAPI, path: str) -> set[str]:
    """The methods of every route whose path matches ``path``: those of the OpenAPI
    document (routes of included routers) and of the app's own routes."""
    found = {m for r in app.router.routes
             if (rx := getattr(r, "path_regex", None)) is not None and rx.match(path)
             for m in getattr(r, "methods", None) or ()}
    for template, operations in app.openapi().get("paths", {}).items():
        pattern = re.sub(r"\\\{[^}]*\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, path):
            found |= {m.upper() for m in operations if m in _METHODS}
    return found


def install(app: FastAPI) -> None:
    @app.exception_handler(TrucewatchError)
    async def _domain(_: Request, exc: TrucewatchError) -> JSONResponse:
        # a 503 (a store busy for a moment) says when to try again
        headers = {"Retry-After": "1"} if exc.status == 503 else None
        return respond(exc.code, exc.status, exc.message, exc.fix, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [{"loc": [str(x) for x in e.get("loc", ())], "msg": str(e.get("msg", "")),
                    "type": str(e.get("type", ""))} for e in exc.errors()]
        first = details[0] if details else {"loc": [], "msg": "invalid request"}
        return respond("validation_error", 422,
                       f"{'.'.join(first['loc'][1:]) or 'request'}: {first['msg']}",
                       "correct the fields listed in details and resend", details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = HTTP_CODES.get(exc.status_code, "error")
        fix = {401: "send Authorization: Bearer <token>",
               403: "use a token whose role allows this",
               404: "check the path against /openapi.json"}.get(exc.status_code, "")
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:
            # every method of the path, not only those of the first route that matched
            methods = sorted(allowed_methods(app, request.scope["path"]) | {
                m.strip() for m in headers.get("Allow", "").split(",") if m.strip()})
            headers["Allow"] = ", ".join(methods)
            fix = f"use {' or '.join(methods)}"
        return respond(code, exc.status_code, str(exc.detail), fix, headers=headers or None)

    @app.exception_handler(Exception)
    async def _crash(_: Request, exc: Exception) -> JSONResponse:  # pragma: no cover
        return respond("internal_error", 500, f"internal error: {type(exc).__name__}",
                       "report this with the time of the request; nothing was changed")
