/**
 * Typed errors. Every failure the client reports is a {@link StoreError}: the store's problem
 * JSON (RFC 9457: `code`, `message`, `retryable`, `request_id`) parsed, or what the HTTP
 * status says, or — with `status` 0 — a failure that never got an HTTP answer
 * (`ConnectionError`, `Timeout`, `Aborted`) or the client's own check (`ChecksumMismatch`).
 * Branch on `err.code` (stable, listed in the store's docs/errors.md), on the subclass
 * (`err instanceof NotFoundError`), or with the helpers ({@link isNotFound} …).
 */

/** The problem JSON the store answers /v1 errors with. */
export interface Problem {
  type?: string;
  title?: string;
  status?: number;
  code?: string;
  message?: string;
  detail?: string;
  retryable?: boolean;
  request_id?: string;
  [field: string]: unknown;
}

export interface StoreErrorInit {
  code?: string;
  status?: number;
  retryable?: boolean;
  requestId?: string | undefined;
  problem?: Problem;
  retryAfter?: number | undefined;
  cause?: unknown;
}

/** An error from the store, or from the way to it. */
export class StoreError extends Error {
  /** Stable error code (docs/errors.md), e.g. `NoSuchKey`, `AccessDenied`. */
  readonly code: string;
  /** HTTP status; 0 when no HTTP answer was received. */
  readonly status: number;
  /** The same request may succeed later. */
  readonly retryable: boolean;
  /** The request id of the server's logs: quote it in bug reports. */
  readonly requestId: string | undefined;
  /** The whole problem JSON (e.g. `errors` with expected and actual digests). */
  readonly problem: Problem;
  /** Seconds the server asked to wait (`Retry-After`), if it did. */
  readonly retryAfter: number | undefined;

  constructor(message: string, init: StoreErrorInit = {}) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = new.target.name;
    this.code = init.code ?? "Error";
    this.status = init.status ?? 0;
    this.retryable = init.retryable ?? false;
    this.requestId = init.requestId;
    this.problem = init.problem ?? {};
    this.retryAfter = init.retryAfter;
  }

  override toString(): string {
    const where = this.status ? `HTTP ${this.status} ` : "";
    const rid = this.requestId ? ` (request ${this.requestId})` : "";
    return `${this.name}: ${where}${this.code}: ${this.message}${rid}`;
  }
}

/** HTTP 401: credentials missing, wrong or expired. */
export class AuthenticationError extends StoreError {}
/** HTTP 403: authenticated, but not allowed (or a presigned URL that is not valid). */
export class AccessDeniedError extends StoreError {}
/** HTTP 404: no such bucket, object, upload, key, token or evidence. */
export class NotFoundError extends StoreError {}
/** HTTP 409: e.g. the bucket exists already or is not empty. */
export class ConflictError extends StoreError {}
/** HTTP 412: a conditional write's condition does not hold; nothing was written. */
export class PreconditionFailedError extends ConflictError {}
/** HTTP 422: the request was understood but its content is refused (e.g. evidence about another digest). */
export class UnprocessableError extends StoreError {}

const BY_STATUS: Record<number, typeof StoreError> = {
  401: AuthenticationError,
  403: AccessDeniedError,
  404: NotFoundError,
  409: ConflictError,
  412: PreconditionFailedError,
  422: UnprocessableError,
};

/** Statuses worth a retry of an idempotent request. */
export const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([429, 502, 503, 504]);
/** Statuses that prove the request was turned away before anything was done. */
export const REFUSED_STATUSES: ReadonlySet<number> = new Set([429, 503]);

const DEFAULT_CODES: Record<number, string> = {
  400: "BadRequest",
  401: "Unauthenticated",
  403: "AccessDenied",
  404: "NotFound",
  405: "MethodNotAllowed",
  409: "Conflict",
  412: "PreconditionFailed",
  413: "EntityTooLarge",
  416: "InvalidRange",
  422: "Unprocessable",
  429: "SlowDown",
  500: "InternalError",
  502: "BadGateway",
  503: "ServiceUnavailable",
  504: "GatewayTimeout",
};

/** `Retry-After` in seconds (delta-seconds or an HTTP date). */
export function parseRetryAfter(value: string | null): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Number(trimmed);
  const when = Date.parse(trimmed);
  return Number.isNaN(when) ? undefined : Math.max(0, (when - Date.now()) / 1000);
}

/** The error an HTTP answer stands for: its problem JSON when it has one. */
export function errorFromResponse(status: number, headers: Headers, body: string): StoreError {
  let problem: Problem = {};
  try {
    const parsed: unknown = body ? JSON.parse(body) : undefined;
    if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) problem = parsed as Problem;
  } catch {
    // not JSON: S3 XML or a proxy's HTML page; the status speaks
  }
  const code = String(problem.code ?? DEFAULT_CODES[status] ?? `HTTP${status}`);
  const message = String(
    problem.message ?? problem.detail ?? problem.title ?? (body.slice(0, 200).trim() || `HTTP ${status}`),
  );
  const retryable =
    typeof problem.retryable === "boolean" ? problem.retryable : RETRYABLE_STATUSES.has(status);
  const Kind = BY_STATUS[status] ?? StoreError;
  return new Kind(message, {
    code,
    status,
    retryable,
    requestId: problem.request_id ?? headers.get("x-request-id") ?? undefined,
    problem,
    retryAfter: parseRetryAfter(headers.get("retry-after")),
  });
}

/** One batch item's error (`{code, message, status}`) as the error the single call would have thrown. */
export function errorFromBatch(error: { code: string; message: string; status: number }): StoreError {
  const Kind = BY_STATUS[error.status] ?? StoreError;
  return new Kind(error.message, { code: error.code, status: error.status });
}

function statusOf(err: unknown): number | undefined {
  return err instanceof StoreError ? err.status : undefined;
}

/** The store answered 404. */
export const isNotFound = (err: unknown): boolean => statusOf(err) === 404;
/** The store answered 401. */
export const isUnauthenticated = (err: unknown): boolean => statusOf(err) === 401;
/** The store answered 403. */
export const isAccessDenied = (err: unknown): boolean => statusOf(err) === 403;
/** The store answered 409 or 412. */
export const isConflict = (err: unknown): boolean => statusOf(err) === 409 || statusOf(err) === 412;
/** The store answered 412. */
export const isPreconditionFailed = (err: unknown): boolean => statusOf(err) === 412;
/** The same request may succeed later. */
export const isRetryable = (err: unknown): boolean => err instanceof StoreError && err.retryable;
