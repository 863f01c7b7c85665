import assert from "node:assert/strict";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { BATCH_LIMIT, NotFoundError, StoreError, UnprocessableError } from "../dist/index.js";
import { bucket, client, randomBytes, sha256Hex } from "./helpers.mjs";

const SBOM = JSON.stringify({
  bomFormat: "CycloneDX",
  specVersion: "1.5",
  version: 1,
  components: [{ type: "library", name: "left-pad", version: "1.3.0", purl: "pkg:npm/left-pad@1.3.0" }],
});

const outcome = (item) => `${item.key}=${item.result}${item.error ? `:${item.error.code}` : ""}`;

test("batch: present, linked, upload and invalid objects; hrefs take only the declared bytes", async () => {
  const store = client();
  const b = await bucket(store);
  const other = await bucket(store);
  const have = randomBytes(1000);
  const elsewhere = randomBytes(2000);
  const fresh = randomBytes(300_000);
  await store.upload(b, "have.bin", have);
  await store.upload(other, "src.bin", elsewhere);

  const plan = await store.batch(b, [
    { key: "have.bin", sha256: await sha256Hex(have), size: have.length },
    { key: "copy.bin", sha256: `sha256:${await sha256Hex(elsewhere)}`, size: elsewhere.length },
    { key: "new.bin", sha256: await sha256Hex(fresh), size: fresh.length, content_type: "application/x-new" },
    { key: "bad.bin", sha256: "nope", size: 1 },
    { key: "", sha256: await sha256Hex(have), size: have.length },
  ]);
  assert.deepEqual(plan.objects.map(outcome), [
    "have.bin=present",
    "copy.bin=linked",
    "new.bin=upload",
    "bad.bin=error:InvalidDigest",
    "=error:InvalidKey",
  ]);
  assert.deepEqual(plan.counts, { present: 1, linked: 1, upload: 1, error: 2 });
  assert.equal(plan.objects[1].linked_from, `${other}/src.bin`);
  assert.deepEqual(await store.getBytes(b, "copy.bin"), elsewhere);

  const action = plan.objects[2].actions.upload;
  assert.equal(action.method, "PUT");
  assert.equal(action.headers["Content-Type"], "application/x-new");
  // A body of another size, or of the right size but other bytes: refused, nothing stored.
  const longer = new Uint8Array(fresh.length + 1);
  longer.set(fresh);
  await assert.rejects(store.sendUpload(action, longer), StoreError);
  await assert.rejects(store.sendUpload(action, fresh.subarray(1)), StoreError);
  const tampered = fresh.slice();
  tampered[0] ^= 1;
  await assert.rejects(
    store.sendUpload(action, tampered),
    (err) => err instanceof UnprocessableError && err.code === "ChecksumMismatch",
  );
  assert.equal(await store.exists(b, "new.bin"), false);
  // The declared bytes: stored, identical, with the declared content type.
  const info = await store.sendUpload(action, new Blob([fresh]));
  assert.equal(info.sha256, await sha256Hex(fresh));
  assert.deepEqual(await store.getBytes(b, "new.bin"), fresh);
  assert.equal((await store.head(b, "new.bin")).content_type, "application/x-new");

  const down = await store.batch(b, [{ key: "new.bin" }, { key: "have.bin", size: 1 }, { key: "none" }], {
    operation: "download",
    expiresIn: 60,
  });
  assert.deepEqual(down.objects.map(outcome), [
    "new.bin=download",
    "have.bin=error:PreconditionFailed",
    "none=error:NoSuchKey",
  ]);
  const got = await fetch(down.objects[0].actions.download.href);
  assert.deepEqual(new Uint8Array(await got.arrayBuffer()), fresh);
});

test("uploadMany: files by path and Blob; only what the store lacks is sent; per-file results", async () => {
  const store = client();
  const b = await bucket(store);
  const other = await bucket(store);
  const dir = await mkdtemp(join(tmpdir(), "js-batch-"));
  const contents = { a: randomBytes(5000), b: randomBytes(1 << 20), c: randomBytes(77), e: new Uint8Array() };
  for (const [name, data] of Object.entries(contents)) await writeFile(join(dir, name), data);
  await store.upload(b, "rel/a", contents.a); // already there
  await store.upload(other, "c-elsewhere", contents.c); // there under another key
  const blob = randomBytes(4321);
  const files = [
    { key: "rel/a", path: join(dir, "a") },
    { key: "rel/b", path: join(dir, "b"), contentType: "application/x-b" },
    { key: "rel/c", path: join(dir, "c") },
    { key: "rel/e", path: join(dir, "e") },
    { key: "rel/blob", body: new Blob([blob]) },
    { key: "rel/missing", path: join(dir, "missing") },
    { key: "", body: "x" },
  ];
  const ended = [];
  const done = await store.uploadMany(b, files, { parallel: 2, onFile: (f) => ended.push(f.key) });
  assert.deepEqual(
    done.files.map((f) => `${f.key}=${f.result}`),
    [
      "rel/a=present",
      "rel/b=uploaded",
      "rel/c=linked",
      "rel/e=uploaded",
      "rel/blob=uploaded",
      "rel/missing=error",
      "=error",
    ],
  );
  assert.deepEqual(done.counts, { uploaded: 3, present: 1, linked: 1, error: 2 });
  assert.equal(ended.length, files.length);
  assert.equal(done.files[2].linkedFrom, `${other}/c-elsewhere`);
  assert.equal(done.files[5].error.code, "ENOENT");
  assert.ok(done.files[6].error instanceof StoreError && done.files[6].error.status === 400);
  assert.equal(done.files[1].object.content_type, "application/x-b");
  for (const [name, data] of Object.entries(contents)) {
    assert.deepEqual(await store.getBytes(b, `rel/${name}`), data, name);
    assert.deepEqual(await store.getBytes(b, `rel/${name}`), new Uint8Array(await readFile(join(dir, name))));
  }
  assert.deepEqual(await store.getBytes(b, "rel/blob"), blob);
  const again = await store.uploadMany(b, files.slice(0, 5));
  assert.deepEqual(again.counts, { uploaded: 0, present: 5, linked: 0, error: 0 });
});

test("batchHead and batchDelete: per-key results and errors, long lists split", async () => {
  const store = client();
  const b = await bucket(store);
  const a = randomBytes(10);
  await store.upload(b, "k/a", a, { contentType: "text/plain" });
  await store.upload(b, "k/b", randomBytes(20));

  const head = await store.batchHead(b, ["k/a", "k/none", "k/b", ""]);
  assert.deepEqual(head.keys.map(outcome), [
    "k/a=found",
    "k/none=error:NoSuchKey",
    "k/b=found",
    "=error:InvalidKey",
  ]);
  assert.equal(head.keys[0].object.sha256, await sha256Hex(a));
  assert.equal(head.keys[0].object.content_type, "text/plain");
  assert.equal(head.keys[1].error.status, 404);
  assert.deepEqual(head.counts, { found: 2, error: 2 });

  const many = Array.from({ length: BATCH_LIMIT + 1 }, (_, i) => `k/none-${i}`);
  many[BATCH_LIMIT] = "k/b";
  const big = await store.batchHead(b, many);
  assert.equal(big.keys.length, BATCH_LIMIT + 1);
  assert.deepEqual(big.counts, { found: 1, error: BATCH_LIMIT });
  assert.equal(outcome(big.keys[BATCH_LIMIT]), "k/b=found");

  const del = await store.batchDelete(b, ["k/a", "k/none", "k/b"]);
  assert.deepEqual(del.keys.map(outcome), ["k/a=deleted", "k/none=error:NoSuchKey", "k/b=deleted"]);
  assert.equal(del.keys[0].sha256, await sha256Hex(a));
  await assert.rejects(store.head(b, "k/a"), NotFoundError);
  await assert.rejects(store.head(b, "k/b"), NotFoundError);
  const missing = await store.batchDelete(`no-such-${Date.now()}`, ["x"]);
  assert.equal(missing.keys[0].error.code, "NoSuchBucket");
  await assert.rejects(store.batchHead(b, []), (err) => err.status === 400 && err.code === "MalformedJSON");
});

test("batchVerify: a result per subject, verified only when every one passed", async () => {
  const store = client();
  const b = await bucket(store);
  const info = await store.upload(b, "signed.txt", `signed ${Math.random()}`);
  await store.sign({ bucket: b, key: "signed.txt" });
  await store.attachSbom({ bucket: b, key: "signed.txt" }, SBOM);
  await store.upload(b, "unsigned.txt", `no evidence ${Math.random()}`);
  const serverKey = (await store.listKeys()).find((k) => k.name === "server signing key");
  const policy = { signatures: [{ key: serverKey.id }], sbom: true };
  const subjects = [
    { bucket: b, key: "signed.txt" },
    { bucket: b, key: "unsigned.txt" },
    { bucket: b, key: "missing.txt" },
    { digest: `sha256:${info.sha256}` },
  ];
  const out = await store.batchVerify(subjects, policy);
  assert.deepEqual(
    out.subjects.map((s) => `${s.result}${s.error ? `:${s.error.code}` : ""}`),
    ["passed", "failed", "error:NoSuchKey", "passed"],
  );
  assert.equal(out.verified, false);
  assert.deepEqual(out.counts, { passed: 2, failed: 1, error: 1 });
  assert.equal(out.subjects[0].subject_digest, `sha256:${info.sha256}`);
  assert.ok(out.subjects[0].rules.every((r) => r.passed) && out.subjects[0].rules[0].evidence.length > 0);
  assert.ok(out.subjects[1].rules.some((r) => !r.passed));
  assert.equal(out.subjects[2].error.status, 404);
  assert.deepEqual(out.subjects[2].subject, subjects[2]);
  assert.equal((await store.batchVerify([subjects[0], subjects[3]], policy)).verified, true);
  await assert.rejects(store.batchVerify(subjects, { signatures: "everyone" }), (err) => err.status === 400);
});
