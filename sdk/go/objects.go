package zotartifacts

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// PutOptions are the optional settings of PutObject.
type PutOptions struct {
	// ContentType is stored and returned on GET (default application/octet-stream).
	ContentType string
	// Labels are the object's searchable labels.
	Labels map[string]string
	// SHA256 (hex) is the body's digest when the caller knows it: the store refuses a body
	// that does not match (422) and keeps the previous version.
	SHA256 string
	// Size is the body's length for a reader that cannot seek (-1 or 0: unknown, sent
	// chunked). A seekable reader's size is found by seeking.
	Size int64
	// IfNoneMatch makes the write create-only: an existing object is never replaced (412).
	IfNoneMatch bool
	// IfMatch replaces the object only if its current ETag matches ("*": only if it exists).
	IfMatch string
	// Progress, when set, is called with the number of bytes sent so far.
	Progress func(sent int64)
}

// PutObject uploads r as bucket/key in one streamed request.
//
// A seekable r (an *os.File, *bytes.Reader, io.SectionReader ...) is read from its current
// position to its end: first to compute its sha256, sent as X-Checksum-Sha256 so the store
// refuses a body damaged on the way, then to send it; it can be sent again when a retry is
// safe. Any other reader is read once, hashed while it streams, never retried, and its digest
// compared with the store's afterwards (an *Error with Code "ChecksumMismatch" when they
// differ). For large files prefer Upload (parallel parts, resumable).
func (c *Client) PutObject(ctx context.Context, bucket, key string, r io.Reader, opts *PutOptions) (*ObjectInfo, error) {
	if opts == nil {
		opts = &PutOptions{}
	}
	h := objectHeaders(opts.ContentType, opts.Labels)
	if opts.IfNoneMatch {
		h.Set("If-None-Match", "*")
	}
	if opts.IfMatch != "" {
		h.Set("If-Match", opts.IfMatch)
	}
	b := &body{length: -1}
	if opts.Size > 0 {
		b.length = opts.Size
	}
	var streamed hash.Hash
	var sent int64
	count := func(n int) {
		if opts.Progress != nil {
			sent += int64(n)
			opts.Progress(sent)
		}
	}
	if s, ok := r.(io.ReadSeeker); ok && seekable(s) {
		start, _ := s.Seek(0, io.SeekCurrent)
		end, err := s.Seek(0, io.SeekEnd)
		if err != nil {
			return nil, err
		}
		b.length = end - start
		sum := opts.SHA256
		if sum == "" {
			if _, err := s.Seek(start, io.SeekStart); err != nil {
				return nil, err
			}
			hasher := sha256.New()
			if _, err := io.Copy(hasher, io.LimitReader(s, b.length)); err != nil {
				return nil, err
			}
			sum = hex.EncodeToString(hasher.Sum(nil))
		}
		h.Set("X-Checksum-Sha256", sum)
		b.open = func() (io.Reader, error) {
			if _, err := s.Seek(start, io.SeekStart); err != nil {
				return nil, err
			}
			return &countingReader{r: io.LimitReader(s, b.length), count: count}, nil
		}
		b.started = func() { sent = 0 }
	} else {
		if opts.SHA256 != "" {
			h.Set("X-Checksum-Sha256", opts.SHA256)
		}
		streamed = sha256.New()
		b.once = &countingReader{r: io.TeeReader(r, streamed), count: count}
	}
	var info ObjectInfo
	err := c.call(ctx, &request{method: http.MethodPut, path: objectPath(bucket, key), header: h, body: b, idempotent: true}, &info)
	if err != nil {
		return nil, err
	}
	info.normalize()
	if streamed != nil {
		if actual := hex.EncodeToString(streamed.Sum(nil)); actual != info.SHA256 {
			return &info, checksumError("the body sent for "+bucket+"/"+key, info.SHA256, actual)
		}
	}
	return &info, nil
}

func seekable(s io.Seeker) bool {
	_, err := s.Seek(0, io.SeekCurrent)
	return err == nil
}

type countingReader struct {
	r     io.Reader
	count func(int)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.count(n)
	}
	return n, err
}

func objectHeaders(contentType string, labels map[string]string) http.Header {
	h := http.Header{}
	if contentType != "" {
		h.Set("Content-Type", contentType)
	}
	if len(labels) > 0 {
		raw, _ := json.Marshal(labels) // map keys are sorted
		h.Set("X-Artifact-Labels", string(raw))
	}
	return h
}

// Range is a byte range of an object: Length bytes from Offset; Length 0 means to the end.
type Range struct {
	Offset int64 // the first byte, counted from 0
	Length int64 // how many bytes; 0: to the end
}

// header is the Range header value ("bytes=first-last").
func (r Range) header() string {
	if r.Length <= 0 {
		return fmt.Sprintf("bytes=%d-", r.Offset)
	}
	return fmt.Sprintf("bytes=%d-%d", r.Offset, r.Offset+r.Length-1)
}

// GetOptions are the optional settings of GetObject.
type GetOptions struct {
	// Range asks for part of the object (answered 206); nil means the whole object.
	Range *Range
	// IfMatch answers only when the object's ETag matches (else 412).
	IfMatch string
}

// ObjectReader is an object's content as it streams from the store. Close it.
//
// When the whole object was asked for, its sha256 is computed while it is read: the Read
// that reaches the end returns an *Error with Code "ChecksumMismatch" instead of io.EOF when
// the bytes differ from what the store says it holds.
type ObjectReader struct {
	// Info is the object's metadata (Size is the whole object's, also for a range).
	Info ObjectInfo
	// Offset is where the bytes read start in the object (0 unless a range was asked for).
	Offset int64
	// Length is how many bytes the answer carries.
	Length int64
	// Partial is true for a range answer (206).
	Partial bool

	body   io.ReadCloser
	hasher hash.Hash
	what   string
}

// Read implements io.Reader.
func (o *ObjectReader) Read(p []byte) (int, error) {
	n, err := o.body.Read(p)
	if o.hasher != nil && n > 0 {
		o.hasher.Write(p[:n])
	}
	if err == io.EOF && o.hasher != nil && o.Info.SHA256 != "" {
		if actual := hex.EncodeToString(o.hasher.Sum(nil)); actual != o.Info.SHA256 {
			return n, checksumError(o.what, o.Info.SHA256, actual)
		}
	}
	if err != nil && err != io.EOF {
		var e *Error
		if !errors.As(err, &e) {
			err = transportError(err)
		}
	}
	return n, err
}

// Close implements io.Closer.
func (o *ObjectReader) Close() error { return o.body.Close() }

// GetObject opens bucket/key for reading (a part of it with opts.Range). The caller must
// Close the reader. A request that fails before the body starts is retried as RetryPolicy
// says; a connection lost while reading is reported by Read (Download resumes instead).
func (c *Client) GetObject(ctx context.Context, bucket, key string, opts *GetOptions) (*ObjectReader, error) {
	if opts == nil {
		opts = &GetOptions{}
	}
	h := http.Header{}
	if opts.Range != nil {
		h.Set("Range", opts.Range.header())
	}
	if opts.IfMatch != "" {
		h.Set("If-Match", opts.IfMatch)
	}
	resp, err := c.do(ctx, &request{method: http.MethodGet, path: objectPath(bucket, key), header: h, idempotent: true})
	if err != nil {
		return nil, err
	}
	o := &ObjectReader{
		Info:    objectFromHeaders(bucket, key, resp.Header),
		body:    resp.Body,
		Length:  resp.ContentLength,
		Partial: resp.StatusCode == http.StatusPartialContent,
		what:    "the download of " + bucket + "/" + key,
	}
	if o.Partial {
		o.Offset = contentRangeStart(resp.Header.Get("Content-Range"))
	} else {
		o.hasher = sha256.New()
	}
	return o, nil
}

func contentRangeStart(v string) int64 {
	// "bytes 10-19/100"
	v = strings.TrimPrefix(v, "bytes ")
	if i := strings.IndexByte(v, '-'); i > 0 {
		n, _ := strconv.ParseInt(v[:i], 10, 64)
		return n
	}
	return 0
}

// DownloadOptions are the optional settings of Download.
type DownloadOptions struct {
	// Progress, when set, is called with the bytes written so far and the object's size.
	Progress func(done, total int64)
}

// Download writes the whole of bucket/key to w and checks its sha256. A connection lost
// midway is resumed where it stopped (Range with If-Range, so a changed object is never
// spliced), up to the RetryPolicy's attempts; the sha256 of everything written must equal the
// store's, else an *Error with Code "ChecksumMismatch" (w then holds bytes that must not be
// used).
func (c *Client) Download(ctx context.Context, bucket, key string, w io.Writer, opts *DownloadOptions) (*ObjectInfo, error) {
	if opts == nil {
		opts = &DownloadOptions{}
	}
	hasher := sha256.New()
	var written int64
	var info ObjectInfo
	attempt := 0
	for {
		attempt++
		h := http.Header{}
		if written > 0 {
			h.Set("Range", fmt.Sprintf("bytes=%d-", written))
			h.Set("If-Range", `"`+info.ETag+`"`)
		}
		resp, err := c.do(ctx, &request{method: http.MethodGet, path: objectPath(bucket, key), header: h, idempotent: true})
		if err != nil {
			return nil, err
		}
		if written > 0 && resp.StatusCode != http.StatusPartialContent {
			resp.Body.Close()
			return nil, &Error{Code: "ObjectChanged", Message: bucket + "/" + key +
				" changed while it was downloaded: start again with a fresh writer", Type: "about:blank"}
		}
		if written == 0 {
			info = objectFromHeaders(bucket, key, resp.Header)
		}
		var dst io.Writer = io.MultiWriter(w, hasher)
		if opts.Progress != nil {
			total := info.Size
			dst = io.MultiWriter(dst, progressWriter(func(n int) {
				opts.Progress(written+int64(n), total)
			}))
		}
		n, copyErr := copyBody(dst, resp.Body)
		resp.Body.Close()
		written += n
		if copyErr == nil {
			break
		}
		if copyErr.write {
			return nil, copyErr.err // the writer failed: not the store's fault
		}
		e := transportError(copyErr.err)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		wait, ok := c.retry.delay(attempt, e, true)
		if !ok {
			return nil, e
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
	info.Size = written
	if actual := hex.EncodeToString(hasher.Sum(nil)); info.SHA256 != "" && actual != info.SHA256 {
		return nil, checksumError("the download of "+bucket+"/"+key, info.SHA256, actual)
	}
	return &info, nil
}

type progressWriter func(int)

func (p progressWriter) Write(b []byte) (int, error) {
	p(len(b))
	return len(b), nil
}

type copyError struct {
	err   error
	write bool
}

// copyBody copies like io.Copy but says whether a failure was the reader's or the writer's.
func copyBody(dst io.Writer, src io.Reader) (int64, *copyError) {
	buf := make([]byte, 256<<10)
	var total int64
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return total, &copyError{werr, true}
			}
			total += int64(n)
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, &copyError{err, false}
		}
	}
}

// HeadObject returns an object's metadata.
func (c *Client) HeadObject(ctx context.Context, bucket, key string) (*ObjectInfo, error) {
	var info ObjectInfo
	r := &request{method: http.MethodGet, path: objectPath(bucket, key), query: url.Values{"metadata": {"1"}}, idempotent: true}
	if err := c.call(ctx, r, &info); err != nil {
		return nil, err
	}
	info.normalize()
	return &info, nil
}

// ObjectExists reports whether bucket/key exists (a 404 is false, not an error).
func (c *Client) ObjectExists(ctx context.Context, bucket, key string) (bool, error) {
	err := c.call(ctx, &request{method: http.MethodHead, path: objectPath(bucket, key), idempotent: true}, nil)
	if IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}

// DeleteObject deletes bucket/key.
func (c *Client) DeleteObject(ctx context.Context, bucket, key string) error {
	return c.call(ctx, &request{method: http.MethodDelete, path: objectPath(bucket, key), idempotent: true}, nil)
}

// CopyOptions are the optional settings of CopyObject: the copy keeps the source's content
// type and labels unless given.
type CopyOptions struct {
	ContentType string            // replaces the source's content type
	Labels      map[string]string // replace the source's labels
}

// CopyObject copies srcBucket/srcKey to dstBucket/dstKey inside the store (no bytes pass
// through the client; the copy shares the source's digest).
func (c *Client) CopyObject(ctx context.Context, srcBucket, srcKey, dstBucket, dstKey string, opts *CopyOptions) (*ObjectInfo, error) {
	if opts == nil {
		opts = &CopyOptions{}
	}
	h := objectHeaders(opts.ContentType, opts.Labels)
	h.Set("X-Copy-Source", srcBucket+"/"+escapeKeyPath(srcKey))
	var info ObjectInfo
	r := &request{method: http.MethodPut, path: objectPath(dstBucket, dstKey), header: h, body: &body{data: []byte{}}, idempotent: true}
	if err := c.call(ctx, r, &info); err != nil {
		return nil, err
	}
	info.normalize()
	return &info, nil
}

// escapeKeyPath percent-encodes a key keeping its "/".
func escapeKeyPath(key string) string {
	parts := strings.Split(key, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}

// PresignOptions are the optional settings of Presign.
type PresignOptions struct {
	// Method is GET (default; HEAD too), HEAD or PUT.
	Method string
	// Expires is how long the URL works: 1s .. 7 days (default 1 hour).
	Expires time.Duration
}

// Presign returns a URL that allows opts.Method on bucket/key without credentials until it
// expires: hand it to any HTTP client.
func (c *Client) Presign(ctx context.Context, bucket, key string, opts *PresignOptions) (string, error) {
	if opts == nil {
		opts = &PresignOptions{}
	}
	in := map[string]any{"bucket": bucket, "key": key, "method": "GET", "expires_in": 3600}
	if opts.Method != "" {
		in["method"] = strings.ToUpper(opts.Method)
	}
	if opts.Expires > 0 {
		in["expires_in"] = int64(opts.Expires / time.Second)
	}
	var out struct {
		URL string `json:"url"`
	}
	if err := c.jsonCall(ctx, http.MethodPost, "/v1/presign", in, &out, true); err != nil {
		return "", err
	}
	if u, err := url.Parse(out.URL); err == nil && !u.IsAbs() {
		return c.base.ResolveReference(u).String(), nil
	}
	return out.URL, nil
}

// ListOptions are the optional settings of ListObjects.
type ListOptions struct {
	// Prefix lists only keys that start with it.
	Prefix string
	// Delimiter lists one level: keys with no further Delimiter after Prefix (see
	// ListPrefixes for the "directories").
	Delimiter string
	// PageSize is how many objects each request asks for (default 1000).
	PageSize int
}

// ObjectIterator walks a listing page by page, fetching the next page when the current one
// is used up:
//
//	it := client.ListObjects(ctx, bucket, nil)
//	for it.Next() {
//		obj := it.Object()
//	}
//	if err := it.Err(); err != nil { ... }
type ObjectIterator struct {
	pager[ObjectInfo]
	ctx      context.Context
	c        *Client
	bucket   string
	opts     ListOptions
	prefixes []string
	token    string
}

// ListObjects lists bucket's objects in key order, following continuation tokens lazily.
func (c *Client) ListObjects(ctx context.Context, bucket string, opts *ListOptions) *ObjectIterator {
	it := &ObjectIterator{ctx: ctx, c: c, bucket: bucket}
	it.fetch = it.fetchPage
	if opts != nil {
		it.opts = *opts
	}
	if it.opts.PageSize <= 0 {
		it.opts.PageSize = 1000
	}
	return it
}

// Next advances to the next object; false at the end or on an error (see Err).
func (it *ObjectIterator) Next() bool { return it.next() }

// Object is the object Next advanced to.
func (it *ObjectIterator) Object() ObjectInfo { return it.cur }

// Err is the error that stopped the iteration, nil at a normal end.
func (it *ObjectIterator) Err() error { return it.err }

// Prefixes are the common prefixes (with a Delimiter) of the pages fetched so far.
func (it *ObjectIterator) Prefixes() []string { return it.prefixes }

func (it *ObjectIterator) fetchPage() ([]ObjectInfo, bool, error) {
	q := url.Values{"prefix": {it.opts.Prefix}, "limit": {strconv.Itoa(it.opts.PageSize)}}
	if it.opts.Delimiter != "" {
		q.Set("delimiter", it.opts.Delimiter)
	}
	if it.token != "" {
		q.Set("continuation_token", it.token)
	}
	var out struct {
		Objects        []ObjectInfo `json:"objects"`
		CommonPrefixes []string     `json:"common_prefixes"`
		Truncated      bool         `json:"truncated"`
		Next           string       `json:"next_continuation_token"`
	}
	r := &request{method: http.MethodGet, path: "/v1/buckets/" + seg(it.bucket) + "/objects", query: q, idempotent: true}
	if err := it.c.call(it.ctx, r, &out); err != nil {
		return nil, false, err
	}
	for i := range out.Objects {
		out.Objects[i].normalize()
	}
	it.prefixes = append(it.prefixes, out.CommonPrefixes...)
	it.token = out.Next
	return out.Objects, !out.Truncated || out.Next == "", nil
}

// pager walks pages of T: fetch answers a page and whether it was the last.
type pager[T any] struct {
	fetch func() (items []T, last bool, err error)
	page  []T
	cur   T
	done  bool
	err   error
}

func (p *pager[T]) next() bool {
	for len(p.page) == 0 {
		if p.done || p.err != nil {
			return false
		}
		p.page, p.done, p.err = p.fetch()
	}
	p.cur, p.page = p.page[0], p.page[1:]
	return true
}

// ListPrefixes returns the "directories" one level under prefix: the common prefixes
// (ending with delimiter, "/" when empty).
func (c *Client) ListPrefixes(ctx context.Context, bucket, prefix, delimiter string) ([]string, error) {
	if delimiter == "" {
		delimiter = "/"
	}
	it := c.ListObjects(ctx, bucket, &ListOptions{Prefix: prefix, Delimiter: delimiter})
	for it.Next() {
	}
	return it.Prefixes(), it.Err()
}
