"""Configuration: Zot-shaped YAML, ``ZAS_*`` environment overrides, secrets from files.

Every leaf field ``a.b.c`` can be overridden by the environment variable ``ZAS_A_B_C``
(upper-cased path, dots → underscores; camelCase names are just upper-cased, so
``storage.rootDirectory`` ← ``ZAS_STORAGE_ROOTDIRECTORY``). ``<VAR>_FILE`` reads the value from
a file instead (Kubernetes secrets). ``ZAS_ROOT_USER`` / ``ZAS_ROOT_PASSWORD`` are shorthands
for ``auth.root.user`` / ``auth.root.password``, as MinIO names its root user.

:func:`load_config` returns a validated :class:`Config` or raises :class:`ConfigError` listing
every problem with the field, the offending value and what is allowed.
"""

from __future__ import annotations

import difflib
import fnmatch
import ipaddress
import os
import re
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

ENV_PREFIX = "ZAS_"
# What Kubernetes injects for a Service named zas-… (service links, on by default): never ours.
K8S_SERVICE_LINK = re.compile(
    r"ZAS_[A-Z0-9_]*_(SERVICE_HOST|SERVICE_PORT(_[A-Z0-9_]+)?|PORT(_\d+_(TCP|UDP|SCTP)(_PROTO|_PORT|_ADDR)?)?)"
)
# Shorthand environment names → config path.
ENV_ALIASES: dict[str, str] = {
    "ZAS_ROOT_USER": "auth.root.user",
    "ZAS_ROOT_PASSWORD": "auth.root.password",
}
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s|d)")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def _duration_schema(schema: dict[str, Any]) -> None:
    """A duration in the config file: a number of seconds or ``"1h30m"``-style text."""
    default = schema.get("default")
    schema.clear()
    schema["anyOf"] = [
        {"type": "number", "minimum": 0},
        {"type": "string", "pattern": r"^\s*(\d+(\.\d+)?|(\d+(\.\d+)?(ms|s|m|h|d))+)\s*$"},
    ]
    schema["description"] = "seconds, or a duration such as '90s', '30m', '1h30m', '2d'"
    if default is not None:
        schema["default"] = default


DURATION: Any = _duration_schema


def config_schema() -> dict[str, Any]:
    """The JSON Schema of the config file (``zot-artifact-store config schema``), generated from
    the model the loader validates with, so the two cannot drift."""
    schema = Config.model_json_schema(mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://zot-artifact-store.dev/schemas/config.schema.json",
        "title": "Zot Artifact Store configuration",
        "description": "The YAML config file (Zot's shape); every field can also be set by "
        "ZAS_<PATH> environment variables, see docs/configuration.md.",
        **{k: v for k, v in schema.items() if k != "title"},
    }


def parse_duration(value: object) -> float:
    """``"1h30m"``, ``"90s"``, ``"500ms"``, ``"2d"`` or a number of seconds → seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration such as '1h', '30m', '90s' or a number of seconds")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration must not be negative")
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            return parse_duration(float(text))
        except ValueError:
            pass
        pos, total = 0, 0.0
        for match in _DURATION_RE.finditer(text):
            if match.start() != pos:
                break
            total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
            pos = match.end()
        if text and pos == len(text):
            return total
    raise ValueError("a duration such as '1h', '30m', '90s', '500ms' or a number of seconds")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, validate_assignment=True)


class TLSConfig(_Section):
    cert: str | None = None
    key: str | None = None

    @model_validator(mode="after")
    def _both_or_neither(self) -> TLSConfig:
        if bool(self.cert) != bool(self.key):
            raise ValueError("set both http.tls.cert and http.tls.key, or neither")
        for name in ("cert", "key"):
            path = getattr(self, name)
            if path and not Path(path).is_file():
                raise ValueError(f"http.tls.{name}: file {path!r} does not exist")
        return self


class RepositoryAccess(_Section):
    # Zot's shape. Only anonymous read is enforced here; per-user policies arrive with the
    # identity issue, so they are refused rather than silently ignored.
    anonymousPolicy: list[Literal["read"]] = Field(default_factory=list)


class AccessControlConfig(_Section):
    # Repository glob ("*" and "**" match across "/") → who may do what.
    repositories: dict[str, RepositoryAccess] = Field(default_factory=dict)

    def anonymous_read(self, repository: str) -> bool:
        return any(
            "read" in access.anonymousPolicy and fnmatch.fnmatchcase(repository, pattern)
            for pattern, access in self.repositories.items()
        )


class CORSConfig(_Section):
    # Browser pages on these origins may call /v1 (the JavaScript SDK in a web app): exact
    # origins ("https://ci.example.com") or "*". Empty: no CORS headers, as before.
    allowOrigins: list[str] = Field(default_factory=list)
    # Let those pages send cookies or HTTP auth the browser holds (not with "*").
    allowCredentials: bool = False
    # How long a browser may cache a preflight's answer (seconds).
    maxAge: float = Field(600.0, ge=0, json_schema_extra=DURATION)

    @field_validator("maxAge", mode="before")
    @classmethod
    def _duration(cls, v: object) -> float:
        return parse_duration(v)

    @field_validator("allowOrigins", mode="before")
    @classmethod
    def _origins(cls, v: object) -> object:
        if isinstance(v, str):  # ZAS_HTTP_CORS_ALLOWORIGINS="https://a.example,https://b.example"
            v = [o.strip() for o in v.split(",") if o.strip()]
        if isinstance(v, list):
            for origin in v:
                if origin != "*" and not re.fullmatch(r"https?://[^/\s?#]+", str(origin)):
                    raise ValueError(
                        f"{origin!r} is not an origin (scheme://host[:port], no path) or *"
                    )
        return v

    @model_validator(mode="after")
    def _credentials(self) -> CORSConfig:
        if self.allowCredentials and "*" in self.allowOrigins:
            raise ValueError("http.cors.allowCredentials needs exact origins, not *")
        return self


class HTTPConfig(_Section):
    address: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    tls: TLSConfig = Field(default_factory=TLSConfig)
    # Public base URL (scheme://host[:port]) used in presigned URLs, Location headers and the
    # registry's token realm; unset, each request's Host (or a trusted proxy's
    # X-Forwarded-Host) is used, which a client chooses: set it whenever auth is on.
    externalUrl: str | None = None
    # Proxies (CIDRs, e.g. "10.0.0.0/8") whose X-Forwarded-For, -Proto and -Host are
    # believed; from any other peer those headers are ignored (docs/user-guide.md).
    trustedProxies: list[str] = Field(default_factory=list)
    # Cross-origin requests from browsers to /v1 (docs/configuration.md).
    cors: CORSConfig = Field(default_factory=CORSConfig)
    # Largest object body accepted by streaming endpoints (bytes).
    maxObjectSize: int = Field(5 * 1024**4, gt=0)
    # Largest non-streaming body (JSON, XML, manifests) (bytes); larger: 413 EntityTooLarge.
    maxRequestBodySize: int = Field(8 * 1024**2, gt=0)
    # Largest total of a request's header fields, names and values (bytes; the request line
    # is not counted); larger: 431 RequestHeaderSectionTooLarge.
    maxHeaderSize: int = Field(64 * 1024, ge=8 * 1024)
    # How long in-flight requests may finish after SIGTERM before they are aborted (seconds).
    shutdownTimeout: float = Field(30.0, json_schema_extra=DURATION)
    # Worker processes sharing the listening socket (0 = one per CPU). One Python process
    # serves about one core; more workers use more cores. A supervisor restarts a worker
    # that dies.
    workers: int = Field(1, ge=0, le=256)
    accessControl: AccessControlConfig = Field(default_factory=AccessControlConfig)
    # Slow and greedy clients (docs/operations.md#slow-clients); 0 turns a limit off.
    # A connection with no request in progress (before its first, between keep-alive
    # requests) is closed after this long.
    idleTimeout: float = Field(120.0, json_schema_extra=DURATION)
    # A request's head (request line and headers) must arrive within this long of its first
    # byte, or the connection gets 408 and is closed.
    headerTimeout: float = Field(20.0, json_schema_extra=DURATION)
    # A request body must arrive at least this fast (bytes per second), on average over each
    # bodyRateWindow; the time the server itself spends storing it does not count. Slower:
    # RequestTimeout and the connection is closed.
    minBodyRate: int = Field(1024, ge=0)
    bodyRateWindow: float = Field(60.0, json_schema_extra=DURATION)
    # Open connections from one source address (NAT and CI runner pools share one); more
    # are answered 429 and closed.
    maxConnectionsPerAddress: int = Field(256, ge=0)

    @field_validator(
        "shutdownTimeout", "idleTimeout", "headerTimeout", "bodyRateWindow", mode="before"
    )
    @classmethod
    def _duration(cls, v: object) -> float:
        return parse_duration(v)

    @field_validator("trustedProxies", mode="before")
    @classmethod
    def _cidrs(cls, v: object) -> object:
        if isinstance(v, str):  # ZAS_HTTP_TRUSTEDPROXIES="10.0.0.0/8,192.168.0.0/16"
            v = [c for c in v.split(",") if c.strip()]
        if isinstance(v, list):
            for cidr in v:
                try:
                    ipaddress.ip_network(str(cidr).strip(), strict=False)
                except ValueError:
                    raise ValueError(f"{cidr!r} is not an IP address or CIDR network") from None
            return [str(c).strip() for c in v]
        return v

    @model_validator(mode="after")
    def _rate_window(self) -> HTTPConfig:
        if self.minBodyRate and self.bodyRateWindow < 1:
            raise ValueError("http.bodyRateWindow must be at least 1s when http.minBodyRate is set")
        return self


S3_STORAGE_CLASSES = (
    "STANDARD",
    "REDUCED_REDUNDANCY",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER_IR",
)


class StorageDriverConfig(_Section):
    """``storage.storageDriver`` in Zot's shape: blobs in an object store instead of
    ``rootDirectory`` (which keeps the sqlite metadata and keys). Unset ``name``: filesystem.
    ``s3`` and ``gcs`` use ``bucket``, ``azure`` uses ``container``; ``rootdirectory`` is the key
    prefix in all three."""

    name: Literal["s3", "azure", "gcs"] | None = None
    bucket: str | None = None
    region: str = "us-east-1"
    # Any S3-compatible endpoint (MinIO, Ceph RGW): a URL, or host[:port] (scheme by ``secure``).
    regionendpoint: str | None = None
    rootdirectory: str = ""  # key prefix inside the bucket / container
    # Unset: the default AWS credential chain (environment, web identity/IRSA, profile, IMDS).
    accesskey: str | None = None
    accesskeyFile: str | None = None
    secretkey: str | None = Field(None, repr=False)
    secretkeyFile: str | None = None
    forcepathstyle: bool = False
    secure: bool = True
    skipverify: bool = False
    storageclass: str | None = None
    # Server-side encryption of every object written: AES256 (SSE-S3) or aws:kms (SSE-KMS,
    # with ``ssekmskeyid`` or the bucket's default key).
    sse: Literal["AES256", "aws:kms"] | None = None
    ssekmskeyid: str | None = None
    # Part (S3) / block (Azure) / resumable chunk (GCS) size in bytes, ≥ 5 MiB (S3's minimum).
    chunksize: int = Field(8 << 20, ge=5 << 20, le=5 << 30)
    # How a blob of more than one part reaches its digest's key: "pointer" (the key holds a
    # small record naming the object the parts made; no second pass over the bytes) or "copy"
    # (the store's own server-side copy onto the key). Not Zot's; docs/adr/0006.
    commit: Literal["pointer", "copy"] = "pointer"
    # OCI blob GETs (no Range) answered 307 to a URL the backend signed for ``redirectexpiry``
    # seconds, so the bytes never pass through the store (docker distribution's ``redirect``).
    # Off by default: clients must be able to reach the backend's endpoint.
    redirect: bool = False
    redirectexpiry: int = Field(1200, ge=60, le=604_800)
    # ---- azure: the account, its container, and a key, a connection string, or neither
    # (DefaultAzureCredential: workload identity, managed identity, environment).
    accountname: str | None = None
    container: str | None = None
    accountkey: str | None = Field(None, repr=False)
    accountkeyFile: str | None = None
    connectionstring: str | None = Field(None, repr=False)
    connectionstringFile: str | None = None
    # The account's host suffix (Zot's name): https://<accountname>.blob.<realm>
    realm: str = "core.windows.net"
    # ---- gcs: a service account's JSON key file (Zot's name), else Application Default
    # Credentials (workload identity). STORAGE_EMULATOR_HOST (Google's convention) selects an
    # emulator without credentials.
    keyfile: str | None = None
    # azure and gcs: the service's URL instead of the public cloud's (Azurite, an emulator, a
    # private endpoint), e.g. http://127.0.0.1:10000/devstoreaccount1
    endpoint: str | None = None

    @model_validator(mode="after")
    def _check(self) -> StorageDriverConfig:
        for name in ("accesskey", "secretkey", "accountkey", "connectionstring"):
            path = getattr(self, name + "File")
            if path and not getattr(self, name):
                try:
                    setattr(self, name, Path(path).read_text().strip())
                except OSError as exc:
                    raise ValueError(f"{name}File: cannot read {path!r}: {exc.strerror}") from None
        if self.name in ("s3", "gcs") and not self.bucket:
            raise ValueError(f"bucket is required when name is {self.name}")
        if self.keyfile and not Path(self.keyfile).is_file():
            raise ValueError(f"keyfile: {self.keyfile!r} is not a readable file")
        if self.name == "azure":
            if not self.container:
                raise ValueError("container is required when name is azure")
            if not self.connectionstring and not self.accountname:
                raise ValueError("accountname (or connectionstring) is required when name is azure")
            if self.accountkey and self.connectionstring:
                raise ValueError("set accountkey or connectionstring, not both")
        if self.redirect and not self.name:
            raise ValueError("redirect needs an object store (name: s3, azure or gcs)")
        if bool(self.accesskey) != bool(self.secretkey):
            raise ValueError("set both accesskey and secretkey, or neither (default chain)")
        if self.ssekmskeyid and self.sse != "aws:kms":
            raise ValueError("ssekmskeyid needs sse: aws:kms")
        if self.storageclass is not None and self.storageclass not in S3_STORAGE_CLASSES:
            raise ValueError(f"storageclass must be one of {', '.join(S3_STORAGE_CLASSES)}")
        return self


class StorageConfig(_Section):
    rootDirectory: str = "./data"
    storageDriver: StorageDriverConfig = Field(default_factory=StorageDriverConfig)
    gc: bool = True
    gcDelay: float = Field(3600.0, json_schema_extra=DURATION)
    gcInterval: float = Field(86400.0, json_schema_extra=DURATION)
    # GC also removes untagged OCI manifests older than this that nothing refers to
    # (0 = keep untagged manifests forever).
    untaggedRetention: float = Field(0.0, json_schema_extra=DURATION)
    # Multipart (S3, /v1) and OCI uploads not finished this long after they started are
    # aborted and their parts collected (a bucket's AbortIncompleteMultipartUpload rule wins).
    uploadRetention: float = Field(7 * 86400.0, json_schema_extra=DURATION)
    # How often expired objects (X-Expires-At, bucket lifecycle rules) and abandoned uploads
    # are removed; one replica at a time does it (0: never in the server).
    lifecycleInterval: float = Field(3600.0, json_schema_extra=DURATION)
    fsync: bool = True
    # Readiness: /health/ready fails, and blob writes that would leave less are refused
    # (InsufficientStorage), while the filesystem holding the blobs has less free space
    # than the larger of these (0 and 0: no reserve). Object stores have no such limit.
    minFreeBytes: int = Field(100 << 20, ge=0)
    minFreePercent: float = Field(0.0, ge=0.0, le=100.0)

    @field_validator(
        "gcDelay",
        "gcInterval",
        "untaggedRetention",
        "uploadRetention",
        "lifecycleInterval",
        mode="before",
    )
    @classmethod
    def _duration(cls, v: object) -> float:
        return parse_duration(v)

    @field_validator("uploadRetention")
    @classmethod
    def _positive(cls, v: float) -> float:
        if v <= 0:
            raise ValueError("must be longer than 0s (an upload needs time to finish)")
        return v


class MetadataConfig(_Section):
    # Default: sqlite file inside storage.rootDirectory (filled in by Config).
    uri: str | None = None

    @field_validator("uri")
    @classmethod
    def _scheme(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if not re.match(r"^(sqlite://|mongodb://|mongodb\+srv://)", v):
            raise ValueError("must start with sqlite:/// or mongodb:// (or mongodb+srv://)")
        if v.startswith("sqlite://") and not v[len("sqlite://") :]:
            raise ValueError("sqlite URI needs a path, e.g. sqlite:///data/metadata.db")
        return v


class RootCredentials(_Section):
    user: str | None = None
    password: str | None = Field(None, repr=False)
    passwordFile: str | None = None

    @model_validator(mode="after")
    def _check(self) -> RootCredentials:
        if self.passwordFile and not self.password:
            try:
                self.password = Path(self.passwordFile).read_text().strip()
            except OSError as exc:
                raise ValueError(
                    f"auth.root.passwordFile: cannot read {self.passwordFile!r}: {exc.strerror}"
                ) from None
        if bool(self.user) != bool(self.password):
            raise ValueError(
                "set both auth.root.user and auth.root.password "
                "(ZAS_ROOT_USER / ZAS_ROOT_PASSWORD), or neither"
            )
        if self.user is not None and not re.fullmatch(r"[A-Za-z0-9._\-@]{3,128}", self.user):
            raise ValueError(
                "auth.root.user must be 3-128 characters of letters, digits and . _ - @"
            )
        if self.password is not None and len(self.password) < 8:
            raise ValueError("auth.root.password must be at least 8 characters")
        return self


class RegistryTokenConfig(_Section):
    # The docker-style token service for OCI clients (GET /v2/token).
    # HMAC key shared by every worker and replica; generated under storage.rootDirectory
    # (registry-token.key) on first start when unset.
    keyFile: str | None = None
    # Lifetime of an issued token.
    expiry: float = Field(300.0, json_schema_extra=DURATION)
    # The service name in challenges and tokens (the audience).
    service: str = "zot-artifact-store"

    @field_validator("expiry", mode="before")
    @classmethod
    def _duration(cls, v: object) -> float:
        seconds = parse_duration(v)
        if not 10 <= seconds <= 86400:
            raise ValueError("must be between 10s and 24h")
        return seconds


class AuditConfig(_Section):
    enable: bool = True
    # Audit records older than this are deleted (checked hourly).
    retention: float = Field(90 * 86400.0, json_schema_extra=DURATION)

    @field_validator("retention", mode="before")
    @classmethod
    def _duration(cls, v: object) -> float:
        seconds = parse_duration(v)
        if seconds < 3600:
            raise ValueError("must be at least 1h")
        return seconds


class LockoutConfig(_Section):
    # Failed authentications (docs/user-guide.md#failed-logins). After this many failures
    # from one source address against one user name, access key or token within the window,
    # that source's further attempts with it get 429 (0 = never); others are not affected ...
    attempts: int = Field(10, ge=0, le=100_000)
    # ... after this many from one source address, its attempts with any credentials get 429
    # (an address is often shared: NAT, CI runner pools) ...
    addressAttempts: int = Field(100, ge=0, le=1_000_000)
    # ... and after this many against one identity from all sources together, every attempt
    # with it waits identityDelay before its secret is checked: slowed, never refused, so its
    # owner still gets in (0 = never).
    identityAttempts: int = Field(100, ge=0, le=1_000_000)
    identityDelay: float = Field(1.0, json_schema_extra=DURATION)
    window: float = Field(60.0, json_schema_extra=DURATION)

    @field_validator("window", mode="before")
    @classmethod
    def _duration(cls, v: object) -> float:
        seconds = parse_duration(v)
        if not 1 <= seconds <= 86400:
            raise ValueError("must be between 1s and 24h")
        return seconds

    @field_validator("identityDelay", mode="before")
    @classmethod
    def _delay(cls, v: object) -> float:
        seconds = parse_duration(v)
        if not 0 <= seconds <= 30:
            raise ValueError("must be between 0s and 30s")
        return seconds


# A role name: admin, writer, reader, events-publisher, or one defined under auth.roles.
StoreRole = str
BUILTIN_ROLES = ("admin", "writer", "reader", "events-publisher")


class OIDCLoginConfig(_Section):
    """People log in to the web UI at this issuer: authorization code with PKCE (S256), as
    the public client ``clientId`` (docs/ui.md#logging-in)."""

    # The issuer's client for the UI: public (no secret), standard flow, PKCE S256, with the
    # redirect URI below registered.
    clientId: str = Field(min_length=1, max_length=256)
    # Where the issuer sends the browser back (default: <the UI's URL>/ui/login/callback, from
    # http.externalUrl or the request's host).
    redirectUri: str | None = None
    # Scopes asked for; must include openid.
    scopes: list[str] = Field(default_factory=lambda: ["openid", "profile"], min_length=1)

    @field_validator("redirectUri")
    @classmethod
    def _redirect(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^https?://[^/]+/", v):
            raise ValueError("must be an http(s) URL")
        return v

    @field_validator("scopes")
    @classmethod
    def _openid(cls, v: list[str]) -> list[str]:
        if "openid" not in v or any(not re.fullmatch(r"[!#-\[\]-~]+", s) for s in v):
            raise ValueError("must include openid, each scope a plain token")
        return v


class OIDCIssuerConfig(_Section):
    # The issuer URL exactly as tokens carry it in "iss" (Keycloak: https://host/realms/NAME).
    issuer: str
    # Accepted when "aud" contains it or "azp" equals it.
    audience: str
    # Whose resource_access.<clientId>.roles count (default: the audience).
    clientId: str | None = None
    # Token role (realm or client) → store role; admin, writer and reader map to themselves.
    roleMap: dict[str, StoreRole] = Field(default_factory=dict)
    # Group ("/ci" as Keycloak writes it) → store role.
    groupMap: dict[str, StoreRole] = Field(default_factory=dict)
    leeway: float = Field(30.0, json_schema_extra=DURATION)
    # An unknown "kid" refetches the JWKS at most this often ...
    jwksMinRefresh: float = Field(30.0, json_schema_extra=DURATION)
    # ... and the JWKS is refetched when older than this (so a key the issuer dropped stops
    # being trusted).
    jwksMaxAge: float = Field(600.0, json_schema_extra=DURATION)
    # Web UI login for people at this issuer (one issuer at most); its access tokens are
    # checked as above.
    ui: OIDCLoginConfig | None = None

    @field_validator("issuer")
    @classmethod
    def _url(cls, v: str) -> str:
        if not re.match(r"^https?://[^/]+", v):
            raise ValueError("must be an http(s) URL")
        return v

    @field_validator("leeway", "jwksMinRefresh", "jwksMaxAge", mode="before")
    @classmethod
    def _duration(cls, v: object) -> float:
        return parse_duration(v)

    @model_validator(mode="after")
    def _client(self) -> OIDCIssuerConfig:
        if self.clientId is None:
            self.clientId = self.audience
        return self


class TrustRule(_Section):
    """CI workload identity: a GitHub Actions or Kubernetes OIDC token whose issuer, audience
    and claims match is exchanged for a short-lived store token with ``roles``."""

    name: str = Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")
    # GitHub Actions: https://token.actions.githubusercontent.com; Kubernetes: the cluster's
    # service-account issuer (its discovery document must be reachable).
    issuer: str
    audience: str
    # Claim → glob every token must match, e.g. {"repository": "acme/*",
    # "ref": "refs/heads/main"} or {"kubernetes.io/serviceaccount/namespace": "ci"}.
    claims: dict[str, str] = Field(min_length=1)
    roles: list[StoreRole] = Field(min_length=1)
    expiry: float = Field(900.0, json_schema_extra=DURATION)
    leeway: float = Field(30.0, json_schema_extra=DURATION)

    @field_validator("expiry", "leeway", mode="before")
    @classmethod
    def _duration(cls, v: object) -> float:
        return parse_duration(v)


class AuthConfig(_Section):
    root: RootCredentials = Field(default_factory=RootCredentials)
    realm: str = "zot-artifact-store"
    token: RegistryTokenConfig = Field(default_factory=RegistryTokenConfig)
    audit: AuditConfig = Field(default_factory=AuditConfig)
    lockout: LockoutConfig = Field(default_factory=LockoutConfig)
    # OpenID Connect issuers whose bearer tokens are accepted (Keycloak realms, ...).
    oidc: list[OIDCIssuerConfig] = Field(default_factory=list)
    # Trust rules for POST /v1/auth/exchange (CI workload identity, "trusted publishing").
    trust: list[TrustRule] = Field(default_factory=list)
    # Role → the actions it grants (globs); adds roles or redefines admin, writer, reader.
    roles: dict[str, list[str]] = Field(default_factory=dict)

    @property
    def role_names(self) -> frozenset[str]:
        return frozenset(BUILTIN_ROLES) | set(self.roles)

    @model_validator(mode="after")
    def _known_roles(self) -> AuthConfig:
        for name, actions in self.roles.items():
            if not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", name) or not actions:
                raise ValueError(f"auth.roles.{name}: a role needs a plain name and actions")
        if sum(issuer.ui is not None for issuer in self.oidc) > 1:
            raise ValueError("auth.oidc[].ui: the web UI logs in at one issuer only")
        names = self.role_names
        for i, issuer in enumerate(self.oidc):
            for where, mapping in (("roleMap", issuer.roleMap), ("groupMap", issuer.groupMap)):
                for role in mapping.values():
                    if role not in names:
                        raise ValueError(f"auth.oidc[{i}].{where}: unknown role {role!r}")
        for rule in self.trust:
            for role in rule.roles:
                if role not in names:
                    raise ValueError(f"auth.trust[{rule.name}].roles: unknown role {role!r}")
        return self

    # Key encrypting stored S3 secret keys; every replica must share it. Generated under
    # storage.rootDirectory (secrets.key) on first start when unset.
    secretsKeyFile: str | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.root.user or self.oidc or self.trust)


class MetricsExtension(_Section):
    enable: bool = True
    # When true, /metrics needs authentication like /v1.
    protected: bool = False


class TracingExtension(_Section):
    enable: bool = False
    endpoint: str | None = None  # OTLP/HTTP traces endpoint, e.g. http://collector:4318/v1/traces
    serviceName: str = "zot-artifact-store"
    sampleRatio: float = Field(1.0, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _endpoint(self) -> TracingExtension:
        if self.enable and not self.endpoint:
            raise ValueError("extensions.tracing.endpoint is required when tracing is enabled")
        return self


class SigningConfig(_Section):
    # The store's own signing key (PEM private key: ECDSA P-256/P-384, Ed25519 or RSA), from a
    # file (a mounted Kubernetes secret) or the value itself (ZAS_..._SIGNING_KEY or its
    # _FILE form). Unset: with ``generate`` (the default) the server makes a P-256 key on first
    # start in the data directory (signing-key.pem) and uses it; ``generate: false`` turns
    # server-side signing off. Replicas that do not share a data directory need a configured key.
    keyFile: str | None = None
    key: str | None = Field(None, repr=False)
    generate: bool = True

    @model_validator(mode="after")
    def _load(self) -> SigningConfig:
        if self.keyFile and not self.key:
            try:
                self.key = Path(self.keyFile).read_text()
            except OSError as exc:
                raise ValueError(f"cannot read {self.keyFile!r}: {exc.strerror}") from None
        return self


class SupplyChainExtension(_Section):
    # Sigstore trusted root for verifying bundles offline: "production" (the public-good
    # instance), "staging", or a path to a trusted_root.json (private Sigstore, air-gapped).
    trustedRoot: str = "production"
    signing: SigningConfig = Field(default_factory=SigningConfig)

    @field_validator("trustedRoot")
    @classmethod
    def _root(cls, v: str) -> str:
        if v not in ("production", "staging") and not Path(v).is_file():
            raise ValueError("must be production, staging or the path of a trusted_root.json")
        return v


class WebhooksExtension(_Section):
    # Outbound webhooks (docs/webhooks.md). Targets that resolve to loopback, link-local
    # (169.254.169.254: cloud metadata), private or otherwise non-public addresses are refused,
    # unless ``allowPrivate`` or an ``allowNetworks`` CIDR covers them (a CI system on the
    # cluster network: allowNetworks: [10.0.0.0/8]).
    enable: bool = True
    allowPrivate: bool = False
    allowNetworks: list[str] = Field(default_factory=list)
    # Seconds for one delivery attempt (connect + answer).
    timeout: float = Field(10.0, gt=0, json_schema_extra=DURATION)
    # Deliveries in flight at once, per subscription and in all.
    concurrencyPerEndpoint: int = Field(4, ge=1, le=64)
    concurrency: int = Field(32, ge=1, le=1024)
    # A subscription whose deliveries have failed for this long (every attempt since) is
    # disabled, with a webhook.disabled event and a log line.
    disableAfter: float = Field(5 * 86400.0, gt=0, json_schema_extra=DURATION)
    # Delivered and failed deliveries are kept this long in the delivery log.
    retention: float = Field(14 * 86400.0, gt=0, json_schema_extra=DURATION)
    # Seconds to wait after the 1st, 2nd … failed attempt of a delivery (each ±10 %), then
    # give up: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (about 28 h) by default.
    retrySchedule: list[float] = Field(
        default_factory=lambda: [5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0],
        min_length=0,
        max_length=20,
    )

    @field_validator("timeout", "disableAfter", "retention", mode="before")
    @classmethod
    def _duration(cls, v: object) -> float:
        return parse_duration(v)

    @field_validator("retrySchedule")
    @classmethod
    def _schedule(cls, v: list[float]) -> list[float]:
        if any(x < 0 for x in v):
            raise ValueError("waits are seconds, not negative")
        return v

    @field_validator("allowNetworks")
    @classmethod
    def _networks(cls, v: list[str]) -> list[str]:
        for net in v:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError:
                raise ValueError(f"{net!r} is not a network (CIDR, e.g. 10.0.0.0/8)") from None
        return v


class ExtensionsConfig(BaseModel):
    # Other Zot extensions (search, sync, scrub, ui ...) are accepted and kept, so a Zot
    # config file loads; features claim their section as they arrive.
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    metrics: MetricsExtension = Field(default_factory=MetricsExtension)
    tracing: TracingExtension = Field(default_factory=TracingExtension)
    supplychain: SupplyChainExtension = Field(default_factory=SupplyChainExtension)
    webhooks: WebhooksExtension = Field(default_factory=WebhooksExtension)


class S3Config(_Section):
    # The region this store is: SigV4 credential scopes must name it (others are refused with
    # AuthorizationHeaderMalformed naming it, as AWS does), and GetBucketLocation, HeadBucket
    # and ListBuckets report it.
    region: str = Field("us-east-1", pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$", max_length=64)
    # Block Public Access for every bucket (all four of PutPublicAccessBlock's settings): no
    # public-read ACL may be set and those set grant nothing, no public bucket policy may be
    # put and the public statements of those put do not apply to anonymous callers.
    blockPublicAccess: bool = False


class LogConfig(_Section):
    level: Literal["debug", "info", "warn", "warning", "error"] = "info"
    format: Literal["json", "text"] = "json"
    # Zot's "output": a file path; unset = stderr.
    output: str | None = None

    @field_validator("level", mode="before")
    @classmethod
    def _lower(cls, v: object) -> object:
        return v.lower() if isinstance(v, str) else v


class Config(_Section):
    # Zot's own top-level key; accepted and ignored.
    distSpecVersion: str | None = None
    http: HTTPConfig = Field(default_factory=HTTPConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    metadata: MetadataConfig = Field(default_factory=MetadataConfig)
    auth: AuthConfig = Field(default_factory=AuthConfig)
    extensions: ExtensionsConfig = Field(default_factory=ExtensionsConfig)
    s3: S3Config = Field(default_factory=S3Config)
    log: LogConfig = Field(default_factory=LogConfig)

    @property
    def metadata_uri(self) -> str:
        if self.metadata.uri:
            return self.metadata.uri
        path = Path(self.storage.rootDirectory).absolute() / "metadata.db"
        return f"sqlite:///{path}"


class ConfigError(Exception):
    """Every problem found in a configuration, one per line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))


# ---- loading ---------------------------------------------------------------------------------


def _leaf_paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    paths: list[str] = []
    for name, info in model.model_fields.items():
        ann = info.annotation
        path = f"{prefix}{name}"
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            paths.extend(_leaf_paths(ann, path + "."))
        else:
            paths.append(path)
    return paths


def env_name(path: str) -> str:
    """``storage.rootDirectory`` → ``ZAS_STORAGE_ROOTDIRECTORY``."""
    return ENV_PREFIX + path.replace(".", "_").upper()


def _set_path(data: dict[str, Any], path: str, value: object) -> None:
    node = data
    parts = path.split(".")
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


def _get_path(data: Mapping[str, Any], path: str) -> object:
    node: Any = data
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _env_overrides(
    environ: Mapping[str, str], problems: list[str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """Collect ``ZAS_*`` overrides: (nested dict, path → the variable that set it)."""
    overrides: dict[str, Any] = {}
    sources: dict[str, str] = {}
    names = {env_name(p): p for p in _leaf_paths(Config)}
    names.update(ENV_ALIASES)
    for var, path in names.items():
        for candidate, from_file in ((var, False), (var + "_FILE", True)):
            if candidate not in environ:
                continue
            raw = environ[candidate]
            if from_file:
                try:
                    raw = Path(raw).read_text().strip()
                except OSError as exc:
                    problems.append(f"{path}: cannot read {candidate}={raw!r}: {exc.strerror}")
                    continue
            _set_path(overrides, path, raw)
            sources[path] = candidate
    known = set(names) | {n + "_FILE" for n in names}
    for var in environ:
        if (
            var.startswith(ENV_PREFIX)
            and var not in known
            and not var.startswith("ZAS_TEST_")
            and not K8S_SERVICE_LINK.fullmatch(var)
        ):
            problems.append(f"{var}: unknown setting (no config field is named by it)")
    return overrides, sources


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(dict(out[key]), value)
        else:
            out[key] = value
    return out


def _fields_at(loc: list[str]) -> list[str]:
    """The field names the config model allows at ``loc`` (a section path), for "did you mean"."""
    model: Any = Config
    for part in loc:
        field = model.model_fields.get(part) if isinstance(model, type) else None
        if field is None:
            return []
        candidates = [field.annotation, *typing.get_args(field.annotation)]
        model = next(
            (c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None
        )
        if model is None:
            return []
    return list(model.model_fields)


def _describe(err: Mapping[str, Any], data: Mapping[str, Any], sources: Mapping[str, str]) -> str:
    loc = [str(p) for p in err.get("loc", ()) if p != "__root__"]
    path = ".".join(loc)
    msg = str(err.get("msg", "invalid"))
    msg = msg.removeprefix("Value error, ")
    if err.get("type") == "extra_forbidden":
        known = _fields_at(loc[:-1])
        close = difflib.get_close_matches(loc[-1], known, n=1, cutoff=0.6) if loc else []
        hint = f"did you mean {'.'.join([*loc[:-1], close[0]])}?" if close else "check spelling"
        return f"{path}: unknown field; {hint} (see docs/configuration.md)"
    if not path:
        return msg
    value = _get_path(data, path)
    src = sources.get(path)
    where = f" (from {src})" if src else ""
    if value is None or isinstance(value, dict):
        return f"{path}{where}: {msg}"
    shown = "***" if "password" in path.lower() else repr(value)
    return f"{path}: value {shown}{where} is not allowed: {msg}"


def load_config(
    path: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> Config:
    """Load YAML (when ``path`` is given), apply env then explicit ``overrides`` (dotted paths,
    e.g. from command-line flags), validate. ``defaults`` (dotted paths) replace the built-in
    defaults: the file, the environment and the overrides all win over them (the container
    image's listen address and data directory). Raises :class:`ConfigError` with every
    problem."""
    environ = os.environ if environ is None else environ
    problems: list[str] = []
    data: dict[str, Any] = {}
    base: dict[str, Any] = {}
    for dotted, value in (defaults or {}).items():
        _set_path(base, dotted, value)
    if path is not None:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise ConfigError([f"{path}: cannot read config file: {exc.strerror}"]) from None
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError([f"{path}: not valid YAML: {exc}"]) from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError([f"{path}: the top level must be a mapping of sections"])
        data = loaded
    env_data, sources = _env_overrides(environ, problems)
    data = _merge(_merge(base, data), env_data)
    for dotted, value in (overrides or {}).items():
        if value is not None:
            _set_path(data, dotted, value)
            sources[dotted] = "command line"
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        problems.extend(_describe(e, data, sources) for e in exc.errors())
        raise ConfigError(problems) from None
    if problems:
        raise ConfigError(problems)
    return config
