"""Who may reach a bucket, as S3 reports and limits it: GetBucketPolicyStatus (``IsPublic``),
Put/Get/DeletePublicAccessBlock (:mod:`...auth.public_access` enforces them) and
Get/PutBucketOwnershipControls (this store is always ``BucketOwnerEnforced``)."""

from __future__ import annotations

from ...auth.public_access import PublicAccessBlock, bucket_block, set_bucket_block
from ...errors import StoreError
from . import xml
from .base import S3Handler, verify_body_integrity

OWNERSHIP = "BucketOwnerEnforced"


class BucketAccessOperations(S3Handler):
    """The access operations of :class:`.buckets.BucketHandler`."""

    async def op_GetBucketPolicyStatus(self, name: str) -> None:
        await self.authorize("s3:GetBucketPolicyStatus", name)
        public = await self.ctx.authorizer.policies.bucket_is_public(name)
        self.write_xml("PolicyStatus", {"IsPublic": public})

    # -- Block Public Access --
    async def op_GetPublicAccessBlock(self, name: str) -> None:
        await self.authorize("s3:GetBucketPublicAccessBlock", name)
        block = bucket_block(await self.ctx.artifacts.get_bucket(name))
        if block is None:
            raise StoreError(
                "NoSuchPublicAccessBlockConfiguration",
                f"bucket {name!r} has no public access block configuration",
                resource=name,
            )
        self.write_xml(
            "PublicAccessBlockConfiguration", {n: getattr(block, n) for n in block.names()}
        )

    async def op_PutPublicAccessBlock(self, name: str) -> None:
        await self.authorize("s3:PutBucketPublicAccessBlock", name)
        bucket = await self.ctx.artifacts.get_bucket(name)
        verify_body_integrity(self.request.headers, self.request.body, required=False)
        set_bucket_block(bucket, parse_public_access_block(self.request.body))
        await self.ctx.artifacts.metadata.update_bucket(bucket)
        self.ctx.authorizer.policies.invalidate(name)
        self.audit("s3:PutBucketPublicAccessBlock", name, True, "public access block set")
        self.finish()

    async def op_DeletePublicAccessBlock(self, name: str) -> None:
        await self.authorize("s3:PutBucketPublicAccessBlock", name)  # AWS's action for it too
        bucket = await self.ctx.artifacts.get_bucket(name)
        set_bucket_block(bucket, None)
        await self.ctx.artifacts.metadata.update_bucket(bucket)
        self.ctx.authorizer.policies.invalidate(name)
        self.audit("s3:PutBucketPublicAccessBlock", name, True, "public access block removed")
        self.set_status(204)
        self.finish()

    # -- Object Ownership: one owner, the bucket's, always --
    async def op_GetBucketOwnershipControls(self, name: str) -> None:
        await self.authorize("s3:GetBucketOwnershipControls", name)
        await self.ctx.artifacts.get_bucket(name)
        self.write_xml("OwnershipControls", {"Rule": {"ObjectOwnership": OWNERSHIP}})

    async def op_PutBucketOwnershipControls(self, name: str) -> None:
        await self.authorize("s3:PutBucketOwnershipControls", name)
        await self.ctx.artifacts.get_bucket(name)
        verify_body_integrity(self.request.headers, self.request.body, required=False)
        root = xml.parse(self.request.body, "OwnershipControls")
        values = [xml.child_text(rule, "ObjectOwnership") for rule in xml.children(root, "Rule")]
        if len(values) != 1 or not values[0]:
            raise StoreError(
                "MalformedXML", "OwnershipControls needs one Rule with ObjectOwnership"
            )
        if values[0] != OWNERSHIP:
            raise StoreError(
                "NotImplemented",
                f"ObjectOwnership {values[0]!r}: objects here are always owned by the bucket's "
                f"owner ({OWNERSHIP})",
            )
        self.finish()


def parse_public_access_block(body: bytes) -> PublicAccessBlock:
    """A ``<PublicAccessBlockConfiguration>`` body (absent settings are false, as on AWS)."""
    root = xml.parse(body, "PublicAccessBlockConfiguration")
    values: dict[str, bool] = {}
    for child in root:
        name = xml.local_name(child.tag)
        if name not in PublicAccessBlock.names():
            raise StoreError(
                "MalformedXML", f"unexpected <{name}> in PublicAccessBlockConfiguration"
            )
        text = (child.text or "").strip().lower()
        if text not in ("true", "false"):
            raise StoreError("MalformedXML", f"{name} must be true or false")
        values[name] = text == "true"
    return PublicAccessBlock(**values)
