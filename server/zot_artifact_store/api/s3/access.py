"""Who may reach a bucket, as S3 reports it: GetBucketPolicyStatus (``IsPublic``)."""

from __future__ import annotations

from .base import S3Handler


class BucketAccessOperations(S3Handler):
    """The access-reporting operations of :class:`.buckets.BucketHandler`."""

    async def op_GetBucketPolicyStatus(self, name: str) -> None:
        await self.authorize("s3:GetBucketPolicyStatus", name)
        public = await self.ctx.authorizer.policies.bucket_is_public(name)
        self.write_xml("PolicyStatus", {"IsPublic": public})
