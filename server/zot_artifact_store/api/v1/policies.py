"""``/v1/policies``, ``/v1/buckets/{bucket}/policy`` and ``/v1/authorize``: access policies
and the decision they give."""

from __future__ import annotations

from typing import Any

from ...auth.policy import EvalContext, policy_json
from ...auth.principal import ANONYMOUS, Principal, root_principal
from ...auth.tokens import token_principal
from ...errors import StoreError
from .common import V1Handler


def policy_document(handler: V1Handler) -> Any:
    body = handler.json_body(required=True)
    if not isinstance(body, dict | list):
        raise StoreError("MalformedPolicy", "a policy is a JSON object with a Statement list")
    return body


class PoliciesHandler(V1Handler):
    async def get(self) -> None:
        await self.authorize("admin:ListPolicies", "admin:policies")
        policies = await self.ctx.authorizer.policies.list()
        self.write_json({"policies": [policy_json(p) for p in policies]})


class PolicyHandler(V1Handler):
    async def put(self, name: str) -> None:
        await self.authorize("admin:PutPolicy", f"admin:policies/{name}")
        policy, created = await self.ctx.authorizer.policies.put(name, policy_document(self))
        self.audit("admin:PutPolicy", f"admin:policies/{name}", True, "policy set")
        self.write_json(policy_json(policy), 201 if created else 200)

    async def get(self, name: str) -> None:
        await self.authorize("admin:GetPolicy", f"admin:policies/{name}")
        self.write_json(policy_json(await self.ctx.authorizer.policies.get(name)))

    async def delete(self, name: str) -> None:
        await self.authorize("admin:DeletePolicy", f"admin:policies/{name}")
        await self.ctx.authorizer.policies.delete(name)
        self.audit("admin:DeletePolicy", f"admin:policies/{name}", True, "policy removed")
        self.set_status(204)
        self.finish()


class BucketPolicyHandler(V1Handler):
    async def put(self, bucket: str) -> None:
        await self.authorize("s3:PutBucketPolicy", bucket)
        await self.ctx.authorizer.policies.put_bucket_policy(bucket, policy_document(self))
        self.audit("s3:PutBucketPolicy", bucket, True, "policy set")
        self.write_json(await self.ctx.authorizer.policies.get_bucket_policy(bucket))

    async def get(self, bucket: str) -> None:
        await self.authorize("s3:GetBucketPolicy", bucket)
        self.write_json(await self.ctx.authorizer.policies.get_bucket_policy(bucket))

    async def delete(self, bucket: str) -> None:
        await self.authorize("s3:DeleteBucketPolicy", bucket)
        await self.ctx.authorizer.policies.delete_bucket_policy(bucket)
        self.audit("s3:DeleteBucketPolicy", bucket, True, "policy removed")
        self.set_status(204)
        self.finish()


class AuthorizeHandler(V1Handler):
    """``POST /v1/authorize``: may this principal (default: the caller) do this action on this
    resource, and what decided it."""

    async def post(self) -> None:
        body = self.json_body(required=True)
        if not isinstance(body, dict):
            raise StoreError("MalformedJSON", "the question must be a JSON object")
        unknown = set(body) - {"principal", "action", "resource", "source_ip"}
        if unknown:
            raise StoreError("MalformedJSON", f"unknown field(s): {', '.join(sorted(unknown))}")
        action, resource = body.get("action"), body.get("resource", "")
        who, source_ip = body.get("principal"), body.get("source_ip", self.request.remote_ip)
        if not isinstance(action, str) or not action:
            raise StoreError("MalformedJSON", "action must be a non-empty string")
        if not isinstance(resource, str) or not isinstance(source_ip, str | None):
            raise StoreError("MalformedJSON", "resource and source_ip must be strings")
        if who is None or who == self.principal.id:
            principal = self.principal
        else:
            if not isinstance(who, str):
                raise StoreError("MalformedJSON", "principal must be a principal id")
            await self.authorize("admin:Authorize", "admin:authorize")
            principal = await self.resolve_principal(who)
        context = EvalContext(source_ip=source_ip or "")
        decision = await self.ctx.authorizer.decide(principal, action, resource, context)
        self.write_json(
            {
                "principal": principal.id,
                "action": action,
                "resource": resource,
                "allowed": decision.allowed,
                "reason": decision.reason,
            }
        )

    async def resolve_principal(self, who: str) -> Principal:
        if who == "anonymous":
            return ANONYMOUS
        root = self.ctx.config.auth.root.user
        if root and who == f"root:{root}":
            return root_principal(root)
        if who.startswith("token:"):
            token = await self.ctx.metadata.get_api_token(who[len("token:") :])
            if token is not None and token.revoked_at is None:
                return token_principal(token)
        raise StoreError("InvalidArgument", f"unknown principal {who!r}")
