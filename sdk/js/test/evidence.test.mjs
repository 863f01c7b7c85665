import assert from "node:assert/strict";
import { test } from "node:test";
import {
  AccessDeniedError,
  AuthenticationError,
  Client,
  isAccessDenied,
  NotFoundError,
  UnprocessableError,
} from "../dist/index.js";
import { bucket, client, URL } from "./helpers.mjs";

const SBOM = JSON.stringify({
  bomFormat: "CycloneDX",
  specVersion: "1.5",
  version: 1,
  components: [{ type: "library", name: "left-pad", version: "1.3.0", purl: "pkg:npm/left-pad@1.3.0" }],
});

test("verify: fails without evidence, passes once the store signed it and an SBOM is attached", async () => {
  const store = client();
  const b = await bucket(store);
  await store.upload(b, "app.tgz", "the app");
  const subject = { bucket: b, key: "app.tgz" };
  const serverKey = (await store.listKeys()).find((k) => k.name === "server signing key");
  assert.ok(serverKey, "the store's own key is trusted");
  const policy = { signatures: [{ key: serverKey.id }], sbom: true };
  const before = await store.verify(subject, policy);
  assert.equal(before.verified, false);

  const signature = await store.sign(subject);
  assert.equal(signature.kind, "signature");
  const sbom = await store.attachSbom(subject, SBOM);
  assert.equal(sbom.kind, "sbom");
  const after = await store.verify(subject, policy);
  assert.equal(after.verified, true, JSON.stringify(after));

  const listed = await store.listEvidence(subject);
  assert.deepEqual(listed.map((e) => e.kind).sort(), ["sbom", "signature"]);
  const document = JSON.parse(new TextDecoder().decode(await store.getEvidence(sbom.id)));
  assert.equal(document.bomFormat, "CycloneDX");
  const found = await store.searchSboms({ purl: "pkg:npm/left-pad" });
  assert.ok(
    found.some((r) => JSON.stringify(r).includes(b)),
    JSON.stringify(found),
  );
});

test("typed errors: 401, 403, 404, 409, 422", async () => {
  const store = client();
  const b = await bucket(store);
  await assert.rejects(
    new Client(URL, { token: "zat_not-a-token", retry: { maxAttempts: 1 } }).listBuckets(),
    AuthenticationError,
  );
  const reader = await store.createToken(`js-reader-${Date.now()}`, ["reader"]);
  const readOnly = new Client(URL, { token: reader.token });
  await assert.rejects(
    readOnly.upload(b, "x", "no"),
    (err) => err instanceof AccessDeniedError && isAccessDenied(err),
  );
  await assert.rejects(
    store.getText(b, "missing"),
    (err) => err instanceof NotFoundError && err.code === "NoSuchKey",
  );
  await store.upload(b, "full", "x");
  await assert.rejects(store.deleteBucket(b), (err) => err.status === 409);
  await assert.rejects(
    store.attachSbom({ bucket: b, key: "full" }, "{not an sbom", "application/vnd.cyclonedx+json"),
    (err) => err instanceof UnprocessableError || err.status === 400,
  );
  await store.revokeToken(reader.id);
});

test("tokens, keys, authorize and the audit log", async () => {
  const store = client();
  const me = await store.whoami();
  assert.ok(me);
  const decision = await store.authorize("s3:GetObject", "arn:aws:s3:::any/thing");
  assert.equal(decision.allowed, true);
  let seen = 0;
  for await (const record of store.audit({ pageSize: 5 })) {
    assert.ok(record.action);
    if (++seen >= 12) break;
  }
  assert.ok(seen > 5, "paged past the first page");
});
