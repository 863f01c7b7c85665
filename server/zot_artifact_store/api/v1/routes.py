"""The ``/v1`` native JSON API's routes (docs/openapi.json describes it) and its OpenAPI
document."""

from __future__ import annotations

from importlib import resources
from typing import Any

from ..base import BaseHandler, NotFoundHandler, Route, route
from ..query import QueryCheckedHandler
from . import admin, batch, events, uploads, webhooks
from .audit import AuditHandler
from .buckets import BucketHandler, BucketsHandler, ObjectListHandler
from .credentials import (
    AccessKeyHandler,
    AccessKeysHandler,
    ExchangeHandler,
    TokenHandler,
    TokensHandler,
)
from .evidence import EvidenceDocumentHandler, EvidenceHandler, SbomSearchHandler
from .objects import ObjectHandler
from .policies import AuthorizeHandler, BucketPolicyHandler, PoliciesHandler, PolicyHandler
from .signing import KeyHandler, KeysHandler, ProvenanceHandler, SignHandler
from .verification import BucketGateHandler, RepositoryGateHandler, VerifyHandler


class OpenAPIHandler(QueryCheckedHandler):
    """The OpenAPI 3.1 document of ``/v1`` (readable without authentication)."""

    _document: bytes | None = None

    def get(self) -> None:
        if OpenAPIHandler._document is None:
            OpenAPIHandler._document = (
                resources.files("zot_artifact_store.api.v1").joinpath("openapi.json").read_bytes()
            )
        self.set_header("Content-Type", "application/json")
        self.finish(OpenAPIHandler._document)


def routes(ctx: Any) -> list[Route]:

    def r(pattern: str, handler: type[BaseHandler], template: str) -> Route:
        return route(ctx, pattern, handler, template)

    return [
        *webhooks.routes(ctx),
        r(r"/v1/openapi\.json", OpenAPIHandler, "/v1/openapi.json"),
        r(r"/v1/buckets/?", BucketsHandler, "/v1/buckets"),
        r(r"/v1/buckets/([^/]+)/?", BucketHandler, "/v1/buckets/{bucket}"),
        r(r"/v1/buckets/([^/]+)/objects/?", ObjectListHandler, "/v1/buckets/{bucket}/objects"),
        r(
            r"/v1/buckets/([^/]+)/objects/(.+)/(signatures|sboms|attestations)",
            EvidenceHandler,
            "/v1/buckets/{bucket}/objects/{key}/{kind}",
        ),
        r(r"/v1/buckets/([^/]+)/objects/(.+)", ObjectHandler, "/v1/buckets/{bucket}/objects/{key}"),
        r(
            r"/v1/digests/([^/]+)/(signatures|sboms|attestations)",
            EvidenceHandler,
            "/v1/digests/{digest}/{kind}",
        ),
        r(r"/v1/sboms/search", SbomSearchHandler, "/v1/sboms/search"),
        r(r"/v1/evidence/([^/]+)", EvidenceDocumentHandler, "/v1/evidence/{id}"),
        r(r"/v1/keys/?", KeysHandler, "/v1/keys"),
        r(r"/v1/keys/([^/]+)", KeyHandler, "/v1/keys/{id}"),
        r(r"/v1/verify", VerifyHandler, "/v1/verify"),
        r(r"/v1/sign", SignHandler, "/v1/sign"),
        r(r"/v1/presign", uploads.PresignHandler, "/v1/presign"),
        r(r"/v1/batch/?", batch.BatchPlanHandler, "/v1/batch"),
        r(r"/v1/batch/delete", batch.BatchDeleteHandler, "/v1/batch/delete"),
        r(r"/v1/batch/head", batch.BatchHeadHandler, "/v1/batch/head"),
        r(r"/v1/batch/verify", batch.BatchVerifyHandler, "/v1/batch/verify"),
        r(r"/v1/buckets/([^/]+)/uploads/?", uploads.UploadsHandler, "/v1/buckets/{bucket}/uploads"),
        r(
            r"/v1/buckets/([^/]+)/uploads/([^/]+)/?",
            uploads.MultipartUploadHandler,
            "/v1/buckets/{bucket}/uploads/{upload_id}",
        ),
        r(
            r"/v1/buckets/([^/]+)/uploads/([^/]+)/parts/([^/]+)",
            uploads.PartHandler,
            "/v1/buckets/{bucket}/uploads/{upload_id}/parts/{part_number}",
        ),
        r(
            r"/v1/buckets/([^/]+)/uploads/([^/]+)/complete",
            uploads.CompleteHandler,
            "/v1/buckets/{bucket}/uploads/{upload_id}/complete",
        ),
        # Anything else under /v1 is ours (a problem JSON 404), never an S3 path.
        r(r"/v1/buckets/([^/]+)/policy", BucketPolicyHandler, "/v1/buckets/{bucket}/policy"),
        r(
            r"/v1/buckets/([^/]+)/verification",
            BucketGateHandler,
            "/v1/buckets/{bucket}/verification",
        ),
        r(
            r"/v1/repositories/(.+)/verification",
            RepositoryGateHandler,
            "/v1/repositories/{pattern}/verification",
        ),
        r(r"/v1/policies/?", PoliciesHandler, "/v1/policies"),
        r(r"/v1/policies/([^/]+)", PolicyHandler, "/v1/policies/{name}"),
        r(r"/v1/authorize", AuthorizeHandler, "/v1/authorize"),
        r(r"/v1/auth/exchange", ExchangeHandler, "/v1/auth/exchange"),
        r(r"/v1/provenance", ProvenanceHandler, "/v1/provenance"),
        r(r"/v1/access-keys/?", AccessKeysHandler, "/v1/access-keys"),
        r(r"/v1/access-keys/([^/]+)", AccessKeyHandler, "/v1/access-keys/{id}"),
        r(r"/v1/tokens/?", TokensHandler, "/v1/tokens"),
        r(r"/v1/tokens/([^/]+)", TokenHandler, "/v1/tokens/{id}"),
        r(r"/v1/audit/?", AuditHandler, "/v1/audit"),
        r(r"/v1/admin/lifecycle/run", admin.LifecycleRunHandler, "/v1/admin/lifecycle/run"),
        r(r"/v1/events/?", events.EventsHandler, "/v1/events"),
        r(r"/v1/event-sources/?", events.EventSourcesHandler, "/v1/event-sources"),
        r(r"/v1/event-sources/([^/]+)", events.EventSourceHandler, "/v1/event-sources/{id}"),
        r(r"/v1/builds/?", events.BuildsHandler, "/v1/builds"),
        r(r"/v1/builds/([^/]+)", events.BuildHandler, "/v1/builds/{id}"),
        r(r"/v1(?:/.*)?", NotFoundHandler, "unmatched"),
    ]
