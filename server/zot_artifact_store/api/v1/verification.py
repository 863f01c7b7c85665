"""``/v1/verify`` and the verification gates of buckets and repositories."""

from __future__ import annotations

from ...errors import StoreError
from .common import V1Handler


class VerifyHandler(V1Handler):
    """``POST /v1/verify``: does a subject satisfy a policy, rule by rule."""

    async def post(self) -> None:
        body = self.json_body(required=True)
        if (
            not isinstance(body, dict)
            or not {"subject", "policy"} <= set(body)
            or set(body) - {"subject", "policy", "issue_vsa"}
        ):
            raise StoreError(
                "MalformedJSON", 'the request is {"subject": …, "policy": …, "issue_vsa"?: bool}'
            )
        digest, ref, resource = await self.authorized_subject(body["subject"], "supplychain:verify")
        issue_vsa = body.get("issue_vsa", False)
        if not isinstance(issue_vsa, bool):
            raise StoreError("MalformedJSON", "issue_vsa must be true or false")
        if issue_vsa:
            await self.authorize("supplychain:sign", resource)
        answer = await self.ctx.supplychain.verify_resolved(
            digest, ref, body["subject"], body["policy"], self.principal.id if issue_vsa else None
        )
        self.audit(
            "supplychain:verify", resource, True, "passed" if answer["verified"] else "failed",
            subject_digest=digest,
        )  # fmt: skip
        self.write_json(answer)


class BucketGateHandler(V1Handler):
    """``/v1/buckets/{bucket}/verification``: the verification policy every download of the
    bucket's objects is checked against, in ``audit`` or ``enforce`` mode (admins only)."""

    async def put(self, bucket: str) -> None:
        await self.authorize("admin:PutVerificationPolicy", bucket)
        body = self.json_body(required=True)
        if not isinstance(body, dict) or set(body) != {"name", "mode", "policy"}:
            raise StoreError("MalformedJSON", 'the request is {"name", "mode", "policy"}')
        gate = await self.ctx.supplychain.set_bucket_gate(
            bucket, body["name"], body["mode"], body["policy"]
        )
        self.audit("admin:PutVerificationPolicy", bucket, True, f"{gate['name']} ({gate['mode']})")
        self.write_json(gate)

    async def get(self, bucket: str) -> None:
        await self.authorize("supplychain:read", bucket)
        gate = await self.ctx.supplychain.get_bucket_gate(bucket)
        if gate is None:
            await self.ctx.artifacts.get_bucket(bucket)  # 404 for a missing bucket
            raise StoreError("NoSuchBucketPolicy", f"bucket {bucket!r} has no verification policy")
        self.write_json(gate)

    async def delete(self, bucket: str) -> None:
        await self.authorize("admin:PutVerificationPolicy", bucket)
        await self.ctx.supplychain.delete_bucket_gate(bucket)
        self.audit("admin:PutVerificationPolicy", bucket, True, "removed")
        self.set_status(204)
        self.finish()


class RepositoryGateHandler(V1Handler):
    """``/v1/repositories/{pattern}/verification``: the verification policy every manifest
    pull from matching repositories (a name or a glob such as ``prod/*``; the most specific
    applies) is checked against, in ``audit`` or ``enforce`` mode (admins only)."""

    async def put(self, pattern: str) -> None:
        await self.authorize("admin:PutVerificationPolicy", f"repo:{pattern}")
        body = self.json_body(required=True)
        if not isinstance(body, dict) or set(body) != {"name", "mode", "policy"}:
            raise StoreError("MalformedJSON", 'the request is {"name", "mode", "policy"}')
        gate = await self.ctx.supplychain.set_repo_gate(
            pattern, body["name"], body["mode"], body["policy"]
        )
        self.audit(
            "admin:PutVerificationPolicy", f"repo:{pattern}", True,
            f"{gate['name']} ({gate['mode']})",
        )  # fmt: skip
        self.write_json(gate)

    async def get(self, pattern: str) -> None:
        await self.authorize("supplychain:read", f"repo:{pattern}")
        gate = (await self.ctx.supplychain.repo_gates()).get(pattern)
        if gate is None:
            raise StoreError(
                "NoSuchVerificationPolicy", f"no verification policy for repositories {pattern!r}"
            )
        self.write_json(gate)

    async def delete(self, pattern: str) -> None:
        await self.authorize("admin:PutVerificationPolicy", f"repo:{pattern}")
        await self.ctx.supplychain.delete_repo_gate(pattern)
        self.audit("admin:PutVerificationPolicy", f"repo:{pattern}", True, "removed")
        self.set_status(204)
        self.finish()
