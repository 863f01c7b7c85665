// The README's `js` blocks, in order, as one module, against the live store (the README's
// promise): each must run without an error.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFile, rm, writeFile } from "node:fs/promises";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { need } from "./helpers.mjs";

const run = promisify(execFile);
const sdk = fileURLToPath(new URL("..", import.meta.url));

test("every README example runs as written", async () => {
  need("ZAS_TEST_URL", "ZAS_TEST_TOKEN");
  const readme = await readFile(`${sdk}README.md`, "utf8");
  const blocks = [...readme.matchAll(/^```js\n([\s\S]*?)^```$/gm)].map((m) => m[1]);
  assert.ok(blocks.length >= 10, `${blocks.length} blocks`);
  // Imports first (a module hoists them anyway), then the blocks in order.
  const lines = blocks.join("\n").split("\n");
  const imports = new Set(lines.filter((line) => line.startsWith("import ")));
  const body = lines.filter((line) => !line.startsWith("import ")).join("\n");
  const script = `${sdk}.readme-run.mjs`;
  await writeFile(script, `${[...imports].join("\n")}\n${body}`);
  try {
    const env = {
      ...process.env,
      ZOT_ARTIFACTS_URL: process.env.ZAS_TEST_URL,
      ZOT_ARTIFACTS_TOKEN: process.env.ZAS_TEST_TOKEN,
    };
    const { stdout } = await run(process.execPath, [script], { env, cwd: sdk, timeout: 120_000 });
    assert.match(stdout, /^true NoSuchKey true$/m);
    assert.match(stdout, /^release notes\n$/m);
    // The batch section: one link, two uploads, the plan, heads, a verification of both.
    assert.match(
      stdout,
      /^app\/1\.1\/app\.tar\.gz linked\napp\/1\.1\/CHANGES\.md uploaded\napp\/1\.1\/build\.json uploaded$/m,
    );
    assert.match(stdout, /^app\/1\.1\/run\.sh upload undefined\napp\/1\.1\/bad error InvalidDigest$/m);
    assert.match(stdout, /^app\/1\.1\/run\.sh 19\napp\/9\.9\/none NoSuchKey$/m);
    assert.match(stdout, /^true \{ passed: 2, failed: 0, error: 0 \}$/m);
    assert.match(stdout, /^\{ deleted: 2, error: 0 \}$/m);
  } finally {
    await rm(script, { force: true });
  }
});
