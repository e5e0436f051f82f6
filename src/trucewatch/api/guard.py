"""What every request passes before a route sees it, and the body limits routes read under.

:class:`Guard` is a plain ASGI middleware (no buffering of its own). For every request:

1. every response carries the security headers: a strict Content-Security-Policy (no
   inline script, no ``eval``; see :data:`CSP`), ``nosniff``, ``no-referrer``;
2. an exception no handler turned into an answer becomes a 500 in the one error shape; the
   traceback goes to the log, never to the client, and the server keeps the connection;
3. under ``/api/v1``: at most one ``Authorization`` header, and a well-formed
   ``Content-Length`` (else 400);
4. authentication before any body is read (401): a ``Bearer`` token, or the browser's
   session cookie (:data:`COOKIE`, HttpOnly, set by ``POST /api/v1/session``: an opaque
   session id the server maps to the token, never the token itself). A request
   authenticated by the cookie that changes something must carry the session's CSRF
   token in ``X-CSRF-Token`` and, when it says where it comes from (``Origin``,
   ``Sec-Fetch-Site``), come from this site (403);
5. the route's body limit (:func:`limit_for`): the declared ``Content-Length`` is checked
   when the route first asks for its body, before a byte is read, and the stream is cut
   off past the limit when the length is absent or false (:class:`BodyTooLargeError`,
   413). The role matrix (403) is checked before a route reads its body;
6. the rate limit, when the app has one (:mod:`trucewatch.api.ratelimit`): per
   principal, else per client address, answered 429 with ``Retry-After`` before the
   route runs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import tempfile
import zlib
from collections.abc import Awaitable, Callable
from typing import Any

import anyio.to_thread
import numpy as np
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from trucewatch.api.auth import Principal
from trucewatch.api.errors import error_body
from trucewatch.api.ratelimit import RateLimiter, retry_after
from trucewatch.errors import TrucewatchError

log = logging.getLogger("trucewatch.api")

PREFIX = "/api/v1"
COOKIE = "tw_session"
CSRF_HEADER = "x-csrf-token"
MiB = 1 << 20
KiB = 1 << 10
INGEST_LIMIT = 50 * MiB  # a submission as received (gzip counts compressed)
FORM_LIMIT = 256 * KiB  # an allegation (20,000 characters of text, escaped)
JSON_LIMIT = 64 * KiB  # any other body: review decisions, a sign-in
MAX_JSON_DEPTH = 64  # the deepest document trucewatch reads nests 8 levels
# (method, path pattern, limit); the first match applies, else JSON_LIMIT
LIMITS: list[tuple[str, re.Pattern[str], int]] = [
    ("POST", re.compile(rf"^{PREFIX}/ingest/[^/]+$"), INGEST_LIMIT),
    ("POST", re.compile(rf"^{PREFIX}/allegations$"), FORM_LIMIT),
]
# open routes: no token needed (a sign-in presents the token in its body)
OPEN = {("GET", f"{PREFIX}/health"), ("POST", f"{PREFIX}/session")}
# the public's view: open too when the mission publishes it (``create_app(public=True)``)
PUBLIC_PREFIX = f"{PREFIX}/public/"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}

_BASE = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: "
         "blob:; font-src 'self'; connect-src 'self'; worker-src 'self' blob:; "
         "child-src 'self' blob:; object-src 'none'; base-uri 'none'; form-action 'self'; "
         "frame-ancestors 'none'")
CSP = _BASE
# the offline API documentation (Swagger UI, ReDoc): their one inline start-up script is
# allowed by its hash, their inline styles are allowed; still no eval
DOC_PAGES = {"/docs", "/redoc", "/docs/oauth2-redirect"}
_DOCS_CSP = _BASE.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")
# a published product (a bulletin's HTML, JSON, GeoJSON, PDF): no script at all
PRODUCT_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
               "object-src 'none'; base-uri 'none'; form-action 'none'; "
               "frame-ancestors 'none'; sandbox")
SECURITY_HEADERS = [(b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"cross-origin-opener-policy", b"same-origin")]
_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)


class BodyTooLargeError(HTTPException):
    """A request body past its route's limit (answered 413 in the error shape)."""

    def __init__(self, limit: int, declared: int | None = None) -> None:
        said = f" (it declares {declared:,} bytes)" if declared is not None else ""
        super().__init__(413, f"request body over this route's limit of {_size(limit)}{said}")
        self.limit = limit


def _size(n: int) -> str:
    return f"{n // MiB} MiB" if n >= MiB and n % MiB == 0 else f"{n // KiB} KiB"


def limit_for(method: str, path: str) -> int:
    for m, pattern, limit in LIMITS:
        if m == method and pattern.match(path):
            return limit
    return JSON_LIMIT


def csrf_for(secret: bytes, sid: str) -> str:
    """The CSRF token of a browser session: bound to its session id, unknown to other
    sites."""
    return hmac.new(secret, b"csrf\n" + sid.encode(), hashlib.sha256).hexdigest()[:40]


def session_token(scope: Scope) -> str | None:
    """The session cookie's value (the opaque session id), if the request carries one."""
    for key, value in scope["headers"]:
        if key == b"cookie":
            for part in value.decode("latin-1").split(";"):
                name, _, val = part.strip().partition("=")
                if name == COOKIE and val:
                    return str(val)
    return None


Lookup = Callable[[str], Principal | None]
SessionLookup = Callable[[str], str | None]  # session id -> its token


class Guard:
    def __init__(self, app: ASGIApp, lookup: Lookup, secret: bytes,
                 sessions: SessionLookup | None = None, public: bool = False,
                 limiter: RateLimiter | None = None) -> None:
        self.app = app
        self.lookup = lookup
        self.secret = secret
        self.sessions = sessions or (lambda _sid: None)
        self.public = public
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        started = False
        docs = path in DOC_PAGES
        held: list[Message] = []

        async def send_secured(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in SECURITY_HEADERS if k not in names]
                if b"content-security-policy" not in names and not docs:
                    headers.append((b"content-security-policy", CSP.encode()))
                message = {**message, "headers": headers}
                if docs:  # its inline script's hash goes into the policy: hold the page
                    held.append(message)
                    return
            elif docs and message["type"] == "http.response.body":
                held.append(message)
                if message.get("more_body"):
                    return
                await _send_docs(held, send)
                return
            await send(message)

        try:
            if path.startswith(PREFIX + "/") or path == PREFIX:
                refusal = await self._check(scope)
                wait = self._rate(scope, refusal is None)
                if wait:
                    await _respond(send_secured, 429, "too_many_requests",
                                   f"too many requests: at most {self._limit_text()}",
                                   f"wait {retry_after(wait)} s (Retry-After) and send "
                                   "it again; spread requests out",
                                   [(b"retry-after", retry_after(wait).encode())])
                    return
                if refusal is not None:
                    await _respond(send_secured, *refusal)
                    return
                receive = _limited(scope, receive, limit_for(scope["method"], path))
            await self.app(scope, receive, send_secured)
        except TrucewatchError as exc:  # raised before the app's handlers (the token check)
            log.warning("%s in %s %s: %s", exc.code, scope.get("method"), path, exc.message)
            if not started:
                extra = [(b"retry-after", b"1")] if exc.status == 503 else None
                await _respond(send_secured, exc.status, exc.code, exc.message, exc.fix,
                               extra)
        except Exception:
            log.exception("unhandled error in %s %s", scope.get("method"), path)
            if not started:
                await _respond(send_secured, 500, "internal_error",
                               "internal error: the request could not be completed",
                               "report this with the time of the request; it is logged")

    def _rate(self, scope: Scope, authenticated: bool) -> float:
        """Seconds to wait before this request is allowed (0.0: now): the principal's
        bucket, else the client address's."""
        if self.limiter is None or (scope["method"], scope["path"]) == ("GET",
                                                                        f"{PREFIX}/health"):
            return 0.0
        who = scope.get("state", {}).get("principal") if authenticated else None
        if isinstance(who, Principal):
            key = f"principal:{who.id or who.name}"
        else:
            key = "client:" + str((scope.get("client") or ("?",))[0])
        return self.limiter.take(key)

    def _limit_text(self) -> str:
        assert self.limiter is not None
        lim = self.limiter.limit
        return f"{lim.per_minute:g} a minute (bursts of {lim.burst}) per principal"

    def _session_token(self, sid: str) -> str:
        return self.sessions(sid) or ""

    async def _check(self, scope: Scope) -> tuple[int, str, str, str] | None:
        """(status, code, message, fix) when the request is refused before any route."""
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        auths = [v for k, v in headers if k == b"authorization"]
        if len(auths) > 1:
            return (400, "bad_request", f"{len(auths)} Authorization headers: send one",
                    "send a single Authorization: Bearer <token> header")
        lengths = [v for k, v in headers if k == b"content-length"]
        if len(lengths) > 1 or (lengths and not lengths[0].strip().isdigit()):
            return (400, "bad_request", "malformed Content-Length header",
                    "send one Content-Length with the body's size in bytes, or none")
        method = scope["method"]
        if (method, scope["path"]) in OPEN:
            return None
        if self.public and method in SAFE_METHODS and scope["path"].startswith(PUBLIC_PREFIX):
            return None  # the public's view, published: no token asked, none read
        cookie = None
        if auths:
            value = auths[0].decode("latin-1")
            token = value[7:].strip() if value[:7].lower() == "bearer " else ""
        else:
            cookie = session_token(scope)
            token = ""
            if cookie:
                token = await anyio.to_thread.run_sync(self._session_token, cookie)
                if not token:
                    return (401, "unauthorized", "session ended or unknown",
                            "sign in again at the dashboard")
        if not token:
            return (401, "unauthorized", "no token",
                    "send Authorization: Bearer <token>, or sign in at the dashboard")
        who = await anyio.to_thread.run_sync(self.lookup, token)
        if who is None:
            return (401, "unauthorized", "unknown or revoked token",
                    "ask an administrator for a valid token")
        if cookie is not None and method not in SAFE_METHODS:
            problem = self._cross_site(scope, cookie)
            if problem:
                return (403, "forbidden", problem,
                        "send the session's CSRF token (from GET /api/v1/session) in "
                        "X-CSRF-Token, from this site's own pages")
        scope.setdefault("state", {})["principal"] = who
        scope["state"]["auth"] = "cookie" if cookie is not None else "bearer"
        return None

    def _cross_site(self, scope: Scope, sid: str) -> str | None:
        headers = {k: v.decode("latin-1") for k, v in scope["headers"]}
        sent = headers.get(CSRF_HEADER.encode(), "")
        if not hmac.compare_digest(sent, csrf_for(self.secret, sid)):
            return "missing or wrong CSRF token (X-CSRF-Token) for a cookie session"
        if headers.get(b"sec-fetch-site", "same-origin") not in ("same-origin", "none"):
            return "a cross-site request with a session cookie"
        origin = headers.get(b"origin")
        if origin is not None and origin != _own_origin(scope, headers):
            return f"a request from another origin ({origin[:100]}) with a session cookie"
        return None


def _own_origin(scope: Scope, headers: dict[bytes, str]) -> str:
    host = headers.get(b"host") or "{}:{}".format(*scope.get("server") or ("", ""))
    return f"{scope.get('scheme', 'http')}://{host}"


def _limited(scope: Scope, receive: Receive, limit: int) -> Receive:
    """``receive`` that checks the declared length first and cuts off past ``limit``."""
    declared = next((int(v) for k, v in scope["headers"] if k == b"content-length"), None)
    seen = 0
    scope.setdefault("state", {})["body_limit"] = limit

    async def limited() -> Message:
        nonlocal seen
        if declared is not None and declared > limit:
            raise BodyTooLargeError(limit, declared)
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLargeError(limit)
        return message

    return limited


async def _respond(send: Callable[[Message], Awaitable[None]], status: int, code: str,
                   message: str, fix: str,
                   extra: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps(error_body(code, status, message, fix)).encode()
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode()), *(extra or [])]
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _send_docs(held: list[Message], send: Send) -> None:
    start, *parts = held
    page = b"".join(m.get("body", b"") for m in parts)
    hashes = " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(s).digest()).decode()}'"
                      for s in _INLINE_SCRIPT.findall(page))
    csp = _DOCS_CSP.replace("script-src 'self'", f"script-src 'self' {hashes}".rstrip())
    headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-security-policy"]
    await send({**start, "headers": [*headers, (b"content-security-policy", csp.encode())]})
    await send({"type": "http.response.body", "body": page})


# ------------------------------------------------------------------ reading bodies
async def read_body(request: Request) -> bytes:
    """The request body under the route's limit, streamed through a spooled temporary
    file (in memory up to 1 MiB, on disk past it) rather than a list of chunks."""
    with tempfile.SpooledTemporaryFile(max_size=MiB) as f:
        async for chunk in request.stream():
            f.write(chunk)
        f.seek(0)
        return f.read()


_STRING = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"')


def json_depth(raw: bytes, chunk: int = 4 * MiB) -> int:
    """How deep a JSON text nests its arrays and objects, without parsing it (strings are
    skipped; linear time, memory a few times ``chunk``)."""
    text = _STRING.sub(b'""', raw)
    depth = best = 0
    opens = np.frombuffer(b"[{", dtype=np.uint8)
    closes = np.frombuffer(b"]}", dtype=np.uint8)
    for k in range(0, len(text), chunk):
        a = np.frombuffer(text, dtype=np.uint8, count=min(chunk, len(text) - k), offset=k)
        step = np.isin(a, opens).astype(np.int32) - np.isin(a, closes).astype(np.int32)
        if step.any():
            run = np.cumsum(step) + depth
            best = max(best, int(run.max()))
            depth = int(run[-1])
    return best


def looks_like_json(raw: bytes) -> bool:
    return raw.lstrip()[:1] in (b"{", b"[")


def too_deep(raw: bytes) -> str | None:
    """Why a JSON text is refused for its nesting, or None."""
    if not looks_like_json(raw):
        return None
    depth = json_depth(raw)
    if depth > MAX_JSON_DEPTH:
        return f"JSON nested {depth:,} levels deep (at most {MAX_JSON_DEPTH})"
    return None


GZIP_MAGIC = b"\x1f\x8b"


def inflated_past(raw: bytes, limit: int) -> int | None:
    """For a gzip body: how many bytes it had decompressed to when it passed ``limit``
    (None: not gzip, within the limit, or damaged, which the intake reports). It
    decompresses a mebibyte at a time and keeps nothing, so a bomb costs no memory."""
    if raw[:2] != GZIP_MAGIC:
        return None
    total, rest = 0, raw
    try:
        while rest[:2] == GZIP_MAGIC:  # gzip members may follow each other
            d = zlib.decompressobj(wbits=31)
            data = rest
            while data:
                total += len(d.decompress(data, MiB))
                if total > limit:
                    return total
                data = d.unconsumed_tail
            if not d.eof:
                return None
            rest = d.unused_data
    except zlib.error:
        return None
    return None


def install(app: Any, lookup: Lookup, secret: bytes, sessions: SessionLookup | None = None,
            public: bool = False, limiter: RateLimiter | None = None) -> None:
    app.add_middleware(Guard, lookup=lookup, secret=secret, sessions=sessions, public=public,
                       limiter=limiter)
