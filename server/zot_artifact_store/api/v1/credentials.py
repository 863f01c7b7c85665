"""``/v1/access-keys``, ``/v1/tokens`` and ``/v1/auth/exchange``: the credentials the store
issues."""

from __future__ import annotations

from typing import Any

from ...auth.access_keys import access_key_json
from ...auth.tokens import token_json
from ...errors import StoreError
from .common import V1Handler


class CredentialsHandler(V1Handler):
    accepts_statements = False

    def credential_request(self) -> tuple[str, list[str], float | None]:
        """``{"name", "roles", "expires_in"?}`` of a new API token or access key (and, for
        tokens, ``statements``, in ``self.statements``)."""
        body = self.json_body(required=True)
        if not isinstance(body, dict):
            raise StoreError("MalformedJSON", "the request must be a JSON object")
        unknown = set(body) - {"name", "roles", "expires_in"}
        if self.accepts_statements:
            unknown.discard("statements")
            statements = body.get("statements") or []
            if not isinstance(statements, list):
                raise StoreError("MalformedPolicy", "statements must be a list of statements")
            self.statements: list[dict[str, Any]] = statements
        elif "statements" in unknown:
            raise StoreError(
                "InvalidArgument",
                "access keys carry roles only; use policies that name the key's principal id",
            )
        if unknown:
            raise StoreError("MalformedJSON", f"unknown field(s): {', '.join(sorted(unknown))}")
        name, roles, expires_in = body.get("name"), body.get("roles"), body.get("expires_in")
        if not isinstance(name, str):
            raise StoreError("MalformedJSON", "name must be a string")
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise StoreError("MalformedJSON", "roles must be a list of strings")
        if expires_in is not None and (
            isinstance(expires_in, bool) or not isinstance(expires_in, int | float)
        ):
            raise StoreError("MalformedJSON", "expires_in must be a number of seconds")
        return name, roles, expires_in


class AccessKeysHandler(CredentialsHandler):
    """``/v1/access-keys``: S3 access keys (the secret is shown once)."""

    async def post(self) -> None:
        await self.authorize("admin:CreateAccessKey", "admin:access-keys")
        name, roles, expires_in = self.credential_request()
        key, secret = await self.ctx.access_keys.create(self.principal, name, roles, expires_in)
        resource = f"admin:access-keys/{key.access_key_id}"
        self.audit("admin:CreateAccessKey", resource, True, "created")
        self.set_header("Location", f"/v1/access-keys/{key.access_key_id}")
        self.set_header("Cache-Control", "no-store")
        self.write_json({**access_key_json(key), "secret_access_key": secret}, 201)

    async def get(self) -> None:
        await self.authorize("admin:ListAccessKeys", "admin:access-keys")
        keys = await self.ctx.access_keys.list()
        self.write_json({"access_keys": [access_key_json(k) for k in keys]})


class AccessKeyHandler(V1Handler):
    async def delete(self, key_id: str) -> None:
        resource = f"admin:access-keys/{key_id}"
        await self.authorize("admin:RevokeAccessKey", resource)
        await self.ctx.access_keys.revoke(key_id)
        self.audit("admin:RevokeAccessKey", resource, True, "revoked")
        self.set_status(204)
        self.finish()


class TokensHandler(CredentialsHandler):
    """``/v1/tokens``: API tokens for robots."""

    accepts_statements = True

    async def post(self) -> None:
        await self.authorize("admin:CreateToken", "admin:tokens")
        name, roles, expires_in = self.credential_request()
        token, secret = await self.ctx.api_tokens.create(
            self.principal, name, roles, expires_in, self.statements
        )
        self.audit("admin:CreateToken", f"admin:tokens/{token.token_id}", True, "created")
        self.set_header("Location", f"/v1/tokens/{token.token_id}")
        self.set_header("Cache-Control", "no-store")
        self.write_json({**token_json(token), "token": secret}, 201)

    async def get(self) -> None:
        await self.authorize("admin:ListTokens", "admin:tokens")
        self.write_json({"tokens": [token_json(t) for t in await self.ctx.api_tokens.list()]})


class TokenHandler(V1Handler):
    async def delete(self, token_id: str) -> None:
        await self.authorize("admin:RevokeToken", f"admin:tokens/{token_id}")
        await self.ctx.api_tokens.revoke(token_id)
        self.audit("admin:RevokeToken", f"admin:tokens/{token_id}", True, "revoked")
        self.set_status(204)
        self.finish()


TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"


class ExchangeHandler(V1Handler):
    """``POST /v1/auth/exchange``: a CI platform's OIDC token in, a short-lived store token out,
    when a trust rule matches. JSON ``{"token": …}`` or RFC 8693's form
    (``grant_type=…token-exchange&subject_token=…``)."""

    async def post(self) -> None:
        content_type = self.request.headers.get("Content-Type", "").split(";")[0].strip()
        if content_type == "application/x-www-form-urlencoded":
            grant = self.get_body_argument("grant_type", TOKEN_EXCHANGE)
            if grant != TOKEN_EXCHANGE:
                raise StoreError("InvalidArgument", f"grant_type must be {TOKEN_EXCHANGE}")
            subject = self.get_body_argument("subject_token", None)
        else:
            body = self.json_body(required=True)
            if not isinstance(body, dict) or set(body) - {"token"}:
                raise StoreError("MalformedJSON", 'the request must be {"token": "<JWT>"}')
            subject = body.get("token")
        if not isinstance(subject, str) or not subject:
            raise StoreError("InvalidArgument", "the platform's OIDC token is required")
        principal, rule = await self.ctx.workload.exchange(subject)
        self.principal = principal
        self.audit("auth:Exchange", f"trust:{rule.name}", True, f"trust rule {rule.name}")
        answer = self.ctx.registry_tokens.issue_session(principal, rule.expiry)
        self.set_header("Cache-Control", "no-store")
        self.write_json(
            {
                **answer,
                "principal": principal.id,
                "roles": sorted(principal.roles),
                "rule": rule.name,
            }
        )
