"""S3 edge cases as the real awscli meets them (issue 19): re-running ``aws s3 mb`` in
us-east-1, prefixes with whitespace, RFC 2047 user metadata and ``--part-number`` reads."""

from __future__ import annotations

import base64
import json
import os
import uuid
from pathlib import Path
from typing import Any

from tests.e2e.test_s3_tools import aws
from tests.fixtures.server import ServerProcess

MiB = 1 << 20


def test_awscli_edges(s3_server: ServerProcess, home: Path, tmp_path: Path) -> None:
    bucket = f"edge-{uuid.uuid4().hex[:10]}"

    def api(command: str, *args: str) -> Any:
        out = aws(s3_server, home, "s3api", command, "--bucket", bucket, *args)
        return json.loads(out) if out.strip() else None

    aws(s3_server, home, "s3", "mb", f"s3://{bucket}")
    # A setup script run twice: in us-east-1 AWS answers 200 to the owner, so does this store.
    aws(s3_server, home, "s3", "mb", f"s3://{bucket}")

    data = tmp_path / "f.txt"
    data.write_bytes(b"x")
    for key in (" lead/a", "lead/b"):
        api("put-object", "--key", key, "--body", str(data))
    listed = api("list-objects-v2", "--no-paginate", "--prefix", " lead/", "--delimiter", "/")
    assert listed["Prefix"] == " lead/" and listed["Delimiter"] == "/"
    assert [o["Key"] for o in listed["Contents"]] == [" lead/a"]

    word = "=?UTF-8?B?" + base64.b64encode("grüße ✓".encode()).decode() + "?="
    api("put-object", "--key", "m", "--body", str(data), "--metadata", json.dumps({"who": word}))
    assert api("head-object", "--key", "m")["Metadata"] == {"who": word}

    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(12 * MiB))
    aws(s3_server, home, "s3", "cp", str(big), f"s3://{bucket}/big.bin")  # 8 MiB parts
    out = tmp_path / "part2"
    got = api("get-object", "--key", "big.bin", "--part-number", "2", str(out))
    assert got["PartsCount"] == 2
    assert out.read_bytes() == big.read_bytes()[8 * MiB :]
