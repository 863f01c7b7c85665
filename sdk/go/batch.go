package zotartifacts

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"time"
)

// BatchLimit is how many items the store takes in one batch request: Batch, BatchHead,
// BatchDelete, BatchVerify and UploadMany send longer lists as several requests.
const BatchLimit = 1000

// Batch operations (BatchRequest.Operation).
const (
	// BatchOpUpload plans uploads: each object is present, linked, to upload, or an error.
	BatchOpUpload = "upload"
	// BatchOpDownload plans downloads: a presigned GET per object.
	BatchOpDownload = "download"
)

// Per-item outcomes of the batch calls (BatchObjectResult.Result, BatchKeyResult.Result,
// BatchVerifyResult.Result and UploadFileResult.Result).
const (
	// ResultPresent: the key already holds that content (and the caller may read it).
	ResultPresent = "present"
	// ResultLinked: the content was linked server-side from another object; no transfer.
	ResultLinked = "linked"
	// ResultUpload: send the bytes through Actions.Upload (see SendUpload).
	ResultUpload = "upload"
	// ResultDownload: fetch the bytes through Actions.Download.
	ResultDownload = "download"
	// ResultDeleted: BatchDelete deleted the key.
	ResultDeleted = "deleted"
	// ResultFound: BatchHead found the key (its Object).
	ResultFound = "found"
	// ResultPassed: BatchVerify's subject passed the policy.
	ResultPassed = "passed"
	// ResultFailed: BatchVerify's subject failed the policy.
	ResultFailed = "failed"
	// ResultUploaded: UploadMany sent the file through its href and the store kept it.
	ResultUploaded = "uploaded"
	// ResultError: the item failed; its Error says why (the others went on).
	ResultError = "error"
)

// BatchObject is one object of a Batch request.
type BatchObject struct {
	// Key is the object's key in the request's bucket.
	Key string
	// SHA256 is the content's digest (hex, or "sha256:<hex>"): required to upload; to
	// download, checked when given.
	SHA256 string
	// Size is the content's length in bytes: required to upload (0 is an empty object); to
	// download, checked when CheckSize is set.
	Size int64
	// CheckSize makes a download check Size (uploads always send it).
	CheckSize bool
	// ContentType is an upload's Content-Type (sent by the href's headers, kept by a link).
	ContentType string
}

// BatchRequest is what Batch asks for: the upload or download of many objects of a bucket.
type BatchRequest struct {
	// Operation is BatchOpUpload or BatchOpDownload.
	Operation string
	// Bucket holds every object of the request.
	Bucket string
	// Objects are the objects, any number (sent BatchLimit per request).
	Objects []BatchObject
	// ExpiresIn is how long the returned hrefs work: 1s .. 7 days (default 1 hour).
	ExpiresIn time.Duration
}

// BatchAction is a presigned transfer: send Method to Href with Headers, no credentials,
// before ExpiresAt. An upload href is bound to the declared sha256 and size: other bytes are
// refused (422 ChecksumMismatch, 400 IncompleteBody) and nothing is stored.
type BatchAction struct {
	Href      string            `json:"href"`       // the presigned URL
	Method    string            `json:"method"`     // PUT (upload) or GET (download)
	Headers   map[string]string `json:"headers"`    // headers to send with it
	ExpiresIn int64             `json:"expires_in"` // seconds it stays valid
	ExpiresAt string            `json:"expires_at"` // RFC 3339: when it stops working
}

// BatchActions are the transfers a BatchObjectResult asks for (one of them, or none).
type BatchActions struct {
	Upload   *BatchAction `json:"upload,omitempty"`   // with Result ResultUpload
	Download *BatchAction `json:"download,omitempty"` // with Result ResultDownload
}

// BatchObjectResult is one object of a BatchResponse, in request order. Result is
// ResultPresent, ResultLinked (LinkedFrom names the source), ResultUpload or ResultDownload (do
// Actions.Upload / Actions.Download), or ResultError (Error: what the single call would have
// answered, e.g. Code "InvalidDigest" or "AccessDenied").
type BatchObjectResult struct {
	Key        string        `json:"key"`                   // as given
	SHA256     string        `json:"sha256,omitempty"`      // hex digest
	Size       int64         `json:"size,omitempty"`        // bytes
	Result     string        `json:"result"`                // the outcome (see above)
	LinkedFrom string        `json:"linked_from,omitempty"` // bucket/key linked from
	Actions    *BatchActions `json:"actions,omitempty"`     // the transfer to make
	Error      *Error        `json:"error,omitempty"`       // why it failed
}

// BatchResponse is the answer of Batch: a result per object in request order and how many
// ended each way (e.g. Counts["upload"]).
type BatchResponse struct {
	Operation string              `json:"operation"` // upload or download
	Bucket    string              `json:"bucket"`    // the request's bucket
	Objects   []BatchObjectResult `json:"objects"`   // in request order
	Counts    map[string]int      `json:"counts"`    // outcome -> how many
}

// BatchKeyResult is one key of BatchHead (ResultFound, with Object) or BatchDelete
// (ResultDeleted, with the SHA256 it held), or ResultError with Error.
type BatchKeyResult struct {
	Key    string      `json:"key"`              // as given
	Result string      `json:"result"`           // found, deleted or error
	SHA256 string      `json:"sha256,omitempty"` // BatchDelete: the content the key held
	Object *ObjectInfo `json:"object,omitempty"` // BatchHead: the object's metadata
	Error  *Error      `json:"error,omitempty"`  // why it failed
}

// BatchKeysResponse is the answer of BatchHead and BatchDelete.
type BatchKeysResponse struct {
	Bucket string           `json:"bucket"` // the request's bucket
	Keys   []BatchKeyResult `json:"keys"`   // in request order
	Counts map[string]int   `json:"counts"` // outcome -> how many
}

// BatchVerifyResult is one subject of BatchVerify, in request order: Result ResultPassed or
// ResultFailed with the VerificationResult (rules, subject digest, VSA), or ResultError with
// Error (Subject is then empty).
type BatchVerifyResult struct {
	VerificationResult
	// Result is passed, failed or error.
	Result string `json:"result"`
	// Error is why the subject could not be verified (AccessDenied, NoSuchKey ...).
	Error *Error `json:"error,omitempty"`
}

// UnmarshalJSON reads a result whose subject is a name (verified) or, for an error, the
// subject as it was given (left out: the caller has it at the same index).
func (r *BatchVerifyResult) UnmarshalJSON(data []byte) error {
	type plain BatchVerifyResult
	var wire struct {
		plain
		Subject json.RawMessage `json:"subject"`
	}
	if err := json.Unmarshal(data, &wire); err != nil {
		return err
	}
	*r = BatchVerifyResult(wire.plain)
	_ = json.Unmarshal(wire.Subject, &r.Subject) // a string, or left empty
	return nil
}

// BatchVerification is the answer of BatchVerify: Verified is true when every subject passed.
type BatchVerification struct {
	Verified bool                `json:"verified"` // every subject passed
	Subjects []BatchVerifyResult `json:"subjects"` // in request order
	Counts   map[string]int      `json:"counts"`   // outcome -> how many
}

// chunks calls send for each run of at most BatchLimit of n items ([start, end)); an empty
// list is sent as is (the store answers what it lacks).
func chunks(n int, send func(start, end int) error) error {
	if n == 0 {
		return send(0, 0)
	}
	for start := 0; start < n; start += BatchLimit {
		end := start + BatchLimit
		if end > n {
			end = n
		}
		if err := send(start, end); err != nil {
			return err
		}
	}
	return nil
}

func addCounts(into *map[string]int, from map[string]int) {
	if *into == nil {
		*into = map[string]int{}
	}
	for k, v := range from {
		(*into)[k] += v
	}
}

// Batch asks the store, in the Git LFS batch model, what to do for each object of
// req.Objects (POST /v1/batch; longer lists than BatchLimit go as several requests, answered
// as one): for an upload, nothing (ResultPresent), a server-side link (ResultLinked) or a
// presigned upload action bound to the declared sha256 and size; for a download, a presigned
// GET. One object's failure is its result's Error; the call fails only when the whole
// request does (bad bucket, authentication).
func (c *Client) Batch(ctx context.Context, req BatchRequest) (*BatchResponse, error) {
	out := &BatchResponse{Operation: req.Operation, Bucket: req.Bucket, Objects: []BatchObjectResult{}}
	expires := int64(3600)
	if req.ExpiresIn > 0 {
		expires = int64(req.ExpiresIn / time.Second)
	}
	err := chunks(len(req.Objects), func(start, end int) error {
		objects := make([]map[string]any, 0, end-start)
		for _, o := range req.Objects[start:end] {
			entry := map[string]any{"key": o.Key}
			if o.SHA256 != "" {
				entry["sha256"] = o.SHA256
			}
			if req.Operation == BatchOpUpload || o.CheckSize {
				entry["size"] = o.Size
			}
			if o.ContentType != "" {
				entry["content_type"] = o.ContentType
			}
			objects = append(objects, entry)
		}
		in := map[string]any{"operation": req.Operation, "bucket": req.Bucket, "objects": objects, "expires_in": expires}
		page, err := callFor[BatchResponse](ctx, c, http.MethodPost, "/v1/batch", in, false)
		if err != nil {
			return err
		}
		out.Operation = page.Operation
		out.Objects = append(out.Objects, page.Objects...)
		addCounts(&out.Counts, page.Counts)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (c *Client) batchKeys(ctx context.Context, route, bucket string, keys []string, idempotent bool) (*BatchKeysResponse, error) {
	out := &BatchKeysResponse{Bucket: bucket, Keys: []BatchKeyResult{}}
	err := chunks(len(keys), func(start, end int) error {
		in := map[string]any{"bucket": bucket, "keys": keys[start:end]}
		page, err := callFor[BatchKeysResponse](ctx, c, http.MethodPost, "/v1/batch/"+route, in, idempotent)
		if err != nil {
			return err
		}
		for i := range page.Keys {
			if page.Keys[i].Object != nil {
				page.Keys[i].Object.normalize()
			}
		}
		out.Keys = append(out.Keys, page.Keys...)
		addCounts(&out.Counts, page.Counts)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// BatchHead reads the metadata of many keys of bucket (POST /v1/batch/head): a result per
// key in order, ResultFound with Object or ResultError (e.g. Code "NoSuchKey").
func (c *Client) BatchHead(ctx context.Context, bucket string, keys []string) (*BatchKeysResponse, error) {
	return c.batchKeys(ctx, "head", bucket, keys, true)
}

// BatchDelete deletes many keys of bucket as DeleteObject would (POST /v1/batch/delete;
// evidence stays with its digest): a result per key in order, ResultDeleted with the SHA256
// it held, or ResultError.
func (c *Client) BatchDelete(ctx context.Context, bucket string, keys []string) (*BatchKeysResponse, error) {
	return c.batchKeys(ctx, "delete", bucket, keys, false)
}

// BatchVerify checks many subjects against one policy (POST /v1/batch/verify), each exactly
// as Verify would: a result per subject in order. A policy the store refuses fails the call
// (400); a subject that cannot be verified is its result's Error.
func (c *Client) BatchVerify(ctx context.Context, subjects []Subject, policy map[string]any, opts *VerifyOptions) (*BatchVerification, error) {
	vsa := opts != nil && opts.IssueVSA
	out := &BatchVerification{Verified: true, Subjects: []BatchVerifyResult{}}
	err := chunks(len(subjects), func(start, end int) error {
		in := map[string]any{"subjects": subjects[start:end], "policy": policy}
		if vsa {
			in["issue_vsa"] = true
		}
		page, err := callFor[BatchVerification](ctx, c, http.MethodPost, "/v1/batch/verify", in, !vsa)
		if err != nil {
			return err
		}
		out.Verified = out.Verified && page.Verified
		out.Subjects = append(out.Subjects, page.Subjects...)
		addCounts(&out.Counts, page.Counts)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// SendUpload sends size bytes of r through an upload action of Batch (its presigned href
// and headers, no credentials). The store checks them against the sha256 and size the batch
// declared: other bytes are an *Error (422 ChecksumMismatch, 400 IncompleteBody) and nothing
// is stored. A seekable r (an *os.File) is read from its current position and may be sent
// again when a retry is safe; any other reader is sent once.
func (c *Client) SendUpload(ctx context.Context, action *BatchAction, r io.Reader, size int64) (*ObjectInfo, error) {
	if action == nil || action.Href == "" {
		return nil, &Error{Code: "InvalidArgument", Message: "no upload action to send to", Type: "about:blank"}
	}
	h := http.Header{}
	for k, v := range action.Headers {
		h.Set(k, v)
	}
	b := &body{length: size}
	if s, ok := r.(io.ReadSeeker); ok && seekable(s) {
		start, _ := s.Seek(0, io.SeekCurrent)
		b.open = func() (io.Reader, error) {
			if _, err := s.Seek(start, io.SeekStart); err != nil {
				return nil, err
			}
			return io.LimitReader(s, size), nil
		}
	} else {
		b.once = io.LimitReader(r, size)
	}
	method := action.Method
	if method == "" {
		method = http.MethodPut
	}
	var info ObjectInfo
	err := c.call(ctx, &request{method: method, href: action.Href, anonymous: true, header: h, body: b, idempotent: true}, &info)
	if err != nil {
		return nil, err
	}
	info.normalize()
	return &info, nil
}

// UploadFile is one file of UploadMany: the local file at Path stored as Key.
type UploadFile struct {
	Key         string // the object's key
	Path        string // the local file
	ContentType string // the object's Content-Type (default application/octet-stream)
}

// UploadManyOptions are the optional settings of UploadMany.
type UploadManyOptions struct {
	// Parallel is how many files are hashed, and then sent, at once (default 4).
	Parallel int
	// ExpiresIn is how long the upload hrefs work (default 1 hour): long enough to send
	// every file.
	ExpiresIn time.Duration
	// Progress, when set, is called (from several goroutines) as each file ends.
	Progress func(UploadFileResult)
}

// UploadFileResult is what UploadMany did with one file: Result is ResultUploaded (Object is
// what the store keeps), ResultPresent (the key already held these bytes), ResultLinked
// (linked server-side from LinkedFrom, no transfer) or ResultError (Err says why).
type UploadFileResult struct {
	Key        string      // the object's key
	Path       string      // the local file
	SHA256     string      // the file's digest (hex), empty if it could not be read
	Size       int64       // the file's size in bytes
	Result     string      // uploaded, present, linked or error
	LinkedFrom string      // bucket/key linked from (ResultLinked)
	Object     *ObjectInfo // the stored object (ResultUploaded)
	Err        error       // why it failed (ResultError): an *Error, or the file's error
}

// UploadManyResult is the answer of UploadMany: a result per file, in the order given.
type UploadManyResult struct {
	Bucket string             // the bucket uploaded to
	Files  []UploadFileResult // one per file, in order
}

// Count is how many files ended with result (e.g. ResultUploaded).
func (r *UploadManyResult) Count(result string) int {
	n := 0
	for _, f := range r.Files {
		if f.Result == result {
			n++
		}
	}
	return n
}

// Failed are the files that failed (Result ResultError).
func (r *UploadManyResult) Failed() []UploadFileResult {
	var out []UploadFileResult
	for _, f := range r.Files {
		if f.Result == ResultError {
			out = append(out, f)
		}
	}
	return out
}

// UploadMany stores many local files in bucket, sending only what the store needs: it
// hashes each file (streaming it, Parallel at a time), asks Batch once (BatchLimit objects
// per request), and sends only the files it answers ResultUpload for, each streamed from disk
// through its presigned href. Files the key already holds are ResultPresent, content the
// store has elsewhere is ResultLinked. One file's failure (unreadable, refused, changed since
// it was hashed) is its result; the error return is for the whole call (the batch request
// itself failed).
func (c *Client) UploadMany(ctx context.Context, bucket string, files []UploadFile, opts *UploadManyOptions) (*UploadManyResult, error) {
	if opts == nil {
		opts = &UploadManyOptions{}
	}
	parallel := opts.Parallel
	if parallel <= 0 {
		parallel = 4
	}
	results := make([]UploadFileResult, len(files))
	for i, f := range files {
		results[i] = UploadFileResult{Key: f.Key, Path: f.Path}
	}
	finish := func(i int) {
		if opts.Progress != nil {
			opts.Progress(results[i])
		}
	}
	forEach(len(files), parallel, func(i int) {
		r := &results[i]
		r.SHA256, r.Size, r.Err = hashFile(ctx, files[i].Path)
		if r.Err != nil {
			r.Result = ResultError
			finish(i)
		}
	})
	var planned []int // indexes of the files asked about
	objects := []BatchObject{}
	for i, f := range files {
		if results[i].Result == ResultError {
			continue
		}
		planned = append(planned, i)
		objects = append(objects, BatchObject{Key: f.Key, SHA256: results[i].SHA256, Size: results[i].Size, ContentType: f.ContentType})
	}
	var sends []int
	actions := map[int]*BatchAction{}
	if len(objects) > 0 {
		plan, err := c.Batch(ctx, BatchRequest{Operation: BatchOpUpload, Bucket: bucket, Objects: objects, ExpiresIn: opts.ExpiresIn})
		if err != nil {
			return nil, err
		}
		if len(plan.Objects) != len(planned) {
			return nil, &Error{Code: "InvalidResponse", Message: fmt.Sprintf("the store answered %d results for %d objects", len(plan.Objects), len(planned)), Type: "about:blank"}
		}
		for n, item := range plan.Objects {
			i := planned[n]
			r := &results[i]
			switch {
			case item.Result == ResultPresent || item.Result == ResultLinked:
				r.Result, r.LinkedFrom = item.Result, item.LinkedFrom
				finish(i)
			case item.Result == ResultUpload && item.Actions != nil && item.Actions.Upload != nil:
				actions[i] = item.Actions.Upload
				sends = append(sends, i)
			default:
				r.Result = ResultError
				if item.Error != nil {
					r.Err = item.Error
				} else {
					r.Err = &Error{Code: "InvalidResponse", Message: fmt.Sprintf("%s: unexpected result %q", item.Key, item.Result), Type: "about:blank"}
				}
				finish(i)
			}
		}
	}
	forEach(len(sends), parallel, func(n int) {
		i := sends[n]
		r := &results[i]
		r.Object, r.Err = c.sendFile(ctx, actions[i], files[i].Path, r.Size)
		if r.Err != nil {
			r.Result, r.Object = ResultError, nil
		} else {
			r.Result = ResultUploaded
		}
		finish(i)
	})
	return &UploadManyResult{Bucket: bucket, Files: results}, nil
}

// sendFile streams the file at path through an upload action.
func (c *Client) sendFile(ctx context.Context, action *BatchAction, path string, size int64) (*ObjectInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return c.SendUpload(ctx, action, f, size)
}

// hashFile is the sha256 (hex) and size of the file at path, read in a stream.
func hashFile(ctx context.Context, path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, &ctxReader{ctx, f})
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// forEach runs do(0..n-1), parallel at a time, and waits for them all.
func forEach(n, parallel int, do func(i int)) {
	var wg sync.WaitGroup
	next := make(chan int)
	if parallel > n {
		parallel = n
	}
	for w := 0; w < parallel; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				do(i)
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
}
