"""A GitHub-Actions-shaped OIDC issuer for the tests: one HTTP server on 127.0.0.1 that
publishes discovery and a JWKS, and serves what the runner serves at
``ACTIONS_ID_TOKEN_REQUEST_URL``: ``{"value": <RS256 JWT>}`` for
``Authorization: Bearer <request token>`` and ``?audience=…``, with GitHub's claims (iss, aud,
sub ``repo:acme/app:ref:refs/heads/main``, repository, ref, sha, run_id, workflow_ref,
job_workflow_ref, runner_environment …). The same issuer mints Kubernetes-shaped
service-account tokens for the Tekton tests (:meth:`mint`)."""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.fixtures.jsonhttp import JsonHandler

REPOSITORY = "acme/app"
WORKFLOW = f"{REPOSITORY}/.github/workflows/release.yml@refs/heads/main"


def github_claims(**overrides: Any) -> dict[str, Any]:
    """The claims GitHub puts in a job's OIDC token (``iss``, ``aud`` and times added later)."""
    claims: dict[str, Any] = {
        "sub": f"repo:{REPOSITORY}:ref:refs/heads/main",
        "repository": REPOSITORY,
        "repository_id": "424242",
        "repository_owner": "acme",
        "repository_owner_id": "4242",
        "repository_visibility": "private",
        "ref": "refs/heads/main",
        "ref_type": "branch",
        "sha": "9f2c1e0d5b7a3c4e8f6a1b2c3d4e5f60718293a4",
        "workflow": "release",
        "workflow_ref": WORKFLOW,
        "workflow_sha": "9f2c1e0d5b7a3c4e8f6a1b2c3d4e5f60718293a4",
        "job_workflow_ref": WORKFLOW,
        "job_workflow_sha": "9f2c1e0d5b7a3c4e8f6a1b2c3d4e5f60718293a4",
        "run_id": "1234567890",
        "run_number": "17",
        "run_attempt": "1",
        "actor": "octocat",
        "actor_id": "583231",
        "event_name": "push",
        "runner_environment": "github-hosted",
    }
    claims.update(overrides)
    return claims


class TestIssuer:
    """``with TestIssuer() as issuer``: ``issuer.issuer`` is the ``iss``,
    ``issuer.request_url`` / ``issuer.request_token`` go into ``ACTIONS_ID_TOKEN_REQUEST_*``."""

    __test__ = False  # not a pytest class

    def __init__(self, claims: dict[str, Any] | None = None) -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": uuid.uuid4().hex[:16]})
        self.claims = claims or github_claims()
        self.request_token = secrets.token_urlsafe(24)
        self.requests: list[str | None] = []  # audiences asked for
        outer = self

        class Handler(JsonHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                if url.path == "/.well-known/openid-configuration":
                    self.reply(
                        200,
                        {
                            "issuer": outer.issuer,
                            "jwks_uri": f"{outer.issuer}/.well-known/jwks",
                            "id_token_signing_alg_values_supported": ["RS256"],
                            "response_types_supported": ["id_token"],
                            "subject_types_supported": ["public", "pairwise"],
                        },
                    )
                elif url.path == "/.well-known/jwks":
                    self.reply(200, {"keys": [outer.key.as_dict(private=False)]})
                elif url.path == "/token":
                    if self.headers.get("Authorization") != f"Bearer {outer.request_token}":
                        self.reply(401, {"message": "bad request token"})
                        return
                    audience = parse_qs(url.query).get("audience", [None])[0]
                    outer.requests.append(audience)
                    self.reply(200, {"count": 1, "value": outer.mint(audience)})
                else:
                    self.reply(404, {"message": "not found"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.issuer = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.request_url = f"{self.issuer}/token?api-version=2.0"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def mint(self, audience: str | None, claims: dict[str, Any] | None = None) -> str:
        now = int(time.time())
        body = {
            **(self.claims if claims is None else claims),
            "iss": self.issuer,
            "aud": audience or f"https://github.com/{REPOSITORY.split('/')[0]}",
            "iat": now,
            "nbf": now - 5,
            "exp": now + 300,
            "jti": uuid.uuid4().hex,
        }
        header = {"alg": "RS256", "typ": "JWT", "kid": self.key.kid}
        return jwt.encode(header, body, self.key)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> TestIssuer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
