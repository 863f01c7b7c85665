/** Upload bodies: what can be sent, its size, whether it can be read again, and its sha256. */
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";

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
    const hash = sha256.create();
    for await (const chunk of streamChunks(this.blob.slice(start, end).stream())) hash.update(chunk);
    return bytesToHex(hash.digest());
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
  const hash = sha256.create();
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
  let hex: string | undefined;
  return { stream, hex: () => (hex ??= bytesToHex(hash.digest())) };
}

/** sha256 (hex) of bytes in memory. */
export function sha256Hex(data: Uint8Array): string {
  return bytesToHex(sha256(data));
}

/** A hasher for downloads: update with each chunk, then `hex()`. */
export function sha256Stream(): { update(chunk: Uint8Array): void; hex(): string } {
  const hash = sha256.create();
  let hex: string | undefined;
  return {
    update: (chunk) => {
      hash.update(chunk);
    },
    hex: () => (hex ??= bytesToHex(hash.digest())),
  };
}
