"""Presigned ``/v1`` object URLs (DESIGN.md §5, §9).

``POST /v1/presign`` hands out ``/v1/buckets/{b}/objects/{key}?zas-expires=<unix>&
zas-principal=<id>&zas-signature=<hex>``: an HMAC-SHA256, under a key derived from the
server's secrets key file (the one S3 access keys are sealed with, so every replica shares
it), over the method, the object's path, the expiry and the principal who asked. Whoever holds
the URL may do exactly that method (HEAD too, for GET) on exactly that object until it expires,
with no Authorization header: it authenticates as a principal scoped to that one action.
Explicit Deny statements still apply when it is used.

A PUT URL may also be bound to content (``POST /v1/batch`` hands these out): ``zas-sha256``
and ``zas-size`` join the signed fields, and the upload through it must have exactly that
sha256 and length, or nothing is stored (:attr:`Principal.bound_content`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ..errors import StoreError
from ..timefmt import iso_time
from .authn import AuthRequest
from .principal import Principal

MAX_EXPIRES_IN = 7 * 24 * 3600  # as S3's SigV4 presigned URLs
DEFAULT_EXPIRES_IN = 3600
# The action a presigned method allows.
ACTIONS = {"GET": "s3:GetObject", "HEAD": "s3:GetObject", "PUT": "s3:PutObject"}
EXPIRES, PRINCIPAL, SIGNATURE = "zas-expires", "zas-principal", "zas-signature"
# The content a PUT URL is bound to (optional; both or neither, and signed when present).
SHA256, SIZE = "zas-sha256", "zas-size"
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_OBJECT_PATH = re.compile(r"^/v1/buckets/([^/]+)/objects/(.+)$")


def object_path(bucket: str, key: str) -> str:
    """The URL path of an object, the key percent-encoded whole (``/`` as ``%2F``): a key
    ending in ``/signatures``, ``/sboms`` or ``/attestations`` must not read as the route of
    another object's evidence."""
    return f"/v1/buckets/{bucket}/objects/{urllib.parse.quote(key, safe='')}"


def check_expires_in(value: object) -> int:
    """A requested presigned URL lifetime: whole seconds from 1 to :data:`MAX_EXPIRES_IN`."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_EXPIRES_IN:
        raise StoreError(
            "InvalidArgument", f"expires_in must be whole seconds from 1 to {MAX_EXPIRES_IN}"
        )
    return value


@dataclass(frozen=True)
class PresignedUrl:
    path_and_query: str
    method: str
    expires_at: float


class Presigner:
    def __init__(self, key_material: bytes) -> None:
        self._key = hashlib.sha256(b"zas presigned urls v1\0" + key_material).digest()

    def _signature(
        self,
        method: str,
        bucket: str,
        key: str,
        expires: int,
        principal: str,
        content: tuple[str, int] | None = None,
    ) -> str:
        # A JSON array, not joined text: a key may hold any character (a newline too), and no
        # (key, expiry, principal) may be made to read as another. Bound content makes the
        # array longer, so an unbound URL's signature never serves for a bound one.
        path = f"/v1/buckets/{bucket}/objects/{key}"
        fields: list[object] = [method, path, expires, principal]
        if content is not None:
            fields += [content[0], content[1]]
        message = json.dumps(fields, separators=(",", ":"))
        return hmac.new(self._key, message.encode(), hashlib.sha256).hexdigest()

    def sign(
        self,
        method: str,
        bucket: str,
        key: str,
        principal: str,
        expires_in: int,
        content: tuple[str, int] | None = None,
    ) -> PresignedUrl:
        """A URL for ``method`` on ``bucket/key``; ``content`` (sha256 hex, size) binds a PUT
        URL to exactly those bytes."""
        if content is not None and method != "PUT":
            raise ValueError("only a PUT URL is bound to content")
        expires = int(time.time()) + expires_in
        fields = {EXPIRES: str(expires), PRINCIPAL: principal}
        if content is not None:
            fields |= {SHA256: content[0], SIZE: str(content[1])}
        fields[SIGNATURE] = self._signature(method, bucket, key, expires, principal, content)
        query = urllib.parse.urlencode(fields)
        return PresignedUrl(f"{object_path(bucket, key)}?{query}", method, float(expires))

    def verify(self, request: AuthRequest) -> Principal | None:
        """The principal a presigned request acts as; None when it carries no signature."""
        if SIGNATURE not in request.query or not request.path.startswith("/v1/"):
            return None
        values = {name: request.query.get(name, []) for name in (EXPIRES, PRINCIPAL, SIGNATURE)}
        if any(len(v) != 1 for v in values.values()):
            raise StoreError(
                "AccessDenied",
                f"a presigned URL carries exactly one {EXPIRES}, {PRINCIPAL} and {SIGNATURE}",
            )
        content = _bound_content(request.query)
        unsigned = sorted(set(request.query) - {EXPIRES, PRINCIPAL, SIGNATURE, SHA256, SIZE})
        if unsigned:
            # Nothing but the signed fields: "&metadata=true" must not turn a download into
            # another operation.
            raise StoreError(
                "SignatureDoesNotMatch",
                "the presigned URL does not sign the query parameter(s) "
                + ", ".join(repr(n) for n in unsigned)
                + "; use the URL exactly as it was issued",
            )
        raw_expires, principal, signature = (values[n][0] for n in (EXPIRES, PRINCIPAL, SIGNATURE))
        match = _OBJECT_PATH.match(request.path)
        if match is None or not raw_expires.isdigit():
            raise StoreError(
                "SignatureDoesNotMatch", "the presigned URL's signature does not match"
            )
        bucket, key = (urllib.parse.unquote(g) for g in match.groups())
        expires = int(raw_expires)
        method = request.method.upper()

        def signed_for(m: str) -> bool:
            expected = self._signature(m, bucket, key, expires, principal, content)
            return hmac.compare_digest(expected.encode(), signature.encode())

        allowed = ("GET", "HEAD") if method == "HEAD" else (method,)
        if not any(signed_for(m) for m in allowed):
            other = next((m for m in ACTIONS if m not in allowed and signed_for(m)), None)
            if other is not None:
                raise StoreError(
                    "AccessDenied",
                    f"this URL was presigned for {other}; it does not allow {method}",
                    resource=f"{bucket}/{key}",
                )
            raise StoreError(
                "SignatureDoesNotMatch",
                "the presigned URL's signature does not match (the URL was changed, or was not "
                "made by this store)",
                resource=f"{bucket}/{key}",
            )
        if time.time() >= expires:
            raise StoreError(
                "AccessDenied",
                f"the presigned URL expired at {iso_time(expires)}",
                resource=f"{bucket}/{key}",
            )
        return Principal(
            id=principal,
            name=f"{principal} (presigned URL)",
            source="presign",
            scopes=frozenset({f"{ACTIONS[method]} {bucket}/{key}"}),
            bound_content=content,
        )


def _bound_content(query: dict[str, list[str]]) -> tuple[str, int] | None:
    """The (sha256 hex, size) a presigned URL names, if it names any (checked against the
    signature by the caller)."""
    named = [n for n in (SHA256, SIZE) if n in query]
    if not named:
        return None
    values = [query.get(n, []) for n in (SHA256, SIZE)]
    if len(named) != 2 or any(len(v) != 1 for v in values):
        raise StoreError(
            "SignatureDoesNotMatch",
            f"a presigned URL bound to content carries exactly one {SHA256} and one {SIZE}",
        )
    sha256, size = values[0][0], values[1][0]
    if not _SHA256_HEX.match(sha256) or not size.isdigit():
        raise StoreError("SignatureDoesNotMatch", "the presigned URL's signature does not match")
    return sha256, int(size)


# Whether the credential behind a principal id was revoked (or expired) since it presigned.
RevokedCheck = Callable[[str], Awaitable[bool]]


async def _never_revoked(principal_id: str) -> bool:
    return False


class PresignAuthenticator:
    """Presigned ``/v1`` object URLs in the authenticator chain. A URL dies with the API token
    or access key that made it, as S3's die with their access key."""

    def __init__(self, presigner: Presigner, revoked: RevokedCheck = _never_revoked) -> None:
        self._presigner = presigner
        self._revoked = revoked

    async def authenticate(self, request: AuthRequest) -> Principal | None:
        principal = self._presigner.verify(request)
        if principal is not None and await self._revoked(principal.id):
            raise StoreError(
                "AccessDenied",
                "the credential that presigned this URL was revoked or has expired",
            )
        return principal
