"""Presigned ``/v1`` object URLs (DESIGN.md §5, §9).

``POST /v1/presign`` hands out ``/v1/buckets/{b}/objects/{key}?zas-expires=<unix>&
zas-principal=<id>&zas-signature=<hex>``: an HMAC-SHA256, under a key derived from the
server's secrets key file (the one S3 access keys are sealed with, so every replica shares
it), over the method, the object's path, the expiry and the principal who asked. Whoever holds
the URL may do exactly that method (HEAD too, for GET) on exactly that object until it expires,
with no Authorization header: it authenticates as a principal scoped to that one action.
Explicit Deny statements still apply when it is used.
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
_OBJECT_PATH = re.compile(r"^/v1/buckets/([^/]+)/objects/(.+)$")


def object_path(bucket: str, key: str) -> str:
    """The URL path of an object, the key percent-encoded whole (``/`` as ``%2F``): a key
    ending in ``/signatures``, ``/sboms`` or ``/attestations`` must not read as the route of
    another object's evidence."""
    return f"/v1/buckets/{bucket}/objects/{urllib.parse.quote(key, safe='')}"


@dataclass(frozen=True)
class PresignedUrl:
    path_and_query: str
    method: str
    expires_at: float


class Presigner:
    def __init__(self, key_material: bytes) -> None:
        self._key = hashlib.sha256(b"zas presigned urls v1\0" + key_material).digest()

    def _signature(self, method: str, bucket: str, key: str, expires: int, principal: str) -> str:
        # A JSON array, not joined text: a key may hold any character (a newline too), and no
        # (key, expiry, principal) may be made to read as another.
        path = f"/v1/buckets/{bucket}/objects/{key}"
        message = json.dumps([method, path, expires, principal], separators=(",", ":"))
        return hmac.new(self._key, message.encode(), hashlib.sha256).hexdigest()

    def sign(
        self, method: str, bucket: str, key: str, principal: str, expires_in: int
    ) -> PresignedUrl:
        expires = int(time.time()) + expires_in
        query = urllib.parse.urlencode(
            {
                EXPIRES: str(expires),
                PRINCIPAL: principal,
                SIGNATURE: self._signature(method, bucket, key, expires, principal),
            }
        )
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
        unsigned = sorted(set(request.query) - {EXPIRES, PRINCIPAL, SIGNATURE})
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
            expected = self._signature(m, bucket, key, expires, principal)
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
        )


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
