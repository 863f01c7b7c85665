import assert from "node:assert/strict";
import { test } from "node:test";
import {
  ConflictError,
  isNotFound,
  NotFoundError,
  PreconditionFailedError,
  StoreError,
} from "../dist/index.js";
import { bucket, client, randomBytes, sha256Hex } from "./helpers.mjs";

test("buckets: create, get, list, refuse a second create, delete", async () => {
  const store = client();
  const name = await bucket(store);
  assert.equal((await store.getBucket(name)).name, name);
  assert.ok((await store.listBuckets()).some((b) => b.name === name));
  await assert.rejects(store.createBucket(name), (err) => err instanceof ConflictError && err.status === 409);
  assert.equal((await store.createBucket(name, { existOk: true })).name, name);
  await store.deleteBucket(name);
  await assert.rejects(store.getBucket(name), NotFoundError);
});

test("round trips: bytes, text, a Blob and a stream, each checked by sha256", async () => {
  const store = client();
  const b = await bucket(store);
  const data = randomBytes(300_000);
  const info = await store.upload(b, "dir/a.bin", data, {
    labels: { build: "7" },
    contentType: "application/x-test",
  });
  assert.equal(info.sha256, await sha256Hex(data));
  assert.equal(info.size, data.length);
  assert.deepEqual(info.labels, { build: "7" });
  assert.deepEqual(await store.getBytes(b, "dir/a.bin"), data);
  const head = await store.head(b, "dir/a.bin");
  assert.equal(head.content_type, "application/x-test");
  assert.equal(await store.exists(b, "dir/a.bin"), true);
  assert.equal(await store.exists(b, "dir/none"), false);

  await store.upload(b, "t.txt", "héllo wörld\n");
  assert.equal(await store.getText(b, "t.txt"), "héllo wörld\n");
  await store.upload(b, "blob.bin", new Blob([data.subarray(0, 1000)]));
  assert.deepEqual(await store.getBytes(b, "blob.bin"), data.subarray(0, 1000));

  let progressed = 0;
  const stream = new Blob([data]).stream();
  const streamed = await store.upload(b, "stream.bin", stream, { onProgress: (done) => (progressed = done) });
  assert.equal(streamed.sha256, info.sha256);
  assert.equal(progressed, data.length);

  const download = await store.get(b, "stream.bin");
  assert.equal(download.info.sha256, info.sha256);
  assert.equal(download.info.size, data.length);
  const chunks = [];
  for await (const chunk of download.body) chunks.push(chunk);
  assert.equal(Buffer.concat(chunks).length, data.length);
});

test("byte ranges: a slice, an open end, a suffix, and a range past the end", async () => {
  const store = client();
  const b = await bucket(store);
  const data = randomBytes(10_000);
  await store.upload(b, "r.bin", data);
  const slice = await store.get(b, "r.bin", { range: { start: 100, end: 199 } });
  assert.equal(slice.status, 206);
  assert.equal(slice.contentRange, "bytes 100-199/10000");
  assert.equal(slice.info.size, 10_000);
  assert.deepEqual(
    await store.getBytes(b, "r.bin", { range: { start: 100, end: 199 } }),
    data.subarray(100, 200),
  );
  assert.deepEqual(await store.getBytes(b, "r.bin", { range: { start: 9990 } }), data.subarray(9990));
  assert.deepEqual(await store.getBytes(b, "r.bin", { range: { suffix: 5 } }), data.subarray(9995));
  await assert.rejects(store.getBytes(b, "r.bin", { range: { start: 20_000 } }), (err) => err.status === 416);
});

test("listing pages through continuation tokens; prefixes are folders", async () => {
  const store = client();
  const b = await bucket(store);
  for (let i = 0; i < 7; i++) await store.upload(b, `p/${i}.txt`, `${i}`);
  await store.upload(b, "q/x.txt", "x");
  const keys = [];
  for await (const o of store.list(b, { prefix: "p/", pageSize: 3 })) keys.push(o.key);
  assert.deepEqual(
    keys,
    [0, 1, 2, 3, 4, 5, 6].map((i) => `p/${i}.txt`),
  );
  const folders = [];
  for await (const p of store.listPrefixes(b)) folders.push(p);
  assert.deepEqual(folders, ["p/", "q/"]);
});

test("create-only uploads never replace; copy and delete", async () => {
  const store = client();
  const b = await bucket(store);
  await store.upload(b, "once", "first", { overwrite: false });
  await assert.rejects(store.upload(b, "once", "second", { overwrite: false }), PreconditionFailedError);
  assert.equal(await store.getText(b, "once"), "first");
  const copied = await store.copy({ bucket: b, key: "once" }, { bucket: b, key: "copy/of once" });
  assert.equal(copied.key, "copy/of once");
  assert.equal(await store.getText(b, "copy/of once"), "first");
  await store.delete(b, "once");
  await assert.rejects(store.head(b, "once"), (err) => isNotFound(err) && err instanceof StoreError);
});

test("presigned URLs work for a plain fetch, GET and PUT", async () => {
  const store = client();
  const b = await bucket(store);
  await store.upload(b, "doc.txt", "presigned");
  const get = await store.presign(b, "doc.txt", { expiresIn: 60 });
  const r = await fetch(get);
  assert.equal(r.status, 200);
  assert.equal(await r.text(), "presigned");
  const put = await store.presign(b, "up.txt", { method: "PUT" });
  const w = await fetch(put, { method: "PUT", body: "uploaded" });
  assert.ok(w.ok, `${w.status}`);
  assert.equal(await store.getText(b, "up.txt"), "uploaded");
});
