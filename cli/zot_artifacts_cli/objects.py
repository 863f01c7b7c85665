"""``zot-artifacts`` buckets and objects: bucket, upload (of many files through the batch
endpoint), download, ls, head, rm, cp and presign."""

from __future__ import annotations

import mimetypes
import os
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from zot_artifacts import (
    Client,
    PreconditionFailedError,
    UploadProgress,
)

from .args import labels_option, parse_labels, split_ref
from .context import (
    Failure,
    Group,
    out,
    state,
)
from .files import collect
from .output import human_size, plain, progress_bar, table

# ---- buckets --------------------------------------------------------------------------------


@click.group(cls=Group)
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


@click.command(
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


@click.command(
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


@click.command(
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


@click.command(epilog="\b\nExamples:\n  zot-artifacts head builds/app/1.0/app.tar.gz")
@click.argument("ref", metavar="BUCKET/KEY")
def head(ref: str) -> None:
    """Show an object's metadata: size, sha256, content type, labels."""
    info = state().client().head(*split_ref(ref))
    data = plain(info)
    rows = [(k, v) for k, v in data.items() if k not in ("labels",)]
    rows += [(f"label {k}", v) for k, v in info.labels.items()]
    out(data, table(["FIELD", "VALUE"], rows))


@click.command(epilog="\b\nExamples:\n  zot-artifacts rm builds/tmp/a.txt builds/tmp/b.txt")
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


@click.command(
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


@click.command(
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


COMMANDS = [bucket, upload, download, ls, head, rm, cp, presign]
