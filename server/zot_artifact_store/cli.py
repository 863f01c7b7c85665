"""``zot-artifact-store``: run and administer the server.

zot-artifact-store serve [--container] [--config FILE] [--host H] [--port P] [--data-dir D]
zot-artifact-store config check FILE
zot-artifact-store gc [--container] [--config FILE] [--data-dir D] [--dry-run]
zot-artifact-store fsck [--container] [--config FILE] [--data-dir D] [--repair] [--quick]
zot-artifact-store lifecycle run [--container] [--config FILE] [--data-dir D] [--now TIME]
zot-artifact-store storage migrate --to CONFIG [--container] [--config FILE] [--data-dir D]
                                   [--jobs N]
zot-artifact-store version
zot-artifact-store completion bash|zsh|tcsh

``--container`` is the container image's entrypoint: listen on all addresses with data in
``/var/lib/zas`` unless the config says otherwise, and read ``/etc/zas/config.yaml`` when it
exists and no ``--config`` is given. ``ZAS_*`` variables and flags still win.
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import json
import logging
import os
import signal
import socket
import ssl
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import __version__
from .config import Config, ConfigError, config_schema, load_config
from .filemodes import share_with_group
from .observability.logging import configure_logging

log = logging.getLogger("zot_artifact_store")


# The container image (Containerfile): where it reads its config and keeps its data.
CONTAINER_CONFIG = "/etc/zas/config.yaml"
# The largest piece of a request body handed to a handler: under glibc's mmap threshold
# (storage/objectclient.MMAP_THRESHOLD), so each piece comes from the heap, not from an
# mmap of its own faulted in page by page and unmapped again (1 MiB pieces cost the store
# 2-3 s more CPU per GiB PUT to S3: benchmarks/RESULTS.md, issue 17).
BODY_CHUNK = 512 << 10
CONTAINER_DEFAULTS: dict[str, Any] = {
    "http.address": "0.0.0.0",
    "storage.rootDirectory": "/var/lib/zas",
}


def _load(args: argparse.Namespace) -> Config:
    overrides: dict[str, Any] = {
        "http.address": getattr(args, "host", None),
        "http.port": getattr(args, "port", None),
        "storage.rootDirectory": getattr(args, "data_dir", None),
    }
    path, defaults = args.config, None
    if args.container:
        share_with_group()
        defaults = CONTAINER_DEFAULTS
        if path is None and os.path.exists(CONTAINER_CONFIG):
            path = CONTAINER_CONFIG
    return load_config(path, overrides=overrides, defaults=defaults)


def _write_ready_file(ready_file: str, port: int, scheme: str, address: str) -> None:
    tmp = ready_file + ".tmp"
    url = f"{scheme}://{address}:{port}"
    Path(tmp).write_text(json.dumps({"port": port, "pid": os.getpid(), "url": url}))
    os.replace(tmp, ready_file)


def _serve(config: Config, ready_file: str | None) -> int:
    """Bind, then serve in this process or in ``http.workers`` forked worker processes."""
    import tornado.netutil

    try:
        sockets = tornado.netutil.bind_sockets(config.http.port, config.http.address)
    except OSError as exc:
        log.error("cannot listen on %s:%s: %s", config.http.address, config.http.port, exc.strerror)
        return 1
    port = sockets[0].getsockname()[1]
    scheme = "https" if config.http.tls.cert and config.http.tls.key else "http"
    workers = config.http.workers or len(os.sched_getaffinity(0))
    if workers == 1:

        def ready() -> None:
            if ready_file:
                _write_ready_file(ready_file, port, scheme, config.http.address)

        return asyncio.run(_serve_worker(config, sockets, ready, run_gc=True))
    from .supervisor import Supervisor

    def serve_child(slot: int, ready: Callable[[], None]) -> int:
        # One worker collects garbage; the others only serve.
        return asyncio.run(_serve_worker(config, sockets, ready, run_gc=slot == 0))

    def all_ready() -> None:
        log.info(
            "listening",
            extra={
                "port": port,
                "url": f"{scheme}://{config.http.address}:{port}",
                "workers": workers,
            },
        )
        if ready_file:
            _write_ready_file(ready_file, port, scheme, config.http.address)

    return Supervisor(workers, serve_child, all_ready, sockets).run()


async def _serve_worker(
    config: Config, sockets: list[socket.socket], ready: Callable[[], None], *, run_gc: bool
) -> int:
    from .api.limits import server_limits
    from .app import HTTPServer, create_context, make_application
    from .connections import ConnectionLimits
    from .observability.tracing import setup_tracing, shutdown_tracing
    from .services.gc import GarbageCollector

    setup_tracing(config.extensions.tracing)
    ctx = await create_context(config)
    app = make_application(ctx)
    ssl_ctx = None
    if config.http.tls.cert and config.http.tls.key:
        ssl_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_ctx.load_cert_chain(config.http.tls.cert, config.http.tls.key)
    server = HTTPServer(
        app,
        ssl_options=ssl_ctx,
        **server_limits(config.http),
        limits=ConnectionLimits.from_config(config.http),
        chunk_size=BODY_CHUNK,
        decompress_request=False,
    )
    server.guard.observer = ctx.metrics.connection_cut
    server.add_sockets(sockets)
    port = sockets[0].getsockname()[1]
    scheme = "https" if ssl_ctx else "http"
    if not config.http.externalUrl:  # links in webhook events: where this server listens
        ctx.webhooks.base_url = f"{scheme}://{config.http.address}:{port}"
    log.info(
        "listening",
        extra={
            "address": config.http.address,
            "port": port,
            "url": f"{scheme}://{config.http.address}:{port}",
            "metadata": ctx.metadata_backend,
            "data_dir": os.path.abspath(config.storage.rootDirectory),  # noqa: ASYNC240
        },
    )
    ready()
    gc_task = None
    if run_gc and config.storage.gc:
        collector = GarbageCollector.for_config(
            ctx.metadata, ctx.blobs, config.storage, ctx.metrics, ctx.lifecycle
        )
        gc_task = asyncio.create_task(collector.run_periodically(config.storage.gcInterval))
    lifecycle_task = None
    if run_gc and config.storage.lifecycleInterval > 0:
        lifecycle_task = asyncio.create_task(
            ctx.lifecycle.run_periodically(config.storage.lifecycleInterval)
        )
    audit_task = None
    if run_gc and config.auth.audit.enable:
        audit_task = asyncio.create_task(ctx.audit.expire_periodically(config.auth.audit.retention))

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()

    log.info(
        "shutting down: no new connections; waiting for in-flight requests",
        extra={"in_flight": ctx.in_flight, "timeout_s": config.http.shutdownTimeout},
    )
    ctx.shutting_down = True
    for task in (gc_task, audit_task, lifecycle_task):
        if task is not None:
            task.cancel()
    server.stop()
    finished = await ctx.wait_idle(config.http.shutdownTimeout)
    if not finished:
        log.warning(
            "aborting requests still in flight after the shutdown timeout",
            extra={"in_flight": ctx.in_flight},
        )
    await server.close_all_connections()
    server.guard.stop()
    await ctx.close()
    shutdown_tracing()
    log.info("stopped")
    return 0


async def _gc(config: Config, dry_run: bool) -> int:
    from .app import create_context
    from .services.gc import GarbageCollector

    ctx = await create_context(config, serving=False)
    try:
        collector = GarbageCollector.for_config(
            ctx.metadata, ctx.blobs, config.storage, lifecycle=ctx.lifecycle
        )
        report = await collector.run(dry_run=dry_run)
    finally:
        await ctx.close()
    print(json.dumps(vars(report), indent=2))
    return 0


async def _lifecycle(config: Config, now: str | None) -> int:
    from .app import create_context
    from .timefmt import parse_time

    when = None
    if now is not None:
        try:
            when = parse_time(now)
        except (ValueError, OverflowError):
            print(f"zot-artifact-store: --now {now!r} is not an RFC 3339 time", file=sys.stderr)
            return 2
    ctx = await create_context(config, serving=False)
    try:
        report = await ctx.lifecycle.run(when)
    finally:
        await ctx.close()
    if not report.ran:
        print(
            "zot-artifact-store: another lifecycle run holds the lease; retry later",
            file=sys.stderr,
        )
        return 1
    print(json.dumps(vars(report), indent=2))
    return 0


async def _fsck(config: Config, repair: bool, quick: bool) -> int:
    from .app import create_context
    from .services.fsck import Fsck

    ctx = await create_context(config, serving=False)
    try:
        fsck = Fsck(ctx.metadata, ctx.blobs, config.storage.rootDirectory, quick=quick)
        report = await fsck.run(repair=repair)
    finally:
        await ctx.close()
    print(json.dumps(report.as_json(), indent=2))
    return 1 if report.errors else 0


async def _migrate(config: Config, to: str, jobs: int) -> int:
    from .storage import StorageUnavailableError, create_blob_store
    from .storage.migrate import migrate_blobs

    def say(line: str) -> None:
        print(f"zot-artifact-store storage migrate: {line}", file=sys.stderr, flush=True)

    try:  # the target is CONFIG alone: ZAS_* variables describe the source
        target_config = load_config(to, environ={})
    except ConfigError as exc:
        print(f"zot-artifact-store: --to {to}: {exc}", file=sys.stderr)
        return 2
    source = create_blob_store(
        config.storage.rootDirectory,
        fsync=config.storage.fsync,
        driver=config.storage.storageDriver,
    )
    target = create_blob_store(
        target_config.storage.rootDirectory,
        fsync=target_config.storage.fsync,
        driver=target_config.storage.storageDriver,
    )
    where = {name: store.describe() for name, store in (("from", source), ("to", target))}
    if _same_store(where["from"], where["to"]):
        print(
            f"zot-artifact-store: --to {to} names the store being migrated "
            f"({where['from'].get('location')}): nothing to do",
            file=sys.stderr,
        )
        return 2
    try:
        await source.open()
        await target.open()
    except StorageUnavailableError as exc:
        await source.close()
        print(f"zot-artifact-store: cannot migrate: {exc}", file=sys.stderr)
        return 1
    say(f"from {_where(where['from'])} to {_where(where['to'])}")
    try:
        report = await migrate_blobs(source, target, jobs=jobs, report=say)
    finally:
        await target.close()
        await source.close()
    say(f"done in {report.seconds:.1f}s: {report.progress()}")
    print(json.dumps(report.as_json(), indent=2))
    return 1 if report.failed else 0


def _same_store(a: dict[str, str], b: dict[str, str]) -> bool:
    if a["backend"] == b["backend"] == "filesystem":
        return os.path.realpath(a["location"]) == os.path.realpath(b["location"])
    return a == b


def _where(described: dict[str, str]) -> str:
    return f"{described['backend']} {described.get('location', '')}".strip()


SERVE_EPILOG = """\
environment (every config field a.b.c is ZAS_A_B_C; <VAR>_FILE reads the value from a file):
  ZAS_ROOT_USER, ZAS_ROOT_PASSWORD   the root user: turns authentication on
  ZAS_HTTP_ADDRESS, ZAS_HTTP_PORT    where to listen (flags --host/--port win)
  ZAS_HTTP_WORKERS                   worker processes (0 = one per CPU)
  ZAS_STORAGE_ROOTDIRECTORY          the data directory (flag --data-dir wins)
  ZAS_METADATA_URI                   mongodb://… for many replicas (default: SQLite in the data dir)
  ZAS_LOG_LEVEL, ZAS_LOG_FORMAT      debug|info|warn|error; json|text
  precedence: flags > ZAS_* > config file > defaults (--container: the image's defaults)

examples:
  zot-artifact-store serve
  ZAS_ROOT_USER=admin ZAS_ROOT_PASSWORD=change-me-now zot-artifact-store serve --port 9000
  zot-artifact-store serve --config /etc/zas/config.yaml
  ZAS_METADATA_URI='mongodb://mongo:27017/zas?replicaSet=rs0' zot-artifact-store serve

docs: docs/configuration.md (every setting), docs/deploy.md (containers)"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zot-artifact-store",
        description="Zot Artifact Store server: S3 artifacts, OCI registry, supply chain.",
    )
    parser.add_argument("--version", action="version", version=f"zot-artifact-store {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser(
        "serve",
        help="run the server (embedded defaults need no config)",
        description="Run the server. With no config it runs on its embedded default: "
        "127.0.0.1:8080, SQLite metadata and blobs in ./data, authentication off.",
        epilog=SERVE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    data_dir = CONTAINER_DEFAULTS["storage.rootDirectory"]
    container_help = (
        f"container defaults: listen on 0.0.0.0, data in {data_dir}, "
        f"config {CONTAINER_CONFIG} when present"
    )
    serve.add_argument("--container", action="store_true", help=container_help)
    serve.add_argument("--config", "-c", help="YAML config file (Zot's shape)")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", "-p", type=int, help="port to listen on (default 8080; 0 = any)")
    serve.add_argument("--data-dir", help="data directory (default ./data)")
    serve.add_argument("--ready-file", help=argparse.SUPPRESS)

    cfg = sub.add_parser("config", help="configuration tools")
    cfg_sub = cfg.add_subparsers(dest="config_command", required=True)
    check = cfg_sub.add_parser("check", help="validate a config file and print every problem")
    check.add_argument("file")
    cfg_sub.add_parser(
        "schema",
        help="print the JSON Schema of the config file (for editors, CI, the Helm chart)",
        epilog="Example: zot-artifact-store config schema > config.schema.json",
    )

    gc = sub.add_parser(
        "gc",
        help="remove blobs nothing references (older than storage.gcDelay) and, with "
        "storage.untaggedRetention, untagged manifests nothing refers to",
    )
    gc.add_argument("--container", action="store_true", help=container_help)
    gc.add_argument("--config", "-c")
    gc.add_argument("--data-dir")
    gc.add_argument("--dry-run", action="store_true", help="report, delete nothing")

    fsck = sub.add_parser(
        "fsck",
        help="check that every metadata record's blobs exist with the right digest and every "
        "evidence subject resolves; exit 1 when errors were found",
        epilog="--repair moves corrupt blobs to <rootDirectory>/quarantine/<time>/ and the "
        "records that need a missing or corrupt blob to its records.jsonl (removing them "
        "from the metadata). docs/operations.md explains the report.",
    )
    fsck.add_argument("--container", action="store_true", help=container_help)
    fsck.add_argument("--config", "-c")
    fsck.add_argument("--data-dir")
    fsck.add_argument("--repair", action="store_true", help="quarantine what is broken")
    fsck.add_argument("--quick", action="store_true", help="existence and size only, no hashing")

    lifecycle = sub.add_parser(
        "lifecycle",
        help="object expiry and bucket lifecycle rules",
        description="lifecycle run: remove what is due now (objects past their X-Expires-At "
        "or a bucket's Expiration rule; uploads past storage.uploadRetention or the bucket's "
        "AbortIncompleteMultipartUpload rule), as the server does every "
        "storage.lifecycleInterval. Each removal is audited as system:lifecycle.",
    )
    lifecycle_sub = lifecycle.add_subparsers(dest="lifecycle_command", required=True)
    run = lifecycle_sub.add_parser("run", help="remove what is due now and print the report")
    run.add_argument("--container", action="store_true", help=container_help)
    run.add_argument("--config", "-c")
    run.add_argument("--data-dir")
    run.add_argument(
        "--now",
        help="apply the rules as of this RFC 3339 time instead of the clock "
        "(e.g. 2030-01-31T00:00:00Z); it can only make things expire sooner",
    )

    storage = sub.add_parser("storage", help="blob storage tools")
    storage_sub = storage.add_subparsers(dest="storage_command", required=True)
    migrate = storage_sub.add_parser(
        "migrate",
        help="copy every blob of the configured store to the store another config describes",
        description="Copy every blob of the configured (source) store to the store that "
        "CONFIG's storage section describes (storage.storageDriver, or its rootDirectory for "
        "a filesystem store), by digest. Streams, verifies each blob's sha256 as the target "
        "writes it, skips blobs the target already has, so a second run resumes an "
        "interrupted one or catches up with what was written meanwhile. Upload sessions in "
        "flight (OCI chunked, /v1 resumable) are not copied. Prints progress on stderr and "
        "the summary (JSON) on stdout; exit 1 when any blob failed.",
        epilog="The target is read from CONFIG alone (ZAS_* variables describe the source). "
        "docs/deploy.md: moving a filesystem store to S3.",
    )
    migrate.add_argument(
        "--to", required=True, metavar="CONFIG", help="config file describing the target store"
    )
    migrate.add_argument("--container", action="store_true", help=container_help)
    migrate.add_argument("--config", "-c", help="config of the source store (the server's)")
    migrate.add_argument("--data-dir")
    migrate.add_argument(
        "--jobs", type=int, default=4, help="blobs copied at once (default 4; 1 to 64)"
    )

    sub.add_parser("version", help="print the version")

    completion = sub.add_parser(
        "completion",
        help="print the shell completion script",
        epilog="Example: zot-artifact-store completion bash > "
        "/etc/bash_completion.d/zot-artifact-store",
    )
    completion.add_argument("shell", choices=["bash", "zsh", "tcsh"])
    for name, subparser in sub.choices.items():
        subparser.set_defaults(subparser=subparser, subcommand=name)
    run.set_defaults(subparser=run)  # a nested command reports its own options
    migrate.set_defaults(subparser=migrate)
    return parser


def _parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Parse; an unknown option is reported by the subcommand it was given to, with its usage
    and the closest option it has (``serve --prot`` → did you mean --port?)."""
    args, extra = parser.parse_known_args(argv)
    if extra:
        subparser: argparse.ArgumentParser = getattr(args, "subparser", parser)
        options = [o for a in subparser._actions for o in a.option_strings]
        close = difflib.get_close_matches(extra[0].split("=", 1)[0], options, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        subparser.error(f"unrecognized arguments: {' '.join(extra)}{hint}")
    return args


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = _parse(parser, argv)
    if args.command == "completion":
        import shtab

        print(shtab.complete(parser, shell=args.shell))
        return 0
    if args.command == "version":
        print(f"zot-artifact-store {__version__}")
        return 0
    if args.command == "config" and args.config_command == "schema":
        print(json.dumps(config_schema(), indent=2))
        return 0
    if args.command == "config":
        try:
            config = load_config(args.file)
        except ConfigError as exc:
            print(f"{args.file}: {len(exc.problems)} problem(s):", file=sys.stderr)
            for problem in exc.problems:
                print(f"  - {problem}", file=sys.stderr)
            return 1
        auth = "enabled" if config.auth.enabled else "disabled"
        print(
            f"{args.file}: OK (listen {config.http.address}:{config.http.port}, "
            f"metadata {config.metadata_uri.split(':', 1)[0]}, auth {auth})"
        )
        return 0
    try:
        config = _load(args)
    except ConfigError as exc:
        print(f"zot-artifact-store: {exc}", file=sys.stderr)
        return 2
    configure_logging(config.log.level, config.log.format, config.log.output)
    try:
        if args.command == "serve":
            return _serve(config, args.ready_file)
        if args.command == "gc":
            return asyncio.run(_gc(config, args.dry_run))
        if args.command == "fsck":
            return asyncio.run(_fsck(config, args.repair, args.quick))
        if args.command == "lifecycle":
            return asyncio.run(_lifecycle(config, args.now))
        if args.command == "storage":
            if not 1 <= args.jobs <= 64:
                args.subparser.error(f"--jobs {args.jobs}: must be from 1 to 64")
            return asyncio.run(_migrate(config, args.to, args.jobs))
    except KeyboardInterrupt:
        return 130
    return 2


if __name__ == "__main__":
    sys.exit(main())
