package zotartifacts_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	zotartifacts "github.com/zot-artifact-store/zot-artifact-store/sdk/go"
)

func TestTypedErrors(t *testing.T) {
	ctx, c := ctxT(t), admin(t)
	bucket := newBucket(t, c)
	_, err := c.PutObject(ctx, bucket, "a.txt", strings.NewReader("first"), nil)
	must(t, err)

	// 401: no credentials.
	anonymous, err := zotartifacts.New(storeURL)
	must(t, err)
	_, err = anonymous.ListBuckets(ctx)
	e := wantStatus(t, err, 401, "Unauthenticated")
	if !zotartifacts.IsUnauthenticated(err) || !errors.Is(err, zotartifacts.ErrUnauthenticated) ||
		e.RequestID == "" || e.Retryable || zotartifacts.IsNotFound(err) {
		t.Fatalf("401: %+v", e)
	}
	// 403: a reader writes.
	reader, err := c.CreateToken(ctx, zotartifacts.TokenRequest{Name: "go-reader", Roles: []string{"reader"}})
	must(t, err)
	asReader, err := zotartifacts.New(storeURL, zotartifacts.WithToken(reader.Secret))
	must(t, err)
	_, err = asReader.PutObject(ctx, bucket, "b.txt", strings.NewReader("x"), nil)
	wantStatus(t, err, 403, "AccessDenied")
	if !zotartifacts.IsAccessDenied(err) || zotartifacts.IsRetryable(err) {
		t.Fatalf("403: %v", err)
	}
	// 404: no such object, no such bucket.
	_, err = c.HeadObject(ctx, bucket, "missing.txt")
	wantStatus(t, err, 404, "NoSuchKey")
	_, err = c.GetBucket(ctx, "go-missing-"+randomHex(4))
	if !zotartifacts.IsNotFound(err) || !errors.Is(err, zotartifacts.ErrNotFound) {
		t.Fatalf("404: %v", err)
	}
	// 409: the bucket exists; it is not empty.
	_, err = c.CreateBucket(ctx, bucket, nil)
	wantStatus(t, err, 409, "BucketAlreadyExists")
	err = c.DeleteBucket(ctx, bucket, false)
	wantStatus(t, err, 409, "BucketNotEmpty")
	if !zotartifacts.IsConflict(err) {
		t.Fatalf("409: %v", err)
	}
	// 412: create-only writes never replace.
	_, err = c.PutObject(ctx, bucket, "a.txt", strings.NewReader("second"), &zotartifacts.PutOptions{IfNoneMatch: true})
	wantStatus(t, err, 412, "")
	if !zotartifacts.IsPreconditionFailed(err) {
		t.Fatalf("412: %v", err)
	}
	_, err = c.Upload(ctx, bucket, "a.txt", strings.NewReader("second"), 6, &zotartifacts.UploadOptions{IfNoneMatch: true})
	if !zotartifacts.IsPreconditionFailed(err) {
		t.Fatalf("412 from Upload: %v", err)
	}
	// 422: a declared sha256 that the body does not have; the old version stays.
	_, err = c.PutObject(ctx, bucket, "a.txt", strings.NewReader("third"),
		&zotartifacts.PutOptions{SHA256: sha([]byte("something else"))})
	wantStatus(t, err, 422, "")
	if !zotartifacts.IsInvalid(err) {
		t.Fatalf("422: %v", err)
	}
	r, err := c.GetObject(ctx, bucket, "a.txt", nil)
	must(t, err)
	if got := readAll(t, r); string(got) != "first" {
		t.Fatalf("the object is now %q", got)
	}
	r.Close()
	must(t, c.DeleteBucket(ctx, bucket, true))
	_, err = c.GetBucket(ctx, bucket)
	if !zotartifacts.IsNotFound(err) {
		t.Fatalf("after a recursive delete: %v", err)
	}
}

func TestRetriesOnlyWhereSafe(t *testing.T) {
	ctx, direct := ctxT(t), admin(t)
	proxied := viaProxy(t)
	bucket := newBucket(t, direct)

	// 503 on an idempotent PUT of a seekable body: retried until it gets through.
	arm(t, "fail", map[string]any{"count": 2, "status": 503, "match": "/objects/retried.txt"})
	info, err := proxied.PutObject(ctx, bucket, "retried.txt", strings.NewReader("after two 503s"), nil)
	must(t, err)
	if puts := seen(t, "PUT", "/objects/retried.txt"); len(puts) != 3 || info.Size != 14 {
		t.Fatalf("%d PUTs, %+v", len(puts), info)
	}
	// The server's Retry-After is honoured (here 0 s) and the retry is transparent on reads.
	arm(t, "fail", map[string]any{"count": 1, "status": 503, "match": "/objects/retried.txt", "retry_after": "0"})
	_, err = proxied.HeadObject(ctx, bucket, "retried.txt")
	must(t, err)
	// 503 on a non-idempotent call (creating a token): refused before it was applied, retried.
	arm(t, "reset", nil)
	arm(t, "fail", map[string]any{"count": 1, "status": 503, "match": "/v1/tokens"})
	_, err = proxied.CreateToken(ctx, zotartifacts.TokenRequest{Name: "go-retried", Roles: []string{"reader"}})
	must(t, err)
	if posts := seen(t, "POST", "/v1/tokens"); len(posts) != 2 {
		t.Fatalf("token POSTs: %d", len(posts))
	}
	// A 504 after the server acted: a non-idempotent call is not repeated.
	arm(t, "reset", nil)
	arm(t, "lose", map[string]any{"count": 1, "status": 504, "match": "/v1/tokens"})
	_, err = proxied.CreateToken(ctx, zotartifacts.TokenRequest{Name: "go-lost", Roles: []string{"reader"}})
	e := wantStatus(t, err, 504, "")
	if posts := seen(t, "POST", "/v1/tokens"); len(posts) != 1 || !posts[0].Forwarded || !e.Retryable {
		t.Fatalf("a lost answer was repeated: %+v", posts)
	}
	// 403 is never retried.
	arm(t, "reset", nil)
	arm(t, "fail", map[string]any{"count": 1, "status": 403, "match": "/objects/retried.txt"})
	_, err = proxied.HeadObject(ctx, bucket, "retried.txt")
	wantStatus(t, err, 403, "")
	if n := len(seen(t, "GET", "/objects/retried.txt")); n != 1 {
		t.Fatalf("403 was retried: %d requests", n)
	}
	// Retries stop after MaxAttempts.
	arm(t, "reset", nil)
	arm(t, "fail", map[string]any{"count": 10, "status": 503, "match": "/objects/retried.txt"})
	_, err = proxied.HeadObject(ctx, bucket, "retried.txt")
	wantStatus(t, err, 503, "ServiceUnavailable")
	if n := len(seen(t, "GET", "/objects/retried.txt")); n != 4 {
		t.Fatalf("%d attempts, want 4", n)
	}
}

func TestAConsumedBodyIsNeverResent(t *testing.T) {
	ctx, direct := ctxT(t), admin(t)
	proxied := viaProxy(t)
	bucket := newBucket(t, direct)
	_, err := direct.PutObject(ctx, bucket, "piped.bin", strings.NewReader("the good version"), nil)
	must(t, err)
	data := randomBytes(3 << 20)

	arm(t, "fail", map[string]any{"count": 1, "status": 503, "match": "/objects/piped.bin"})
	pr, pw := io.Pipe()
	go func() { _, _ = pw.Write(data); pw.Close() }()
	// Its length is known (Content-Length), so the proxy reads all of it before the 503.
	_, err = proxied.PutObject(ctx, bucket, "piped.bin", pr, &zotartifacts.PutOptions{Size: int64(len(data))})
	wantStatus(t, err, 503, "")
	if n := len(seen(t, "PUT", "/objects/piped.bin")); n != 1 {
		t.Fatalf("a consumed body was sent %d times", n)
	}
	head, err := direct.HeadObject(ctx, bucket, "piped.bin")
	must(t, err)
	if head.SHA256 != sha([]byte("the good version")) {
		t.Fatal("the old version was replaced")
	}
	// The same fault with a body that can be read again: sent again, stored whole.
	arm(t, "reset", nil)
	arm(t, "fail", map[string]any{"count": 1, "status": 503, "match": "/objects/piped.bin"})
	info, err := proxied.PutObject(ctx, bucket, "piped.bin", bytes.NewReader(data), nil)
	must(t, err)
	if info.SHA256 != sha(data) || len(seen(t, "PUT", "/objects/piped.bin")) != 2 {
		t.Fatalf("the re-readable body: %+v", info)
	}
}

// staleThenFresh answers a revoked token first, then a good one after Invalidate.
type staleThenFresh struct {
	mu           sync.Mutex
	stale, fresh string
	used         bool
	fetches      int
}

func (s *staleThenFresh) Token(context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fetches++
	if !s.used {
		return s.stale, nil
	}
	return s.fresh, nil
}

func (s *staleThenFresh) Invalidate() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.used = true
	return true
}

func TestA401RenewsTheTokenOnce(t *testing.T) {
	ctx, c := ctxT(t), admin(t)
	bucket := newBucket(t, c)
	old, err := c.CreateToken(ctx, zotartifacts.TokenRequest{Name: "go-old", Roles: []string{"writer"}})
	must(t, err)
	must(t, c.RevokeToken(ctx, old.ID))
	fresh, err := c.CreateToken(ctx, zotartifacts.TokenRequest{Name: "go-fresh", Roles: []string{"writer"}})
	must(t, err)

	ts := &staleThenFresh{stale: old.Secret, fresh: fresh.Secret}
	w, err := zotartifacts.New(storeURL, zotartifacts.WithTokenSource(ts))
	must(t, err)
	_, err = w.PutObject(ctx, bucket, "renewed.txt", strings.NewReader("ok"), nil)
	must(t, err)
	if ts.fetches != 2 {
		t.Fatalf("fetches %d", ts.fetches)
	}
	// A consumed body is not re-sent with the new token: the 401 is the answer.
	ts2 := &staleThenFresh{stale: old.Secret, fresh: fresh.Secret}
	w2, err := zotartifacts.New(storeURL, zotartifacts.WithTokenSource(ts2))
	must(t, err)
	pr, pw := io.Pipe()
	go func() { _, _ = pw.Write([]byte("streamed")); pw.Close() }()
	_, err = w2.PutObject(ctx, bucket, "streamed.txt", pr, nil)
	if !zotartifacts.IsUnauthenticated(err) || ts2.fetches != 1 {
		t.Fatalf("streamed with a stale token: %v after %d fetches", err, ts2.fetches)
	}
	// Credentials the server refuses stay refused: HTTP Basic with a wrong password.
	basic, err := zotartifacts.New(storeURL, zotartifacts.WithBasic("go-root", "wrong"))
	must(t, err)
	_, err = basic.ListBuckets(ctx)
	if !zotartifacts.IsUnauthenticated(err) {
		t.Fatalf("wrong password: %v", err)
	}
	// No workload identity outside GitHub Actions: a clear error.
	t.Setenv("ACTIONS_ID_TOKEN_REQUEST_URL", "")
	_, err = zotartifacts.GitHubActions{StoreURL: storeURL}.TokenSource()
	wantStatus(t, err, 0, "NoWorkloadIdentity")
	_ = http.StatusOK
}
