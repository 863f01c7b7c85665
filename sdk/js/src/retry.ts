import { REFUSED_STATUSES, RETRYABLE_STATUSES, type StoreError } from "./errors.js";

/**
 * When to try a request again, and how long to wait first: the Python SDK's rules.
 *
 * Exponential backoff with full jitter: before attempt `n + 1` wait a random time in
 * `[0, min(maxBackoff, initialBackoff * 2**(n-1))]` seconds, or the server's `Retry-After`
 * (capped at `maxRetryAfter`). Idempotent requests (reads, PUTs of a whole object or a part,
 * deletes) are retried on problems the server marks `retryable`, on 429/502/503/504 and on
 * connection failures; the others (creating a token, signing, attaching evidence, completing
 * an upload, an OIDC exchange) only on what proves the request was not applied: a refused
 * connection, 429 and 503. A body that cannot be read again (a stream) is never re-sent.
 */
export interface RetryPolicy {
  /** Attempts in all, the first included (1: no retries). Default 5. */
  maxAttempts: number;
  /** Seconds. Default 0.2. */
  initialBackoff: number;
  /** Seconds. Default 10. */
  maxBackoff: number;
  /** Seconds. Default 60. */
  maxRetryAfter: number;
}

export const DEFAULT_RETRY: RetryPolicy = {
  maxAttempts: 5,
  initialBackoff: 0.2,
  maxBackoff: 10,
  maxRetryAfter: 60,
};

export const NO_RETRY: RetryPolicy = { ...DEFAULT_RETRY, maxAttempts: 1 };

export function shouldRetry(err: StoreError, idempotent: boolean): boolean {
  if (err.status === 0) {
    // Nothing reached the server (connect failed): always safe; otherwise only idempotent.
    return err.code === "ConnectionError" || (idempotent && err.retryable);
  }
  if (idempotent) return err.retryable || RETRYABLE_STATUSES.has(err.status);
  return REFUSED_STATUSES.has(err.status);
}

/** Seconds to wait before the attempt after `attempt` (1-based) failed, or undefined: give up. */
export function retryDelay(
  policy: RetryPolicy,
  attempt: number,
  err: StoreError,
  idempotent: boolean,
): number | undefined {
  if (attempt >= policy.maxAttempts || !shouldRetry(err, idempotent)) return undefined;
  if (err.retryAfter !== undefined) return Math.min(err.retryAfter, policy.maxRetryAfter);
  const ceiling = Math.min(policy.maxBackoff, policy.initialBackoff * 2 ** (attempt - 1));
  return Math.random() * ceiling;
}
