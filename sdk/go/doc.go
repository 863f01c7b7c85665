// Package zotartifacts is the Go client of the Zot Artifact Store's /v1 API: buckets and
// objects (streamed uploads with sha256, ranged downloads, listings, copies, presigned URLs),
// multipart uploads with parallel parts and resume, batches of many objects (UploadMany sends
// only what the store lacks; BatchHead, BatchDelete, BatchVerify), supply-chain evidence and
// verification, SBOM search, API tokens, the audit trail, policies and CI events.
//
// Import it as
//
//	import zotartifacts "github.com/zot-artifact-store/zot-artifact-store/sdk/go"
//
// It uses the standard library only. Every call takes a context.Context; bodies go in as an
// io.Reader (or io.ReaderAt for multipart uploads) and come out as an io.ReadCloser or into an
// io.Writer: nothing is buffered whole, and sha256 digests are computed while the bytes stream.
//
// Failures are *Error values (Code, Status, RequestID, Retryable), matched with errors.As or
// the helpers IsNotFound, IsUnauthenticated, IsAccessDenied, IsConflict,
// IsPreconditionFailed and IsInvalid. Requests are retried only when that is safe: reads,
// whole-object PUTs, parts and deletes on 429/502/503/504 and on broken connections;
// everything else only on 429/503 and refused connections; a body that cannot be read
// again (a plain io.Reader) is never sent twice. See RetryPolicy.
package zotartifacts
