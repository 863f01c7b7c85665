"""A ZotArtifactStore's status from what the operator saw: its spec, an error (invalid spec, the
chart refusing the values, the API refusing an object) or the Deployment's own status. Pure:
the glue passes the observations and the time in."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from zas_operator.spec import InvalidSpec, Spec, with_defaults

Obj = dict[str, Any]
CONDITIONS = ("Ready", "Progressing", "Degraded")


def classify(exc: BaseException) -> tuple[str, str]:
    """(reason, message) of what stopped a reconcile: InvalidSpec (fix the spec), ChartRefused
    (the chart's own checks refused the values), ApplyFailed (the API server refused an
    object, or could not be reached)."""
    if isinstance(exc, InvalidSpec):
        return "InvalidSpec", str(exc)
    name = type(exc).__name__
    if name.startswith("Helm"):
        text = str(exc).strip()
        # Helm prefixes a template's fail() with where it came from; the reason is the rest.
        message = re.sub(r"^execution error at \([^)]*\): ", "", text)
        return "ChartRefused", message
    return "ApplyFailed", f"{name}: {exc}"


def url_for(spec: Spec, name: str, namespace: str, route_host: str | None = None) -> str:
    """Where the store answers: its Route's host (given, or assigned by the router and read
    from the Route's status) or the Service inside the cluster."""
    spec = with_defaults(spec)
    route = spec["openshift"]["route"]
    if route["enabled"]:
        host = route.get("host") or route_host
        if host:
            return f"https://{host}"
    tls = route["enabled"] and route["tls"]["termination"] != "edge"
    return f"{'https' if tls else 'http'}://{name}.{namespace}.svc:8080"


def _conditions(deployment: Obj | None) -> dict[str, Obj]:
    if not deployment:
        return {}
    return {c["type"]: c for c in deployment.get("status", {}).get("conditions", [])}


def status_for(
    spec: Spec,
    generation: int,
    *,
    name: str,
    namespace: str,
    now: str,
    deployment: Obj | None = None,
    error: tuple[str, str] | None = None,
    previous: Iterable[Obj] = (),
    route_host: str | None = None,
) -> Obj:
    """The status of a store: ``deployment`` as the API server returns it (None: not there
    yet), ``error`` from ``classify``, ``previous`` conditions (their transition times are kept
    while their status stays), ``now`` an RFC 3339 time."""
    spec = with_defaults(spec)
    wanted = spec["replicas"]
    dstatus = (deployment or {}).get("status", {})
    ready = dstatus.get("readyReplicas", 0)
    status: Obj = {
        "observedGeneration": generation,
        "replicas": dstatus.get("replicas", 0),
        "readyReplicas": ready,
        "selector": f"app.kubernetes.io/name=zot-artifact-store,app.kubernetes.io/instance={name}",
        "url": url_for(spec, name, namespace, route_host),
    }
    if deployment:
        status["image"] = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    conds: dict[str, tuple[str, str, str]]
    if error is not None:
        reason, message = error
        conds = {
            "Ready": ("False", reason, message),
            "Progressing": ("False", reason, "nothing is rolled out until this is fixed"),
            "Degraded": ("True", reason, message),
        }
        phase = "Failed"
    elif deployment is None:
        conds = {
            "Ready": ("False", "Pending", "the Deployment is not there yet"),
            "Progressing": ("True", "Creating", "applying the store's objects"),
            "Degraded": ("False", "AsExpected", "nothing has failed"),
        }
        phase = "Pending"
    else:
        conds, phase = _from_deployment(deployment, wanted)
    status["phase"] = phase
    status["conditions"] = _with_times(conds, previous, now, generation)
    return status


def _from_deployment(deployment: Obj, wanted: int) -> tuple[dict[str, tuple[str, str, str]], str]:
    dstatus = deployment.get("status", {})
    ready = dstatus.get("readyReplicas", 0)
    updated = dstatus.get("updatedReplicas", 0)
    total = dstatus.get("replicas", 0)
    current = dstatus.get("observedGeneration", 0) >= deployment["metadata"].get("generation", 0)
    dconds = _conditions(deployment)
    progressing = dconds.get("Progressing", {})
    stuck = progressing.get("status") == "False" and (
        progressing.get("reason") == "ProgressDeadlineExceeded"
    )
    failure = dconds.get("ReplicaFailure", {})
    failing = failure.get("status") == "True"
    rolled_out = current and updated == wanted and total == wanted
    counts = f"{ready}/{wanted} replicas ready"
    conds: dict[str, tuple[str, str, str]] = {}
    if rolled_out and ready == wanted:
        conds["Ready"] = ("True", "AllReplicasReady", counts)
    else:
        conds["Ready"] = ("False", "ReplicasNotReady", counts)
    if stuck:
        conds["Progressing"] = ("False", "ProgressDeadlineExceeded", progressing.get("message", ""))
    elif rolled_out:
        conds["Progressing"] = ("False", "RolloutComplete", f"{updated}/{wanted} replicas updated")
    else:
        conds["Progressing"] = ("True", "RollingOut", f"{updated}/{wanted} replicas updated")
    if failing:
        conds["Degraded"] = ("True", "ReplicaFailure", failure.get("message", ""))
    elif stuck:
        conds["Degraded"] = ("True", "ProgressDeadlineExceeded", progressing.get("message", ""))
    elif rolled_out and ready < wanted:
        conds["Degraded"] = ("True", "ReplicasUnavailable", counts)
    else:
        conds["Degraded"] = ("False", "AsExpected", counts)
    if (failing or stuck) and ready == 0:
        phase = "Failed"
    elif ready > 0:
        phase = "Running"
    else:
        phase = "Pending"
    return conds, phase


def _with_times(
    conds: Mapping[str, tuple[str, str, str]], previous: Iterable[Obj], now: str, generation: int
) -> list[Obj]:
    before = {c.get("type"): c for c in previous}
    out = []
    for kind in CONDITIONS:
        state, reason, message = conds[kind]
        old = before.get(kind, {})
        since = old.get("lastTransitionTime") if old.get("status") == state else None
        out.append(
            {
                "type": kind,
                "status": state,
                "reason": reason,
                "message": message,
                "lastTransitionTime": since or now,
                "observedGeneration": generation,
            }
        )
    return out
