/** Upload bodies: what can be sent, its size, whether it can be read again, and its sha256. */
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";

/** An incremental sha256: `update` with each chunk, then `hex()` (as often as wanted). */
export interface Sha256 {
  update(chunk: Uint8Array): void;
  hex(): string;
}

interface NodeCrypto {
  createHash(algorithm: "sha256"): { update(data: Uint8Array): unknown; digest(encoding: "hex"): string };
}

// Node's OpenSSL sha256 where there is one (Node >= 20.16 has `process.getBuiltinModule`,
// which no bundler follows into a browser build): several times faster than the pure-JS
// @noble/hashes, which browsers use (Web Crypto's digest takes whole buffers only).
const nodeCrypto = (
  globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }
).process?.getBuiltinModule?.("node:crypto") as NodeCrypto | undefined;

interface NodeFs {
  openAsBlob(path: string): Promise<Blob>;
  promises: { stat(path: string): Promise<unknown> };
}

const nodeFs = (
  globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }
).process?.getBuiltinModule?.("node:fs") as NodeFs | undefined;

/**
 * A local file as a `Blob` read from disk in slices, never whole (Node's `fs.openAsBlob`);
 * browsers have no paths: there, pass a `File`.
 */
export function openFile(path: string): Promise<Blob> {
  if (!nodeFs) {
    return Promise.reject(new TypeError(`${path}: files by path need Node (>= 20.16); pass a Blob or File`));
  }
  const fs = nodeFs;
  // stat first: a missing file is ENOENT naming the path (openAsBlob says less).
  return fs.promises.stat(path).then(() => fs.openAsBlob(path));
}

/** A new incremental sha256 (OpenSSL's in Node, @noble/hashes' elsewhere). */
export function newSha256(): Sha256 {
  let hex: string | undefined;
  if (nodeCrypto) {
    const hash = nodeCrypto.createHash("sha256");
    return {
      update: (chunk) => {
        hash.update(chunk);
      },
      hex: () => (hex ??= hash.digest("hex")),
    };
  }
  const hash = sha256.create();
  return {
    update: (chunk) => {
      hash.update(chunk);
    },
    hex: () => (hex ??= bytesToHex(hash.digest())),
  };
}

/**
 * What an upload takes. `Blob` (a browser `File`; in Node `fs.openAsBlob(path)`) and bytes can
 * be read again: they are hashed before sending, split into parallel parts when large,
 * resumed, and retried. A stream or an async iterable is sent once, as it comes, hashed on the
 * way (its sha256 is compared with the store's answer); it is never retried.
 */
export type UploadBody =
  | string
  | Uint8Array
  | ArrayBuffer
  | Blob
  | ReadableStream<Uint8Array>
  | AsyncIterable<Uint8Array>;

/** A body that can be read again, and sliced. */
export class Replayable {
  private constructor(private readonly blob: Blob) {}

  static of(body: UploadBody): Replayable | undefined {
    if (typeof body === "string") return new Replayable(new Blob([new TextEncoder().encode(body)]));
    if (body instanceof Uint8Array) return new Replayable(new Blob([body as Uint8Array<ArrayBuffer>]));
    if (body instanceof ArrayBuffer) return new Replayable(new Blob([body]));
    if (body instanceof Blob) return new Replayable(body);
    return undefined;
  }

  get size(): number {
    return this.blob.size;
  }

  slice(start: number, end: number): Blob {
    return this.blob.slice(start, end);
  }

  /** sha256 (hex) of bytes `[start, end)`, read in chunks, never whole. */
  async sha256(start = 0, end = this.size): Promise<string> {
    const hash = newSha256();
    for await (const chunk of streamChunks(this.blob.slice(start, end).stream())) hash.update(chunk);
    return hash.hex();
  }
}

export async function* streamChunks(stream: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      yield value;
    }
  } finally {
    reader.releaseLock();
  }
}

/** A one-shot body as a ReadableStream that hashes (and counts) what passes through it. */
export function hashingStream(
  body: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>,
  onChunk: (n: number) => void,
): { stream: ReadableStream<Uint8Array>; hex: () => string } {
  const hash = newSha256();
  const source: AsyncIterable<Uint8Array> = body instanceof ReadableStream ? streamChunks(body) : body;
  const iterator = source[Symbol.asyncIterator]();
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { done, value } = await iterator.next();
      if (done) {
        controller.close();
        return;
      }
      hash.update(value);
      onChunk(value.byteLength);
      controller.enqueue(value);
    },
    async cancel(reason) {
      await iterator.return?.(reason);
    },
  });
  return { stream, hex: () => hash.hex() };
}
