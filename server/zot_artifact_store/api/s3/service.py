"""The S3 service resource: ListBuckets."""

from __future__ import annotations

from ...services.artifacts import decode_token, encode_token
from . import xml
from .base import OWNER, S3Handler


class ServiceHandler(S3Handler):
    level = "service"

    async def op_ListBuckets(self) -> None:
        """All buckets, or those with ``prefix``, ``max-buckets`` at a time (a continuation
        token names the last one sent); ``bucket-region`` other than this store's lists none."""
        await self.authorize("s3:ListAllMyBuckets", "")
        prefix = self.arg("prefix") or ""
        token = self.arg("continuation-token")
        after = decode_token(token) if token else None
        paged = self.arg("max-buckets") is not None
        limit = self.int_arg("max-buckets", 10_000, low=1, high=10_000)
        region = self.arg("bucket-region")
        here = self.ctx.config.s3.region
        buckets = sorted(await self.ctx.artifacts.list_buckets(), key=lambda b: b.name)
        chosen = [
            b
            for b in buckets
            if b.name.startswith(prefix)
            and (after is None or b.name > after)
            and region in (None, "", here)
        ]
        page = chosen[:limit]
        more = len(chosen) > limit
        self.write_xml(
            "ListAllMyBucketsResult",
            {
                "Owner": OWNER,
                "Buckets": {
                    "Bucket": [
                        {
                            "Name": b.name,
                            "CreationDate": xml.s3_time(b.created_at),
                            "BucketRegion": here if paged or region else None,
                        }
                        for b in page
                    ]
                },
                "ContinuationToken": encode_token(page[-1].name) if more else None,
                "Prefix": prefix or None,
            },
        )
