"""`helm test`: the store is ready and an object makes the round trip through /v1.

Runs in the store's own image (python3, standard library only). Environment:

  STORE_URL             the Service, e.g. http://zas.ns.svc:8080
  STORE_USER            the root user (empty: no authentication)
  STORE_PASSWORD_FILE   the root user's password file
  STORE_INSECURE        "true": do not verify the server's TLS certificate (in-cluster check)
  STORE_READY_TIMEOUT   seconds to wait for /health/ready (default 120)
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import ssl
import sys
import time
import urllib.error
import urllib.request

URL = os.environ["STORE_URL"].rstrip("/")
USER = os.environ.get("STORE_USER", "")
PASSWORD_FILE = os.environ.get("STORE_PASSWORD_FILE", "")
INSECURE = os.environ.get("STORE_INSECURE", "") == "true"
READY_TIMEOUT = float(os.environ.get("STORE_READY_TIMEOUT", "120"))


def request(method: str, path: str, body: bytes | None = None, auth: bool = True) -> bytes:
    req = urllib.request.Request(URL + path, data=body, method=method)
    if auth and USER:
        with open(PASSWORD_FILE) as f:
            password = f.read().strip()
        token = base64.b64encode(f"{USER}:{password}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    if body is not None:
        req.add_header("Content-Type", "application/octet-stream")
    context = ssl._create_unverified_context() if INSECURE else None
    with urllib.request.urlopen(req, timeout=30, context=context) as resp:
        return resp.read()


def wait_ready() -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        try:
            checks = json.loads(request("GET", "/health/ready", auth=False))["checks"]
            print("ready:", ", ".join(f"{k} {v['status']}" for k, v in checks.items()))
            return
        except (urllib.error.URLError, OSError, ValueError, KeyError) as exc:
            if time.monotonic() > deadline:
                raise SystemExit(f"not ready after {READY_TIMEOUT:.0f}s: {exc}") from None
            time.sleep(2)


def round_trip() -> None:
    bucket = f"helm-test-{os.urandom(4).hex()}"
    body = os.urandom(256 * 1024)
    key = "round/trip.bin"
    request("PUT", f"/v1/buckets/{bucket}")
    try:
        request("PUT", f"/v1/buckets/{bucket}/objects/{key}", body)
        got = request("GET", f"/v1/buckets/{bucket}/objects/{key}")
        if hashlib.sha256(got).digest() != hashlib.sha256(body).digest():
            raise SystemExit(f"downloaded {len(got)} bytes differ from the {len(body)} uploaded")
        request("DELETE", f"/v1/buckets/{bucket}/objects/{key}")
    finally:
        request("DELETE", f"/v1/buckets/{bucket}")
    print(f"round trip ok: {len(body)} bytes through {bucket}/{key}")


def main() -> int:
    wait_ready()
    try:
        round_trip()
    except urllib.error.HTTPError as exc:
        print(f"{exc.code} {exc.reason} on {exc.url}: {exc.read()[:500]!r}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
