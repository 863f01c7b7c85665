"""The Zot Artifact Store operator: ZotArtifactStore (artifacts.zotregistry.io/v1) → the objects
the Helm chart deploy/helm/zot-artifact-store renders, through Helm's SDK (docs/adr/0007).

Pure parts, tested without a cluster: ``spec`` (defaults and checks from the CRD), ``values``
(spec → chart values), ``render`` (values → objects, owned and labelled), ``status`` (what the
cluster shows → status). Thin glue: ``kube`` (a small API client) and ``handlers`` (kopf)."""

from __future__ import annotations

import os
from pathlib import Path

GROUP = "artifacts.zotregistry.io"
VERSION = "v1"
KIND = "ZotArtifactStore"
PLURAL = "zotartifactstores"
API_VERSION = f"{GROUP}/{VERSION}"
FIELD_MANAGER = "zot-artifact-store-operator"
MANAGED_BY = FIELD_MANAGER

HERE = Path(__file__).resolve().parent
CRD_FILE = HERE / "crd.yaml"


def chart_path() -> Path:
    """The chart: $ZAS_OPERATOR_CHART in the image, deploy/helm/zot-artifact-store in a checkout."""
    return Path(
        os.environ.get("ZAS_OPERATOR_CHART") or HERE.parents[1] / "helm" / "zot-artifact-store"
    )
