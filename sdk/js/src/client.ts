/** The client: one instance per store, safe to share; every method returns a promise. */
import { type AuthContext, basicAuth, type Credentials, tokenAuth } from "./auth.js";
import { hashingStream, newSha256, openFile, Replayable, streamChunks, type UploadBody } from "./body.js";
import {
  ConflictError,
  errorFromBatch,
  errorFromResponse,
  PreconditionFailedError,
  StoreError,
} from "./errors.js";
import { DEFAULT_RETRY, type RetryPolicy, retryDelay } from "./retry.js";
import type {
  ApiToken,
  AuditRecord,
  AuthorizeResult,
  BatchAction,
  BatchKeysResponse,
  BatchObject,
  BatchResponse,
  BatchVerification,
  Bucket,
  Evidence,
  Labels,
  ObjectInfo,
  ObjectList,
  Policy,
  RepositoryVerificationGate,
  SbomSearchResult,
  Subject,
  TrustedKey,
  Upload,
  UploadState,
  VerificationGate,
  VerificationResult,
} from "./types.js";

export interface ClientOptions {
  /** An API token (`zat_…`): shorthand for `credentials: tokenAuth(token)`. */
  token?: string;
  /** The root user: shorthand for `credentials: basicAuth(username, password)`. */
  basic?: { username: string; password: string };
  /** Any credentials: {@link tokenAuth}, {@link OIDCClientCredentials}, {@link GitHubActionsAuth} … */
  credentials?: Credentials;
  /** The fetch to use (default: the global one). */
  fetch?: typeof globalThis.fetch;
  /** Milliseconds to wait for an answer's headers (a body may take as long as it takes). Default 60 000. */
  timeoutMs?: number;
  /** Retries: see {@link RetryPolicy}. */
  retry?: Partial<RetryPolicy>;
  /** Extra headers on every request (e.g. a User-Agent suffix; browsers forbid some). */
  headers?: Record<string, string>;
}

/** Bytes sent or received so far, per call. */
export type ProgressCallback = (done: number, total: number | undefined) => void;

export interface UploadOptions {
  contentType?: string;
  labels?: Labels;
  /** false: create only — the store refuses (412) when the key exists. Default true. */
  overwrite?: boolean;
  /** Bytes per part of a multipart upload (at least 5 MiB). Default 16 MiB. */
  partSize?: number;
  /** Parts in flight at once. Default 4. */
  parallel?: number;
  /** Bodies that can be read again from this size on go in parts. Default 64 MiB. */
  multipartThreshold?: number;
  /** Continue an interrupted multipart upload of the same key (parts already there with the same sha256 are not sent again). Default true. */
  resume?: boolean;
  onProgress?: ProgressCallback;
  signal?: AbortSignal;
}

export interface ByteRange {
  /** First byte (0-based). */
  start: number;
  /** Last byte, inclusive; omitted: to the end. */
  end?: number;
}

export interface GetOptions {
  /** A byte range (`{start, end}`), or the last `suffix` bytes (`{suffix: n}`). */
  range?: ByteRange | { suffix: number };
  /** Only if the object still has this ETag (412 otherwise). */
  ifMatch?: string;
  signal?: AbortSignal;
}

/** An object being read: its metadata now, its bytes as a stream. */
export interface ObjectDownload {
  info: ObjectInfo;
  /** 206 for a range. */
  status: number;
  /** `Content-Range` of a range. */
  contentRange: string | undefined;
  body: ReadableStream<Uint8Array>;
}

export interface ListOptions {
  prefix?: string;
  delimiter?: string;
  /** Objects per request. Default 1000. */
  pageSize?: number;
}

export interface AuditQuery {
  principal?: string;
  action?: string;
  decision?: "allow" | "deny";
  resource?: string;
  since?: string;
  until?: string;
  pageSize?: number;
}

/** Items the store takes in one batch request; the batch methods send longer lists as several. */
export const BATCH_LIMIT = 1000;

/** One file of {@link Client.uploadMany}: a path (Node) or a body that can be read again. */
export type UploadManyFile = { key: string; contentType?: string } & (
  | { path: string }
  | { body: Blob | Uint8Array | ArrayBuffer | string }
);

/** What {@link Client.uploadMany} did with one file. */
export interface UploadManyFileResult {
  key: string;
  /**
   * `uploaded` (sent through its presigned href: `object`), `present` (the key already held
   * these bytes), `linked` (the store had them under `linkedFrom`: no transfer) or `error`.
   */
  result: "uploaded" | "present" | "linked" | "error";
  /** The file's sha256 (hex) and size, once read. */
  sha256?: string;
  size?: number;
  /** `bucket/key` the content was linked from. */
  linkedFrom?: string;
  /** The stored object, for `uploaded`. */
  object?: ObjectInfo;
  /** Why it failed: a {@link StoreError} (as the single call would throw), or the file's own error. */
  error?: Error;
}

/** The answer of {@link Client.uploadMany}: a result per file in the order given, and how many ended each way. */
export interface UploadManyResult {
  bucket: string;
  files: UploadManyFileResult[];
  counts: Record<UploadManyFileResult["result"], number>;
}

export interface UploadManyOptions {
  /** Files hashed, then sent, at once. Default 4. */
  parallel?: number;
  /** Seconds the upload hrefs stay valid (long enough to send every file). Default 3600. */
  expiresIn?: number;
  /** Called as each file ends. */
  onFile?: (file: UploadManyFileResult) => void;
  signal?: AbortSignal;
}

function batchChunks<T>(items: T[]): T[][] {
  if (items.length === 0) return [items]; // the store says what is missing
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += BATCH_LIMIT) out.push(items.slice(i, i + BATCH_LIMIT));
  return out;
}

function sumCounts(pages: { counts: Record<string, number> }[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const page of pages) {
    for (const [k, n] of Object.entries(page.counts)) counts[k] = (counts[k] ?? 0) + n;
  }
  return counts;
}

/** `work(i)` for i in [0, n), `parallel` at a time. */
async function inPool(n: number, parallel: number, work: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.max(1, Math.min(parallel, n)) }, async () => {
    while (next < n) await work(next++);
  });
  await Promise.all(workers);
}

const MIN_PART_SIZE = 5 * 1024 * 1024;
const MAX_PARTS = 10_000;
const IDEMPOTENT = new Set(["GET", "HEAD", "PUT", "DELETE", "OPTIONS"]);

interface Call {
  method: string;
  path: string;
  query?: Record<string, string | undefined>;
  headers?: Record<string, string>;
  /** The body, made afresh for each attempt; `once` bodies are not re-sent. */
  body?: () => BodyInit;
  once?: boolean;
  json?: unknown;
  idempotent?: boolean;
  auth?: boolean;
  /** Statuses answered without an error (besides 2xx). */
  accept?: number[];
  signal?: AbortSignal | undefined;
}

/** A path segment, percent-encoded (`/` in keys too: a key is never taken for a sub-route). */
const q = (segment: string): string => encodeURIComponent(segment);

function objectPath(bucket: string, key: string): string {
  return `/v1/buckets/${q(bucket)}/objects/${q(key)}`;
}

function evidencePath(subject: Subject, kind: string): string {
  if ("digest" in subject) return `/v1/digests/${q(subject.digest).replace(/%3A/gi, ":")}/${kind}`;
  return `${objectPath(subject.bucket, subject.key)}/${kind}`;
}

function gatePath(target: { bucket: string } | { repositories: string }): string {
  if ("bucket" in target) return `/v1/buckets/${q(target.bucket)}/verification`;
  const pattern = target.repositories
    .split("/")
    .map((s) => encodeURIComponent(s).replace(/%2A/gi, "*"))
    .join("/");
  return `/v1/repositories/${pattern}/verification`;
}

function sleep(seconds: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, seconds * 1000);
    signal?.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        reject(signal.reason);
      },
      { once: true },
    );
  });
}

function networkError(err: unknown, timedOut: boolean): StoreError {
  if (timedOut) {
    return new StoreError("no answer in time", { code: "Timeout", retryable: true, cause: err });
  }
  if (err instanceof Error && err.name === "AbortError") {
    return new StoreError("the request was aborted", { code: "Aborted", cause: err });
  }
  const cause = (err as { cause?: { code?: string } } | undefined)?.cause;
  const refused = cause?.code === "ECONNREFUSED";
  return new StoreError(`cannot reach the store: ${cause?.code ?? String(err)}`, {
    // A refused connection reached nothing: any request may be sent again.
    code: refused ? "ConnectError" : "ConnectionError",
    retryable: true,
    cause: err,
  });
}

/**
 * A client of one Zot Artifact Store.
 *
 * ```ts
 * const store = new Client("https://store.example.com", { token: process.env.ZAS_TOKEN });
 * await store.upload("releases", "app/1.0/app.tar.gz", await fs.openAsBlob("app.tar.gz"));
 * ```
 */
export class Client {
  readonly url: string;
  private readonly credentials: Credentials | undefined;
  private readonly fetchImpl: typeof globalThis.fetch;
  private readonly timeoutMs: number;
  private readonly retry: RetryPolicy;
  private readonly extraHeaders: Record<string, string>;

  constructor(url: string, options: ClientOptions = {}) {
    this.url = url.replace(/\/+$/, "");
    this.credentials =
      options.credentials ??
      (options.token
        ? tokenAuth(options.token)
        : options.basic
          ? basicAuth(options.basic.username, options.basic.password)
          : undefined);
    this.fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.timeoutMs = options.timeoutMs ?? 60_000;
    this.retry = { ...DEFAULT_RETRY, ...options.retry };
    this.extraHeaders = options.headers ?? {};
  }

  // ---- the request loop ------------------------------------------------------------------

  private authContext(): AuthContext {
    return { baseUrl: this.url, fetch: this.fetchImpl };
  }

  private async send(call: Call): Promise<Response> {
    const idempotent = call.idempotent ?? IDEMPOTENT.has(call.method);
    const url = new URL(call.path.startsWith("http") ? call.path : this.url + call.path);
    for (const [k, v] of Object.entries(call.query ?? {})) {
      if (v !== undefined) url.searchParams.set(k, v);
    }
    let renewed = false;
    let sent = false;
    for (let attempt = 1; ; attempt++) {
      const headers: Record<string, string> = { ...this.extraHeaders, ...call.headers };
      if (call.auth !== false && this.credentials) {
        Object.assign(headers, await this.credentials.headers(this.authContext()));
      }
      let body: BodyInit | undefined;
      if (call.json !== undefined) {
        body = JSON.stringify(call.json);
        headers["Content-Type"] ??= "application/json";
      } else if (call.body) {
        body = call.body();
      }
      const init: RequestInit & { duplex?: "half" } = { method: call.method, headers };
      if (body !== undefined) init.body = body;
      if (body instanceof ReadableStream) init.duplex = "half";
      const controller = new AbortController();
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        controller.abort();
      }, this.timeoutMs);
      const onAbort = () => controller.abort(call.signal?.reason);
      call.signal?.addEventListener("abort", onAbort, { once: true });
      init.signal = controller.signal;
      let error: StoreError;
      try {
        sent = true;
        const response = await this.fetchImpl(url, init);
        if (response.ok || call.accept?.includes(response.status)) return response;
        error = errorFromResponse(response.status, response.headers, await response.text());
      } catch (err) {
        if (call.signal?.aborted) throw call.signal.reason;
        error = err instanceof StoreError ? err : networkError(err, timedOut);
      } finally {
        clearTimeout(timer);
        call.signal?.removeEventListener("abort", onAbort);
      }
      // A body that cannot be read again is never re-sent.
      const replayable = !(call.once && sent);
      if (error.status === 401 && !renewed && call.auth !== false && this.credentials?.invalidate) {
        renewed = true;
        if (this.credentials.invalidate() && replayable) {
          attempt--;
          continue;
        }
      }
      const delay = replayable ? retryDelay(this.retry, attempt, error, idempotent) : undefined;
      if (delay === undefined) throw error;
      await sleep(delay, call.signal);
    }
  }

  private async json<T>(call: Call): Promise<T> {
    const response = await this.send(call);
    return (await response.json()) as T;
  }

  // ---- buckets ---------------------------------------------------------------------------

  /** Create a bucket; 409 `ConflictError` when it exists, unless `existOk`. */
  async createBucket(
    name: string,
    options: { existOk?: boolean; publicRead?: boolean; labels?: Labels } = {},
  ): Promise<Bucket> {
    const path = `/v1/buckets/${q(name)}`;
    if (!options.existOk) {
      // The store's PUT updates an existing bucket: look first, so nothing changes.
      const found = await this.send({ method: "GET", path, accept: [404] });
      if (found.status !== 404) {
        await found.body?.cancel();
        throw new ConflictError(`bucket ${name} already exists`, {
          code: "BucketAlreadyExists",
          status: 409,
        });
      }
    }
    const body: Record<string, unknown> = {};
    if (options.publicRead !== undefined) body.public_read = options.publicRead;
    if (options.labels !== undefined) body.labels = options.labels;
    return this.json<Bucket>({ method: "PUT", path, json: body });
  }

  getBucket(name: string): Promise<Bucket> {
    return this.json<Bucket>({ method: "GET", path: `/v1/buckets/${q(name)}` });
  }

  async listBuckets(): Promise<Bucket[]> {
    return (await this.json<{ buckets: Bucket[] }>({ method: "GET", path: "/v1/buckets" })).buckets;
  }

  /** Delete a bucket; `recursive` deletes its objects first (otherwise 409 when not empty). */
  async deleteBucket(name: string, options: { recursive?: boolean } = {}): Promise<void> {
    const query = options.recursive ? { recursive: "true" } : undefined;
    await this.send({ method: "DELETE", path: `/v1/buckets/${q(name)}`, ...(query && { query }) });
  }

  // ---- objects ---------------------------------------------------------------------------

  /** An object's metadata (404 `NotFoundError` when there is none). */
  head(bucket: string, key: string): Promise<ObjectInfo> {
    return this.json<ObjectInfo>({ method: "GET", path: objectPath(bucket, key), query: { metadata: "1" } });
  }

  async exists(bucket: string, key: string): Promise<boolean> {
    const r = await this.send({ method: "HEAD", path: objectPath(bucket, key), accept: [404] });
    return r.status !== 404;
  }

  async delete(bucket: string, key: string): Promise<void> {
    await this.send({ method: "DELETE", path: objectPath(bucket, key) });
  }

  /** A server-side copy: the bytes never leave the store. */
  copy(
    source: { bucket: string; key: string },
    target: { bucket: string; key: string },
    options: { contentType?: string; labels?: Labels } = {},
  ): Promise<ObjectInfo> {
    const headers: Record<string, string> = {
      "X-Copy-Source": `${source.bucket}/${source.key.split("/").map(q).join("/")}`,
      ...objectHeaders(options.contentType, options.labels),
    };
    return this.json<ObjectInfo>({
      method: "PUT",
      path: objectPath(target.bucket, target.key),
      headers,
      body: () => new Uint8Array(),
    });
  }

  /** A URL anyone can use for `method` until it expires (default 1 hour; at most 7 days). */
  async presign(
    bucket: string,
    key: string,
    options: { method?: "GET" | "HEAD" | "PUT"; expiresIn?: number } = {},
  ): Promise<string> {
    const body = { bucket, key, method: options.method ?? "GET", expires_in: options.expiresIn ?? 3600 };
    return (
      await this.json<{ url: string }>({ method: "POST", path: "/v1/presign", json: body, idempotent: true })
    ).url;
  }

  /** One page of a listing. */
  listPage(bucket: string, options: ListOptions & { continuationToken?: string } = {}): Promise<ObjectList> {
    return this.json<ObjectList>({
      method: "GET",
      path: `/v1/buckets/${q(bucket)}/objects`,
      query: {
        prefix: options.prefix ?? "",
        limit: String(options.pageSize ?? 1000),
        delimiter: options.delimiter || undefined,
        continuation_token: options.continuationToken,
      },
    });
  }

  /** Every object under `prefix`, page after page: `for await (const o of store.list(b)) …`. */
  async *list(bucket: string, options: ListOptions = {}): AsyncGenerator<ObjectInfo> {
    let token: string | undefined;
    do {
      const page = await this.listPage(bucket, { ...options, ...(token && { continuationToken: token }) });
      yield* page.objects;
      token = page.truncated ? (page.next_continuation_token ?? undefined) : undefined;
    } while (token);
  }

  /** The "folders" one level below `prefix` (with `delimiter`, default `/`). */
  async *listPrefixes(bucket: string, options: ListOptions = {}): AsyncGenerator<string> {
    let token: string | undefined;
    const delimiter = options.delimiter ?? "/";
    do {
      const page = await this.listPage(bucket, {
        ...options,
        delimiter,
        ...(token && { continuationToken: token }),
      });
      yield* page.common_prefixes;
      token = page.truncated ? (page.next_continuation_token ?? undefined) : undefined;
    } while (token);
  }

  // ---- batch -----------------------------------------------------------------------------

  /**
   * `POST /v1/batch`, the Git LFS batch model: for each `{key, sha256, size}` to upload, the
   * store answers `present`, `linked` (server-side, no transfer), `upload` with
   * `actions.upload` (a presigned PUT bound to that sha256 and size: see {@link sendUpload}),
   * or `error`; for a download, `actions.download`. Results come in request order; more than
   * {@link BATCH_LIMIT} objects go as several requests, answered as one.
   */
  async batch(
    bucket: string,
    objects: BatchObject[],
    options: { operation?: "upload" | "download"; expiresIn?: number; signal?: AbortSignal } = {},
  ): Promise<BatchResponse> {
    const operation = options.operation ?? "upload";
    const pages: BatchResponse[] = [];
    for (const chunk of batchChunks(objects)) {
      pages.push(
        await this.json<BatchResponse>({
          method: "POST",
          path: "/v1/batch",
          json: { operation, bucket, objects: chunk, expires_in: options.expiresIn ?? 3600 },
          signal: options.signal,
        }),
      );
    }
    return { operation, bucket, objects: pages.flatMap((p) => p.objects), counts: sumCounts(pages) };
  }

  private async batchKeys(
    route: "head" | "delete",
    bucket: string,
    keys: string[],
  ): Promise<BatchKeysResponse> {
    const pages: BatchKeysResponse[] = [];
    for (const chunk of batchChunks(keys)) {
      pages.push(
        await this.json<BatchKeysResponse>({
          method: "POST",
          path: `/v1/batch/${route}`,
          json: { bucket, keys: chunk },
          idempotent: route === "head",
        }),
      );
    }
    return { bucket, keys: pages.flatMap((p) => p.keys), counts: sumCounts(pages) };
  }

  /** Many keys' metadata (`POST /v1/batch/head`): `found` with `object`, or `error`, per key in order. */
  batchHead(bucket: string, keys: string[]): Promise<BatchKeysResponse> {
    return this.batchKeys("head", bucket, keys);
  }

  /** Delete many keys as {@link delete} would (`POST /v1/batch/delete`): `deleted` with the `sha256` it held, or `error`, per key. */
  batchDelete(bucket: string, keys: string[]): Promise<BatchKeysResponse> {
    return this.batchKeys("delete", bucket, keys);
  }

  /**
   * Verify many subjects against one policy (`POST /v1/batch/verify`), each as {@link verify}
   * would: `passed` / `failed` with its rules, or `error`, per subject in order; `verified`
   * only when all passed. A policy the store refuses rejects the whole call (400).
   */
  async batchVerify(
    subjects: Subject[],
    policy: Policy,
    options: { issueVsa?: boolean } = {},
  ): Promise<BatchVerification> {
    const pages: BatchVerification[] = [];
    for (const chunk of batchChunks(subjects)) {
      const body: Record<string, unknown> = { subjects: chunk, policy };
      if (options.issueVsa) body.issue_vsa = true;
      pages.push(
        await this.json<BatchVerification>({
          method: "POST",
          path: "/v1/batch/verify",
          json: body,
          idempotent: !options.issueVsa,
        }),
      );
    }
    return {
      verified: pages.every((p) => p.verified),
      subjects: pages.flatMap((p) => p.subjects),
      counts: sumCounts(pages),
    };
  }

  /**
   * Send a body through an upload action of {@link batch} (its presigned href and headers, no
   * credentials). The store checks it against the sha256 and size the batch declared: other
   * bytes are refused (`UnprocessableError` ChecksumMismatch, 400 IncompleteBody) and nothing
   * is stored.
   */
  sendUpload(
    action: BatchAction,
    body: Blob | Uint8Array | ArrayBuffer | string,
    options: { signal?: AbortSignal } = {},
  ): Promise<ObjectInfo> {
    const source = Replayable.of(body) as Replayable;
    return this.json<ObjectInfo>({
      method: action.method,
      path: action.href,
      headers: action.headers,
      body: () => source.slice(0, source.size),
      auth: false,
      idempotent: true,
      signal: options.signal,
    });
  }

  /**
   * Store many files sending only what the store needs: each file is hashed (streaming,
   * `parallel` at a time), one {@link batch} call says which keys already hold that content
   * (`present`) or were linked server-side (`linked`), and the rest are sent through their
   * presigned hrefs, read from disk or the Blob in slices. In Node a file is `{key, path}`;
   * anywhere, `{key, body}` with a `Blob`/`File` or bytes. One file's failure is its
   * result's `error`; the others go on. The promise rejects only when the batch request
   * itself fails.
   */
  async uploadMany(
    bucket: string,
    files: UploadManyFile[],
    options: UploadManyOptions = {},
  ): Promise<UploadManyResult> {
    const parallel = options.parallel ?? 4;
    const results: UploadManyFileResult[] = files.map((f) => ({ key: f.key, result: "error" }));
    const sources: (Replayable | undefined)[] = new Array(files.length);
    const fail = (i: number, err: unknown) => {
      const r = results[i] as UploadManyFileResult;
      r.result = "error";
      r.error = err instanceof Error ? err : new Error(String(err));
      options.onFile?.(r);
    };
    await inPool(files.length, parallel, async (i) => {
      const file = files[i] as UploadManyFile;
      try {
        const source = Replayable.of("path" in file ? await openFile(file.path) : file.body) as Replayable;
        const r = results[i] as UploadManyFileResult;
        r.sha256 = await source.sha256();
        r.size = source.size;
        sources[i] = source;
      } catch (err) {
        fail(i, err);
      }
    });
    const asked = files.flatMap((_, i) => (sources[i] ? [i] : []));
    const sends: { index: number; action: BatchAction }[] = [];
    if (asked.length) {
      const objects = asked.map((i) => {
        const file = files[i] as UploadManyFile;
        const r = results[i] as UploadManyFileResult;
        const entry: BatchObject = { key: file.key, sha256: r.sha256 as string, size: r.size as number };
        if (file.contentType) entry.content_type = file.contentType;
        return entry;
      });
      const plan = await this.batch(bucket, objects, {
        expiresIn: options.expiresIn,
        signal: options.signal,
      });
      plan.objects.forEach((item, n) => {
        const i = asked[n] as number;
        const r = results[i] as UploadManyFileResult;
        if (item.result === "present" || item.result === "linked") {
          r.result = item.result;
          if (item.linked_from) r.linkedFrom = item.linked_from;
          options.onFile?.(r);
        } else if (item.result === "upload" && item.actions?.upload) {
          sends.push({ index: i, action: item.actions.upload });
        } else {
          fail(
            i,
            item.error
              ? errorFromBatch(item.error)
              : new StoreError(`${item.key}: unexpected result ${item.result}`, { code: "InvalidResponse" }),
          );
        }
      });
    }
    await inPool(sends.length, parallel, async (n) => {
      const { index, action } = sends[n] as { index: number; action: BatchAction };
      try {
        const source = sources[index] as Replayable;
        const object = await this.sendUpload(action, source.slice(0, source.size), {
          signal: options.signal,
        });
        const r = results[index] as UploadManyFileResult;
        r.result = "uploaded";
        r.object = object;
        options.onFile?.(r);
      } catch (err) {
        fail(index, err);
      }
    });
    const counts = { uploaded: 0, present: 0, linked: 0, error: 0 };
    for (const r of results) counts[r.result]++;
    return { bucket, files: results, counts };
  }

  // ---- upload ----------------------------------------------------------------------------

  /**
   * Store `body` under `key`, checked end to end by sha256. Bodies that can be read again
   * (bytes, strings, `Blob`/`File`, Node's `fs.openAsBlob`) from `multipartThreshold` on go
   * as parallel parts, resumable; a stream goes in one request, hashed on the way.
   */
  async upload(
    bucket: string,
    key: string,
    body: UploadBody,
    options: UploadOptions = {},
  ): Promise<ObjectInfo> {
    const replayable = Replayable.of(body);
    const condition: Record<string, string> = options.overwrite === false ? { "If-None-Match": "*" } : {};
    const headers = { ...objectHeaders(options.contentType, options.labels), ...condition };
    if (!replayable) {
      let done = 0;
      const hashed = hashingStream(body as ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>, (n) => {
        done += n;
        options.onProgress?.(done, undefined);
      });
      const info = await this.json<ObjectInfo>({
        method: "PUT",
        path: objectPath(bucket, key),
        headers,
        body: () => hashed.stream,
        once: true,
        signal: options.signal,
      });
      if (info.sha256 !== hashed.hex()) {
        throw new StoreError(`the store received sha256 ${info.sha256} but ${hashed.hex()} was sent`, {
          code: "ChecksumMismatch",
        });
      }
      return info;
    }
    const size = replayable.size;
    if (size < (options.multipartThreshold ?? 64 * 1024 * 1024)) {
      const sha = await replayable.sha256();
      const info = await this.json<ObjectInfo>({
        method: "PUT",
        path: objectPath(bucket, key),
        headers: { ...headers, "X-Checksum-Sha256": sha },
        body: () => replayable.slice(0, size),
        signal: options.signal,
      });
      options.onProgress?.(size, size);
      return info;
    }
    if (options.overwrite === false && (await this.exists(bucket, key))) {
      throw new PreconditionFailedError(`${bucket}/${key} exists and overwrite is off`, {
        code: "PreconditionFailed",
        status: 412,
      });
    }
    return this.multipart(bucket, key, replayable, options, condition);
  }

  private async multipart(
    bucket: string,
    key: string,
    source: Replayable,
    options: UploadOptions,
    condition: Record<string, string>,
  ): Promise<ObjectInfo> {
    const size = source.size;
    const partSize = Math.max(
      options.partSize ?? 16 * 1024 * 1024,
      MIN_PART_SIZE,
      Math.ceil(size / MAX_PARTS),
    );
    const plan: { number: number; offset: number; length: number }[] = [];
    for (let offset = 0, n = 1; offset < size; offset += partSize, n++) {
      plan.push({ number: n, offset, length: Math.min(partSize, size - offset) });
    }
    const contentType = options.contentType ?? "application/octet-stream";
    let upload: Upload | UploadState | undefined;
    if (options.resume !== false) {
      upload = await this.findUpload(bucket, key).catch((err: unknown) => {
        if (err instanceof StoreError && err.status === 403) return undefined; // may write, not list
        throw err;
      });
      // Only an upload that would publish what this call asks for is continued.
      if (
        upload &&
        (upload.content_type !== contentType || !sameLabels(upload.labels, options.labels ?? {}))
      ) {
        upload = undefined;
      }
    }
    if (!upload) {
      const body: Record<string, unknown> = { key, content_type: contentType };
      if (options.labels) body.labels = options.labels;
      upload = await this.json<Upload>({
        method: "POST",
        path: `/v1/buckets/${q(bucket)}/uploads`,
        json: body,
      });
    }
    const uploadId = upload.upload_id;
    const parts = "parts" in upload ? upload.parts : [];
    const remote = new Map(parts.map((p) => [p.part_number, p]));
    const progress = new Map<number, number>();
    const report = () => {
      let done = 0;
      for (const n of progress.values()) done += n;
      options.onProgress?.(done, size);
    };
    const etags: string[] = new Array(plan.length);
    const sendPart = async (i: number): Promise<void> => {
      const part = plan[i] as (typeof plan)[number];
      const sha = await source.sha256(part.offset, part.offset + part.length);
      const there = remote.get(part.number);
      if (there && there.size === part.length && there.sha256 === sha) {
        etags[i] = there.etag; // resumed: already in the store
      } else {
        const answer = await this.json<{ etag: string }>({
          method: "PUT",
          path: `/v1/buckets/${q(bucket)}/uploads/${q(uploadId)}/parts/${part.number}`,
          headers: { "X-Checksum-Sha256": sha },
          body: () => source.slice(part.offset, part.offset + part.length),
          signal: options.signal,
        });
        etags[i] = answer.etag.replace(/"/g, "");
      }
      progress.set(part.number, part.length);
      report();
    };
    let next = 0;
    const workers = Array.from(
      { length: Math.max(1, Math.min(options.parallel ?? 4, plan.length)) },
      async () => {
        while (next < plan.length) await sendPart(next++);
      },
    );
    const [whole] = await Promise.all([source.sha256(), ...workers]);
    const complete: Call = {
      method: "POST",
      path: `/v1/buckets/${q(bucket)}/uploads/${q(uploadId)}/complete`,
      headers: condition,
      json: { parts: plan.map((p, i) => ({ part_number: p.number, etag: etags[i] })), sha256: whole },
      signal: options.signal,
    };
    try {
      return await this.json<ObjectInfo>(complete);
    } catch (err) {
      // The answer was lost: completion is not repeated, but when the object now holds
      // exactly these bytes it did complete.
      if (!(err instanceof StoreError) || ![0, 500, 502, 504].includes(err.status)) throw err;
      const stored = await this.head(bucket, key).catch(() => undefined);
      if (stored?.sha256 !== whole) throw err;
      return stored;
    }
  }

  /** The newest upload in progress for exactly `key`, with its parts. */
  async findUpload(bucket: string, key: string): Promise<UploadState | undefined> {
    const mine = (await this.listUploads(bucket, key)).filter((u) => u.key === key);
    if (mine.length === 0) return undefined;
    mine.sort((a, b) => (a.created_at < b.created_at ? 1 : -1));
    return this.getUpload(bucket, (mine[0] as Upload).upload_id);
  }

  async listUploads(bucket: string, prefix = ""): Promise<Upload[]> {
    const path = `/v1/buckets/${q(bucket)}/uploads`;
    return (
      await this.json<{ uploads: Upload[] }>({ method: "GET", path, query: { prefix: prefix || undefined } })
    ).uploads;
  }

  getUpload(bucket: string, uploadId: string): Promise<UploadState> {
    return this.json<UploadState>({ method: "GET", path: `/v1/buckets/${q(bucket)}/uploads/${q(uploadId)}` });
  }

  async abortUpload(bucket: string, uploadId: string): Promise<void> {
    await this.send({ method: "DELETE", path: `/v1/buckets/${q(bucket)}/uploads/${q(uploadId)}` });
  }

  // ---- download --------------------------------------------------------------------------

  /** Read an object (or a byte range of it) as a stream, with its metadata. */
  async get(bucket: string, key: string, options: GetOptions = {}): Promise<ObjectDownload> {
    const headers: Record<string, string> = {};
    const range = options.range;
    if (range) {
      if ("suffix" in range) headers.Range = `bytes=-${range.suffix}`;
      else headers.Range = `bytes=${range.start}-${range.end ?? ""}`;
    }
    if (options.ifMatch) headers["If-Match"] = `"${options.ifMatch.replace(/"/g, "")}"`;
    const response = await this.send({
      method: "GET",
      path: objectPath(bucket, key),
      headers,
      signal: options.signal,
    });
    const info = objectFromHeaders(bucket, key, response.headers);
    if (!response.body) throw new StoreError("the store sent no body", { code: "NoBody" });
    return {
      info,
      status: response.status,
      contentRange: response.headers.get("content-range") ?? undefined,
      body: response.body,
    };
  }

  /**
   * An object's bytes in memory (small objects; stream big ones with {@link get}). A whole
   * object's sha256 is checked against the store's (`ChecksumMismatch` otherwise).
   */
  async getBytes(bucket: string, key: string, options: GetOptions = {}): Promise<Uint8Array> {
    const download = await this.get(bucket, key, options);
    const hash = newSha256();
    const chunks: Uint8Array[] = [];
    let length = 0;
    for await (const chunk of streamChunks(download.body)) {
      hash.update(chunk);
      chunks.push(chunk);
      length += chunk.byteLength;
    }
    if (download.status === 200 && download.info.sha256 && hash.hex() !== download.info.sha256) {
      throw new StoreError(`received sha256 ${hash.hex()}, the store has ${download.info.sha256}`, {
        code: "ChecksumMismatch",
      });
    }
    const out = new Uint8Array(length);
    let offset = 0;
    for (const chunk of chunks) {
      out.set(chunk, offset);
      offset += chunk.byteLength;
    }
    return out;
  }

  /** An object's bytes as text (UTF-8). */
  async getText(bucket: string, key: string, options: GetOptions = {}): Promise<string> {
    return new TextDecoder().decode(await this.getBytes(bucket, key, options));
  }

  // ---- evidence and verification ---------------------------------------------------------

  /** Have the store sign `subject` with its key (or sign a predicate: needs `signing:Attest`). */
  sign(subject: Subject, options: { predicateType?: string; predicate?: unknown } = {}): Promise<Evidence> {
    const body: Record<string, unknown> = { subject };
    if (options.predicateType !== undefined) body.predicate_type = options.predicateType;
    if (options.predicate !== undefined) body.predicate = options.predicate;
    return this.json<Evidence>({ method: "POST", path: "/v1/sign", json: body });
  }

  /** SLSA provenance the store builds from what it verified, over objects this identity wrote. */
  async provenance(objects: { bucket: string; key: string }[]): Promise<Evidence[]> {
    const answer = await this.json<{ evidence: Evidence[] }>({
      method: "POST",
      path: "/v1/provenance",
      json: { subjects: objects },
    });
    return answer.evidence;
  }

  private attach(
    subject: Subject,
    kind: string,
    document: string | Uint8Array | Blob,
    contentType?: string,
  ): Promise<Evidence> {
    const replayable = Replayable.of(document) as Replayable;
    return this.json<Evidence>({
      method: "POST",
      path: evidencePath(subject, kind),
      // The store detects the format of a document sent as octet-stream.
      headers: { "Content-Type": contentType ?? "application/octet-stream" },
      body: () => replayable.slice(0, replayable.size),
    });
  }

  /** Attach a signature: a Sigstore bundle, a DSSE envelope, or a raw (base64) signature. */
  attachSignature(
    subject: Subject,
    document: string | Uint8Array | Blob,
    contentType?: string,
  ): Promise<Evidence> {
    return this.attach(subject, "signatures", document, contentType);
  }

  /** Attach an SBOM: CycloneDX (JSON or XML) or SPDX 2.3 JSON. */
  attachSbom(
    subject: Subject,
    document: string | Uint8Array | Blob,
    contentType?: string,
  ): Promise<Evidence> {
    return this.attach(subject, "sboms", document, contentType);
  }

  /** Attach an in-toto attestation (a DSSE envelope or a Sigstore bundle). */
  attachAttestation(
    subject: Subject,
    document: string | Uint8Array | Blob,
    contentType?: string,
  ): Promise<Evidence> {
    return this.attach(subject, "attestations", document, contentType);
  }

  /** The evidence attached to a subject, of one kind or all. */
  async listEvidence(subject: Subject, kind?: "signatures" | "sboms" | "attestations"): Promise<Evidence[]> {
    const found: Evidence[] = [];
    for (const k of kind ? [kind] : (["signatures", "sboms", "attestations"] as const)) {
      const page = await this.json<Record<string, Evidence[]>>({
        method: "GET",
        path: evidencePath(subject, k),
      });
      found.push(...(page[k] ?? []));
    }
    return found;
  }

  /** A piece of evidence's document, as stored. */
  async getEvidence(id: string): Promise<Uint8Array> {
    const response = await this.send({ method: "GET", path: `/v1/evidence/${q(id)}` });
    return new Uint8Array(await response.arrayBuffer());
  }

  /** Check a subject's evidence against a policy; `issueVsa` has the store attest a pass. */
  verify(
    subject: Subject,
    policy: Policy,
    options: { issueVsa?: boolean } = {},
  ): Promise<VerificationResult> {
    const body: Record<string, unknown> = { subject, policy };
    if (options.issueVsa) body.issue_vsa = true;
    return this.json<VerificationResult>({
      method: "POST",
      path: "/v1/verify",
      json: body,
      idempotent: !options.issueVsa,
    });
  }

  /** Set the verification gate of a bucket, or of repositories (a name or a glob). */
  setVerification(
    target: { bucket: string } | { repositories: string },
    gate: { policy: Policy; mode?: "audit" | "enforce"; name?: string },
  ): Promise<VerificationGate | RepositoryVerificationGate> {
    const body = { name: gate.name ?? "default", mode: gate.mode ?? "enforce", policy: gate.policy };
    return this.json({ method: "PUT", path: gatePath(target), json: body });
  }

  getVerification(
    target: { bucket: string } | { repositories: string },
  ): Promise<VerificationGate | RepositoryVerificationGate> {
    return this.json({ method: "GET", path: gatePath(target) });
  }

  async deleteVerification(target: { bucket: string } | { repositories: string }): Promise<void> {
    await this.send({ method: "DELETE", path: gatePath(target) });
  }

  /** Which SBOMs (of objects and images) name a package, by purl (prefix) or name. */
  async searchSboms(query: { purl?: string; name?: string; limit?: number }): Promise<SbomSearchResult[]> {
    if (!query.purl && !query.name) throw new TypeError("searchSboms needs purl or name");
    const answer = await this.json<{ results: SbomSearchResult[] }>({
      method: "GET",
      path: "/v1/sboms/search",
      query: { purl: query.purl, name: query.name, limit: query.limit?.toString() },
    });
    return answer.results;
  }

  // ---- identity ---------------------------------------------------------------------------

  /** Would `principal` (default: the caller) be allowed `action` on `resource`? */
  authorize(action: string, resource: string, principal?: string): Promise<AuthorizeResult> {
    const body: Record<string, unknown> = { action, resource };
    if (principal !== undefined) body.principal = principal;
    return this.json<AuthorizeResult>({
      method: "POST",
      path: "/v1/authorize",
      json: body,
      idempotent: true,
    });
  }

  /** The caller's principal id. */
  async whoami(): Promise<string> {
    return (await this.authorize("s3:ListAllMyBuckets", "*")).principal as string;
  }

  /** Create an API token (admins); its `token` is shown once. */
  createToken(
    name: string,
    roles: string[],
    options: { expiresIn?: number; statements?: Record<string, unknown>[] } = {},
  ): Promise<ApiToken> {
    const body: Record<string, unknown> = { name, roles };
    if (options.expiresIn !== undefined) body.expires_in = options.expiresIn;
    if (options.statements !== undefined) body.statements = options.statements;
    return this.json<ApiToken>({ method: "POST", path: "/v1/tokens", json: body });
  }

  async listTokens(): Promise<ApiToken[]> {
    return (await this.json<{ tokens: ApiToken[] }>({ method: "GET", path: "/v1/tokens" })).tokens;
  }

  async revokeToken(id: string): Promise<void> {
    await this.send({ method: "DELETE", path: `/v1/tokens/${q(id)}` });
  }

  /** Trust a public key (PEM) for signatures and attestations. */
  addKey(
    publicKey: string,
    options: { name: string; scope?: string; expiresIn?: number },
  ): Promise<TrustedKey> {
    const body: Record<string, unknown> = {
      name: options.name,
      public_key: publicKey,
      scope: options.scope ?? "*",
    };
    if (options.expiresIn !== undefined) body.expires_in = options.expiresIn;
    return this.json<TrustedKey>({ method: "POST", path: "/v1/keys", json: body });
  }

  async listKeys(): Promise<TrustedKey[]> {
    return (await this.json<{ keys: TrustedKey[] }>({ method: "GET", path: "/v1/keys" })).keys;
  }

  async revokeKey(id: string): Promise<void> {
    await this.send({ method: "DELETE", path: `/v1/keys/${q(id)}` });
  }

  /** The audit log (admins), newest first, page after page. */
  async *audit(query: AuditQuery = {}): AsyncGenerator<AuditRecord> {
    let cursor: string | undefined;
    const { pageSize, ...filters } = query;
    do {
      const page = await this.json<{ records: AuditRecord[]; next_cursor?: string | null }>({
        method: "GET",
        path: "/v1/audit",
        query: { ...filters, limit: String(pageSize ?? 100), cursor },
      });
      yield* page.records;
      cursor = page.next_cursor ?? undefined;
    } while (cursor);
  }

  /**
   * Publish a CI event (a Tekton CloudEvent in binary mode) with a credential allowed
   * `events:Publish`; returns the store's answer (`{duplicate: true}` for a redelivery).
   */
  publishEvent(
    event: { id: string; type: string; source?: string; data: unknown },
    options: { sourceId?: string } = {},
  ): Promise<Record<string, unknown>> {
    const headers: Record<string, string> = {
      "Ce-Specversion": "1.0",
      "Ce-Id": event.id,
      "Ce-Type": event.type,
      "Ce-Source": event.source ?? "zot-artifacts-js",
    };
    return this.json({
      method: "POST",
      path: "/v1/events",
      query: { source: options.sourceId },
      headers,
      json: event.data,
      idempotent: true, // a redelivery of the same Ce-Id is recorded once
    });
  }
}

function objectHeaders(contentType?: string, labels?: Labels): Record<string, string> {
  const headers: Record<string, string> = {};
  if (contentType) headers["Content-Type"] = contentType;
  if (labels && Object.keys(labels).length) {
    const sorted = Object.fromEntries(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : 1)));
    headers["X-Artifact-Labels"] = JSON.stringify(sorted);
  }
  return headers;
}

function sameLabels(a: Labels | undefined, b: Labels): boolean {
  const left = Object.entries(a ?? {}).sort();
  const right = Object.entries(b).sort();
  return JSON.stringify(left) === JSON.stringify(right);
}

function objectFromHeaders(bucket: string, key: string, headers: Headers): ObjectInfo {
  const etag = (headers.get("etag") ?? "").replace(/"/g, "");
  const sha256 = headers.get("x-checksum-sha256") ?? "";
  let labels: Labels = {};
  try {
    labels = JSON.parse(headers.get("x-artifact-labels") ?? "{}") as Labels;
  } catch {
    labels = {};
  }
  const range = headers.get("content-range");
  const size = range ? Number(range.split("/")[1]) : Number(headers.get("content-length") ?? 0);
  const modified = headers.get("last-modified");
  const updated = modified ? new Date(modified).toISOString() : "";
  return {
    bucket,
    key,
    size,
    content_type: headers.get("content-type") ?? "application/octet-stream",
    sha256,
    digest: sha256 ? `sha256:${sha256}` : "",
    etag,
    created_at: updated,
    updated_at: updated,
    labels,
  };
}
