"""``zot-artifacts``: the command line for Zot Artifact Store, built on the Python SDK.

Every store operation goes through :mod:`zot_artifacts` (no HTTP here). Exit codes: 0 done
(``verify``: verified), 1 ``verify`` found the subject not verified, 2 an error (one line on
stderr: ``error: <message> (<code>, request <id>)``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NoReturn

import click
from click.shell_completion import get_completion_class

from zot_artifacts import (
    AccessDeniedError,
    Auth,
    AuthenticationError,
    BasicAuth,
    OIDCClientCredentials,
    TokenAuth,
    __version__,
)

from . import identity, objects, supplychain, webhooks
from .args import read_secret
from .config import ConfigError, default_path, one_line
from .context import (
    EXIT_ERROR,
    Failure,
    Group,
    State,
    describe,
    out,
    state,
)
from .output import FORMATS

# ---- the group ------------------------------------------------------------------------------

EPILOG = """\b
Examples:
  zot-artifacts login --url https://store.example.com --token zat_...
  zot-artifacts upload dist/ builds/app/1.0
  zot-artifacts ls builds/app/ --recursive
  zot-artifacts --output json verify builds/app/1.0/app.tar.gz --policy policy.yaml

\b
Configuration (highest first): flags, environment (ZOT_ARTIFACTS_URL, ZOT_ARTIFACTS_TOKEN,
ZOT_ARTIFACTS_PROFILE, ZOT_ARTIFACTS_CONFIG), the profile in
~/.config/zot-artifacts/config.yaml. Exit codes: 0 ok, 1 not verified, 2 error.
"""


@click.group(cls=Group, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="zot-artifacts", message="%(prog)s %(version)s")
@click.option(
    "--config",
    "config_path",
    envvar="ZOT_ARTIFACTS_CONFIG",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Config file [env ZOT_ARTIFACTS_CONFIG; default ~/.config/zot-artifacts/config.yaml].",
)
@click.option(
    "--profile", envvar="ZOT_ARTIFACTS_PROFILE", help="Profile of the config file to use."
)
@click.option("--url", help="Store URL [env ZOT_ARTIFACTS_URL; else the profile's].")
@click.option("--token", help="API token [env ZOT_ARTIFACTS_TOKEN; else the profile's].")
@click.option(
    "-o",
    "--output",
    type=click.Choice(FORMATS),
    default="table",
    show_default=True,
    envvar="ZOT_ARTIFACTS_OUTPUT",
    help="table for people; json or yaml for scripts.",
)
@click.option("--no-progress", is_flag=True, help="No progress bars (off anyway without a TTY).")
@click.option("--timeout", type=float, default=60.0, show_default=True, help="Seconds per I/O.")
@click.pass_context
def cli(
    ctx: click.Context,
    config_path: Path | None,
    profile: str | None,
    url: str | None,
    token: str | None,
    output: str,
    no_progress: bool,
    timeout: float,
) -> None:
    """The command line for Zot Artifact Store: buckets, artifacts with parallel resumable
    transfers, signatures, SBOMs, attestations and verification."""
    try:
        st = State(config_path or default_path(), profile, url, token)
    except ConfigError as exc:
        raise Failure(str(exc)) from None
    st.output, st.progress, st.timeout = output, not no_progress, timeout
    ctx.obj = st
    ctx.call_on_close(st.close)


# ---- login / logout -------------------------------------------------------------------------


@cli.command(
    epilog="""\b
Examples:
  zot-artifacts login --url https://store.example.com --token zat_...
  echo "$PASSWORD" | zot-artifacts login --url URL --username alice --password-stdin
  echo "$SECRET" | zot-artifacts --profile ci login --url URL \\
      --oidc-token-url https://idp/token --client-id ci --client-secret-stdin
"""
)
@click.option("--url", "login_url", help="Store URL (or the global --url / ZOT_ARTIFACTS_URL).")
@click.option("--token", "login_token", help="API token (zat_...).")
@click.option("--token-stdin", is_flag=True, help="Read the API token from stdin.")
@click.option("--username", help="User for HTTP Basic authentication.")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
@click.option("--oidc-token-url", help="OAuth 2 token endpoint (client credentials).")
@click.option("--oidc-issuer", help="OpenID issuer (its token endpoint is discovered).")
@click.option("--client-id", help="OAuth 2 client id.")
@click.option("--client-secret-stdin", is_flag=True, help="Read the client secret from stdin.")
@click.option("--scope", help="OAuth 2 scope to ask for.")
@click.option("--audience", help="OAuth 2 audience to ask for.")
def login(
    login_url: str | None,
    login_token: str | None,
    token_stdin: bool,
    username: str | None,
    password_stdin: bool,
    oidc_token_url: str | None,
    oidc_issuer: str | None,
    client_id: str | None,
    client_secret_stdin: bool,
    scope: str | None,
    audience: str | None,
) -> None:
    """Check credentials and save them in a profile.

    The credentials are checked against the store first, then saved in the profile
    (--profile, default: the current one) of the config file, written with mode 0600.

    Give the URL with --url (or ZOT_ARTIFACTS_URL) and exactly one of: a token
    (--token or --token-stdin), --username with --password-stdin, or OAuth 2 client
    credentials (--oidc-token-url or --oidc-issuer, --client-id, --client-secret-stdin)."""
    st = state()
    url = login_url or st.url_flag or os.environ.get("ZOT_ARTIFACTS_URL")
    if not url:
        raise click.UsageError("login needs the store URL: zot-artifacts login --url URL ...")
    url = url.rstrip("/")
    token = login_token or st.token_flag or (read_secret("the token") if token_stdin else None)
    oidc = bool(oidc_token_url or oidc_issuer or client_id)
    if sum([bool(token), bool(username), oidc]) != 1:
        raise click.UsageError(
            "give one way to log in: --token, --username with --password-stdin, "
            "or --client-id with --oidc-token-url/--oidc-issuer and --client-secret-stdin"
        )
    profile: dict[str, Any] = {"url": url}
    auth: Auth
    if token:
        auth, profile["token"], kind = TokenAuth(token), token, "token"
    elif username:
        if not password_stdin:
            raise click.UsageError("--username needs --password-stdin")
        password = read_secret("the password")
        auth, kind = BasicAuth(username, password), "basic"
        profile.update(username=username, password=password)
    else:
        if not client_id or not client_secret_stdin or not (oidc_token_url or oidc_issuer):
            raise click.UsageError(
                "OIDC login needs --client-id, --client-secret-stdin and "
                "--oidc-token-url or --oidc-issuer"
            )
        secret = read_secret("the client secret")
        settings = {
            "token_url": oidc_token_url,
            "issuer": oidc_issuer,
            "client_id": client_id,
            "client_secret": secret,
            "scope": scope,
            "audience": audience,
        }
        profile["oidc"] = {k: v for k, v in settings.items() if v}
        auth, kind = (
            OIDCClientCredentials(
                client_id,
                secret,
                issuer=oidc_issuer,
                token_url=oidc_token_url,
                scope=scope,
                audience=audience,
            ),
            "oidc",
        )
    with st.connect(url, auth) as client:
        try:
            client.list_buckets()
        except AuthenticationError as exc:
            raise Failure(f"the store refused these credentials: {describe(exc)}") from None
        except AccessDeniedError:
            pass  # authenticated, only not allowed to list buckets
    st.config.set_profile(st.profile, profile, make_current=True)
    st.config.save()
    data = {"profile": st.profile, "url": url, "auth": kind, "config": str(st.config.path)}
    out(data, f"Logged in to {url} ({kind}); saved as profile {st.profile!r} in {st.config.path}")


@cli.command(epilog="\b\nExamples:\n  zot-artifacts logout\n  zot-artifacts --profile ci logout")
def logout() -> None:
    """Remove a profile and its credentials.

    The profile is --profile, default: the current one."""
    st = state()
    removed = st.config.remove_profile(st.profile)
    if removed:
        st.config.save()
    data = {"profile": st.profile, "removed": removed}
    out(data, f"Removed profile {st.profile!r}" if removed else f"No profile {st.profile!r}")


for _command in (*objects.COMMANDS, *supplychain.COMMANDS, *identity.COMMANDS, webhooks.webhook):
    cli.add_command(_command)


# ---- shell completion -----------------------------------------------------------------------


@cli.command(
    epilog="""\b
Examples:
  zot-artifacts completion bash > ~/.local/share/bash-completion/completions/zot-artifacts
  zot-artifacts completion zsh > "${fpath[1]}/_zot-artifacts"
  zot-artifacts completion fish > ~/.config/fish/completions/zot-artifacts.fish
"""
)
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the shell completion script for SHELL."""
    completer = get_completion_class(shell)
    assert completer is not None
    script = completer(cli, {}, "zot-artifacts", "_ZOT_ARTIFACTS_COMPLETE").source()
    click.echo(script)


def main(argv: list[str] | None = None) -> NoReturn:
    try:
        cli.main(args=argv, prog_name="zot-artifacts")
    except Exception as exc:
        # Whatever went unforeseen is an error (2), never "not verified" (1) with a traceback.
        click.echo(f"error: {type(exc).__name__}: {one_line(exc)}", err=True)
        raise SystemExit(EXIT_ERROR) from None
    raise SystemExit(0)  # pragma: no cover - click exits itself


if __name__ == "__main__":
    main()
