"""Two small ASGI middlewares: a request-body size limit and security headers."""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException

from ..errors import InputError

PAGE_CSP = ("default-src 'self'; img-src 'self' data:; script-src 'self'; style-src 'self'; "
            "frame-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
            "frame-ancestors 'none'")
# Run files (the HTML report) may carry inline styles but no scripts, and nothing from elsewhere.
RUN_FILE_CSP = ("default-src 'self' data: 'unsafe-inline'; script-src 'none'; object-src 'none'; base-uri 'none'; "
                "frame-ancestors 'self'")


class ApiError(HTTPException):
    """An HTTP error whose one-line detail is an InputError's, keeping the field it names."""

    def __init__(self, status: int, err, headers: dict | None = None):
        super().__init__(status, str(err), headers)
        self.field = err.field


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` with 413, by declared length or as they arrive."""

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > self.max_bytes:
            return await self._refuse(send)
        seen = 0

        async def limited():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:   # FastAPI passes HTTPException through its body parsing
                raise ApiError(413, self._error())
            return message
        await self.app(scope, limited, send)

    def _error(self) -> InputError:
        return InputError("body", "too large", f"at most {self.max_bytes} bytes")

    async def _refuse(self, send) -> None:
        body = json.dumps({"detail": str(self._error()), "field": "body"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


class SecurityHeaders:
    """No MIME sniffing, no referrer, no framing by other sites, no scripts from elsewhere."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        csp = RUN_FILE_CSP if scope["path"].startswith("/api/runs/") else PAGE_CSP

        async def with_headers(message):
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + [
                    (b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
                    (b"content-security-policy", csp.encode())]
            await send(message)
        await self.app(scope, receive, with_headers)
