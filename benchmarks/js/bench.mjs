// Times one transfer with the JavaScript SDK (sdk/js, its build in dist/) in Node and prints
// {"seconds": s, "bytes": n, "sha256": hex}; benchmarks/sdks.py drives it, as it drives
// benchmarks/go for the Go SDK.
//
//   node bench.mjs --url URL --op put|upload|download|sha256 --file PATH [--key K]
//       [--bucket B] [--part-mib 64] [--parallel 4]
//
// put:      Client.upload of fs.openAsBlob(file) in one PUT (sha256 computed first, as the SDK
//           does for any Blob under multipartThreshold);
// upload:   the same in parallel parts;
// download: Client.get streamed to the file, hashed on the way with the SDK's own sha256
//           (OpenSSL's in Node, through dist/body.js) and compared with the store's, fsynced;
// sha256:   the references: @noble/hashes over the file (what the SDK hashes with in a
//           browser), and node:crypto's (OpenSSL: the SDK in Node) in "node_crypto_seconds".
import { createHash } from "node:crypto";
import { createReadStream, openAsBlob } from "node:fs";
import { open } from "node:fs/promises";
import { parseArgs } from "node:util";
import { sha256 } from "../../sdk/js/node_modules/@noble/hashes/sha2.js";
import { bytesToHex } from "../../sdk/js/node_modules/@noble/hashes/utils.js";
import { newSha256 } from "../../sdk/js/dist/body.js";
import { Client } from "../../sdk/js/dist/index.js";

const MIB = 1024 * 1024;
const { values: args } = parseArgs({
  options: {
    url: { type: "string", default: "" },
    op: { type: "string", default: "put" },
    bucket: { type: "string", default: "sdk-bench" },
    key: { type: "string", default: "js.bin" },
    file: { type: "string" },
    "part-mib": { type: "string", default: "64" },
    parallel: { type: "string", default: "4" },
  },
});

async function hashFile(path, hasher) {
  for await (const chunk of createReadStream(path, { highWaterMark: 8 * MIB })) hasher.update(chunk);
}

const store = new Client(args.url || "http://127.0.0.1", {
  token: process.env.ZOT_ARTIFACTS_TOKEN,
  timeoutMs: 600_000,
  retry: { maxAttempts: 3 },
});
const start = performance.now();
let out;
switch (args.op) {
  case "put":
  case "upload": {
    const blob = await openAsBlob(args.file);
    const partSize = Number(args["part-mib"]) * MIB;
    const options =
      args.op === "put"
        ? { multipartThreshold: blob.size + 1 }
        : { multipartThreshold: partSize, partSize, parallel: Number(args.parallel), resume: false };
    const info = await store.upload(args.bucket, args.key, blob, options);
    out = { bytes: info.size, sha256: info.sha256 };
    break;
  }
  case "download": {
    const download = await store.get(args.bucket, args.key);
    const file = await open(args.file, "w");
    const hash = newSha256();
    let bytes = 0;
    for await (const chunk of download.body) {
      hash.update(chunk);
      await file.write(chunk);
      bytes += chunk.byteLength;
    }
    await file.sync();
    await file.close();
    const hex = hash.hex();
    if (hex !== download.info.sha256) throw new Error(`sha256 ${hex}, the store has ${download.info.sha256}`);
    out = { bytes, sha256: hex };
    break;
  }
  case "sha256": {
    const hash = sha256.create();
    await hashFile(args.file, hash);
    const seconds = (performance.now() - start) / 1000;
    const t = performance.now();
    const native = createHash("sha256");
    await hashFile(args.file, native);
    const hex = bytesToHex(hash.digest());
    if (hex !== native.digest("hex")) throw new Error("noble and node:crypto disagree");
    const { size } = await openAsBlob(args.file);
    console.log(
      JSON.stringify({
        seconds,
        bytes: size,
        sha256: hex,
        node_crypto_seconds: (performance.now() - t) / 1000,
      }),
    );
    process.exit(0);
  }
  default:
    throw new Error(`unknown --op ${args.op}`);
}
console.log(JSON.stringify({ seconds: (performance.now() - start) / 1000, ...out }));
