package zotartifacts

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
)

const (
	// MiB is 1<<20 bytes.
	MiB = 1 << 20
	// DefaultPartSize is the part size of Upload (16 MiB).
	DefaultPartSize = 16 * MiB
	// MinPartSize is the store's minimum size of every part but the last (5 MiB).
	MinPartSize = 5 * MiB
	// MaxParts is the most parts an upload may have.
	MaxParts = 10000
)

// UploadOptions are the optional settings of Upload.
type UploadOptions struct {
	// ContentType and Labels are the object's.
	ContentType string
	Labels      map[string]string // the object's labels
	// PartSize (default 16 MiB, at least 5 MiB; grown when more than 10,000 parts would be
	// needed).
	PartSize int64
	// Parallel parts are sent at a time (default 4).
	Parallel int
	// NoResume starts a new upload even when one of the same key, content type and labels
	// is in progress (by default its parts with the same size and sha256 are kept).
	NoResume bool
	// IfNoneMatch: never replace an existing object (checked before any part is sent, and by
	// the store when it publishes: 412).
	IfNoneMatch bool
	// Progress, when set, is called with the bytes stored so far (parts already stored by an
	// earlier, interrupted upload count as sent) and the total. It may be called from several
	// goroutines at once.
	Progress func(done, total int64)
}

type partPlan struct {
	number         int
	offset, length int64
}

func planParts(size, partSize int64) []partPlan {
	if partSize < MinPartSize {
		partSize = MinPartSize
	}
	if need := (size + MaxParts - 1) / MaxParts; partSize < need {
		partSize = need
	}
	var parts []partPlan
	for off, n := int64(0), 1; off < size; off, n = off+partSize, n+1 {
		length := partSize
		if size-off < length {
			length = size - off
		}
		parts = append(parts, partPlan{n, off, length})
	}
	if len(parts) == 0 {
		parts = []partPlan{{1, 0, 0}}
	}
	return parts
}

// Upload stores size bytes of r as bucket/key in a multipart upload: opts.Parallel parts at a
// time, each with its sha256 (the store refuses a damaged part), completed with the whole
// object's sha256 (computed from r alongside). An upload that failed (a lost connection, a
// stopped process) is resumed by calling Upload again: the parts already stored with the same
// size and sha256 are not sent again. Parts are read with r.ReadAt, so r (an *os.File, an
// io.SectionReader) is read concurrently and never buffered whole.
func (c *Client) Upload(ctx context.Context, bucket, key string, r io.ReaderAt, size int64, opts *UploadOptions) (*ObjectInfo, error) {
	if opts == nil {
		opts = &UploadOptions{}
	}
	partSize, parallel := opts.PartSize, opts.Parallel
	if partSize <= 0 {
		partSize = DefaultPartSize
	}
	if parallel <= 0 {
		parallel = 4
	}
	if opts.IfNoneMatch {
		exists, err := c.ObjectExists(ctx, bucket, key)
		if err != nil {
			return nil, err
		}
		if exists {
			return nil, &Error{Code: "PreconditionFailed", Status: http.StatusPreconditionFailed,
				Message: bucket + "/" + key + " exists and IfNoneMatch is set", Type: "about:blank"}
		}
	}
	contentType := opts.ContentType
	if contentType == "" {
		contentType = "application/octet-stream"
	}
	var upload *Upload
	if !opts.NoResume {
		found, err := c.findUpload(ctx, bucket, key)
		if err != nil && !IsAccessDenied(err) { // may upload but not list uploads: start afresh
			return nil, err
		}
		// An interrupted upload is continued only when it would publish what this call asks
		// for.
		if found != nil && found.ContentType == contentType && sameLabels(found.Labels, opts.Labels) {
			upload = found
		}
	}
	if upload == nil {
		var err error
		if upload, err = c.CreateUpload(ctx, bucket, key, &CreateUploadOptions{ContentType: opts.ContentType, Labels: opts.Labels}); err != nil {
			return nil, err
		}
	}
	remote := map[int]UploadPart{}
	for _, p := range upload.Parts {
		remote[p.PartNumber] = p
	}

	// After a failure no new part starts; parts in flight finish (stored parts are what a
	// resumed upload keeps). The whole-object hash stops at once.
	hashCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	plan := planParts(size, partSize)
	etags := make([]string, len(plan))
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
		done     int64
		perPart  = make([]int64, len(plan))
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
			cancel()
		}
		mu.Unlock()
	}
	report := func(i int, n int64, reset bool) {
		if opts.Progress == nil {
			return
		}
		mu.Lock()
		if reset {
			done -= perPart[i]
			perPart[i] = 0
		}
		perPart[i] += n
		done += n
		d := done
		mu.Unlock()
		opts.Progress(d, size)
	}
	// The whole object's sha256, read alongside the parts.
	var whole string
	wg.Add(1)
	go func() {
		defer wg.Done()
		h := sha256.New()
		if _, err := io.Copy(h, &ctxReader{hashCtx, io.NewSectionReader(r, 0, size)}); err != nil {
			fail(err)
			return
		}
		whole = hex.EncodeToString(h.Sum(nil))
	}()
	sem := make(chan struct{}, parallel)
	for i, p := range plan {
		i, p := i, p
		select {
		case sem <- struct{}{}:
		case <-hashCtx.Done():
		}
		if hashCtx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			section := io.NewSectionReader(r, p.offset, p.length)
			h := sha256.New()
			if _, err := io.Copy(h, &ctxReader{ctx, section}); err != nil {
				fail(err)
				return
			}
			sum := hex.EncodeToString(h.Sum(nil))
			if rp, ok := remote[p.number]; ok && rp.Size == p.length && strings.EqualFold(rp.SHA256, sum) {
				etags[i] = strings.Trim(rp.ETag, `"`)
				report(i, p.length, false) // stored already: resumed
				return
			}
			etag, err := c.uploadPart(ctx, bucket, upload.UploadID, p.number, section, p.length, sum, func(n int64, reset bool) { report(i, n, reset) })
			if err != nil {
				fail(err)
				return
			}
			etags[i] = etag
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	parts := make([]CompletedPart, len(plan))
	for i, p := range plan {
		parts[i] = CompletedPart{PartNumber: p.number, ETag: etags[i]}
	}
	info, err := c.CompleteUpload(ctx, bucket, upload.UploadID, parts, &CompleteOptions{SHA256: whole, IfNoneMatch: opts.IfNoneMatch})
	if err != nil {
		var e *Error
		if !errors.As(err, &e) || !(e.Status == 0 || e.Status == 500 || e.Status == 502 || e.Status == 504) {
			return nil, err
		}
		// The answer was lost: completion is not repeated, but when the object now holds
		// exactly these bytes it did complete.
		stored, herr := c.HeadObject(ctx, bucket, key)
		if herr != nil || stored.SHA256 != whole {
			return nil, err
		}
		return stored, nil
	}
	return info, nil
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

func sameLabels(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

func (c *Client) uploadPart(ctx context.Context, bucket, uploadID string, number int, section *io.SectionReader, length int64, sum string, progress func(int64, bool)) (string, error) {
	b := &body{length: length}
	b.open = func() (io.Reader, error) {
		return &countingReader{r: io.NewSectionReader(section, 0, length), count: func(n int) { progress(int64(n), false) }}, nil
	}
	b.started = func() { progress(0, true) }
	h := http.Header{"X-Checksum-Sha256": {sum}}
	var out struct {
		ETag string `json:"etag"`
	}
	path := "/v1/buckets/" + seg(bucket) + "/uploads/" + seg(uploadID) + "/parts/" + strconv.Itoa(number)
	if err := c.call(ctx, &request{method: http.MethodPut, path: path, header: h, body: b, idempotent: true}, &out); err != nil {
		return "", err
	}
	return strings.Trim(out.ETag, `"`), nil
}

// UploadPart stores one part of an upload from r (length bytes; sha256 hex when known, else
// computed first when r can seek). Upload does all of this for you; this is the building
// block for callers that produce parts themselves.
func (c *Client) UploadPart(ctx context.Context, bucket, uploadID string, number int, r io.ReadSeeker, length int64, sha256hex string) (string, error) {
	start, err := r.Seek(0, io.SeekCurrent)
	if err != nil {
		return "", err
	}
	if sha256hex == "" {
		h := sha256.New()
		if _, err := io.Copy(h, io.LimitReader(r, length)); err != nil {
			return "", err
		}
		sha256hex = hex.EncodeToString(h.Sum(nil))
	}
	section := io.NewSectionReader(readerAtSeeker{r}, start, length)
	return c.uploadPart(ctx, bucket, uploadID, number, section, length, sha256hex, func(int64, bool) {})
}

// readerAtSeeker adapts an io.ReadSeeker to io.ReaderAt for one goroutine.
type readerAtSeeker struct{ r io.ReadSeeker }

func (s readerAtSeeker) ReadAt(p []byte, off int64) (int, error) {
	if _, err := s.r.Seek(off, io.SeekStart); err != nil {
		return 0, err
	}
	return io.ReadFull(s.r, p)
}

// CreateUploadOptions are the settings of a new multipart upload.
type CreateUploadOptions struct {
	ContentType string            // the object's content type
	Labels      map[string]string // the object's labels
}

// CreateUpload starts a multipart upload of bucket/key.
func (c *Client) CreateUpload(ctx context.Context, bucket, key string, opts *CreateUploadOptions) (*Upload, error) {
	in := map[string]any{"key": key}
	if opts != nil && opts.ContentType != "" {
		in["content_type"] = opts.ContentType
	}
	if opts != nil && len(opts.Labels) > 0 {
		in["labels"] = opts.Labels
	}
	return callFor[Upload](ctx, c, http.MethodPost, "/v1/buckets/"+seg(bucket)+"/uploads", in, false)
}

// CompletedPart names a stored part in CompleteUpload.
type CompletedPart struct {
	PartNumber int    `json:"part_number"` // 1-based, in order
	ETag       string `json:"etag"`        // UploadPart's answer
}

// CompleteOptions are the optional settings of CompleteUpload.
type CompleteOptions struct {
	// SHA256 (hex) of the whole object: the store refuses to publish other bytes (422).
	SHA256 string
	// IfNoneMatch: never replace an existing object (412).
	IfNoneMatch bool
}

// CompleteUpload publishes the object from the parts, in order.
func (c *Client) CompleteUpload(ctx context.Context, bucket, uploadID string, parts []CompletedPart, opts *CompleteOptions) (*ObjectInfo, error) {
	in := map[string]any{"parts": parts}
	h := http.Header{}
	if opts != nil && opts.SHA256 != "" {
		in["sha256"] = opts.SHA256
	}
	if opts != nil && opts.IfNoneMatch {
		h.Set("If-None-Match", "*")
	}
	b, err := jsonBody(in)
	if err != nil {
		return nil, err
	}
	var info ObjectInfo
	path := "/v1/buckets/" + seg(bucket) + "/uploads/" + seg(uploadID) + "/complete"
	if err := c.call(ctx, &request{method: http.MethodPost, path: path, header: h, body: b}, &info); err != nil {
		return nil, err
	}
	info.normalize()
	return &info, nil
}

// ListUploads returns the multipart uploads in progress under prefix.
func (c *Client) ListUploads(ctx context.Context, bucket, prefix string) ([]Upload, error) {
	r := &request{method: http.MethodGet, path: "/v1/buckets/" + seg(bucket) + "/uploads", idempotent: true}
	if prefix != "" {
		r.query = url.Values{"prefix": {prefix}}
	}
	var out struct {
		Uploads []Upload `json:"uploads"`
	}
	if err := c.call(ctx, r, &out); err != nil {
		return nil, err
	}
	return out.Uploads, nil
}

// GetUpload returns an upload in progress with its parts.
func (c *Client) GetUpload(ctx context.Context, bucket, uploadID string) (*Upload, error) {
	return callFor[Upload](ctx, c, http.MethodGet, "/v1/buckets/"+seg(bucket)+"/uploads/"+seg(uploadID), nil, true)
}

// AbortUpload abandons an upload and its parts.
func (c *Client) AbortUpload(ctx context.Context, bucket, uploadID string) error {
	return c.call(ctx, &request{method: http.MethodDelete, path: "/v1/buckets/" + seg(bucket) + "/uploads/" + seg(uploadID), idempotent: true}, nil)
}

// findUpload: the newest upload in progress for exactly key, with its parts.
func (c *Client) findUpload(ctx context.Context, bucket, key string) (*Upload, error) {
	uploads, err := c.ListUploads(ctx, bucket, key)
	if err != nil {
		return nil, err
	}
	var newest *Upload
	for i := range uploads {
		if uploads[i].Key == key && (newest == nil || uploads[i].CreatedAt > newest.CreatedAt) {
			newest = &uploads[i]
		}
	}
	if newest == nil {
		return nil, nil
	}
	return c.GetUpload(ctx, bucket, newest.UploadID)
}
