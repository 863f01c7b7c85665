// The suite runs against a store it is given: ZAS_TEST_URL and ZAS_TEST_TOKEN (an admin API
// token); ZAS_TEST_FAULT_PROXY is the fault proxy in front of it (tests/fixtures/faultproxy.py)
// and ZAS_TEST_FAULT_CONTROL its control port (tests/fixtures/faultcontrol.py), as for the Go
// SDK. `make test` starts them (tests/integration/test_sdk_js.py). Without them every test fails, saying so.
import { Client } from "../dist/index.js";

export const URL = process.env.ZAS_TEST_URL;
export const TOKEN = process.env.ZAS_TEST_TOKEN;
export const PROXY = process.env.ZAS_TEST_FAULT_PROXY;
export const CONTROL = process.env.ZAS_TEST_FAULT_CONTROL;

export function need(...names) {
  const missing = names.filter((n) => !process.env[n]);
  if (missing.length) {
    throw new Error(
      `set ${missing.join(" and ")}: the store to test against (URL, an admin API token, the ` +
        "fault proxy in front of it) — `make test` does it (tests/integration/test_sdk_js.py)",
    );
  }
}

export function client(options = {}) {
  need("ZAS_TEST_URL", "ZAS_TEST_TOKEN");
  return new Client(URL, { token: TOKEN, ...options });
}

export function proxied(options = {}) {
  need("ZAS_TEST_URL", "ZAS_TEST_TOKEN", "ZAS_TEST_FAULT_PROXY", "ZAS_TEST_FAULT_CONTROL");
  return new Client(PROXY, { token: TOKEN, retry: { initialBackoff: 0.01 }, ...options });
}

/** Arm the fault proxy: fault("fail", {count: 2, status: 503}), fault("reset"). */
export async function fault(name, args = {}) {
  const r = await fetch(`${CONTROL}/${name}`, { method: "POST", body: JSON.stringify(args) });
  if (!r.ok) throw new Error(`fault control: ${r.status} ${await r.text()}`);
}

/** What the proxy saw: requests with `method` whose path contains `contains`. */
export async function seen(method, contains = "") {
  const query = new URLSearchParams({ method: method ?? "", contains });
  const r = await fetch(`${CONTROL}/seen?${query}`);
  return await r.json();
}

export async function bucket(store = client()) {
  const name = `js-${Math.random().toString(36).slice(2, 10)}`;
  await store.createBucket(name);
  return name;
}

export function randomBytes(size) {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i += 65536) crypto.getRandomValues(out.subarray(i, Math.min(size, i + 65536)));
  return out;
}

export async function sha256Hex(data) {
  const digest = await crypto.subtle.digest("SHA-256", data);
  return Buffer.from(digest).toString("hex");
}
