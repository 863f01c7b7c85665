"""Configuration shared by :class:`Client` and :class:`AsyncClient`."""

from __future__ import annotations

import os
from typing import Any, TypeVar

import httpx

from . import __version__
from ._ops import Operations, transport_error
from ._protocol import Body, Call
from .auth import Auth, BasicAuth, GitHubActionsAuth, TokenAuth
from .errors import ArtifactStoreError
from .retry import RetryPolicy

C = TypeVar("C", bound="ClientConfig")
USER_AGENT = f"zot-artifacts-python/{__version__}"


class ClientConfig:
    """``base_url`` of the store, ``auth`` (None = anonymous), ``timeout`` (seconds for
    connect, each read and each write; not the whole transfer), ``retry``."""

    def __init__(
        self,
        base_url: str,
        *,
        auth: Auth | None = None,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        headers: dict[str, str] | None = None,
        verify: bool | str = True,
    ) -> None:
        if not base_url:
            raise ValueError("base_url is required (e.g. http://127.0.0.1:8080)")
        self.base_url = base_url.rstrip("/")
        self.auth = auth
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.ops = Operations(auth, self.retry)
        self._httpx_options: dict[str, Any] = {
            "base_url": self.base_url,
            "timeout": httpx.Timeout(timeout),
            "headers": {"User-Agent": USER_AGENT, **(headers or {})},
            "verify": verify,
            "follow_redirects": False,
        }

    @classmethod
    def from_env(cls: type[C], **kwargs: Any) -> C:
        """From the environment: ``ZOT_ARTIFACTS_URL`` and ``ZOT_ARTIFACTS_TOKEN``, or
        ``ZOT_ARTIFACTS_USERNAME`` / ``ZOT_ARTIFACTS_PASSWORD`` (HTTP Basic). Keyword
        arguments (timeout, retry ...) are passed on."""
        url = os.environ.get("ZOT_ARTIFACTS_URL")
        if not url:
            raise ArtifactStoreError("ZOT_ARTIFACTS_URL is not set", code="NoConfiguration")
        if "auth" not in kwargs:
            token = os.environ.get("ZOT_ARTIFACTS_TOKEN")
            user = os.environ.get("ZOT_ARTIFACTS_USERNAME")
            if token:
                kwargs["auth"] = TokenAuth(token)
            elif user:
                kwargs["auth"] = BasicAuth(user, os.environ.get("ZOT_ARTIFACTS_PASSWORD", ""))
        return cls(url, **kwargs)

    @classmethod
    def from_github_actions(
        cls: type[C], base_url: str, audience: str | None = None, **kwargs: Any
    ) -> C:
        """Inside a GitHub Actions job: authenticate with the job's OIDC token exchanged for
        a short-lived store token (:class:`~zot_artifacts.auth.GitHubActionsAuth`)."""
        return cls(base_url, auth=GitHubActionsAuth(audience), **kwargs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.base_url!r}, auth={self.auth!r})"


def request_args(call: Call) -> dict[str, Any]:
    """httpx keyword arguments of a call (its body, when streamed, is added by the driver)."""
    args: dict[str, Any] = {"params": call.params, "headers": dict(call.headers)}
    if call.json is not None:
        args["json"] = call.json
    elif call.form is not None:
        args["data"] = call.form
    elif call.content is not None:
        args["content"] = call.content
    return args


def body_headers(body: Body, headers: dict[str, str]) -> None:
    if body.length is not None:
        headers["Content-Length"] = str(body.length)


def classify(exc: httpx.TransportError) -> ArtifactStoreError:
    return transport_error(
        exc,
        timeout=isinstance(exc, httpx.TimeoutException),
        connect=isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)),
    )


def accepted(call: Call, status: int) -> bool:
    return 200 <= status < 300 or status in call.accept
