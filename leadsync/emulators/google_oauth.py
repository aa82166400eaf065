"""Google's OAuth2 token endpoint for service accounts, as the emulators need it.

`make_service_account_key` writes the key JSON a person downloads from the
Cloud console (a fresh RSA key, `token_uri` pointing at an emulator).
`TokenAuthority` is what `POST /token` does at Google: it takes the JWT bearer
grant google-auth sends, checks the signature against the account's public key
and the claims (issuer, audience, lifetime), and issues short-lived access
tokens that the API endpoints then check. Error bodies are Google's.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# google-auth always puts Google's own token URI in the JWT audience, whatever token_uri says.
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
DEFAULT_ACCOUNT = "leadsync@demo-project.iam.gserviceaccount.com"
SHEETS_SCOPES = frozenset(
    {
        "https://www.googleapis.com/auth/spreadsheets",
        "https://www.googleapis.com/auth/drive",
        "https://www.googleapis.com/auth/drive.file",
    }
)
READ_SCOPES = SHEETS_SCOPES | {
    "https://www.googleapis.com/auth/spreadsheets.readonly",
    "https://www.googleapis.com/auth/drive.readonly",
}
# Google refuses assertions that live longer than an hour or come from a skewed clock.
MAX_ASSERTION_SECONDS = 3600
CLOCK_SKEW_SECONDS = 300


def make_service_account_key(
    token_uri: str, email: str = DEFAULT_ACCOUNT, key_size: int = 2048
) -> tuple[dict[str, str], bytes]:
    """A new service-account key JSON (as Google hands it out) and its public key in PEM."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    project = email.partition("@")[2].split(".")[0] or "demo-project"
    info = {
        "type": "service_account",
        "project_id": project,
        "private_key_id": secrets.token_hex(20),
        "private_key": private_pem,
        "client_email": email,
        "client_id": str(secrets.randbelow(10**21)),
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "universe_domain": "googleapis.com",
    }
    return info, public_pem


@dataclass(frozen=True, slots=True)
class AccessToken:
    """An issued token: whose it is, what it may do, until when (wall-clock seconds)."""

    email: str
    scopes: frozenset[str]
    expires_at: float


class GrantError(Exception):
    """A refused token request: OAuth error code and description, HTTP 400 or 401."""

    def __init__(self, error: str, description: str, status: int = 400):
        super().__init__(description)
        self.body = {"error": error, "error_description": description}
        self.status = status


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


class TokenAuthority:
    """Service-account public keys in, access tokens out; thread-safe."""

    def __init__(self, token_lifetime: int = 3600, wall_clock: Callable[[], float] = time.time):
        self.token_lifetime = token_lifetime
        self.wall_clock = wall_clock
        self.issued = 0  # how many access tokens were handed out
        self._keys: dict[str, tuple[str, Any]] = {}
        self._tokens: dict[str, AccessToken] = {}
        self._lock = threading.Lock()

    def register(self, email: str, key_id: str, public_pem: bytes) -> None:
        """Accepts assertions signed by this key for `email` (a key created in the console)."""
        with self._lock:
            self._keys[email] = (key_id, serialization.load_pem_public_key(public_pem))

    def new_key(self, token_uri: str, email: str = DEFAULT_ACCOUNT) -> dict[str, str]:
        """Makes, registers and returns a key JSON for `email`."""
        info, public_pem = make_service_account_key(token_uri, email)
        self.register(email, info["private_key_id"], public_pem)
        return info

    def delete_key(self, email: str) -> None:
        """The key was deleted in the console: its assertions and tokens stop working."""
        with self._lock:
            self._keys.pop(email, None)
            self._tokens = {k: t for k, t in self._tokens.items() if t.email != email}

    def expire_tokens(self) -> None:
        """Every issued access token expires now (clients must fetch new ones)."""
        with self._lock:
            self._tokens.clear()

    def grant(self, form: Mapping[str, str]) -> dict[str, Any]:
        """Handles one token request; raises GrantError as Google answers it."""
        if form.get("grant_type") != JWT_BEARER:
            raise GrantError("unsupported_grant_type", "Invalid grant_type: ")
        claims = self._verify(form.get("assertion", ""))
        scopes = frozenset(str(claims.get("scope", "")).split())
        if not scopes:
            raise GrantError("invalid_scope", "Invalid OAuth scope or ID token audience provided.")
        token = "ya29.emu-" + secrets.token_urlsafe(32)
        with self._lock:
            now = self.wall_clock()
            self._tokens[token] = AccessToken(claims["iss"], scopes, now + self.token_lifetime)
            self.issued += 1
        return {
            "access_token": token,
            "expires_in": self.token_lifetime - 1,
            "token_type": "Bearer",
        }

    def _verify(self, assertion: str) -> dict[str, Any]:
        try:
            head_b64, body_b64, sig_b64 = assertion.split(".")
            header = json.loads(_b64decode(head_b64))
            claims = json.loads(_b64decode(body_b64))
            signature = _b64decode(sig_b64)
        except ValueError:
            raise GrantError("invalid_request", "Invalid JWT: malformed assertion") from None
        with self._lock:
            known = self._keys.get(str(claims.get("iss", "")))
        if known is None:
            raise GrantError("invalid_grant", "Invalid grant: account not found")
        key_id, public_key = known
        if header.get("alg") != "RS256" or header.get("kid", key_id) != key_id:
            raise GrantError("invalid_grant", "Invalid JWT Signature.")
        try:
            public_key.verify(
                signature,
                f"{head_b64}.{body_b64}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except InvalidSignature:
            raise GrantError("invalid_grant", "Invalid JWT Signature.") from None
        self._check_claims(claims)
        return claims

    def _check_claims(self, claims: Mapping[str, Any]) -> None:
        if claims.get("aud") != GOOGLE_TOKEN_AUDIENCE:
            raise GrantError("invalid_grant", "Invalid JWT: Failed audience check.")
        now = self.wall_clock()
        iat, exp = float(claims.get("iat", 0)), float(claims.get("exp", 0))
        fresh = iat <= now + CLOCK_SKEW_SECONDS and exp >= now - CLOCK_SKEW_SECONDS
        if not fresh or exp - iat > MAX_ASSERTION_SECONDS:
            raise GrantError(
                "invalid_grant",
                "Invalid JWT: Token must be a short-lived token (60 minutes) and in a "
                "reasonable timeframe. Check your iat and exp values in the JWT claim.",
            )

    def check(self, authorization: str | None, *, write: bool) -> AccessToken:
        """The token behind an `Authorization: Bearer` header; GrantError(401/403) if unusable."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise GrantError("UNAUTHENTICATED", "missing", 401)
        with self._lock:
            access = self._tokens.get(token.strip())
            if access is not None and access.expires_at <= self.wall_clock():
                del self._tokens[token.strip()]
                access = None
        if access is None:
            raise GrantError("UNAUTHENTICATED", "invalid", 401)
        if not access.scopes & (SHEETS_SCOPES if write else READ_SCOPES):
            raise GrantError(
                "PERMISSION_DENIED", "Request had insufficient authentication scopes.", 403
            )
        return access
