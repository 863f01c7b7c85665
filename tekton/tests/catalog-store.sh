#!/usr/bin/env bash
# The catalog tests' store (tekton/task/*/tests/run.yaml), sourced by each Task's
# tests/pre-apply-task-hook.sh, which the Tekton catalog's test harness runs in the test
# namespace before it applies the Task and creates tests/run.yaml. It starts a Zot Artifact
# Store (Deployment + Service "zot-artifact-store", port 8080; ZAS_TEST_IMAGE overrides the
# image), creates the bucket "tekton-tests" with an object hello.txt and its SBOM (the download
# and verify tests' input), and the Secret "zot-artifacts-token" (key "token": a writer token of that
# store) that the tests bind to the credentials workspace. Idempotent.
set -euo pipefail

image="${ZAS_TEST_IMAGE:-ghcr.io/zot-artifact-store/zot-artifact-store:0.1.0}"
# The root password is made once: a second run keeps the running store (and its data).
if ! kubectl get secret zot-artifact-store-root >/dev/null 2>&1; then
  password="$(head -c 18 /dev/urandom | base64 | tr -d '/+=')"
  kubectl create secret generic zot-artifact-store-root \
    --from-literal=user=catalog-admin --from-literal=password="$password"
fi

kubectl apply -f - <<YAML
apiVersion: apps/v1
kind: Deployment
metadata:
  name: zot-artifact-store
  labels: {app.kubernetes.io/name: zot-artifact-store}
spec:
  replicas: 1
  selector:
    matchLabels: {app.kubernetes.io/name: zot-artifact-store}
  template:
    metadata:
      labels: {app.kubernetes.io/name: zot-artifact-store}
    spec:
      securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
      containers:
        - name: store
          image: ${image}
          ports: [{containerPort: 8080}]
          env:
            - name: ZAS_ROOT_USER
              valueFrom: {secretKeyRef: {name: zot-artifact-store-root, key: user}}
            - name: ZAS_ROOT_PASSWORD
              valueFrom: {secretKeyRef: {name: zot-artifact-store-root, key: password}}
          readinessProbe:
            httpGet: {path: /health/ready, port: 8080}
          securityContext:
            allowPrivilegeEscalation: false
            capabilities: {drop: [ALL]}
          volumeMounts: [{name: data, mountPath: /var/lib/zas}]
      volumes: [{name: data, emptyDir: {}}]
---
apiVersion: v1
kind: Service
metadata:
  name: zot-artifact-store
spec:
  selector: {app.kubernetes.io/name: zot-artifact-store}
  ports: [{port: 8080, targetPort: 8080}]
YAML
kubectl rollout status deployment/zot-artifact-store --timeout=300s

# Inside the store's pod (it has python3): the bucket, the download/verify input, a writer token.
token="$(kubectl exec deployment/zot-artifact-store -- python3 -c '
import base64, json, os, urllib.error, urllib.request
user, password = os.environ["ZAS_ROOT_USER"], os.environ["ZAS_ROOT_PASSWORD"]
auth = base64.b64encode((user + ":" + password).encode()).decode()
def call(method, path, body=None, kind="application/json"):
    request = urllib.request.Request(os.environ.get("ZAS_URL", "http://127.0.0.1:8080") + path, data=body, method=method,
                                     headers={"Authorization": "Basic " + auth, "Content-Type": kind})
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.read()
    except urllib.error.HTTPError as err:
        if err.code != 409:  # the bucket exists already
            raise
call("PUT", "/v1/buckets/tekton-tests")
call("PUT", "/v1/buckets/tekton-tests/objects/hello.txt", b"hello from the catalog test\n", "text/plain")
sbom = {"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1, "components": []}
call("POST", "/v1/buckets/tekton-tests/objects/hello.txt/sboms", json.dumps(sbom).encode(),
     "application/vnd.cyclonedx+json")
print(json.loads(call("POST", "/v1/tokens", json.dumps({"name": "catalog-tests", "roles": ["writer"]}).encode()))["token"])
')"
kubectl create secret generic zot-artifacts-token --from-literal=token="$token" \
  --dry-run=client -o yaml | kubectl apply -f -
