"""Bearer tokens on the HTTP server: read from the request, compared in constant time.

`Authorization: Bearer <token>` is the only scheme taken (RFC 6750; the scheme name is
case-insensitive). Header bytes that are not UTF-8 reach us as lone surrogates; they
are encoded back as they came, so an odd header is a wrong token, never a crash.
"""

from __future__ import annotations

import hmac

from aiohttp import web


def bearer_token(request: web.Request) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def same_secret(offered: str | None, expected: str) -> bool:
    """True when `offered` is `expected`; constant-time, False for an empty `expected`."""
    if offered is None or not expected:
        return False
    raw = offered.encode("utf-8", "surrogateescape")
    return hmac.compare_digest(raw, expected.encode("utf-8"))
