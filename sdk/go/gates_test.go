package zotartifacts_test

import (
	"io"
	"strings"
	"testing"

	zotartifacts "github.com/zot-artifact-store/zot-artifact-store/sdk/go"
)

func TestVerificationGatesAndBucketPolicies(t *testing.T) {
	ctx, c := ctxT(t), admin(t)
	bucket := newBucket(t, c)
	private, key := trustNewKey(t, c, "go gate key", "bucket:"+bucket)
	signedBody := "signed " + randomHex(8)
	_, err := c.PutObject(ctx, bucket, "signed.txt", strings.NewReader(signedBody), nil)
	must(t, err)
	_, err = c.PutObject(ctx, bucket, "unsigned.txt", strings.NewReader("unsigned "+randomHex(8)), nil)
	must(t, err)
	_, err = c.AttachEvidence(ctx, zotartifacts.ObjectSubject(bucket, "signed.txt"), zotartifacts.KindSignature,
		rawSignature(t, private, []byte(signedBody)), nil)
	must(t, err)

	policy := map[string]any{"signatures": []any{map[string]any{"key": key.ID}}}
	gate, err := c.SetVerification(ctx, bucket, zotartifacts.VerificationGate{Mode: "enforce", Policy: policy})
	must(t, err)
	got, err := c.GetVerification(ctx, bucket)
	must(t, err)
	if gate.Mode != "enforce" || got.Name != "default" || got.Policy["signatures"] == nil {
		t.Fatalf("gate %+v, read back %+v", gate, got)
	}
	r, err := c.GetObject(ctx, bucket, "signed.txt", nil)
	must(t, err)
	if b, _ := io.ReadAll(r); string(b) != signedBody {
		t.Fatalf("the signed object: %q", b)
	}
	r.Close()
	_, err = c.GetObject(ctx, bucket, "unsigned.txt", nil)
	wantStatus(t, err, 403, "VerificationFailed")
	must(t, c.DeleteVerification(ctx, bucket))
	r, err = c.GetObject(ctx, bucket, "unsigned.txt", nil)
	must(t, err)
	r.Close()
	_, err = c.GetVerification(ctx, bucket)
	if !zotartifacts.IsNotFound(err) {
		t.Fatalf("a deleted gate: %v", err)
	}

	// A repository gate, by glob.
	pattern := "go-" + randomHex(4) + "/*"
	repo, err := c.SetRepositoryVerification(ctx, pattern, zotartifacts.VerificationGate{Policy: policy})
	must(t, err)
	readBack, err := c.GetRepositoryVerification(ctx, pattern)
	must(t, err)
	if repo.Mode != "audit" || readBack.Repositories != pattern {
		t.Fatalf("repository gate %+v, read back %+v", repo, readBack)
	}
	must(t, c.DeleteRepositoryVerification(ctx, pattern))

	// A bucket policy: a writer token may not delete here.
	writer, err := c.CreateToken(ctx, zotartifacts.TokenRequest{Name: "go-bucket-writer", Roles: []string{"writer"}})
	must(t, err)
	w, err := zotartifacts.New(storeURL, zotartifacts.WithToken(writer.Secret))
	must(t, err)
	doc, err := c.PutBucketPolicy(ctx, bucket, zotartifacts.PolicyDocument{Statement: []zotartifacts.Statement{{
		Effect: "Deny", Principal: "token:" + writer.ID, Action: "s3:DeleteObject", Resource: bucket + "/*",
	}}})
	must(t, err)
	stored, err := c.GetBucketPolicy(ctx, bucket)
	must(t, err)
	if len(doc.Statement) != 1 || stored.Statement[0].Effect != "Deny" {
		t.Fatalf("bucket policy %+v, read back %+v", doc, stored)
	}
	err = w.DeleteObject(ctx, bucket, "unsigned.txt")
	if !zotartifacts.IsAccessDenied(err) {
		t.Fatalf("a delete the bucket policy denies: %v", err)
	}
	must(t, c.DeleteBucketPolicy(ctx, bucket))
	_, err = c.GetBucketPolicy(ctx, bucket)
	if !zotartifacts.IsNotFound(err) {
		t.Fatalf("a deleted bucket policy: %v", err)
	}
	must(t, w.DeleteObject(ctx, bucket, "unsigned.txt"))
}
