/**
 * Zot Artifact Store client for Node (>= 20) and browsers: buckets and objects with
 * sha256-checked, resumable, parallel transfers, and supply-chain evidence.
 */
export {
  type AuthContext,
  basicAuth,
  CachedBearer,
  type Credentials,
  GitHubActionsAuth,
  type GitHubActionsAuthOptions,
  OIDCClientCredentials,
  type OIDCClientCredentialsOptions,
  tokenAuth,
} from "./auth.js";
export type { UploadBody } from "./body.js";
export {
  type AuditQuery,
  BATCH_LIMIT,
  type ByteRange,
  Client,
  type ClientOptions,
  type GetOptions,
  type ListOptions,
  type ObjectDownload,
  type ProgressCallback,
  type UploadManyFile,
  type UploadManyFileResult,
  type UploadManyOptions,
  type UploadManyResult,
  type UploadOptions,
} from "./client.js";
export {
  AccessDeniedError,
  AuthenticationError,
  ConflictError,
  isAccessDenied,
  isConflict,
  isNotFound,
  isPreconditionFailed,
  isRetryable,
  isUnauthenticated,
  NotFoundError,
  PreconditionFailedError,
  type Problem,
  StoreError,
  UnprocessableError,
} from "./errors.js";
export { DEFAULT_RETRY, NO_RETRY, type RetryPolicy } from "./retry.js";
export type * from "./types.js";
