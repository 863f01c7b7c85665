"""``python -m zas_operator``: run the operator (the image's entrypoint). WATCH_NAMESPACE:
empty for every namespace, else a comma-separated list (OLM sets it from the
OperatorGroup's target namespaces)."""

from __future__ import annotations

import os

import kopf

import zas_operator.handlers  # noqa: F401  (registers the handlers)


def main() -> None:
    namespaces = [n for n in os.environ.get("WATCH_NAMESPACE", "").split(",") if n]
    kopf.run(
        standalone=True,  # one replica (Recreate): no peering objects to manage
        clusterwide=not namespaces,
        namespaces=namespaces,
        liveness_endpoint="http://0.0.0.0:8081/healthz",
    )


if __name__ == "__main__":
    main()
