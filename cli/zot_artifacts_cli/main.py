"""``zot-artifacts``: the command line for Zot Artifact Store, built on the Python SDK.

Every store operation goes through :mod:`zot_artifacts` (no HTTP here). Exit codes: 0 done
(``verify``: verified), 1 ``verify`` found the subject not verified, 2 an error (one line on
stderr: ``error: <message> (<code>, request <id>)``)."""

from __future__ import annotations

import codecs
import mimetypes
import os
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import click
import yaml
from click.shell_completion import get_completion_class

from zot_artifacts import (
    AccessDeniedError,
    Auth,
    AuthenticationError,
    BasicAuth,
    Client,
    OIDCClientCredentials,
    PreconditionFailedError,
    Subject,
    TokenAuth,
    UploadProgress,
    VerificationResult,
    __version__,
)

from . import webhooks
from .config import ConfigError, default_path, one_line
from .context import (
    EXIT_ERROR,
    EXIT_NOT_VERIFIED,
    F,
    Failure,
    Group,
    State,
    describe,
    out,
    state,
)
from .files import collect
from .output import FORMATS, human_size, plain, progress_bar, table

# ---- arguments ------------------------------------------------------------------------------


def split_ref(ref: str, need_key: bool = True) -> tuple[str, str]:
    """``bucket/key`` -> (bucket, key)."""
    bucket, _, key = ref.partition("/")
    if not bucket or (need_key and not key):
        raise click.BadParameter(f"{ref!r} is not BUCKET/KEY", param_hint="BUCKET/KEY")
    return bucket, key


def pick_subject(ref: str | None, image: str | None, digest: str | None) -> Subject:
    given = [x for x in (ref, image, digest) if x]
    if len(given) != 1:
        raise click.UsageError("name the subject once: BUCKET/KEY, --image REPO@DIGEST or --digest")
    if image:
        repository, sep, image_digest = image.rpartition("@")
        if not sep or not repository or not image_digest:
            raise click.BadParameter(
                f"{image!r} is not REPOSITORY@sha256:...", param_hint="--image"
            )
        return Subject.image(repository, image_digest)
    if digest:
        return Subject.digest(digest)
    assert ref is not None
    return Subject.object(*split_ref(ref))


def subject_options(func: F) -> F:
    func = click.option(
        "--digest", metavar="sha256:HEX", help="The subject is this digest (any content)."
    )(func)
    func = click.option(
        "--image", metavar="REPO@DIGEST", help="The subject is this OCI image manifest."
    )(func)
    return func


class _DocumentLoader(yaml.SafeLoader):
    """YAML as JSON sees it: ``released: 2024-01-01`` stays the text it was written as
    (YAML 1.1 would make it a date, which no JSON request can carry)."""


_DocumentLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_document(path: str) -> Any:
    """A JSON or YAML file (``-`` = stdin), UTF-8 (a UTF-8 or UTF-16 byte-order mark is
    honoured, as PowerShell writes one)."""
    try:
        raw = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
        if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            text = raw.decode("utf-16")
        else:
            text = raw.decode("utf-8-sig")
        return yaml.load(text, Loader=_DocumentLoader)  # a SafeLoader
    except OSError as exc:
        raise Failure(f"{path}: cannot read: {one_line(exc)}") from None
    except UnicodeDecodeError as exc:
        raise Failure(f"{path}: not UTF-8 or UTF-16 text: {one_line(exc)}") from None
    except yaml.YAMLError as exc:
        raise Failure(f"{path}: not JSON or YAML: {one_line(exc)}") from None


def load_policy(path: str) -> dict[str, Any]:
    policy = load_document(path)
    if not isinstance(policy, dict):
        raise Failure(f"{path}: a policy is a mapping (signatures, sbom, ...)")
    return policy


def policy_option(name: str) -> Callable[[F], F]:
    return click.option(
        name,
        "policy_file",
        required=True,
        type=click.Path(exists=True, dir_okay=False, allow_dash=True),
        help="The policy, JSON or YAML (- = stdin): signatures, threshold, sbom, attestations.",
    )


def labels_option(func: F) -> F:
    return click.option(
        "--label", "labels", multiple=True, metavar="K=V", help="A label (repeatable)."
    )(func)


def parse_labels(items: tuple[str, ...]) -> dict[str, str] | None:
    labels = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--label")
        labels[key] = value
    return labels or None


def read_secret(what: str) -> str:
    value = sys.stdin.readline().rstrip("\r\n")
    if not value:
        raise click.UsageError(f"{what} expected on stdin, got nothing")
    return value


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


# ---- buckets --------------------------------------------------------------------------------


@cli.group(cls=Group)
def bucket() -> None:
    """Create, list and delete buckets."""


def bucket_table(buckets: list[Any]) -> Any:
    rows = [(b.name, b.created_at, "yes" if b.public_read else "", b.owner) for b in buckets]
    return table(["NAME", "CREATED", "PUBLIC", "OWNER"], rows)


@bucket.command("create", epilog="\b\nExamples:\n  zot-artifacts bucket create builds")
@click.argument("name")
@click.option("--exist-ok", is_flag=True, hidden=True, help="Accepted; the default.")
@click.option("--public-read", is_flag=True, default=None, help="Anyone may read it.")
@click.option(
    "--web/--no-web",
    default=None,
    help="Serve HTML, SVG, scripts… inline as a static site (default: as attachments).",
)
@labels_option
def bucket_create(
    name: str, exist_ok: bool, public_read: bool | None, web: bool | None, labels: tuple[str, ...]
) -> None:
    """Create the bucket NAME; yours already: it stays (with the settings given), as
    PUT /v1/buckets/NAME does. Another owner's: BucketAlreadyExists."""
    created = (
        state()
        .client()
        .create_bucket(name, True, public_read=public_read, labels=parse_labels(labels), web=web)
    )
    out(plain(created), f"Bucket {created.name} ready")


@bucket.command("list", epilog="\b\nExamples:\n  zot-artifacts bucket list")
def bucket_list() -> None:
    """List the buckets you may see."""
    buckets = state().client().list_buckets()
    out({"buckets": plain(buckets)}, bucket_table(buckets))


@bucket.command("delete", epilog="\b\nExamples:\n  zot-artifacts bucket delete scratch --recursive")
@click.argument("name")
@click.option("--recursive", is_flag=True, help="Delete its objects first.")
def bucket_delete(name: str, recursive: bool) -> None:
    """Delete the bucket NAME (it must be empty unless --recursive)."""
    state().client().delete_bucket(name, recursive=recursive)
    out({"deleted": name}, f"Deleted bucket {name}")


# ---- objects --------------------------------------------------------------------------------


@contextmanager
def transfers() -> Iterator[Callable[[str, int | None], Callable[[UploadProgress], None]]]:
    """``track(label, total)`` -> a progress callback drawing one bar on stderr."""
    with progress_bar(state().progress) as bars:

        def track(label: str, total: int | None) -> Callable[[UploadProgress], None]:
            task = bars.add_task(label, total=total)

            def update(p: UploadProgress) -> None:
                bars.update(task, completed=p.bytes_done, total=p.total or total)

            return update

        yield track


def object_rows(objects: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    return [
        (o["key"], human_size(o["size"]), o["sha256"], str(o.get("updated_at") or ""))
        for o in objects
    ]


class Duration(click.ParamType):
    """Seconds, or a number with a unit: ``90s``, ``30m``, ``12h``, ``7d``."""

    name = "duration"
    UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        text = str(value).strip().lower()
        unit = self.UNITS.get(text[-1:], 0)
        number = text[:-1] if unit else text
        if not (number.isascii() and number.isdigit()) or int(number) < 1:
            self.fail(f"{value!r} is not a duration such as 3600, 90m, 12h or 7d", param, ctx)
        return int(number) * (unit or 1)


@cli.command(
    epilog="""\b
Examples:
  zot-artifacts upload app.tar.gz builds                 # -> builds/app.tar.gz
  zot-artifacts upload dist/ builds/app/1.0              # dist/x/y -> app/1.0/x/y
  zot-artifacts upload 'dist/**/*.whl' builds/wheels     # the CLI expands the glob
  zot-artifacts upload dist/*.whl builds --key-prefix wheels/1.0
  zot-artifacts upload report.html builds --key reports/latest.html
  zot-artifacts upload app.tar.gz builds/app/1.0/app.tar.gz  # one file: its exact key
  zot-artifacts upload app.tar.gz builds/app/1.0/            # into a folder: app/1.0/app.tar.gz
  zot-artifacts upload --expires-in 7d report.html builds/pr-42  # removed in 7 days
"""
)
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@click.argument("dest", metavar="BUCKET[/PREFIX]")
@click.option("--key", help="The exact key (one file only).")
@click.option("--key-prefix", help="Prefix for every key (same as BUCKET/PREFIX).")
@click.option("--include-hidden", is_flag=True, help="Also send dotfiles found in directories.")
@click.option(
    "--parallel",
    type=click.IntRange(1, 64),
    default=4,
    show_default=True,
    help="Files (and parts of a large file) sent at once.",
)
@click.option("--content-type", help="Content type (default: guessed from the name).")
@click.option(
    "--no-overwrite", is_flag=True, help="Never replace an existing object (412 if one exists)."
)
@click.option(
    "--expires-in",
    type=Duration(),
    help="The store removes the objects this long after the upload (3600, 90m, 12h, 7d).",
)
@labels_option
def upload(
    paths: tuple[str, ...],
    dest: str,
    key: str | None,
    key_prefix: str | None,
    include_hidden: bool,
    parallel: int,
    content_type: str | None,
    no_overwrite: bool,
    expires_in: int | None,
    labels: tuple[str, ...],
) -> None:
    """Upload files, directories and globs.

    One file to BUCKET/NAME is stored as the key NAME, as aws s3 cp does; BUCKET/DIR/ (with
    the slash) or BUCKET keeps the file's name under DIR/. Directories go recursively (keys
    relative to the directory) and globs are expanded here, under PREFIX when given; dotfiles
    inside directories and globs are skipped unless --include-hidden. Large files go up in
    parallel parts and an interrupted upload resumes. Prints each key with its size and
    sha256.

    Several files (without --no-overwrite, --label or --expires-in): the store is asked once
    what it already has; files it holds under their key are skipped, content it holds under
    another key you may read is linked without a transfer, and only the rest is sent (the
    RESULT column and the uploaded/skipped/linked counts say which)."""
    bucket_name, _, prefix = dest.partition("/")
    if (
        key is None
        and key_prefix is None
        and len(paths) == 1
        and prefix
        and not prefix.endswith("/")
        and Path(paths[0]).is_file()
    ):
        key = prefix  # one file, a destination without a trailing slash: its key
        prefix = ""
    if key_prefix is not None:
        if prefix:
            raise click.UsageError("give the prefix once: BUCKET/PREFIX or --key-prefix")
        prefix = key_prefix
    prefix = prefix.strip("/")
    files = collect(list(paths), include_hidden)
    if not files:
        raise Failure("nothing to upload (only hidden files? use --include-hidden)")
    if key is not None:
        if len(files) != 1:
            raise click.UsageError("--key needs exactly one file")
        keys = [(files[0][0], key)]
    else:
        keys = [(path, f"{prefix}/{rel}" if prefix else rel) for path, rel in files]
    client = state().client()
    labels_map = parse_labels(labels)
    if len(keys) > 1 and not no_overwrite and not labels_map and expires_in is None:
        upload_planned(client, bucket_name, keys, content_type, parallel)
        return
    results: dict[str, dict[str, Any]] = {}
    with transfers() as track, ThreadPoolExecutor(max_workers=parallel) as pool:

        def send(path: Path, object_key: str) -> None:
            kind = content_type or mimetypes.guess_type(path.name)[0]
            try:
                info = client.upload(
                    bucket_name,
                    object_key,
                    path,
                    content_type=kind,
                    labels=labels_map,
                    parallel=parallel,
                    progress=track(object_key, path.stat().st_size),
                    overwrite=not no_overwrite,
                    expires_in=expires_in,
                )
            except PreconditionFailedError as exc:
                if not no_overwrite:
                    raise
                raise Failure(
                    f"{bucket_name}/{object_key} exists already; --no-overwrite leaves it as it "
                    f"is ({exc.code})"
                ) from None
            results[object_key] = {**plain(info), "path": str(path)}

        futures = [pool.submit(send, path, object_key) for path, object_key in keys]
        _, pending = wait(futures, return_when=FIRST_EXCEPTION)
        for future in pending:
            future.cancel()
        for future in futures:
            if future.done() and not future.cancelled() and future.exception():
                raise future.exception()  # type: ignore[misc]
    objects = [results[k] for _, k in keys]
    total = sum(o["size"] for o in objects)
    out(
        {"bucket": bucket_name, "objects": objects},
        table(
            ["KEY", "SIZE", "SHA256"],
            [(o["key"], human_size(o["size"]), o["sha256"]) for o in objects],
            title=f"{len(objects)} file(s), {human_size(total)} uploaded to {bucket_name}",
        ),
    )


def upload_planned(
    client: Client,
    bucket: str,
    keys: list[tuple[Path, str]],
    content_type: str | None,
    parallel: int,
) -> None:
    """Many files: the store is asked once (``POST /v1/batch``) what it needs. Keys that
    already hold the file are skipped, content it holds elsewhere (readable by you) is linked
    server-side, and only the rest is sent, ``parallel`` at a time."""
    files = {object_key: path for path, object_key in keys}
    kinds = {k: content_type or mimetypes.guess_type(p.name)[0] for p, k in keys}
    with transfers() as track:
        bars: dict[str, Callable[[UploadProgress], None]] = {}

        def progress(p: UploadProgress) -> None:
            if p.key not in bars:
                bars[p.key] = track(p.key, p.total)
            bars[p.key](p)

        done = client.upload_many(
            bucket, files, content_types=kinds, parallel=parallel, progress=progress
        )
    infos = {o.key: (o, "uploaded") for o in done.uploaded}
    skipped = [*done.present, *done.linked]
    if skipped:
        for item in client.batch_head(bucket, skipped).keys:
            if item.object is not None:
                outcome = "skipped" if item.key in done.present else "linked"
                infos[item.key] = (item.object, outcome)
    objects = [
        {**plain(infos[k][0]), "path": str(path), "result": infos[k][1]}
        for path, k in keys
        if k in infos
    ]
    counts = {
        "uploaded": len(done.uploaded),
        "skipped": len(done.present),
        "linked": len(done.linked),
        "failed": len(done.failed),
    }
    total = sum(o["size"] for o in objects)
    out(
        {"bucket": bucket, "objects": objects, **counts},
        table(
            ["KEY", "SIZE", "SHA256", "RESULT"],
            [(o["key"], human_size(o["size"]), o["sha256"], o["result"]) for o in objects],
            title=f"{len(objects)} file(s), {human_size(total)} in {bucket}: "
            f"{counts['uploaded']} uploaded, {counts['skipped']} skipped (already there), "
            f"{counts['linked']} linked (same content stored elsewhere)",
        ),
    )
    if done.failed:
        raise Failure(
            f"{len(done.failed)} file(s) not uploaded: "
            + "; ".join(f"{k}: {e.message} ({e.code})" for k, e in done.failed.items())
        )


@cli.command(
    epilog="""\b
Examples:
  zot-artifacts download builds/app/1.0/app.tar.gz
  zot-artifacts download builds/app/1.0/app.tar.gz /tmp/
"""
)
@click.argument("ref", metavar="BUCKET/KEY")
@click.argument("dest", required=False, metavar="[DEST]")
@click.option("--no-resume", is_flag=True, help="Start over instead of continuing DEST.part.")
@click.option(
    "--range",
    "byte_range",
    metavar="FIRST-LAST",
    help="Only these bytes, as curl -r counts them: 0-99 (the first 100), 100- (from byte 100 "
    "on), -100 (the last 100).",
)
def download(ref: str, dest: str | None, no_resume: bool, byte_range: str | None) -> None:
    """Download an object, resuming an interrupted download.

    DEST defaults to the object's name in the current directory; a directory gets the
    object's name inside it. Bytes go to DEST.part, renamed when complete and
    checked against the store's sha256; an interrupted download resumes from DEST.part.
    With --range only those bytes are written (not checked against the object's sha256)."""
    bucket_name, key = split_ref(ref)
    name = key.rsplit("/", 1)[-1]
    target = Path(dest) if dest else Path(name)
    if target.is_dir() or (dest or "").endswith(("/", os.sep)):
        target = target / name
    target.parent.mkdir(parents=True, exist_ok=True)
    client = state().client()
    offset, length = 0, None
    if byte_range is not None:
        offset, length = parse_range(byte_range, lambda: client.head(bucket_name, key).size)
    with transfers() as track:
        info = client.download(
            bucket_name, key, target, progress=track(key, None), resume=not no_resume,
            offset=offset, length=length,
        )  # fmt: skip
    data = {**plain(info), "path": str(target)}
    if byte_range is not None:
        data["range"] = {"offset": offset, "length": info.size}
        out(data, f"{ref} bytes {offset}-{offset + info.size - 1} -> {target}")
        return
    out(data, f"{ref} -> {target} ({human_size(info.size)}, sha256 {info.sha256})")


def parse_range(text: str, size: Callable[[], int]) -> tuple[int, int | None]:
    """``FIRST-LAST`` (inclusive), ``FIRST-`` or ``-SUFFIX`` as (offset, length or None);
    ``size()`` is asked only for a suffix."""
    first, dash, last = text.strip().partition("-")
    try:
        if not dash or (not first and not last):
            raise ValueError
        if not first:
            suffix = int(last)
            if suffix <= 0:
                raise ValueError
            total = size()
            return max(0, total - suffix), min(suffix, total) or None
        start = int(first)
        if start < 0:
            raise ValueError
        if not last:
            return start, None
        end = int(last)
        if end < start:
            raise ValueError
        return start, end - start + 1
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not FIRST-LAST, FIRST- or -SUFFIX (bytes, counted from 0)",
            param_hint="--range",
        ) from None


@cli.command(
    epilog="""\b
Examples:
  zot-artifacts ls                      # the buckets
  zot-artifacts ls builds/app/          # one level: objects and sub-prefixes
  zot-artifacts ls builds --prefix app/ --recursive
"""
)
@click.argument("target", required=False, metavar="[BUCKET[/PREFIX]]")
@click.option("--prefix", help="Only keys starting with this (same as BUCKET/PREFIX).")
@click.option("-r", "--recursive", is_flag=True, help="Every key below, not one level.")
def ls(target: str | None, prefix: str | None, recursive: bool) -> None:
    """List objects (or buckets).

    The objects of a bucket under a prefix, one level ("/" delimited) unless --recursive; the
    buckets when no bucket is named."""
    client = state().client()
    if not target:
        buckets = client.list_buckets()
        out({"buckets": plain(buckets)}, bucket_table(buckets))
        return
    bucket_name, _, ref_prefix = target.partition("/")
    if ref_prefix and prefix:
        raise click.UsageError("give the prefix once: BUCKET/PREFIX or --prefix")
    prefix = ref_prefix or prefix or ""
    objects = plain(list(client.list(bucket_name, prefix, recursive=recursive)))
    prefixes = [] if recursive else client.list_prefixes(bucket_name, prefix)
    rows = [(p, "-", "", "") for p in prefixes] + object_rows(objects)
    out(
        {"bucket": bucket_name, "prefix": prefix, "objects": objects, "prefixes": prefixes},
        table(["KEY", "SIZE", "SHA256", "UPDATED"], rows),
    )


@cli.command(epilog="\b\nExamples:\n  zot-artifacts head builds/app/1.0/app.tar.gz")
@click.argument("ref", metavar="BUCKET/KEY")
def head(ref: str) -> None:
    """Show an object's metadata: size, sha256, content type, labels."""
    info = state().client().head(*split_ref(ref))
    data = plain(info)
    rows = [(k, v) for k, v in data.items() if k not in ("labels",)]
    rows += [(f"label {k}", v) for k, v in info.labels.items()]
    out(data, table(["FIELD", "VALUE"], rows))


@cli.command(epilog="\b\nExamples:\n  zot-artifacts rm builds/tmp/a.txt builds/tmp/b.txt")
@click.argument("refs", nargs=-1, required=True, metavar="BUCKET/KEY...")
def rm(refs: tuple[str, ...]) -> None:
    """Delete objects."""
    client = state().client()
    deleted = []
    for ref in refs:
        bucket_name, key = split_ref(ref)
        client.delete(bucket_name, key)
        deleted.append({"bucket": bucket_name, "key": key})
    out({"deleted": deleted}, "\n".join(f"Deleted {d['bucket']}/{d['key']}" for d in deleted))


@cli.command(
    epilog="""\b
Examples:
  zot-artifacts cp builds/app/1.0/app.tar.gz releases/app/1.0/app.tar.gz
  zot-artifacts cp builds/app/1.0/app.tar.gz releases     # same key in releases
"""
)
@click.argument("src", metavar="SRC_BUCKET/KEY")
@click.argument("dst", metavar="DST_BUCKET[/KEY]")
def cp(src: str, dst: str) -> None:
    """Copy an object inside the store.

    No bytes pass through this machine. Without a KEY the copy keeps the source's key."""
    src_bucket, src_key = split_ref(src)
    dst_bucket, _, dst_key = dst.partition("/")
    info = state().client().copy(src_bucket, src_key, dst_bucket, dst_key or src_key)
    out(plain(info), f"{src} -> {dst_bucket}/{info.key}")


@cli.command(
    epilog="""\b
Examples:
  zot-artifacts presign builds/app/1.0/app.tar.gz --expires-in 600
  curl -T app.tar.gz "$(zot-artifacts presign builds/upload/app.tar.gz --method PUT)"
"""
)
@click.argument("ref", metavar="BUCKET/KEY")
@click.option(
    "--method",
    type=click.Choice(["GET", "HEAD", "PUT"], case_sensitive=False),
    default="GET",
    show_default=True,
)
@click.option(
    "--expires-in",
    type=click.IntRange(1, 7 * 86400),
    default=3600,
    show_default=True,
    help="Seconds the URL stays valid.",
)
def presign(ref: str, method: str, expires_in: int) -> None:
    """Print a URL to an object that needs no credentials.

    The URL allows METHOD (GET, HEAD or PUT) until it expires."""
    bucket_name, key = split_ref(ref)
    method = method.upper()
    url = state().client().presign(bucket_name, key, method=method, expires_in=expires_in)
    data = {
        "url": url,
        "method": method,
        "expires_in": expires_in,
        "bucket": bucket_name,
        "key": key,
    }
    out(data, url)


# ---- supply chain ---------------------------------------------------------------------------


def evidence_out(evidence: Any) -> None:
    data = plain(evidence)
    out(
        data,
        f"{evidence.kind} {evidence.id} ({evidence.format}) attached to "
        f"{evidence.subject or evidence.subject_digest} {evidence.subject_digest}",
    )


@cli.command(
    epilog="""\b
Examples:
  zot-artifacts sign builds/app/1.0/app.tar.gz
  zot-artifacts sign --image apps/web@sha256:4f1c...
  zot-artifacts sign builds/app.tar.gz --predicate-type https://slsa.dev/provenance/v1 \\
      --predicate provenance.json
"""
)
@click.argument("ref", required=False, metavar="[BUCKET/KEY]")
@subject_options
@click.option("--predicate-type", help="Sign an attestation of this predicate type.")
@click.option(
    "--predicate",
    type=click.Path(exists=True, dir_okay=False, allow_dash=True),
    help="The attestation's predicate (JSON or YAML file).",
)
def sign(
    ref: str | None,
    image: str | None,
    digest: str | None,
    predicate_type: str | None,
    predicate: str | None,
) -> None:
    """Have the store sign a subject with its own key.

    Server-side signing makes a signature, or with --predicate-type and --predicate a signed
    attestation. The subject is BUCKET/KEY, --image or --digest."""
    if bool(predicate_type) != bool(predicate):
        raise click.UsageError("--predicate-type and --predicate go together")
    subject = pick_subject(ref, image, digest)
    body = load_document(predicate) if predicate else None
    evidence_out(state().client().sign(subject, predicate_type=predicate_type, predicate=body))


@cli.command(
    epilog="""\b
Examples:
  zot-artifacts provenance builds/app/1.0/app.tar.gz builds/app/1.0/app.sbom.json
"""
)
@click.argument("refs", nargs=-1, required=True, metavar="BUCKET/KEY...")
def provenance(refs: tuple[str, ...]) -> None:
    """Have the store build, sign and attach SLSA provenance for what you uploaded.

    The store writes the provenance itself from what it verified — in a CI job that exchanged
    its OIDC token (GitHub Actions, a Kubernetes service account), the token's repository,
    workflow, commit and run — and signs it with its own key: one statement names every file.
    Only files this identity uploaded (in a CI job: in this job) are accepted."""
    evidence = state().client().provenance([split_ref(ref) for ref in refs])
    out(
        {"evidence": [plain(e) for e in evidence]},
        "\n".join(
            f"{e.kind} {e.id} (SLSA provenance v1) attached to {e.subject or e.subject_digest}"
            for e in evidence
        ),
    )


@cli.group(cls=Group)
def attach() -> None:
    """Attach an SBOM, an attestation or a signature to a subject."""


def attach_command(kind: str, doc: str, example: str) -> None:
    @attach.command(kind, help=doc, epilog=f"\b\nExamples:\n  {example}")
    @click.argument("args", nargs=-1, required=True, metavar="[BUCKET/KEY] FILE")
    @subject_options
    @click.option("--content-type", help="The document's media type (default: detected).")
    def command(
        args: tuple[str, ...], image: str | None, digest: str | None, content_type: str | None
    ) -> None:
        if len(args) > 2:
            raise click.UsageError("expected [BUCKET/KEY] FILE")
        ref, file = (args[0], args[1]) if len(args) == 2 else (None, args[0])
        subject = pick_subject(ref, image, digest)
        data = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
        client = state().client()
        if kind == "sbom":
            evidence = client.attach_sbom(subject, data, content_type)
        elif kind == "signature":
            evidence = client.attach_signature(subject, data, content_type)
        else:
            evidence = client.attach_attestation(subject, data)
        evidence_out(evidence)


attach_command(
    "sbom",
    "Attach an SBOM.\n\nCycloneDX (JSON or XML) or SPDX JSON.",
    "zot-artifacts attach sbom builds/app/1.0/app.tar.gz sbom.cdx.json",
)
attach_command(
    "attestation",
    "Attach an in-toto attestation.\n\nA signed DSSE envelope or a Sigstore bundle.",
    "zot-artifacts attach attestation builds/app/1.0/app.tar.gz provenance.intoto.json",
)
attach_command(
    "signature",
    "Attach a signature.\n\nA Sigstore bundle, a DSSE envelope or a raw base64 signature.",
    "zot-artifacts attach signature --digest sha256:4f1c... app.sig",
)


def verification_text(result: VerificationResult) -> str:
    verdict = "verified" if result.verified else "NOT verified"
    lines = [f"{result.subject or result.subject_digest} {result.subject_digest}: {verdict}"]
    for rule in result.rules:
        mark = "PASS" if rule.passed else "FAIL"
        lines.append(f"  {mark}  {rule.rule}: {rule.reason}")
    return "\n".join(lines)


@cli.command(
    epilog="""\b
Examples:
  zot-artifacts verify builds/app/1.0/app.tar.gz --policy policy.yaml
  zot-artifacts --output json verify --digest sha256:4f1c... --policy policy.json
  zot-artifacts verify builds/app/1.0/app.tar.gz builds/app/1.0/app.whl --policy policy.yaml

\b
Exit codes: 0 verified (every subject), 1 not verified (the failing rules' reasons are
printed), 2 error (for several subjects: one could not be verified, e.g. it does not exist).
"""
)
@click.argument("refs", nargs=-1, metavar="[BUCKET/KEY...]")
@subject_options
@policy_option("--policy")
@click.option("--vsa", is_flag=True, help="Have the store issue a signed VSA when it passes.")
def verify(
    refs: tuple[str, ...], image: str | None, digest: str | None, policy_file: str, vsa: bool
) -> None:
    """Check subjects against a policy.

    Prints each rule with PASS or FAIL and its reason. The subject is BUCKET/KEY, --image or
    --digest; several BUCKET/KEY are checked in one request (POST /v1/batch/verify)."""
    if len(refs) <= 1:
        subject = pick_subject(refs[0] if refs else None, image, digest)
        policy = load_policy(policy_file)
        result = state().client().verify(subject, policy, issue_vsa=vsa)
        out(plain(result), verification_text(result))
        if not result.verified:
            click.get_current_context().exit(EXIT_NOT_VERIFIED)
        return
    if image or digest:
        raise click.UsageError("name the subject once: several BUCKET/KEY, or one --image/--digest")
    subjects = [pick_subject(ref, None, None) for ref in refs]
    policy = load_policy(policy_file)
    checked = state().client().batch_verify(subjects, policy, issue_vsa=vsa)
    texts = []
    for subject, item in zip(subjects, checked.subjects):
        if item.verification is not None:
            texts.append(verification_text(item.verification))
        else:
            name = "/".join(subject.to_json().values())
            error = item.error
            texts.append(f"{name}: ERROR {error.message} ({error.code})" if error else name)
    c = checked.counts
    texts.append(
        f"{len(subjects)} subject(s): {c.get('passed', 0)} verified, {c.get('failed', 0)} NOT "
        f"verified, {c.get('error', 0)} error(s)"
    )
    out(plain(checked), "\n".join(texts))
    if c.get("error"):
        click.get_current_context().exit(EXIT_ERROR)
    if not checked.verified:
        click.get_current_context().exit(EXIT_NOT_VERIFIED)


@cli.group(cls=Group)
def evidence() -> None:
    """List and fetch a subject's signatures, SBOMs, attestations."""


@evidence.command(
    "list",
    epilog="\b\nExamples:\n  zot-artifacts evidence list builds/app/1.0/app.tar.gz\n"
    "  zot-artifacts evidence list --image apps/web@sha256:4f1c... --kind signatures",
)
@click.argument("ref", required=False, metavar="[BUCKET/KEY]")
@subject_options
@click.option(
    "--kind", type=click.Choice(["signatures", "sboms", "attestations"]), help="Only this kind."
)
def evidence_list(ref: str | None, image: str | None, digest: str | None, kind: str | None) -> None:
    """Evidence attached to a subject (BUCKET/KEY, --image or --digest)."""
    items = state().client().list_evidence(pick_subject(ref, image, digest), kind)
    out(
        {"evidence": plain(items)},
        table(
            ["ID", "KIND", "FORMAT", "CREATED", "BY"],
            [(e.id, e.kind, e.format, e.created_at, e.created_by) for e in items],
        ),
    )


@evidence.command(
    "get", epilog="\b\nExamples:\n  zot-artifacts evidence get 3f9c0a1b... -o bundle.json"
)
@click.argument("evidence_id", metavar="ID")
@click.option("-o", "--output-file", "dest", metavar="FILE", help="Write here (default: stdout).")
def evidence_get(evidence_id: str, dest: str | None) -> None:
    """The document exactly as attached."""
    body = state().client().get_evidence(evidence_id)
    if dest is None:
        sys.stdout.buffer.write(body)
        sys.stdout.flush()
    else:
        Path(dest).write_bytes(body)
        out({"id": evidence_id, "path": dest, "size": len(body)}, f"{len(body)} B -> {dest}")


@cli.group(cls=Group)
def key() -> None:
    """Public keys trusted to sign evidence (admins).

    Signatures and attestations count in policies when a trusted key verifies them."""


def key_rows(keys: list[Any]) -> list[tuple[Any, ...]]:
    return [
        (k.id[:16], k.name, k.algorithm, k.scope or "*", k.expires_at or "", k.revoked_at or "")
        for k in keys
    ]


KEY_COLUMNS = ["ID", "NAME", "ALGORITHM", "SCOPE", "EXPIRES", "REVOKED"]


@key.command(
    "add",
    epilog="\b\nExamples:\n  zot-artifacts key add cosign.pub --name release\n"
    "  zot-artifacts key add ci.pub --name ci --scope bucket:nightly --expires-in 2592000",
)
@click.argument("public_key", type=click.Path(exists=True, dir_okay=False), metavar="PEM_FILE")
@click.option("--name", required=True, help="What the key is for.")
@click.option("--scope", default="", help="bucket:<name> or repo:<name> (default: everywhere).")
@click.option("--expires-in", type=click.IntRange(1), help="Seconds until it is no longer trusted.")
def key_add(public_key: str, name: str, scope: str, expires_in: int | None) -> None:
    """Trust a public key (PEM: ECDSA P-256/P-384, Ed25519, RSA >= 2048)."""
    added = state().client().add_key(Path(public_key), name, scope=scope, expires_in=expires_in)
    out(plain(added), table(KEY_COLUMNS, key_rows([added]), title=f"trusted key {added.id}"))


@key.command("list", epilog="\b\nExamples:\n  zot-artifacts key list")
def key_list() -> None:
    """The trusted keys, revoked ones included."""
    keys = state().client().list_keys()
    out({"keys": plain(keys)}, table(KEY_COLUMNS, key_rows(keys)))


@key.command("revoke", epilog="\b\nExamples:\n  zot-artifacts key revoke 3b1f...")
@click.argument("key_id", metavar="ID")
def key_revoke(key_id: str) -> None:
    """Stop trusting a key: its signatures no longer pass any policy."""
    state().client().revoke_key(key_id)
    out({"revoked": key_id}, f"Revoked key {key_id}")


@cli.group(cls=Group)
def sbom() -> None:
    """Search the components of every attached SBOM."""


@sbom.command(
    "search",
    epilog="\b\nExamples:\n  zot-artifacts sbom search --purl pkg:pypi/requests@2.31.0\n"
    "  zot-artifacts sbom search --name requests",
)
@click.option("--purl", help="A package URL; without a version, any version.")
@click.option("--name", help="A component name.")
@click.option("--limit", type=click.IntRange(1, 10000), help="At most this many results.")
def sbom_search(purl: str | None, name: str | None, limit: int | None) -> None:
    """Which artifacts and images contain a component (those you may read)."""
    if not purl and not name:
        raise click.UsageError("give --purl or --name")
    found = state().client().search_sboms(purl, name, limit=limit)
    out(
        {"results": found},
        table(
            ["SUBJECT", "COMPONENT", "VERSION", "PURL"],
            [
                (r["subject"], r["component"]["name"], r["component"]["version"],
                 r["component"]["purl"])
                for r in found
            ],
        ),
    )  # fmt: skip


@cli.group(cls=Group)
def policy() -> None:
    """Verification gates on downloads and image pulls.

    A gate is on a BUCKET (every download) or, with --repositories, on the registry
    repositories matching a name or glob (every manifest pull). In audit mode failures are
    logged; in enforce mode the download or pull is refused."""


def gate_text(gate: Any) -> str:
    return f"{gate.name} ({gate.mode})\n" + yaml.safe_dump(gate.policy, sort_keys=False)


def repositories_option(func: F) -> F:
    return click.option(
        "--repositories",
        metavar="PATTERN",
        help="Registry repositories (a name or a glob such as 'prod/*') instead of a bucket.",
    )(func)


def gate_scope(bucket_name: str | None, repositories: str | None) -> str:
    """Exactly one of BUCKET and --repositories; the scope's name for messages."""
    if (bucket_name is None) == (repositories is None):
        raise click.UsageError("name a BUCKET or --repositories PATTERN (one of them)")
    return bucket_name if bucket_name is not None else f"repositories {repositories}"


@policy.command(
    "get",
    epilog="\b\nExamples:\n  zot-artifacts policy get releases\n"
    "  zot-artifacts policy get --repositories 'prod/*'",
)
@click.argument("bucket_name", metavar="[BUCKET]", required=False)
@repositories_option
def policy_get(bucket_name: str | None, repositories: str | None) -> None:
    """Show a bucket's (or repositories') verification gate."""
    gate_scope(bucket_name, repositories)
    client = state().client()
    gate = (
        client.get_repository_verification(repositories)
        if repositories is not None
        else client.get_verification(str(bucket_name))
    )
    out(plain(gate), gate_text(gate))


@policy.command(
    "set",
    epilog="\b\nExamples:\n  zot-artifacts policy set releases --file policy.yaml --mode enforce\n"
    "  zot-artifacts policy set --repositories 'prod/*' --file policy.yaml --mode enforce",
)
@click.argument("bucket_name", metavar="[BUCKET]", required=False)
@repositories_option
@policy_option("--file")
@click.option(
    "--mode",
    type=click.Choice(["audit", "enforce"]),
    default="audit",
    show_default=True,
    help="audit logs failures; enforce refuses the download or pull.",
)
@click.option("--name", default="default", show_default=True, help="The gate's name.")
def policy_set(
    bucket_name: str | None, repositories: str | None, policy_file: str, mode: str, name: str
) -> None:
    """Check every download from BUCKET (or pull from --repositories) against a policy."""
    gate_scope(bucket_name, repositories)
    client = state().client()
    rules = load_policy(policy_file)
    gate = (
        client.set_repository_verification(repositories, rules, mode, name=name)
        if repositories is not None
        else client.set_verification(str(bucket_name), rules, mode, name=name)
    )
    out(plain(gate), gate_text(gate))


@policy.command(
    "delete",
    epilog="\b\nExamples:\n  zot-artifacts policy delete releases\n"
    "  zot-artifacts policy delete --repositories 'prod/*'",
)
@click.argument("bucket_name", metavar="[BUCKET]", required=False)
@repositories_option
def policy_delete(bucket_name: str | None, repositories: str | None) -> None:
    """Remove a bucket's (or repositories') verification gate."""
    scope = gate_scope(bucket_name, repositories)
    client = state().client()
    if repositories is not None:
        client.delete_repository_verification(repositories)
    else:
        client.delete_verification(str(bucket_name))
    out({"deleted": scope}, f"Removed the verification gate of {scope}")


# ---- identity and audit ---------------------------------------------------------------------


@cli.group(cls=Group)
def token() -> None:
    """API tokens for robots (CI jobs, scripts)."""


@token.command(
    "create",
    epilog="\b\nExamples:\n  zot-artifacts token create ci-upload --role writer --expires-in 86400",
)
@click.argument("name")
@click.option("--role", "roles", multiple=True, required=True, help="A role (repeatable).")
@click.option("--expires-in", type=float, help="Seconds until it expires.")
@click.option(
    "--statements",
    type=click.Path(exists=True, dir_okay=False),
    help="IAM-style statements limiting it further (JSON or YAML list).",
)
def token_create(
    name: str, roles: tuple[str, ...], expires_in: float | None, statements: str | None
) -> None:
    """Create an API token; its secret (zat_...) is shown once."""
    extra = load_document(statements) if statements else None
    created = (
        state().client().create_token(name, list(roles), expires_in=expires_in, statements=extra)
    )
    out(plain(created), f"{created.secret}\n(token {created.id}; shown once, store it now)")


@token.command("list", epilog="\b\nExamples:\n  zot-artifacts token list")
def token_list() -> None:
    """List API tokens (never their secrets)."""
    tokens = state().client().list_tokens()
    rows = [
        (t.id, t.name, ",".join(t.roles), t.owner, t.expires_at, t.last_used_at, t.revoked_at)
        for t in tokens
    ]
    columns = ["ID", "NAME", "ROLES", "OWNER", "EXPIRES", "LAST USED", "REVOKED"]
    out({"tokens": plain(tokens)}, table(columns, rows))


@token.command("revoke", epilog="\b\nExamples:\n  zot-artifacts token revoke 01J9...")
@click.argument("token_id", metavar="ID")
def token_revoke(token_id: str) -> None:
    """Revoke an API token at once."""
    state().client().revoke_token(token_id)
    out({"revoked": token_id}, f"Revoked token {token_id}")


@cli.command(
    epilog="""\b
Examples:
  zot-artifacts audit --limit 20
  zot-artifacts --output json audit --principal token:01J9... --action s3:PutObject \\
      --since 2026-01-01T00:00:00Z
"""
)
@click.option("--since", help="Records at or after this time (RFC 3339).")
@click.option("--until", help="Records before this time (RFC 3339).")
@click.option("--principal", help="e.g. root:admin, token:<id>, anonymous.")
@click.option("--action", help="e.g. s3:PutObject, admin:CreateToken, authenticate.")
@click.option("--resource", help="e.g. bucket/key.")
@click.option("--decision", type=click.Choice(["allow", "deny"]))
@click.option("--limit", type=click.IntRange(1), default=100, show_default=True)
def audit(
    since: str | None,
    until: str | None,
    principal: str | None,
    action: str | None,
    resource: str | None,
    decision: str | None,
    limit: int,
) -> None:
    """Show the audit trail, newest first."""
    records: list[dict[str, Any]] = []
    pages = (
        state()
        .client()
        .audit(
            principal=principal,
            action=action,
            resource=resource,
            decision=decision,
            since=since,
            until=until,
            page_size=min(limit, 500),
        )
    )
    for record in pages:
        records.append(record)
        if len(records) >= limit:
            break
    rows = [
        (
            r.get("time"),
            r.get("principal"),
            r.get("action"),
            r.get("resource"),
            r.get("decision"),
            r.get("reason"),
        )
        for r in records
    ]
    columns = ["TIME", "PRINCIPAL", "ACTION", "RESOURCE", "DECISION", "REASON"]
    out({"records": records}, table(columns, rows))


cli.add_command(webhooks.webhook)


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
