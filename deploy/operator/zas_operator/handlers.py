"""The kopf glue: when a ZotArtifactStore appears, changes, is resumed after a restart, and
every minute (drift, status), render what it needs (``render.desired``), create its keys
Secret once, server-side apply the objects, delete those no longer rendered, and write the
status (``status.status_for``). Everything that decides something is in the pure modules."""

from __future__ import annotations

import datetime
import os
from typing import Any

import kopf

from zas_operator import GROUP, PLURAL, VERSION
from zas_operator.kube import Kube
from zas_operator.render import INSTANCE, RESOURCES, desired, keys_secret, stale
from zas_operator.spec import with_defaults
from zas_operator.status import classify, status_for
from zas_operator.values import is_openshift, scc_name

DEFAULT_IMAGE = "RELATED_IMAGE_ZOT_ARTIFACT_STORE"
# Permanent until the spec changes: no point retrying.
PERMANENT = ("InvalidSpec", "ChartRefused")


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=GROUP)
    settings.posting.level = 20  # INFO and up become Events on the store
    memo.kube = Kube.in_cluster()
    memo.openshift = await memo.kube.serves("route.openshift.io")


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    await memo.kube.close()


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec")
@kopf.timer(GROUP, VERSION, PLURAL, interval=60.0, initial_delay=30.0)
async def reconcile(
    spec: kopf.Spec,
    name: str,
    namespace: str,
    uid: str,
    meta: kopf.Meta,
    status: kopf.Status,
    patch: kopf.Patch,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    kube: Kube = memo.kube
    wanted = dict(spec)
    error = None
    try:
        objects = desired(
            wanted,
            name,
            namespace,
            uid,
            openshift=memo.openshift,
            default_image=os.environ.get(DEFAULT_IMAGE),
        )
        await kube.create(keys_secret(name, namespace))
        for obj in objects:
            await kube.apply(obj)
        for kind in RESOURCES:
            if kind == "SecurityContextConstraints" or (kind in ("Route",) and not memo.openshift):
                continue
            existing = await kube.list(kind, namespace, f"{INSTANCE}={name}")
            for obj in stale(existing, objects):
                await kube.delete(kind, obj["metadata"]["name"], namespace)
    except Exception as exc:  # every failure becomes a condition
        error = classify(exc)
    deployment = await kube.get("Deployment", name, namespace)
    route = await kube.get("Route", name, namespace) if memo.openshift else None
    host = ((route or {}).get("status", {}).get("ingress") or [{}])[0].get("host")
    patch.status.update(
        status_for(
            wanted,
            meta.get("generation", 0),
            name=name,
            namespace=namespace,
            now=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            deployment=deployment,
            error=error,
            previous=status.get("conditions", []),
            route_host=host,
        )
    )
    if error and error[0] not in PERMANENT:
        raise kopf.TemporaryError(error[1], delay=30)


def _created_scc(spec: kopf.Spec, memo: kopf.Memo, **_: Any) -> bool:
    full = with_defaults(dict(spec))
    return bool(is_openshift(full, memo.openshift) and full["openshift"]["scc"]["create"])


@kopf.on.delete(GROUP, VERSION, PLURAL, when=_created_scc)
async def delete_scc(spec: kopf.Spec, name: str, namespace: str, memo: kopf.Memo, **_: Any) -> None:
    """A cluster-scoped SCC cannot be owned by a namespaced store: delete it here (the rest is
    garbage collected through the owner references)."""
    await memo.kube.delete(
        "SecurityContextConstraints", scc_name(with_defaults(dict(spec)), name, namespace), None
    )
