package zotartifacts_test

// Every example here is a block of README.md (readme_test.go checks they are the same text),
// and those with an Output comment run against the live store of the test suite.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	zotartifacts "github.com/zot-artifact-store/zot-artifact-store/sdk/go"
)

func ExampleNew() {
	client, err := zotartifacts.New("https://artifacts.example.com",
		zotartifacts.WithToken(os.Getenv("ZOT_ARTIFACTS_TOKEN")),
		zotartifacts.WithHTTPClient(&http.Client{Timeout: 10 * time.Minute}),
		zotartifacts.WithRetry(zotartifacts.RetryPolicy{MaxAttempts: 3}),
	)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(client.BaseURL())
	// Output: https://artifacts.example.com
}

func ExampleOIDCClientCredentials() {
	// A robot identity in Keycloak: the access token is cached and fetched again before it
	// expires, or when the store answers 401.
	tokens, err := zotartifacts.OIDCClientCredentials{
		Issuer:       "https://keycloak.example.com/realms/ci",
		ClientID:     "release-bot",
		ClientSecret: os.Getenv("RELEASE_BOT_SECRET"),
	}.TokenSource()
	if err != nil {
		log.Fatal(err)
	}
	client, err := zotartifacts.New("https://artifacts.example.com", zotartifacts.WithTokenSource(tokens))
	if err != nil {
		log.Fatal(err)
	}
	_ = client
}

func ExampleGitHubActions() {
	// Inside a GitHub Actions job with `permissions: id-token: write`: no stored secret.
	tokens, err := zotartifacts.GitHubActions{
		StoreURL: "https://artifacts.example.com",
		Audience: "zot-artifact-store",
	}.TokenSource()
	if err != nil {
		log.Fatal(err) // Code "NoWorkloadIdentity" outside Actions
	}
	client, err := zotartifacts.New("https://artifacts.example.com", zotartifacts.WithTokenSource(tokens))
	if err != nil {
		log.Fatal(err)
	}
	_ = client
}

func ExampleClient_CreateBucket() {
	ctx := context.Background()
	client, err := zotartifacts.NewFromEnv()
	if err != nil {
		log.Fatal(err)
	}
	public := false
	bucket, err := client.CreateBucket(ctx, "releases", &zotartifacts.BucketOptions{
		PublicRead: &public,
		Labels:     map[string]string{"team": "platform"},
		ExistOK:    true,
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(bucket.Name, bucket.Labels["team"])
	// Output: releases platform
}

func ExampleClient_PutObject() {
	ctx := context.Background()
	client, err := zotartifacts.NewFromEnv()
	if err != nil {
		log.Fatal(err)
	}
	// A seekable body (a file, a bytes.Reader): its sha256 is declared, so the store refuses
	// it if it arrives damaged, and it can be sent again when a retry is safe.
	info, err := client.PutObject(ctx, "releases", "app/v1/readme.txt",
		strings.NewReader("hello, artifacts\n"),
		&zotartifacts.PutOptions{
			ContentType: "text/plain",
			Labels:      map[string]string{"version": "1.0.0"},
		})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(info.Size, info.Digest())
	// Output: 17 sha256:0386589f8bfa7b5de39e99ef28a65d4efef1252935ab089d2c6402ecf379ddd1
}

func ExampleClient_GetObject() {
	ctx := context.Background()
	client, err := zotartifacts.NewFromEnv()
	if err != nil {
		log.Fatal(err)
	}
	obj, err := client.GetObject(ctx, "releases", "app/v1/readme.txt", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer obj.Close()
	// The sha256 is checked as the last byte is read: a damaged body fails the copy.
	if _, err := io.Copy(os.Stdout, obj); err != nil {
		log.Fatal(err)
	}
	fmt.Println(obj.Info.ContentType, obj.Info.Labels["version"])
	// Output:
	// hello, artifacts
	// text/plain 1.0.0
}

func ExampleClient_GetObject_range() {
	ctx := context.Background()
	client, err := zotartifacts.NewFromEnv()
	if err != nil {
		log.Fatal(err)
	}
	// Bytes 7..15 only (Length 0 means "to the end").
	obj, err := client.GetObject(ctx, "releases", "app/v1/readme.txt", &zotartifacts.GetOptions{
		Range: &zotartifacts.Range{Offset: 7, Length: 9},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer obj.Close()
	part, err := io.ReadAll(obj)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%q of %d bytes, from offset %d\n", part, obj.Info.Size, obj.Offset)
	// Output: "artifacts" of 17 bytes, from offset 7
}

func ExampleClient_Download() {
	ctx := context.Background()
	client, err := zotartifacts.NewFromEnv()
	if err != nil {
		log.Fatal(err)
	}
	// Any io.Writer; a dropped connection is resumed where it stopped, the sha256 checked.
	f, err := os.CreateTemp("", "readme-*.txt")
	if err != nil {
		log.Fatal(err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	info, err := client.Download(ctx, "releases", "app/v1/readme.txt", f, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(info.Size, "bytes,", info.SHA256 != "")
	// Output: 17 bytes, true
}

func ExampleClient_HeadObject() {
	ctx := context.Background()
	client, err := zotartifacts.NewFromEnv()
	if err != nil {
		log.Fatal(err)
	}
	info, err := client.HeadObject(ctx, "releases", "app/v1/readme.txt")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(info.Key, info.Size, info.ContentType)
	// Output: app/v1/readme.txt 17 text/plain
}

func ExampleClient_ListObjects() {
	ctx := context.Background()
	client, err := zotartifacts.NewFromEnv()
	if err != nil {
		log.Fatal(err)
	}
	// Pages are fetched as the loop needs them.
	it := client.ListObjects(ctx, "releases", &zotartifacts.ListOptions{Prefix: "app/v1/"})
	for it.Next() {
		obj := it.Object()
		fmt.Println(obj.Key, obj.Size)
	}
	if err := it.Err(); err != nil {
		log.Fatal(err)
	}
	// Output: app/v1/readme.txt 17
}

func ExampleClient_CopyObject() {
	ctx := context.Background()
	client, err := zotartifacts.NewFromEnv()
	if err != nil {
		log.Fatal(err)
	}
	// Inside the store: no bytes pass through the client.
	cp, err := client.CopyObject(ctx, "releases", "app/v1/readme.txt", "releases", "app/latest/readme.txt", nil)
	if err != nil {
		log.Fatal(err)
	}
	if err := client.DeleteObject(ctx, "releases", cp.Key); err != nil {
		log.Fatal(err)
	}
	_, err = client.HeadObject(ctx, "releases", cp.Key)
	fmt.Println(zotartifacts.IsNotFound(err))
	// Output: true
}

func ExampleClient_Presign() {
	ctx := context.Background()
	client, err := zotartifacts.NewFromEnv()
	if err != nil {
		log.Fatal(err)
	}
	url, err := client.Presign(ctx, "releases", "app/v1/readme.txt", &zotartifacts.PresignOptions{
		Method: "GET", Expires: 15 * time.Minute,
	})
	if err != nil {
		log.Fatal(err)
	}
	// Anyone with the URL, no credentials: curl, a browser, net/http.
	resp, err := http.Get(url)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	fmt.Println(resp.Status)
	// Output: 200 OK
}

func ExampleClient_Upload() {
	ctx := context.Background()
	client, err := zotartifacts.NewFromEnv()
	if err != nil {
		log.Fatal(err)
	}
	// A large file in parts of 16 MiB, four at a time, each with its sha256. Calling Upload
	// again after a failure resumes: stored parts are not sent again.
	f, err := os.CreateTemp("", "big-*.bin")
	if err != nil {
		log.Fatal(err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if _, err := f.Write(bytes.Repeat([]byte("0123456789abcdef"), 3<<20)); err != nil { // 48 MiB
		log.Fatal(err)
	}
	st, err := f.Stat()
	if err != nil {
		log.Fatal(err)
	}
	info, err := client.Upload(ctx, "releases", "app/big.bin", f, st.Size(), &zotartifacts.UploadOptions{
		PartSize: 16 * zotartifacts.MiB,
		Parallel: 4,
		Progress: func(done, total int64) { /* update a progress bar */ },
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(info.Size)
	// Output: 50331648
}

func ExampleClient_UploadMany() {
	ctx := context.Background()
	client, err := zotartifacts.NewFromEnv()
	if err != nil {
		log.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "dist-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	files := []zotartifacts.UploadFile{
		{Key: "app/v2/readme.txt", Path: filepath.Join(dir, "readme.txt"), ContentType: "text/plain"},
		{Key: "app/v2/notes.txt", Path: filepath.Join(dir, "notes.txt"), ContentType: "text/plain"},
	}
	_ = os.WriteFile(files[0].Path, []byte("hello, artifacts\n"), 0o644) // as app/v1/readme.txt
	_ = os.WriteFile(files[1].Path, []byte("zot app 2.0: notes sent by UploadMany\n"), 0o644)
	// One batch request says what the store needs; only that is sent, streamed from disk.
	result, err := client.UploadMany(ctx, "releases", files, &zotartifacts.UploadManyOptions{Parallel: 4})
	if err != nil {
		log.Fatal(err)
	}
	for _, f := range result.Files {
		fmt.Println(f.Key, f.Result, f.Err)
	}
	// Again: nothing to send.
	again, err := client.UploadMany(ctx, "releases", files, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(again.Count(zotartifacts.ResultPresent), "present")
	// Output:
	// app/v2/readme.txt linked <nil>
	// app/v2/notes.txt uploaded <nil>
	// 2 present
}

func ExampleClient_Batch() {
	ctx := context.Background()
	client, err := zotartifacts.NewFromEnv()
	if err != nil {
		log.Fatal(err)
	}
	// The Git LFS batch model by hand: declare each object's sha256 and size, then send the
	// bytes of those answered ResultUpload through their presigned hrefs.
	script := []byte("#!/bin/sh\necho zot app 3.0\n")
	sum := sha256.Sum256(script)
	plan, err := client.Batch(ctx, zotartifacts.BatchRequest{
		Operation: zotartifacts.BatchOpUpload,
		Bucket:    "releases",
		Objects: []zotartifacts.BatchObject{
			{Key: "app/v3/run.sh", SHA256: hex.EncodeToString(sum[:]), Size: int64(len(script))},
			{Key: "app/v3/bad", SHA256: "not-a-digest", Size: 1},
		},
		ExpiresIn: 15 * time.Minute,
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, o := range plan.Objects {
		switch o.Result {
		case zotartifacts.ResultUpload:
			// The href is bound to the declared sha256 and size: other bytes are refused.
			if _, err := client.SendUpload(ctx, o.Actions.Upload, bytes.NewReader(script), int64(len(script))); err != nil {
				log.Fatal(err)
			}
			fmt.Println(o.Key, "sent")
		case zotartifacts.ResultError:
			fmt.Println(o.Key, o.Error.Code)
		}
	}
	head, err := client.BatchHead(ctx, "releases", []string{"app/v3/run.sh", "app/v3/none"})
	if err != nil {
		log.Fatal(err)
	}
	for _, k := range head.Keys {
		if k.Error != nil {
			fmt.Println(k.Key, k.Error.Code)
		} else {
			fmt.Println(k.Key, k.Object.Size)
		}
	}
	deleted, err := client.BatchDelete(ctx, "releases", []string{"app/v3/run.sh"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(deleted.Counts["deleted"], "deleted")
	// Output:
	// app/v3/run.sh sent
	// app/v3/bad InvalidDigest
	// app/v3/run.sh 27
	// app/v3/none NoSuchKey
	// 1 deleted
}

func ExampleClient_Verify() {
	ctx := context.Background()
	client, err := zotartifacts.NewFromEnv()
	if err != nil {
		log.Fatal(err)
	}
	subject := zotartifacts.ObjectSubject("releases", "app/v1/readme.txt")
	// Attach a signature (a Sigstore bundle, DSSE envelope or raw signature), an SBOM or an
	// attestation: the content type is detected from the document.
	sbom := `{"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1, "components": [
	  {"type": "library", "name": "idna", "version": "3.6", "purl": "pkg:pypi/idna@3.6"}]}`
	if _, err := client.AttachEvidence(ctx, subject, zotartifacts.KindSBOM, strings.NewReader(sbom), nil); err != nil {
		log.Fatal(err)
	}
	// Or have the store sign it with its own key.
	if _, err := client.Sign(ctx, subject, "", nil); err != nil {
		log.Fatal(err)
	}
	result, err := client.Verify(ctx, subject, map[string]any{"sbom": true}, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("verified:", result.Verified)
	evidence, err := client.ListEvidence(ctx, subject, zotartifacts.KindSBOM)
	if err != nil {
		log.Fatal(err)
	}
	doc, contentType, err := client.GetEvidence(ctx, evidence[0].ID)
	if err != nil {
		log.Fatal(err)
	}
	defer doc.Close()
	fmt.Println(contentType)
	// Output:
	// verified: true
	// application/vnd.cyclonedx+json
}

func ExampleClient_BatchVerify() {
	ctx := context.Background()
	client, err := zotartifacts.NewFromEnv()
	if err != nil {
		log.Fatal(err)
	}
	// A release pipeline checks all its artifacts in one call.
	subjects := []zotartifacts.Subject{
		zotartifacts.ObjectSubject("releases", "app/v1/readme.txt"),
		zotartifacts.ObjectSubject("releases", "app/v2/readme.txt"),
		zotartifacts.ObjectSubject("releases", "app/v9/none.txt"),
	}
	result, err := client.BatchVerify(ctx, subjects, map[string]any{"sbom": true}, nil)
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range result.Subjects {
		if s.Error != nil {
			fmt.Println(s.Result, s.Error.Code)
		} else {
			fmt.Println(s.Result, s.Subject)
		}
	}
	fmt.Println("all verified:", result.Verified)
	// Output:
	// passed releases/app/v1/readme.txt
	// passed releases/app/v2/readme.txt
	// error NoSuchKey
	// all verified: false
}

func ExampleClient_SetVerification() {
	ctx := context.Background()
	client, err := zotartifacts.NewFromEnv()
	if err != nil {
		log.Fatal(err)
	}
	// Every download from the bucket is checked: "audit" logs a failure, "enforce" refuses
	// it (403 VerificationFailed). SetRepositoryVerification does the same for image pulls.
	gate, err := client.SetVerification(ctx, "releases", zotartifacts.VerificationGate{
		Mode:   "audit",
		Policy: map[string]any{"sbom": true},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(gate.Name, gate.Mode)
	if err := client.DeleteVerification(ctx, "releases"); err != nil {
		log.Fatal(err)
	}
	// Output: default audit
}

func ExampleClient_SearchSBOMs() {
	ctx := context.Background()
	client, err := zotartifacts.NewFromEnv()
	if err != nil {
		log.Fatal(err)
	}
	matches, err := client.SearchSBOMs(ctx, zotartifacts.SBOMQuery{PURL: "pkg:pypi/idna@3.6"})
	if err != nil {
		log.Fatal(err)
	}
	for _, m := range matches {
		if m["subject"] == "releases/app/v1/readme.txt" {
			fmt.Println("found in", m["subject"])
			break
		}
	}
	// Output: found in releases/app/v1/readme.txt
}

func ExampleClient_CreateToken() {
	ctx := context.Background()
	client, err := zotartifacts.NewFromEnv()
	if err != nil {
		log.Fatal(err)
	}
	token, err := client.CreateToken(ctx, zotartifacts.TokenRequest{
		Name: "ci-uploader", Roles: []string{"writer"}, ExpiresIn: 24 * time.Hour,
	})
	if err != nil {
		log.Fatal(err)
	}
	// token.Secret ("zat_…") is shown once: store it as a CI secret.
	ci, err := zotartifacts.New(client.BaseURL(), zotartifacts.WithToken(token.Secret))
	if err != nil {
		log.Fatal(err)
	}
	who, err := ci.WhoAmI(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(who == "token:"+token.ID)
	if err := client.RevokeToken(ctx, token.ID); err != nil {
		log.Fatal(err)
	}
	// Output: true
}

func ExampleClient_Audit() {
	ctx := context.Background()
	client, err := zotartifacts.NewFromEnv()
	if err != nil {
		log.Fatal(err)
	}
	it := client.Audit(ctx, zotartifacts.AuditQuery{
		Decision: "deny", Since: time.Now().Add(-24 * time.Hour),
	})
	for it.Next() {
		rec := it.Record()
		_ = rec["principal"] // also action, resource, reason, time, request_id
	}
	fmt.Println(it.Err())
	// Output: <nil>
}

func ExampleClient_PutPolicy() {
	ctx := context.Background()
	client, err := zotartifacts.NewFromEnv()
	if err != nil {
		log.Fatal(err)
	}
	// Nobody but admins deletes releases.
	policy, err := client.PutPolicy(ctx, "protect-releases", zotartifacts.PolicyDocument{
		Statement: []zotartifacts.Statement{{
			Effect: "Deny", Principal: "role:writer",
			Action: "s3:DeleteObject", Resource: "releases/*",
		}},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(policy.Name)
	if err := client.DeletePolicy(ctx, "protect-releases"); err != nil {
		log.Fatal(err)
	}
	// Output: protect-releases
}

func ExampleClient_PublishEvent() {
	ctx := context.Background()
	client, err := zotartifacts.NewFromEnv()
	if err != nil {
		log.Fatal(err)
	}
	// A Tekton TaskRun's CloudEvent, forwarded by a controller allowed events:Publish.
	receipt, err := client.PublishEvent(ctx, zotartifacts.Event{
		ID:   fmt.Sprintf("example-%d", time.Now().UnixNano()),
		Type: "dev.tekton.event.taskrun.successful.v1",
		Data: map[string]any{"taskRun": map[string]any{
			"metadata": map[string]any{"name": "build-42", "namespace": "ci"},
		}},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(receipt.Duplicate)
	// Output: false
}

func ExampleError() {
	ctx := context.Background()
	client, err := zotartifacts.NewFromEnv()
	if err != nil {
		log.Fatal(err)
	}
	_, err = client.HeadObject(ctx, "releases", "no/such/object")
	var e *zotartifacts.Error
	if errors.As(err, &e) {
		fmt.Println(e.Status, e.Code, e.Retryable, e.RequestID != "")
	}
	fmt.Println(zotartifacts.IsNotFound(err), errors.Is(err, zotartifacts.ErrNotFound))
	// Output:
	// 404 NoSuchKey false true
	// true true
}
