"""A small Kubernetes API client for the operator (in-cluster service account, aiohttp, which
kopf already brings): server-side apply, get, create-once, list by label, delete, discovery.
Untested here: there is no API server on the build machines (docs/deploy.md says what that
leaves out)."""

from __future__ import annotations

import json
import os
import ssl
from pathlib import Path
from typing import Any

import aiohttp

from zas_operator import FIELD_MANAGER
from zas_operator.render import RESOURCES, Obj

SA = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class ApiError(RuntimeError):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(f"HTTP {status}: {text[:500]}")
        self.status = status


def path(kind: str, name: str | None = None, namespace: str | None = None) -> str:
    """The REST path of ``kind`` (``RESOURCES``), of one object when ``name`` is given."""
    res = RESOURCES[kind]
    base = f"/api/{res.version}" if not res.group else f"/apis/{res.group}/{res.version}"
    if res.namespaced and namespace:
        base += f"/namespaces/{namespace}"
    base += f"/{res.plural}"
    return f"{base}/{name}" if name else base


class Kube:
    def __init__(self, server: str, token_file: Path, ca_file: Path) -> None:
        self.server = server
        self.token_file = token_file
        self.ssl = ssl.create_default_context(cafile=str(ca_file))
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))

    @classmethod
    def in_cluster(cls) -> Kube:
        host = os.environ["KUBERNETES_SERVICE_HOST"]
        port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        return cls(f"https://{host}:{port}", SA / "token", SA / "ca.crt")

    async def close(self) -> None:
        await self.session.close()

    async def _call(
        self, method: str, url: str, *, body: Any = None, content_type: str = "application/json"
    ) -> tuple[int, Any]:
        # Bound service-account tokens rotate: read the file each time.
        headers = {"Authorization": f"Bearer {self.token_file.read_text().strip()}"}
        data = None
        if body is not None:
            headers["Content-Type"] = content_type
            data = json.dumps(body)
        async with self.session.request(
            method, self.server + url, data=data, headers=headers, ssl=self.ssl
        ) as resp:
            text = await resp.text()
            if resp.status >= 400 and resp.status not in (404, 409):
                raise ApiError(resp.status, text)
            return resp.status, (json.loads(text) if text else None)

    async def apply(self, obj: Obj) -> Obj:
        """Server-side apply as the operator's field manager (force: the operator owns these
        fields; a hand edit is put back)."""
        meta = obj["metadata"]
        url = path(obj["kind"], meta["name"], meta.get("namespace"))
        url += f"?fieldManager={FIELD_MANAGER}&force=true"
        status, result = await self._call(
            "PATCH", url, body=obj, content_type="application/apply-patch+yaml"
        )
        if status >= 400:
            raise ApiError(status, json.dumps(result))
        applied: Obj = result
        return applied

    async def get(self, kind: str, name: str, namespace: str) -> Obj | None:
        status, result = await self._call("GET", path(kind, name, namespace))
        return None if status == 404 else result

    async def create(self, obj: Obj) -> bool:
        """Create ``obj`` unless it exists (False then: never overwritten)."""
        meta = obj["metadata"]
        status, result = await self._call(
            "POST", path(obj["kind"], None, meta.get("namespace")), body=obj
        )
        if status == 404:
            raise ApiError(status, json.dumps(result))
        return status != 409

    async def list(self, kind: str, namespace: str | None, selector: str) -> list[Obj]:
        status, result = await self._call(
            "GET", path(kind, None, namespace) + f"?labelSelector={selector}"
        )
        if status == 404:  # the API group is not served (no Route on Kubernetes)
            return []
        items: list[Obj] = result.get("items", [])
        for item in items:
            item.setdefault("kind", kind)
        return items

    async def delete(self, kind: str, name: str, namespace: str | None) -> None:
        await self._call("DELETE", path(kind, name, namespace))

    async def serves(self, group: str) -> bool:
        status, _ = await self._call("GET", f"/apis/{group}")
        return status == 200
