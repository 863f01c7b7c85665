"""SBOM validation time against document size (defect 2 of the supply-chain review).

Offline: times ``services.sbom.parse_sbom`` (what attaching or registry-pushing an SBOM runs)
on generated CycloneDX JSON / XML and SPDX 2.3 JSON documents with N components. Each case
runs in its own subprocess with a time cap, so a quadratic validator shows as ">cap" instead
of hanging the run. A measurement, not a test: it never asserts and is not part of CI.

    .venv/bin/python benchmarks/sbom.py
    .venv/bin/python benchmarks/sbom.py --sizes 4000,8000,50000 --formats cdx-json --cap 300
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FORMATS = ("cdx-json", "cdx-xml", "spdx")
MEDIA = {
    "cdx-json": "application/vnd.cyclonedx+json",
    "cdx-xml": "application/vnd.cyclonedx+xml",
    "spdx": "application/spdx+json",
}


def cyclonedx_json(n: int) -> bytes:
    components = [
        {
            "type": "library",
            "bom-ref": f"pkg:pypi/p{i}@1.0",
            "name": f"p{i}",
            "version": "1.0",
            "purl": f"pkg:pypi/p{i}@1.0",
            "licenses": [{"license": {"id": "MIT"}}],
        }
        for i in range(n)
    ]
    doc = {"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1, "components": components}
    return json.dumps(doc).encode()


def cyclonedx_xml(n: int) -> bytes:
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n',
        '<bom xmlns="http://cyclonedx.org/schema/bom/1.5" version="1"><components>',
    ]
    for i in range(n):
        parts.append(
            f'<component type="library" bom-ref="pkg:pypi/p{i}@1.0"><name>p{i}</name>'
            f"<version>1.0</version><licenses><license><id>MIT</id></license></licenses>"
            f"<purl>pkg:pypi/p{i}@1.0</purl></component>"
        )
    parts.append("</components></bom>")
    return "".join(parts).encode()


def spdx_json(n: int) -> bytes:
    packages = [
        {
            "SPDXID": f"SPDXRef-p{i}",
            "name": f"p{i}",
            "versionInfo": "1.0",
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": False,
            "licenseConcluded": "MIT",
            "externalRefs": [
                {
                    "referenceCategory": "PACKAGE-MANAGER",
                    "referenceType": "purl",
                    "referenceLocator": f"pkg:pypi/p{i}@1.0",
                }
            ],
        }
        for i in range(n)
    ]
    doc = {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": "app",
        "documentNamespace": "https://example.com/spdx/app-1",
        "creationInfo": {"created": "2026-11-28T00:00:00Z", "creators": ["Tool: bench"]},
        "packages": packages,
        "relationships": [
            {
                "spdxElementId": "SPDXRef-DOCUMENT",
                "relationshipType": "DESCRIBES",
                "relatedSpdxElement": f"SPDXRef-p{i}",
            }
            for i in range(n)
        ],
    }
    return json.dumps(doc).encode()


GENERATORS = {"cdx-json": cyclonedx_json, "cdx-xml": cyclonedx_xml, "spdx": spdx_json}


def one(fmt: str, n: int) -> None:
    """Child: parse once (warm-up of imports and schema loading excluded), print JSON."""
    sys.path.insert(0, str(ROOT / "server"))
    from zot_artifact_store.services.sbom import parse_sbom

    parse_sbom(GENERATORS[fmt](2), MEDIA[fmt])  # imports, schema compilation
    body = GENERATORS[fmt](n)
    start = time.perf_counter()
    parsed = parse_sbom(body, MEDIA[fmt])
    elapsed = time.perf_counter() - start
    print(json.dumps({"bytes": len(body), "seconds": elapsed, "found": len(parsed.components)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="4000,8000,20000,50000")
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--cap", type=float, default=180.0, help="seconds per case")
    parser.add_argument("--child", nargs=2, metavar=("FORMAT", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        one(args.child[0], int(args.child[1]))
        return
    print(f"{'format':9} {'components':>10} {'bytes':>11} {'seconds':>9}")
    for fmt in args.formats.split(","):
        for n in (int(s) for s in args.sizes.split(",")):
            try:
                out = subprocess.run(
                    [sys.executable, __file__, "--child", fmt, str(n)],
                    capture_output=True,
                    text=True,
                    timeout=args.cap,
                    env=os.environ | {"PYTHONHASHSEED": "0"},
                    check=True,
                )
            except subprocess.TimeoutExpired:
                print(f"{fmt:9} {n:>10} {'':>11} {'>' + str(int(args.cap)):>9}", flush=True)
                continue
            except subprocess.CalledProcessError as exc:
                print(f"{fmt:9} {n:>10} failed: {exc.stderr.strip().splitlines()[-1]}", flush=True)
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            note = "" if r["found"] == n else f"  (read {r['found']} components)"
            print(f"{fmt:9} {n:>10} {r['bytes']:>11} {r['seconds']:>9.2f}{note}", flush=True)


if __name__ == "__main__":
    main()
