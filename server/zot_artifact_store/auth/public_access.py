"""S3 Block Public Access: a bucket's ``PublicAccessBlock`` (PutPublicAccessBlock) and the
server-wide ``s3.blockPublicAccess`` setting, which sets all four for every bucket.

As AWS defines them, mapped onto this store's access model (the public-read ACL flag of
buckets and objects, and bucket policies):

- ``BlockPublicAcls``: a request that would make a bucket or object public-read by ACL
  (``x-amz-acl: public-read``, an ACL body granting AllUsers READ, ``/v1``'s ``public_read``,
  a POST Object ``acl`` field) is refused with ``AccessDenied``;
- ``IgnorePublicAcls``: public-read ACLs already set grant nothing;
- ``BlockPublicPolicy``: PutBucketPolicy with a public policy (one that lets anonymous callers
  in, :func:`..auth.policy.statement_is_public`) is refused with ``AccessDenied``;
- ``RestrictPublicBuckets``: the public statements of the bucket's policy do not apply to
  anonymous callers (authenticated ones still get what they grant).

The bucket's own configuration is kept in its settings (``publicAccessBlock``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from ..errors import StoreError
from ..metadata import Bucket

SETTING = "publicAccessBlock"


@dataclass(frozen=True)
class PublicAccessBlock:
    BlockPublicAcls: bool = False
    IgnorePublicAcls: bool = False
    BlockPublicPolicy: bool = False
    RestrictPublicBuckets: bool = False

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


ALL_BLOCKED = PublicAccessBlock(True, True, True, True)


def bucket_block(bucket: Bucket) -> PublicAccessBlock | None:
    """The bucket's own configuration (None: none was put)."""
    raw = bucket.settings.get(SETTING)
    return None if raw is None else PublicAccessBlock(**raw)


def set_bucket_block(bucket: Bucket, block: PublicAccessBlock | None) -> None:
    if block is None:
        bucket.settings.pop(SETTING, None)
    else:
        bucket.settings[SETTING] = {name: getattr(block, name) for name in block.names()}


def effective_block(bucket: Bucket | None, server_wide: bool) -> PublicAccessBlock:
    """What applies to ``bucket``: everything when the server blocks public access, else the
    bucket's own configuration (nothing blocked without one)."""
    if server_wide:
        return ALL_BLOCKED
    return (bucket_block(bucket) if bucket is not None else None) or PublicAccessBlock()


def blocked(what: str, setting: str, server_wide: bool) -> StoreError:
    where = "the server's s3.blockPublicAccess setting" if server_wide else f"its {setting}"
    return StoreError("AccessDenied", f"{what}: public access to this bucket is blocked by {where}")
