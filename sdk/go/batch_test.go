package zotartifacts_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	zotartifacts "github.com/zot-artifact-store/zot-artifact-store/sdk/go"
)

func results(objects []zotartifacts.BatchObjectResult) []string {
	var out []string
	for _, o := range objects {
		r := o.Key + "=" + o.Result
		if o.Error != nil {
			r += ":" + o.Error.Code
		}
		out = append(out, r)
	}
	return out
}

// Present, linked, to upload and invalid objects in one batch; the upload through its href
// is stored byte for byte; other bytes through an href are refused and nothing is stored.
func TestBatchUploadPlan(t *testing.T) {
	ctx, c := ctxT(t), admin(t)
	bucket, other := newBucket(t, c), newBucket(t, c)
	have, elsewhere, fresh := randomBytes(1000), randomBytes(2000), randomBytes(300_000)
	_, err := c.PutObject(ctx, bucket, "have.bin", bytes.NewReader(have), nil)
	must(t, err)
	_, err = c.PutObject(ctx, other, "src.bin", bytes.NewReader(elsewhere), nil)
	must(t, err)

	plan, err := c.Batch(ctx, zotartifacts.BatchRequest{
		Operation: zotartifacts.BatchOpUpload, Bucket: bucket,
		Objects: []zotartifacts.BatchObject{
			{Key: "have.bin", SHA256: sha(have), Size: int64(len(have))},
			{Key: "copy.bin", SHA256: "sha256:" + sha(elsewhere), Size: int64(len(elsewhere))},
			{Key: "new.bin", SHA256: sha(fresh), Size: int64(len(fresh)), ContentType: "application/x-new"},
			{Key: "bad.bin", SHA256: "nope", Size: 1},
			{Key: "neg.bin", SHA256: sha(have), Size: -1},
		},
	})
	must(t, err)
	want := []string{"have.bin=present", "copy.bin=linked", "new.bin=upload", "bad.bin=error:InvalidDigest", "neg.bin=error:MalformedJSON"}
	if got := results(plan.Objects); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("plan: %v", got)
	}
	if plan.Counts["present"] != 1 || plan.Counts["linked"] != 1 || plan.Counts["upload"] != 1 || plan.Counts["error"] != 2 {
		t.Fatalf("counts: %v", plan.Counts)
	}
	if plan.Objects[1].LinkedFrom != other+"/src.bin" || plan.Objects[3].Error.Status != 400 {
		t.Fatalf("linked from %q, error %+v", plan.Objects[1].LinkedFrom, plan.Objects[3].Error)
	}
	// The link made the object: same bytes, no transfer.
	r, err := c.GetObject(ctx, bucket, "copy.bin", nil)
	must(t, err)
	if got := readAll(t, r); !bytes.Equal(got, elsewhere) {
		t.Fatal("the linked object differs from its source")
	}
	r.Close()

	action := plan.Objects[2].Actions.Upload
	if action == nil || action.Method != "PUT" || action.Headers["X-Checksum-Sha256"] != sha(fresh) ||
		action.Headers["Content-Type"] != "application/x-new" || action.ExpiresIn != 3600 || action.ExpiresAt == "" {
		t.Fatalf("upload action: %+v", action)
	}
	// Other bytes through the href: a body one byte longer or shorter than declared, or of the
	// right size but different content, is refused and nothing is stored.
	longer := append(append([]byte{}, fresh...), 'x')
	_, err = c.SendUpload(ctx, action, bytes.NewReader(longer), int64(len(longer)))
	if err == nil {
		t.Fatal("a body longer than declared was stored")
	}
	_, err = c.SendUpload(ctx, action, bytes.NewReader(fresh[1:]), int64(len(fresh)-1))
	if err == nil {
		t.Fatal("a body shorter than declared was stored")
	}
	tampered := append([]byte{}, fresh...)
	tampered[0] ^= 1
	_, err = c.SendUpload(ctx, action, bytes.NewReader(tampered), int64(len(tampered)))
	wantStatus(t, err, 422, "ChecksumMismatch")
	_, err = c.HeadObject(ctx, bucket, "new.bin")
	if !zotartifacts.IsNotFound(err) {
		t.Fatalf("refused bytes were stored: %v", err)
	}
	// The right bytes: stored, byte-identical, with the declared content type.
	info, err := c.SendUpload(ctx, action, bytes.NewReader(fresh), int64(len(fresh)))
	must(t, err)
	if info.SHA256 != sha(fresh) || info.Size != int64(len(fresh)) {
		t.Fatalf("stored: %+v", info)
	}
	r, err = c.GetObject(ctx, bucket, "new.bin", nil)
	must(t, err)
	if got := readAll(t, r); !bytes.Equal(got, fresh) || r.Info.ContentType != "application/x-new" {
		t.Fatalf("downloaded %d bytes of %s", len(got), r.Info.ContentType)
	}
	r.Close()

	// Downloads: a presigned GET per object; declared content that differs is refused.
	down, err := c.Batch(ctx, zotartifacts.BatchRequest{
		Operation: zotartifacts.BatchOpDownload, Bucket: bucket,
		Objects: []zotartifacts.BatchObject{{Key: "new.bin"}, {Key: "have.bin", Size: 1, CheckSize: true}, {Key: "none"}},
	})
	must(t, err)
	if got := strings.Join(results(down.Objects), " "); got != "new.bin=download have.bin=error:PreconditionFailed none=error:NoSuchKey" {
		t.Fatalf("download plan: %s", got)
	}
	if down.Objects[0].Actions.Download.Method != "GET" || down.Objects[0].SHA256 != sha(fresh) {
		t.Fatalf("download action: %+v", down.Objects[0])
	}
}

// UploadMany hashes the files, asks once, sends only what is needed, and says per file what
// happened; a second run sends nothing.
func TestUploadMany(t *testing.T) {
	ctx, c := ctxT(t), admin(t)
	bucket, other := newBucket(t, c), newBucket(t, c)
	dir := t.TempDir()
	contents := map[string][]byte{"a.bin": randomBytes(5000), "b.bin": randomBytes(1 << 20), "c.bin": randomBytes(77), "empty.bin": {}}
	var files []zotartifacts.UploadFile
	for _, name := range []string{"a.bin", "b.bin", "c.bin", "empty.bin"} {
		path := filepath.Join(dir, name)
		must(t, os.WriteFile(path, contents[name], 0o644))
		files = append(files, zotartifacts.UploadFile{Key: "rel/" + name, Path: path, ContentType: "application/x-" + strings.TrimSuffix(name, ".bin")})
	}
	files = append(files, zotartifacts.UploadFile{Key: "rel/missing.bin", Path: filepath.Join(dir, "missing.bin")})
	// a.bin is there already, c.bin's content is in another bucket.
	_, err := c.PutObject(ctx, bucket, "rel/a.bin", bytes.NewReader(contents["a.bin"]), nil)
	must(t, err)
	_, err = c.PutObject(ctx, other, "c-elsewhere", bytes.NewReader(contents["c.bin"]), nil)
	must(t, err)

	var reported []string
	done, err := c.UploadMany(ctx, bucket, files, &zotartifacts.UploadManyOptions{Parallel: 2})
	must(t, err)
	for _, f := range done.Files {
		reported = append(reported, f.Key+"="+f.Result)
	}
	want := "rel/a.bin=present rel/b.bin=uploaded rel/c.bin=linked rel/empty.bin=uploaded rel/missing.bin=error"
	if strings.Join(reported, " ") != want {
		t.Fatalf("UploadMany: %v", reported)
	}
	if done.Count(zotartifacts.ResultUploaded) != 2 || len(done.Failed()) != 1 || !os.IsNotExist(done.Failed()[0].Err) {
		t.Fatalf("counts and failures: %+v", done.Failed())
	}
	if done.Files[2].LinkedFrom != other+"/c-elsewhere" || done.Files[1].Object.SHA256 != sha(contents["b.bin"]) {
		t.Fatalf("linked %q, uploaded %+v", done.Files[2].LinkedFrom, done.Files[1].Object)
	}
	for _, name := range []string{"a.bin", "b.bin", "c.bin", "empty.bin"} {
		r, err := c.GetObject(ctx, bucket, "rel/"+name, nil)
		must(t, err)
		if got := readAll(t, r); !bytes.Equal(got, contents[name]) {
			t.Fatalf("%s: %d bytes stored, not the file's %d", name, len(got), len(contents[name]))
		}
		r.Close()
	}
	again, err := c.UploadMany(ctx, bucket, files[:4], nil)
	must(t, err)
	if again.Count(zotartifacts.ResultPresent) != 4 {
		t.Fatalf("a second run: %+v", again.Files)
	}
}

// BatchHead and BatchDelete: a result per key in order, errors per key, and lists longer
// than the store's limit split into several requests answered as one.
func TestBatchHeadAndDelete(t *testing.T) {
	ctx, c := ctxT(t), admin(t)
	bucket := newBucket(t, c)
	a, b := randomBytes(10), randomBytes(20)
	_, err := c.PutObject(ctx, bucket, "k/a", bytes.NewReader(a), &zotartifacts.PutOptions{ContentType: "text/plain"})
	must(t, err)
	_, err = c.PutObject(ctx, bucket, "k/b", bytes.NewReader(b), nil)
	must(t, err)

	head, err := c.BatchHead(ctx, bucket, []string{"k/a", "k/none", "k/b", ""})
	must(t, err)
	got := []string{}
	for _, k := range head.Keys {
		s := k.Key + "=" + k.Result
		if k.Error != nil {
			s += ":" + k.Error.Code
		}
		got = append(got, s)
	}
	if strings.Join(got, " ") != "k/a=found k/none=error:NoSuchKey k/b=found =error:InvalidKey" {
		t.Fatalf("head: %v", got)
	}
	if o := head.Keys[0].Object; o.SHA256 != sha(a) || o.Size != 10 || o.ContentType != "text/plain" || o.Bucket != bucket {
		t.Fatalf("head's object: %+v", o)
	}
	if !zotartifacts.IsNotFound(head.Keys[1].Error) || head.Counts["found"] != 2 || head.Counts["error"] != 2 {
		t.Fatalf("head's error %v, counts %v", head.Keys[1].Error, head.Counts)
	}

	// 1,001 keys: two requests, one answer in order.
	many := make([]string, zotartifacts.BatchLimit+1)
	for i := range many {
		many[i] = fmt.Sprintf("k/none-%d", i)
	}
	many[zotartifacts.BatchLimit] = "k/b"
	big, err := c.BatchHead(ctx, bucket, many)
	must(t, err)
	if len(big.Keys) != len(many) || big.Counts["found"] != 1 || big.Counts["error"] != zotartifacts.BatchLimit ||
		big.Keys[zotartifacts.BatchLimit].Key != "k/b" || big.Keys[zotartifacts.BatchLimit].Result != "found" {
		t.Fatalf("1,001 keys: %d results, %v", len(big.Keys), big.Counts)
	}

	del, err := c.BatchDelete(ctx, bucket, []string{"k/a", "k/none", "k/b"})
	must(t, err)
	if del.Keys[0].Result != "deleted" || del.Keys[0].SHA256 != sha(a) || del.Keys[1].Error.Code != "NoSuchKey" ||
		del.Keys[2].SHA256 != sha(b) || del.Counts["deleted"] != 2 || del.Counts["error"] != 1 {
		t.Fatalf("delete: %+v", del)
	}
	for _, key := range []string{"k/a", "k/b"} {
		if _, err := c.HeadObject(ctx, bucket, key); !zotartifacts.IsNotFound(err) {
			t.Fatalf("%s is still there: %v", key, err)
		}
	}
	// A bucket that does not exist: every key says so.
	gone, err := c.BatchDelete(ctx, "no-such-bucket-"+randomHex(4), []string{"x"})
	must(t, err)
	if gone.Keys[0].Error == nil || gone.Keys[0].Error.Code != "NoSuchBucket" {
		t.Fatalf("delete in a missing bucket: %+v", gone.Keys[0])
	}
	// An empty list is the caller's mistake, answered as such.
	_, err = c.BatchHead(ctx, bucket, nil)
	wantStatus(t, err, 400, "MalformedJSON")
}

// BatchVerify with real Sigstore evidence: a result per subject, Verified only when all pass.
func TestBatchVerify(t *testing.T) {
	ctx, c := ctxT(t), admin(t)
	bucket := newBucket(t, c)
	artifact := fixture(t, "sigstore/bundle_v3.txt")
	bundle := fixture(t, "sigstore/bundle_v3.txt.sigstore")
	info, err := c.PutObject(ctx, bucket, "signed.txt", bytes.NewReader(artifact), nil)
	must(t, err)
	_, err = c.AttachEvidence(ctx, zotartifacts.ObjectSubject(bucket, "signed.txt"), zotartifacts.KindSignature, bytes.NewReader(bundle), nil)
	must(t, err)
	_, err = c.PutObject(ctx, bucket, "unsigned.txt", strings.NewReader("no evidence here "+randomHex(8)), nil)
	must(t, err)
	policy := map[string]any{"signatures": []any{
		map[string]any{"sigstore": map[string]any{"issuer": githubIssuer, "identity": "william@yossarian.net"}},
	}}
	subjects := []zotartifacts.Subject{
		zotartifacts.ObjectSubject(bucket, "signed.txt"),
		zotartifacts.ObjectSubject(bucket, "unsigned.txt"),
		zotartifacts.ObjectSubject(bucket, "missing.txt"),
		zotartifacts.DigestSubject(info.SHA256),
	}
	out, err := c.BatchVerify(ctx, subjects, policy, nil)
	must(t, err)
	var got []string
	for _, s := range out.Subjects {
		r := s.Result
		if s.Error != nil {
			r += ":" + s.Error.Code
		}
		got = append(got, r)
	}
	if strings.Join(got, " ") != "passed failed error:NoSuchKey passed" || out.Verified {
		t.Fatalf("batch verify: %v, verified %v", got, out.Verified)
	}
	first := out.Subjects[0]
	if !first.Verified || first.SubjectDigest != info.Digest() || !first.Rules[0].Passed || len(first.Rules[0].Evidence) == 0 {
		t.Fatalf("the signed subject: %+v", first)
	}
	if len(out.Subjects[1].FailedRules()) == 0 || out.Counts["passed"] != 2 || out.Counts["failed"] != 1 || out.Counts["error"] != 1 {
		t.Fatalf("the unsigned subject %+v, counts %v", out.Subjects[1], out.Counts)
	}
	all, err := c.BatchVerify(ctx, []zotartifacts.Subject{subjects[0], subjects[3]}, policy, nil)
	must(t, err)
	if !all.Verified {
		t.Fatalf("every subject passed, yet: %+v", all)
	}
	// A policy the store refuses fails the whole call.
	_, err = c.BatchVerify(ctx, subjects, map[string]any{"signatures": "everyone"}, nil)
	wantStatus(t, err, 400, "")
}
