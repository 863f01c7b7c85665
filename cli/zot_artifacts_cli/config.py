"""The CLI's configuration: a YAML file of named profiles, environment variables and flags.

Precedence, highest first: command-line flags, environment variables
(``ZOT_ARTIFACTS_URL``, ``ZOT_ARTIFACTS_TOKEN``, ``ZOT_ARTIFACTS_PROFILE``,
``ZOT_ARTIFACTS_CONFIG``), then the selected profile of the config file
(``~/.config/zot-artifacts/config.yaml``)::

    current-profile: default
    profiles:
      default:
        url: https://store.example.com
        token: zat_...                      # or username + password, or oidc: {...}

A profile's credentials are only sent to the profile's own URL: when a flag or the environment
names another server, the profile's credentials are left out.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from zot_artifacts import Auth, BasicAuth, OIDCClientCredentials, TokenAuth

DEFAULT_PROFILE = "default"
ENV_CONFIG = "ZOT_ARTIFACTS_CONFIG"
ENV_PROFILE = "ZOT_ARTIFACTS_PROFILE"
ENV_URL = "ZOT_ARTIFACTS_URL"
ENV_TOKEN = "ZOT_ARTIFACTS_TOKEN"
OIDC_FIELDS = ("token_url", "issuer", "client_id", "client_secret", "scope", "audience")


class ConfigError(Exception):
    """The configuration is missing something or cannot be read."""


def one_line(exc: yaml.YAMLError) -> str:
    """A YAML error as one line: what and where."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return f"{problem} (line {mark.line + 1}, column {mark.column + 1})" if mark else problem


def default_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "zot-artifacts" / "config.yaml"


class ConfigFile:
    """The profiles file. Written atomically with mode 0600 (it holds credentials)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, Any] = {}
        if path.is_file():
            try:
                loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
            except OSError as exc:
                raise ConfigError(f"cannot read the config file {path}: {exc}") from None
            except yaml.YAMLError as exc:
                raise ConfigError(f"the config file {path} is not YAML: {one_line(exc)}") from None
            if loaded is not None and not isinstance(loaded, dict):
                raise ConfigError(f"the config file {path} is not a mapping")
            self.data = loaded or {}
        profiles = self.data.get("profiles")
        if profiles is not None and not isinstance(profiles, dict):
            raise ConfigError(f"{path}: profiles must be a mapping of names to profiles")

    @property
    def profiles(self) -> dict[str, dict[str, Any]]:
        return self.data.setdefault("profiles", {})

    @property
    def current(self) -> str:
        return str(self.data.get("current-profile") or DEFAULT_PROFILE)

    def profile(self, name: str) -> dict[str, Any]:
        found = self.profiles.get(name)
        return dict(found) if isinstance(found, dict) else {}

    def set_profile(self, name: str, profile: dict[str, Any], make_current: bool) -> None:
        self.profiles[name] = profile
        if make_current or "current-profile" not in self.data:
            self.data["current-profile"] = name

    def remove_profile(self, name: str) -> bool:
        removed = self.profiles.pop(name, None) is not None
        if self.data.get("current-profile") == name:
            self.data.pop("current-profile")
        return removed

    def save(self) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".config-", dir=self.path.parent)
        try:
            if hasattr(os, "fchmod"):  # POSIX; mkstemp's file is 0600 already
                os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                yaml.safe_dump(self.data, out, sort_keys=False)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


@dataclass
class Settings:
    """Where to connect and how, after flags, environment and profile are merged."""

    url: str | None
    auth: Auth | None
    profile: str
    config_path: Path
    url_source: str  # flag, env, profile or none
    auth_source: str  # flag, env, profile or none


def profile_auth(profile: dict[str, Any]) -> Auth | None:
    """The credentials a profile holds (token, username + password, or oidc)."""
    if profile.get("token"):
        return TokenAuth(str(profile["token"]))
    if profile.get("username"):
        return BasicAuth(str(profile["username"]), str(profile.get("password") or ""))
    oidc = profile.get("oidc")
    if isinstance(oidc, dict) and oidc.get("client_id"):
        return OIDCClientCredentials(
            str(oidc["client_id"]),
            str(oidc.get("client_secret") or ""),
            issuer=oidc.get("issuer"),
            token_url=oidc.get("token_url"),
            scope=oidc.get("scope"),
            audience=oidc.get("audience"),
        )
    return None


def resolve(
    config: ConfigFile,
    profile_name: str,
    url_flag: str | None,
    token_flag: str | None,
    env: dict[str, str],
) -> Settings:
    """Merge flags > environment > profile into :class:`Settings`."""
    profile = config.profile(profile_name)
    profile_url = str(profile.get("url") or "").rstrip("/") or None
    env_url = env.get(ENV_URL) or None
    if url_flag:
        url, url_source = url_flag.rstrip("/"), "flag"
    elif env_url:
        url, url_source = env_url.rstrip("/"), "env"
    elif profile_url:
        url, url_source = profile_url, "profile"
    else:
        url, url_source = None, "none"
    auth: Auth | None = None
    auth_source = "none"
    if token_flag:
        auth, auth_source = TokenAuth(token_flag), "flag"
    elif env.get(ENV_TOKEN):
        auth, auth_source = TokenAuth(env[ENV_TOKEN]), "env"
    elif url is not None and url == profile_url:
        auth = profile_auth(profile)
        auth_source = "profile" if auth is not None else "none"
    return Settings(url, auth, profile_name, config.path, url_source, auth_source)
