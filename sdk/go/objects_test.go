package zotartifacts_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	zotartifacts "github.com/zot-artifact-store/zot-artifact-store/sdk/go"
)

func TestRoundTripWithSHA256(t *testing.T) {
	ctx, c := ctxT(t), admin(t)
	bucket := newBucket(t, c)
	data := randomBytes(3*zotartifacts.MiB + 17)

	// A seekable body: its sha256 is declared (X-Checksum-Sha256) and checked by the store.
	info, err := c.PutObject(ctx, bucket, "dir/a.bin", bytes.NewReader(data), &zotartifacts.PutOptions{
		ContentType: "application/x-test", Labels: map[string]string{"team": "go"},
	})
	must(t, err)
	if info.SHA256 != sha(data) || info.Size != int64(len(data)) || info.Digest() != "sha256:"+sha(data) {
		t.Fatalf("put answered %+v", info)
	}
	// A plain reader (a pipe): hashed while it streams, compared with the store's digest.
	pr, pw := io.Pipe()
	go func() { _, _ = pw.Write(data[:1000]); pw.Close() }()
	var sent int64
	piped, err := c.PutObject(ctx, bucket, "dir/b.bin", pr, &zotartifacts.PutOptions{Progress: func(n int64) { sent = n }})
	must(t, err)
	if piped.SHA256 != sha(data[:1000]) || sent != 1000 {
		t.Fatalf("piped upload: %+v, progress %d", piped, sent)
	}
	// A file.
	f, fileSHA := randomFile(t, 2*zotartifacts.MiB)
	_, err = f.Seek(0, io.SeekStart)
	must(t, err)
	fromFile, err := c.PutObject(ctx, bucket, "c.bin", f, nil)
	must(t, err)
	if fromFile.SHA256 != fileSHA || fromFile.Size != 2*zotartifacts.MiB {
		t.Fatalf("file upload: %+v", fromFile)
	}

	// Read back: streamed, checked at EOF.
	r, err := c.GetObject(ctx, bucket, "dir/a.bin", nil)
	must(t, err)
	got := readAll(t, r)
	r.Close()
	if !bytes.Equal(got, data) || r.Info.SHA256 != sha(data) || r.Info.ContentType != "application/x-test" ||
		r.Info.Labels["team"] != "go" || r.Partial {
		t.Fatalf("get: %d bytes, info %+v", len(got), r.Info)
	}
	var buf bytes.Buffer
	var total int64
	dl, err := c.Download(ctx, bucket, "dir/a.bin", &buf, &zotartifacts.DownloadOptions{Progress: func(done, all int64) { total = all }})
	must(t, err)
	if !bytes.Equal(buf.Bytes(), data) || dl.Size != int64(len(data)) || total != int64(len(data)) {
		t.Fatalf("download: %d bytes, %+v", buf.Len(), dl)
	}
	head, err := c.HeadObject(ctx, bucket, "dir/a.bin")
	must(t, err)
	if head.SHA256 != sha(data) || head.Labels["team"] != "go" || head.ContentType != "application/x-test" {
		t.Fatalf("head: %+v", head)
	}
	ok, err := c.ObjectExists(ctx, bucket, "dir/a.bin")
	must(t, err)
	missing, err := c.ObjectExists(ctx, bucket, "nope")
	must(t, err)
	if !ok || missing {
		t.Fatalf("exists: %v %v", ok, missing)
	}

	// Server-side copy keeps the digest and, unless given, the content type and labels.
	cp, err := c.CopyObject(ctx, bucket, "dir/a.bin", bucket, "copy/a.bin", nil)
	must(t, err)
	if cp.SHA256 != sha(data) || cp.ContentType != "application/x-test" || cp.Labels["team"] != "go" {
		t.Fatalf("copy: %+v", cp)
	}
	must(t, c.DeleteObject(ctx, bucket, "copy/a.bin"))
	_, err = c.HeadObject(ctx, bucket, "copy/a.bin")
	if !zotartifacts.IsNotFound(err) {
		t.Fatalf("after delete: %v", err)
	}
}

func TestListPagesLazily(t *testing.T) {
	ctx, c := ctxT(t), admin(t)
	bucket := newBucket(t, c)
	var keys []string
	for i := 0; i < 7; i++ {
		k := fmt.Sprintf("logs/%02d.txt", i)
		keys = append(keys, k)
		_, err := c.PutObject(ctx, bucket, k, strings.NewReader(k), nil)
		must(t, err)
	}
	_, err := c.PutObject(ctx, bucket, "other/x.txt", strings.NewReader("x"), nil)
	must(t, err)
	_, err = c.PutObject(ctx, bucket, "top.txt", strings.NewReader("x"), nil)
	must(t, err)

	pages := 0
	counting := admin(t, zotartifacts.WithHTTPClient(&http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if strings.HasSuffix(r.URL.Path, "/objects") {
			pages++
		}
		return http.DefaultTransport.RoundTrip(r)
	})}))
	it := counting.ListObjects(ctx, bucket, &zotartifacts.ListOptions{Prefix: "logs/", PageSize: 3})
	var listed []string
	for it.Next() {
		listed = append(listed, it.Object().Key)
		if it.Object().Size != 11 {
			t.Fatalf("size %d", it.Object().Size)
		}
	}
	must(t, it.Err())
	if strings.Join(listed, ",") != strings.Join(keys, ",") || pages != 3 {
		t.Fatalf("listed %v in %d pages", listed, pages)
	}
	// One level: objects without a further "/" and the "directories".
	top := c.ListObjects(ctx, bucket, &zotartifacts.ListOptions{Delimiter: "/"})
	var names []string
	for top.Next() {
		names = append(names, top.Object().Key)
	}
	must(t, top.Err())
	prefixes, err := c.ListPrefixes(ctx, bucket, "", "/")
	must(t, err)
	sort.Strings(prefixes)
	if strings.Join(names, ",") != "top.txt" || strings.Join(prefixes, ",") != "logs/,other/" {
		t.Fatalf("one level: %v %v", names, prefixes)
	}
	// A listing of a bucket that does not exist stops with the error.
	bad := c.ListObjects(ctx, "go-no-such-bucket-"+randomHex(4), nil)
	if bad.Next() || !zotartifacts.IsNotFound(bad.Err()) {
		t.Fatalf("missing bucket: %v", bad.Err())
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestRangeReads(t *testing.T) {
	ctx, c := ctxT(t), admin(t)
	bucket := newBucket(t, c)
	data := randomBytes(1 << 20)
	_, err := c.PutObject(ctx, bucket, "r.bin", bytes.NewReader(data), nil)
	must(t, err)

	for _, tc := range []struct {
		rng        zotartifacts.Range
		start, end int
	}{
		{zotartifacts.Range{Offset: 10, Length: 20}, 10, 30},
		{zotartifacts.Range{Offset: 0, Length: 1}, 0, 1},
		{zotartifacts.Range{Offset: len64(data) - 5}, len(data) - 5, len(data)},
		{zotartifacts.Range{Offset: 1000, Length: 5 << 20}, 1000, len(data)}, // past the end: clipped
	} {
		rng := tc.rng
		r, err := c.GetObject(ctx, bucket, "r.bin", &zotartifacts.GetOptions{Range: &rng})
		must(t, err)
		got := readAll(t, r)
		r.Close()
		if !bytes.Equal(got, data[tc.start:tc.end]) || !r.Partial || r.Offset != int64(tc.start) ||
			r.Length != int64(tc.end-tc.start) || r.Info.Size != len64(data) {
			t.Fatalf("range %+v: %d bytes at %d (partial %v, size %d)", rng, len(got), r.Offset, r.Partial, r.Info.Size)
		}
	}
	// A range that starts past the end is refused: 416.
	_, err = c.GetObject(ctx, bucket, "r.bin", &zotartifacts.GetOptions{Range: &zotartifacts.Range{Offset: len64(data) + 10}})
	wantStatus(t, err, http.StatusRequestedRangeNotSatisfiable, "")
}

func len64(b []byte) int64 { return int64(len(b)) }

// multipartSize is the large upload's size: 200 MiB by default (issue 22), or
// $ZAS_TEST_GO_MULTIPART_MIB.
func multipartSize(t *testing.T) int64 {
	mib := int64(200)
	if v := os.Getenv("ZAS_TEST_GO_MULTIPART_MIB"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		must(t, err)
		mib = n
	}
	return mib*zotartifacts.MiB + 4567
}

func TestLargeMultipartWithParallelParts(t *testing.T) {
	ctx, c := ctxT(t), admin(t)
	bucket := newBucket(t, c)
	size := multipartSize(t)
	f, want := randomFile(t, size)

	var inFlight, most int32
	counting := admin(t, zotartifacts.WithHTTPClient(&http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if strings.Contains(r.URL.Path, "/parts/") {
			n := atomic.AddInt32(&inFlight, 1)
			defer atomic.AddInt32(&inFlight, -1)
			for {
				m := atomic.LoadInt32(&most)
				if n <= m || atomic.CompareAndSwapInt32(&most, m, n) {
					break
				}
			}
		}
		return http.DefaultTransport.RoundTrip(r)
	})}))
	var last atomic.Int64
	info, err := counting.Upload(ctx, bucket, "big.bin", f, size, &zotartifacts.UploadOptions{
		PartSize: 16 * zotartifacts.MiB, Parallel: 4, ContentType: "application/x-big",
		Progress: func(done, total int64) {
			if total != size {
				t.Errorf("progress total %d", total)
			}
			for {
				old := last.Load()
				if done <= old || last.CompareAndSwap(old, done) {
					break
				}
			}
		},
	})
	must(t, err)
	if info.SHA256 != want || info.Size != size || info.ContentType != "application/x-big" {
		t.Fatalf("upload: %+v", info)
	}
	if most < 2 || most > 4 {
		t.Fatalf("%d parts were in flight at most, want 2..4", most)
	}
	if last.Load() != size {
		t.Fatalf("progress ended at %d of %d", last.Load(), size)
	}
	uploads, err := c.ListUploads(ctx, bucket, "")
	must(t, err)
	if len(uploads) != 0 {
		t.Fatalf("uploads left: %+v", uploads)
	}
	// Download it back through a hash: the whole object, checked.
	h := sha256.New()
	dl, err := c.Download(ctx, bucket, "big.bin", h, nil)
	must(t, err)
	if hex.EncodeToString(h.Sum(nil)) != want || dl.Size != size {
		t.Fatalf("download of the large object differs")
	}
}

func TestInterruptedUploadIsResumed(t *testing.T) {
	ctx, direct := ctxT(t), admin(t)
	proxied := viaProxy(t)
	bucket := newBucket(t, direct)
	const part = 5 * zotartifacts.MiB
	size := int64(8*part + 123)
	f, want := randomFile(t, size)

	arm(t, "stop_parts", map[string]any{"after": 3})
	_, err := proxied.Upload(ctx, bucket, "resumed.bin", f, size, &zotartifacts.UploadOptions{PartSize: part, Parallel: 2})
	e := wantStatus(t, err, 0, "")
	if !e.Retryable {
		t.Fatalf("a dropped connection is retryable: %+v", e)
	}
	if ok, _ := direct.ObjectExists(ctx, bucket, "resumed.bin"); ok {
		t.Fatal("an interrupted upload published the object")
	}
	stored := map[string]bool{}
	for _, r := range seen(t, "PUT", "/parts/") {
		if r.Forwarded && r.Status == 200 {
			stored[r.Path[strings.LastIndex(r.Path, "/")+1:]] = true
		}
	}
	if len(stored) != 3 {
		t.Fatalf("stored parts: %v", stored)
	}
	uploads, err := direct.ListUploads(ctx, bucket, "resumed.bin")
	must(t, err)
	if len(uploads) != 1 {
		t.Fatalf("uploads: %+v", uploads)
	}

	arm(t, "reset", nil)
	info, err := proxied.Upload(ctx, bucket, "resumed.bin", f, size, &zotartifacts.UploadOptions{PartSize: part, Parallel: 2})
	must(t, err)
	resent := map[string]bool{}
	for _, r := range seen(t, "PUT", "/parts/") {
		resent[r.Path[strings.LastIndex(r.Path, "/")+1:]] = true
		if r.Headers["x-checksum-sha256"] == "" {
			t.Fatalf("a part without its sha256: %+v", r)
		}
	}
	for n := range stored {
		if resent[n] {
			t.Fatalf("part %s was sent again", n)
		}
	}
	if len(resent)+len(stored) != 9 || info.SHA256 != want || info.Size != size {
		t.Fatalf("resent %v, stored %v, info %+v", resent, stored, info)
	}
	if left, _ := direct.ListUploads(ctx, bucket, ""); len(left) != 0 {
		t.Fatalf("uploads left: %+v", left)
	}
}

func TestDownloadResumesAfterADroppedConnection(t *testing.T) {
	ctx, direct := ctxT(t), admin(t)
	proxied := viaProxy(t)
	bucket := newBucket(t, direct)
	data := randomBytes(6 * zotartifacts.MiB)
	_, err := direct.PutObject(ctx, bucket, "d.bin", bytes.NewReader(data), nil)
	must(t, err)

	arm(t, "drop", map[string]any{"bytes": 2 << 20, "match": "/objects/d.bin"})
	var buf bytes.Buffer
	info, err := proxied.Download(ctx, bucket, "d.bin", &buf, nil)
	must(t, err)
	gets := seen(t, "GET", "/objects/d.bin")
	if !bytes.Equal(buf.Bytes(), data) || info.SHA256 != sha(data) || len(gets) != 2 {
		t.Fatalf("download: %d bytes in %d requests", buf.Len(), len(gets))
	}
	if r := gets[1].Headers["range"]; r != "bytes=2097152-" || gets[1].Headers["if-range"] == "" {
		t.Fatalf("the second request asked for %q (If-Range %q)", r, gets[1].Headers["if-range"])
	}

	// A body damaged on the way is caught by its sha256.
	arm(t, "reset", nil)
	arm(t, "corrupt", map[string]any{"match": "/objects/d.bin"})
	_, err = proxied.Download(ctx, bucket, "d.bin", io.Discard, nil)
	wantStatus(t, err, 0, "ChecksumMismatch")
	arm(t, "corrupt", map[string]any{"match": "/objects/d.bin"})
	r, err := proxied.GetObject(ctx, bucket, "d.bin", nil)
	must(t, err)
	_, err = io.ReadAll(r)
	r.Close()
	var e *zotartifacts.Error
	if !errors.As(err, &e) || e.Code != "ChecksumMismatch" {
		t.Fatalf("a corrupted GetObject read: %v", err)
	}
}

func TestPresignedURLsWithPlainHTTP(t *testing.T) {
	ctx, c := ctxT(t), admin(t)
	bucket := newBucket(t, c)
	_, err := c.PutObject(ctx, bucket, "p/a.txt", strings.NewReader("presigned content"), nil)
	must(t, err)
	get, err := c.Presign(ctx, bucket, "p/a.txt", &zotartifacts.PresignOptions{Expires: 120e9})
	must(t, err)
	put, err := c.Presign(ctx, bucket, "p/b.txt", &zotartifacts.PresignOptions{Method: "PUT"})
	must(t, err)

	resp, err := http.Get(get)
	must(t, err)
	body := readAll(t, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "presigned content" {
		t.Fatalf("GET %s: %d %q", get, resp.StatusCode, body)
	}
	req, _ := http.NewRequest(http.MethodPut, put, strings.NewReader("put by url"))
	resp, err = http.DefaultClient.Do(req)
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != 200 && resp.StatusCode != 201 {
		t.Fatalf("PUT by URL: %d", resp.StatusCode)
	}
	r, err := c.GetObject(ctx, bucket, "p/b.txt", nil)
	must(t, err)
	if got := readAll(t, r); string(got) != "put by url" {
		t.Fatalf("stored %q", got)
	}
	r.Close()
	// Exactly that method on exactly that object.
	req, _ = http.NewRequest(http.MethodPut, get, strings.NewReader("nope"))
	resp, err = http.DefaultClient.Do(req)
	must(t, err)
	resp.Body.Close()
	other, err := http.Get(strings.Replace(get, "a.txt", "b.txt", 1))
	must(t, err)
	other.Body.Close()
	if resp.StatusCode != 403 || other.StatusCode != 403 {
		t.Fatalf("wrong method %d, other object %d", resp.StatusCode, other.StatusCode)
	}
}
