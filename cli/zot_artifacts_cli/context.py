"""What every ``zot-artifacts`` command shares: the resolved options (:class:`State`), the
command group that turns store, file and config errors into one ``error:`` line, and output."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from zot_artifacts import ArtifactStoreError, Auth, Client, OIDCClientCredentials

from .config import ConfigError, ConfigFile, Settings, resolve
from .files import SourceError
from .output import emit

F = TypeVar("F", bound=Callable[..., Any])
EXIT_ERROR = 2
EXIT_NOT_VERIFIED = 1
UNREACHED = ("ConnectError", "ConnectionError", "Timeout")  # the SDK's codes below HTTP


class Failure(click.ClickException):
    """Any error: one ``error: ...`` line on stderr, exit 2."""

    exit_code = EXIT_ERROR

    def show(self, file: Any = None) -> None:
        message = " ".join(line.strip() for line in self.format_message().splitlines())
        click.echo(f"error: {message}", err=True)


def describe(exc: ArtifactStoreError) -> str:
    where = [exc.code]
    if exc.request_id:
        where.append(f"request {exc.request_id}")
    return f"{exc.message} ({', '.join(where)})"


class State:
    """What the group's options resolved to, shared by every command."""

    def __init__(
        self, config_path: Path, profile: str | None, url: str | None, token: str | None
    ) -> None:
        self.config = ConfigFile(config_path)
        self.profile = profile or self.config.current
        self.url_flag = url
        self.token_flag = token
        self.output = "table"
        self.progress = True
        self.timeout = 60.0
        self._client: Client | None = None
        self.target: tuple[str, Auth | None] | None = None  # the store and auth last used

    def connect(self, url: str, auth: Auth | None) -> Client:
        self.target = (url, auth)
        return Client(url, auth=auth, timeout=self.timeout)

    def settings(self) -> Settings:
        return resolve(self.config, self.profile, self.url_flag, self.token_flag, dict(os.environ))

    def client(self) -> Client:
        if self._client is None:
            settings = self.settings()
            if not settings.url:
                raise Failure(
                    "no store URL: run `zot-artifacts login --url URL ...`, "
                    "set ZOT_ARTIFACTS_URL or pass --url"
                )
            self._client = self.connect(settings.url, settings.auth)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


class Group(click.Group):
    """A group whose commands turn every store, file and config error into a Failure."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ArtifactStoreError as exc:
            st = ctx.find_object(State)
            unreached = exc.http_status == 0 and exc.code in UNREACHED
            if unreached and st is not None and st.target is not None:
                url, auth = st.target
                also = (
                    " or its OIDC token endpoint" if isinstance(auth, OIDCClientCredentials) else ""
                )
                raise Failure(f"cannot reach {url}{also}: {describe(exc)}") from None
            raise Failure(describe(exc)) from None
        except (ConfigError, SourceError) as exc:
            raise Failure(str(exc)) from None
        except OSError as exc:
            name = f"{exc.filename}: " if exc.filename else ""
            raise Failure(f"{name}{exc.strerror or exc}") from None


def state() -> State:
    return click.get_current_context().find_object(State)  # type: ignore[return-value]


def out(data: Any, rendered: Any = None) -> None:
    emit(state().output, data, rendered)
