"""The S3 service resource: ListBuckets."""

from __future__ import annotations

from . import xml
from .base import (
    OWNER,
    S3Handler,
)


# ---- service ----------------------------------------------------------------------------------
class ServiceHandler(S3Handler):
    async def get(self) -> None:
        await self.authorize("s3:ListAllMyBuckets", "")
        buckets = await self.ctx.artifacts.list_buckets()
        self.write_xml(
            "ListAllMyBucketsResult",
            {
                "Owner": OWNER,
                "Buckets": {
                    "Bucket": [
                        {"Name": b.name, "CreationDate": xml.s3_time(b.created_at)} for b in buckets
                    ]
                },
            },
        )
