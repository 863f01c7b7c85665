"""The one place that wires the server together (DESIGN.md §2).

Tests, the CLI's ``serve`` and the operator all start the server through :func:`create_context`
and :func:`make_application`, so they run the same thing.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tornado.httpserver
import tornado.httputil
import tornado.iostream
import tornado.web

from .api import health
from .api.base import NotFoundHandler
from .api.limits import Application
from .api.oci import handlers as oci
from .api.s3 import routes as s3
from .api.ui import routes as ui
from .api.v1 import routes as v1
from .auth.access_keys import KEY_FILENAME as SECRETS_KEY_FILENAME
from .auth.access_keys import AccessKeys, SecretBox
from .auth.audit import AuditLog
from .auth.authn import Authentication
from .auth.authz import Authorizer
from .auth.oidc import OIDCAuthenticator
from .auth.policy import Policies
from .auth.presign import PresignAuthenticator, Presigner
from .auth.ratelimit import FailureLimiter
from .auth.registry_token import (
    KEY_FILENAME,
    RegistryTokenAuthenticator,
    RegistryTokens,
)
from .auth.tokens import ApiTokenAuthenticator, ApiTokens
from .auth.workload import WorkloadExchange
from .config import Config
from .connections import ConnectionGuard, ConnectionLimits
from .errors import StoreError
from .filemodes import load_or_create_private
from .metadata import MetadataStore, create_metadata_store
from .observability.instrument import instrument_auth, instrument_store
from .observability.metrics import Metrics
from .services.artifacts import ArtifactService
from .services.batch import BatchService
from .services.events import EventService
from .services.lifecycle import Lifecycle
from .services.multipart import MultipartService
from .services.registry import RegistryService
from .services.replica_keys import KeyMismatchError, ReplicaKeys, SharedKey
from .services.signing import (
    SIGNING_KEY_FILENAME,
    LocalKeyProvider,
    new_signing_key,
    pem_key_problem,
)
from .services.space import StorageSpace
from .services.supplychain import SupplyChainService
from .services.webhooks import WebhookService
from .storage import BlobStore, StorageUnavailableError, create_blob_store

log = logging.getLogger(__name__)


def _secret_key(path: Path) -> bytes:
    """A secret key file of the server (made on first start): at least 32 bytes."""
    key = load_or_create_private(path).strip()
    if len(key) < 32:
        raise StoreError("InternalError", f"the key in {path} is shorter than 32 bytes")
    return key


@dataclass
class AppContext:
    """Everything a handler may reach: config, services, auth, metrics."""

    config: Config
    metadata: MetadataStore
    blobs: BlobStore
    artifacts: ArtifactService
    multipart: MultipartService
    authentication: Authentication
    oidc: OIDCAuthenticator
    authorizer: Authorizer
    registry: RegistryService
    space: StorageSpace
    supplychain: SupplyChainService
    events: EventService
    webhooks: WebhookService
    registry_tokens: RegistryTokens
    workload: WorkloadExchange
    api_tokens: ApiTokens
    access_keys: AccessKeys
    presigner: Presigner
    batch: BatchService
    audit: AuditLog
    lifecycle: Lifecycle
    lockout: FailureLimiter
    metrics: Metrics
    metadata_backend: str
    replica_keys: ReplicaKeys | None = None
    started_at: float = field(default_factory=time.time)
    shutting_down: bool = False
    in_flight: int = 0
    _idle: asyncio.Event = field(default_factory=asyncio.Event)

    def in_flight_started(self) -> None:
        self.in_flight += 1
        self._idle.clear()
        self.metrics.in_flight.inc()

    def in_flight_finished(self) -> None:
        self.in_flight -= 1
        self.metrics.in_flight.dec()
        if self.in_flight <= 0:
            self.in_flight = 0
            self._idle.set()

    async def wait_idle(self, limit_s: float) -> bool:
        """Wait until no request is in flight; False when ``limit_s`` seconds passed first."""
        if self.in_flight == 0:
            return True
        try:
            await asyncio.wait_for(self._idle.wait(), limit_s)
            return True
        except TimeoutError:
            return False

    async def close(self) -> None:
        if self.replica_keys is not None:
            await self.replica_keys.stop()
        await self.webhooks.stop()
        await self.audit.close()
        await self.metadata.close()
        await self.blobs.close()


def _check_generated_signing_key(config: Config) -> None:
    """The embedded default's signing key is loaded on first use (issue 23), so a broken one
    already in the data directory is found here, before anything opens: a server that starts
    must be able to sign."""
    signing = config.extensions.supplychain.signing
    if signing.key or not signing.generate:
        return
    path = Path(config.storage.rootDirectory) / SIGNING_KEY_FILENAME
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return  # made on first use
    except OSError as exc:
        problem: str | None = f"it cannot be read ({exc.strerror})"
    else:
        problem = pem_key_problem(data)
    if problem is not None:
        message = (
            f"the server's generated signing key {path} is unusable: {problem}. Restore it "
            "from a backup, or move it away to have a new key made (what the old key signed "
            "stays verifiable: its public key is kept among the trusted keys)"
        )
        log.error("cannot start: %s", message)
        raise SystemExit(f"zot-artifact-store: cannot start: {message}")


async def create_context(config: Config, *, serving: bool = True) -> AppContext:
    """Open the stores and build the services. Call :meth:`AppContext.close` when done."""
    _check_generated_signing_key(config)
    uri = config.metadata_uri
    metrics = Metrics()
    metadata_backend = uri.split(":", 1)[0]
    metadata: MetadataStore = instrument_store(
        create_metadata_store(uri), "metadata", metadata_backend, metrics
    )
    try:
        raw_blobs = create_blob_store(
            config.storage.rootDirectory,
            fsync=config.storage.fsync,
            driver=config.storage.storageDriver,
        )
        blobs: BlobStore = instrument_store(
            raw_blobs, "storage", raw_blobs.describe()["backend"], metrics
        )
        await blobs.open()
        driver = config.storage.storageDriver
        if serving and driver is not None and driver.redirect and not raw_blobs.signs_urls:
            log.warning(
                "storage.storageDriver.redirect is on, but the %s credentials cannot sign URLs "
                "(Azure: no account key; GCS: no service account key): OCI blob pulls are "
                "streamed through the store",
                raw_blobs.describe()["backend"],
            )
    except StorageUnavailableError as exc:
        log.error("cannot start: %s", exc)
        raise SystemExit(f"zot-artifact-store: cannot start: {exc}") from None
    try:
        await metadata.open()
    except BaseException:
        await blobs.close()
        raise
    space = StorageSpace(blobs, config.storage)
    artifacts = ArtifactService(metadata, blobs, space)
    registry = RegistryService(metadata, blobs, space)
    access = config.http.accessControl

    async def is_public(resource: str, version_id: str | None = None) -> bool:
        if resource.startswith("repo:"):
            return access.anonymous_read(resource[len("repo:") :])
        return await artifacts.is_public(resource, version_id)

    roles = config.auth.role_names
    api_tokens = ApiTokens(metadata, roles)
    secrets_key = config.auth.secretsKeyFile or str(
        Path(config.storage.rootDirectory) / SECRETS_KEY_FILENAME
    )
    secrets_material = _secret_key(Path(secrets_key))
    access_keys = AccessKeys(metadata, SecretBox(secrets_material), roles)
    presigner = Presigner(secrets_material)
    events = EventService(metadata, access_keys.box)
    artifacts.on_publish.append(events.object_published)
    oidc = OIDCAuthenticator(config.auth.oidc, roles)
    token_key = config.auth.token.keyFile or str(Path(config.storage.rootDirectory) / KEY_FILENAME)
    token_material = _secret_key(Path(token_key))
    registry_tokens = RegistryTokens(
        token_material, service=config.auth.token.service, expiry=config.auth.token.expiry
    )
    replica_keys = None
    if serving:  # replicas sharing this metadata store must share these keys
        replica_keys = ReplicaKeys(
            metadata,
            [
                SharedKey(
                    "secrets", "auth.secretsKeyFile", secrets_key,
                    "presigned URLs and the S3 secret keys sealed in the metadata store",
                    secrets_material,
                ),
                SharedKey(
                    "registry-token", "auth.token.keyFile", token_key,
                    "registry bearer tokens", token_material,
                ),
            ],
        )  # fmt: skip
        try:
            await replica_keys.claim()
        except KeyMismatchError as exc:
            log.error("cannot start: %s", exc)
            await metadata.close()
            await blobs.close()
            raise SystemExit(f"zot-artifact-store: cannot start: {exc}") from None
        replica_keys.start()
    authentication = Authentication(
        config.auth,
        [api_tokens.verify, oidc.verify, registry_tokens.verify_password],
        access_keys.secret,
        access_keys.verify_pair,
        s3_region=config.s3.region,
    )
    authentication.add(oidc)
    authentication.add(ApiTokenAuthenticator(api_tokens))
    authentication.add(RegistryTokenAuthenticator(registry_tokens))

    async def presigner_revoked(principal_id: str) -> bool:
        kind, _, credential = principal_id.partition(":")
        if kind == "token":
            return not await api_tokens.usable(credential)
        if kind == "s3key":
            return await access_keys.secret(credential) is None
        return False

    authentication.add(PresignAuthenticator(presigner, presigner_revoked))
    audit = AuditLog(metadata, enabled=config.auth.audit.enable)
    audit.start()
    policies = Policies(metadata)
    policies.block_public_access = artifacts.block_public_access = config.s3.blockPublicAccess
    authorizer = Authorizer(is_public, policies, config.auth.roles)
    if serving and not authentication.enabled:
        log.warning(
            "AUTHENTICATION IS DISABLED: anyone who can reach this server can read, write and "
            "delete everything. Set ZAS_ROOT_USER and ZAS_ROOT_PASSWORD (or auth.root) to "
            "enforce authentication."
        )
    if serving and authentication.enabled and not config.http.externalUrl:
        log.warning(
            "http.externalUrl is unset: presigned URLs and the registry's token realm are "
            "built from each request's Host header (or a trusted proxy's X-Forwarded-Host), "
            "which the client chooses. Set http.externalUrl to this server's public URL.",
            extra={"trusted_proxies": config.http.trustedProxies},
        )
    root = config.extensions.supplychain.trustedRoot
    supplychain = SupplyChainService(metadata, blobs, artifacts, registry, root)
    if root not in ("production", "staging"):
        # An operator's own trusted_root.json is parsed now, so a broken file stops the start;
        # the roots sigstore ships are loaded (with sigstore) on the first verification.
        _ = supplychain.verifier
    signing = config.extensions.supplychain.signing

    async def enable_signing(pem: str, source: str) -> None:
        server_key = await supplychain.enable_signing(LocalKeyProvider(pem))
        if serving:
            log.info(
                "server-side signing enabled",
                extra={"key_id": server_key.key_id, "key_source": source},
            )

    if signing.key:  # the operator's key: loaded now, so a broken one stops the start
        await enable_signing(signing.key, "configuration")
    elif signing.generate:
        # The embedded default signs out of the box with a key made on first use and kept in
        # the data directory (production configures its own: keyFile / key). It is loaded, and
        # registered as a trusted key, by the first signature or key listing: a server that
        # never signs never loads the crypto library (issue 23: idle memory).
        generated = Path(config.storage.rootDirectory) / SIGNING_KEY_FILENAME

        async def load_generated() -> None:
            pem = await asyncio.to_thread(load_or_create_private, generated, new_signing_key)
            await enable_signing(pem.decode(), str(generated))

        supplychain.defer_signing(load_generated)
    blobs.set_observer(metrics.storage_operation)
    instrument_auth(authentication, authorizer, metrics)
    for service in (supplychain, events):
        service.metrics = metrics
    http = config.http
    webhooks = WebhookService(
        metadata,
        access_keys.box,
        config.extensions.webhooks,
        http.externalUrl or f"http://{http.address}:{http.port}",
    )
    lifecycle = Lifecycle(metadata, blobs, audit, config.storage.uploadRetention)
    for emitter in (artifacts, registry, supplychain, api_tokens, lifecycle):
        emitter.notify = webhooks
    if serving:
        webhooks.start()
    return AppContext(
        config=config,
        metadata=metadata,
        blobs=blobs,
        artifacts=artifacts,
        multipart=MultipartService(artifacts),
        authentication=authentication,
        oidc=oidc,
        authorizer=authorizer,
        registry=registry,
        space=space,
        supplychain=supplychain,
        events=events,
        webhooks=webhooks,
        registry_tokens=registry_tokens,
        workload=WorkloadExchange(config.auth.trust),
        api_tokens=api_tokens,
        access_keys=access_keys,
        presigner=presigner,
        batch=BatchService(artifacts, supplychain, presigner, config.http.maxObjectSize),
        audit=audit,
        lifecycle=lifecycle,
        lockout=FailureLimiter(metadata, config.auth.lockout),
        metrics=metrics,
        metadata_backend=metadata_backend,
        replica_keys=replica_keys,
    )


def make_application(ctx: AppContext) -> Application:
    routes: list[Any] = []
    routes += health.routes(ctx)
    routes += v1.routes(ctx)
    routes += oci.routes(ctx)
    routes += ui.routes(ctx)  # before S3's: it answers browsers at "/"
    routes += s3.routes(ctx)  # last: "/{bucket}/{key}" would match every path
    return Application(
        ctx.config.http,
        routes,
        default_handler_class=NotFoundHandler,
        default_handler_args={"ctx": ctx, "route": "unmatched"},
        compress_response=False,
        serve_traceback=False,
        # Our access log (api/base.py) replaces Tornado's.
        log_function=lambda handler: None,
    )


_PLAIN_HTTP_REPLY = (
    b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n"
    b"Content-Length: 43\r\n\r\nThis port speaks plain HTTP, not HTTPS/TLS.\n"
)


class HTTPServer(tornado.httpserver.HTTPServer):
    """Tornado's HTTP server, plus:

    - a TLS handshake on a plain-HTTP port gets an immediate plain-HTTP answer instead of
      hanging until the header timeout. Clients told to skip TLS verification (skopeo/podman
      ``--tls-verify=false``, containerd) try HTTPS first and fall back to HTTP only when that
      attempt fails; without this, every call would wait out Go's 10-second TLS handshake
      timeout;
    - ``limits`` (:mod:`.connections`): idle, request-head and body-rate timeouts and a cap on
      connections per source address."""

    def initialize(  # type: ignore[override]
        self, *args: Any, limits: ConnectionLimits | None = None, **kwargs: Any
    ) -> None:
        limits = limits or ConnectionLimits()
        kwargs["idle_connection_timeout"] = limits.tornado_header_timeout
        super().initialize(*args, **kwargs)
        self.guard = ConnectionGuard(limits)

    async def handle_stream(  # type: ignore[override]
        self, stream: tornado.iostream.IOStream, address: tuple[Any, ...]
    ) -> None:
        if self.guard.admit(stream, str(address[0]) if address else "local") is None:
            return
        if self.ssl_options is None and await _starts_with_tls(
            stream, self.guard.limits.idle_timeout or None, lambda: self.guard.cut("idle")
        ):
            try:
                await stream.write(_PLAIN_HTTP_REPLY)
            except tornado.iostream.StreamClosedError:
                pass
            stream.close()
        if stream.closed():
            self.guard.release(stream)
            return
        super().handle_stream(stream, address)

    def start_request(
        self, server_conn: object, request_conn: tornado.httputil.HTTPConnection
    ) -> tornado.httputil.HTTPMessageDelegate:
        delegate = super().start_request(server_conn, request_conn)
        stream = getattr(server_conn, "stream", None)
        return self.guard.wrap(stream, request_conn, delegate) if stream else delegate

    def on_close(self, server_conn: object) -> None:
        stream = getattr(server_conn, "stream", None)
        if stream is not None:
            self.guard.release(stream)
        super().on_close(server_conn)


async def _starts_with_tls(
    stream: tornado.iostream.IOStream, idle_timeout: float | None, timed_out: Callable[[], None]
) -> bool:
    """Peek (without consuming) at the connection's first byte: 0x16 opens a TLS record. No
    byte within ``idle_timeout``: the connection is closed (``timed_out`` is told)."""
    sock = stream.socket
    loop = asyncio.get_running_loop()
    ready = loop.create_future()
    fd = sock.fileno()
    loop.add_reader(fd, lambda: ready.done() or ready.set_result(None))
    try:
        await asyncio.wait_for(ready, idle_timeout)
    except TimeoutError:
        timed_out()
        stream.close()
        return False
    finally:
        loop.remove_reader(fd)
    try:
        first = sock.recv(1, socket.MSG_PEEK)
    except (BlockingIOError, InterruptedError):
        return False
    except OSError:
        stream.close()
        return False
    if not first:  # the peer closed without a byte
        stream.close()
        return False
    return first == b"\x16"
