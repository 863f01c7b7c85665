import assert from "node:assert/strict";
import { test } from "node:test";
import { StoreError } from "../dist/index.js";
import { bucket, client, fault, proxied, randomBytes, seen, sha256Hex } from "./helpers.mjs";

const MIB = 1024 * 1024;

test("a 200 MiB upload in parallel parts, interrupted, then resumed without re-sending parts", async () => {
  const store = client();
  const b = await bucket(store);
  const data = new Blob([randomBytes(200 * MIB + 4567)]);
  const partSize = 16 * MIB;
  const totalParts = Math.ceil(data.size / partSize);
  await fault("reset");
  await fault("stop_parts", { after: 5 });
  await assert.rejects(
    proxied().upload(b, "big.bin", data, { partSize, parallel: 4 }),
    (err) => err instanceof StoreError && err.status === 0,
  );
  assert.equal(await store.exists(b, "big.bin"), false);
  const stored = new Set(
    (await seen("PUT", "/parts/"))
      .filter((r) => r.forwarded && r.status === 200)
      .map((r) => Number(r.path.split("/").pop())),
  );
  assert.equal(stored.size, 5);

  await fault("reset");
  const progress = [];
  const info = await proxied().upload(b, "big.bin", data, {
    partSize,
    parallel: 4,
    onProgress: (done, total) => progress.push([done, total]),
  });
  const resent = new Set((await seen("PUT", "/parts/")).map((r) => Number(r.path.split("/").pop())));
  const expected = [...Array(totalParts).keys()].map((i) => i + 1).filter((n) => !stored.has(n));
  assert.deepEqual(
    [...resent].sort((x, y) => x - y),
    expected,
  );
  assert.equal(info.size, data.size);
  assert.equal(info.sha256, await sha256Hex(await data.arrayBuffer()));
  assert.deepEqual(progress.at(-1), [data.size, data.size]);
  assert.deepEqual(await store.listUploads(b), []);
});

test("503s are retried for a body that can be read again, with the same bytes", async () => {
  const b = await bucket();
  await fault("reset");
  await fault("fail", { count: 2, status: 503, match: "/objects/" });
  const info = await proxied().upload(b, "retried.txt", "again");
  assert.equal(info.size, 5);
  const puts = await seen("PUT", "/objects/retried.txt");
  assert.deepEqual(
    puts.map((r) => r.status),
    [503, 503, 201],
  );
  assert.equal(await client().getText(b, "retried.txt"), "again");
});

test("a stream is never sent twice: a 503 on it is the caller's error", async () => {
  const b = await bucket();
  await fault("reset");
  await fault("fail", { count: 1, status: 503, match: "/objects/" });
  const stream = new Blob(["streamed once"]).stream();
  await assert.rejects(proxied().upload(b, "once.txt", stream), (err) => err.status === 503 && err.retryable);
  assert.equal((await seen("PUT", "/objects/once.txt")).length, 1);
  assert.equal(await client().exists(b, "once.txt"), false);
});

test("a non-idempotent call is retried on 503 (refused) but not on 504 (outcome unknown)", async () => {
  const store = proxied();
  await fault("reset");
  await fault("fail", { count: 1, status: 503, match: "/v1/tokens" });
  const token = await store.createToken(`js-${Date.now()}`, ["reader"]);
  assert.ok(token.token);
  await fault("reset");
  await fault("lose", { count: 1, status: 504, match: "/v1/tokens" });
  await assert.rejects(store.createToken(`js2-${Date.now()}`, ["reader"]), (err) => err.status === 504);
  assert.equal((await seen("POST", "/v1/tokens")).length, 1);
});

test("a corrupted download is detected by its sha256", async () => {
  const store = client();
  const b = await bucket(store);
  await store.upload(b, "c.bin", randomBytes(4096));
  await fault("reset");
  await fault("corrupt", { count: 1, match: "/objects/c.bin" });
  await assert.rejects(proxied().getBytes(b, "c.bin"), (err) => err.code === "ChecksumMismatch");
});
