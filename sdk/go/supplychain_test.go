package zotartifacts_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"strings"
	"testing"

	zotartifacts "github.com/zot-artifact-store/zot-artifact-store/sdk/go"
)

const githubIssuer = "https://github.com/login/oauth"

// Real Sigstore evidence (tests/fixtures/data/sigstore): a v0.3 bundle over bundle_v3.txt,
// signed by william@yossarian.net, checked by the store against the staging trusted root.
func TestVerifyWithRealSigstoreEvidence(t *testing.T) {
	ctx, c := ctxT(t), admin(t)
	bucket := newBucket(t, c)
	artifact := fixture(t, "sigstore/bundle_v3.txt")
	bundle := fixture(t, "sigstore/bundle_v3.txt.sigstore")
	info, err := c.PutObject(ctx, bucket, "app.txt", bytes.NewReader(artifact), nil)
	must(t, err)
	subject := zotartifacts.ObjectSubject(bucket, "app.txt")

	ev, err := c.AttachEvidence(ctx, subject, zotartifacts.KindSignature, bytes.NewReader(bundle), nil)
	must(t, err)
	if ev.SubjectDigest != info.Digest() || ev.Details["identity"] != "william@yossarian.net" ||
		!strings.HasPrefix(ev.MediaType, "application/vnd.dev.sigstore.bundle") {
		t.Fatalf("attached: %+v", ev)
	}
	// Evidence binds to the digest: the same bytes signed in another test run show up too.
	for _, s := range []zotartifacts.Subject{subject, zotartifacts.DigestSubject(info.SHA256)} {
		listed, err := c.ListEvidence(ctx, s, zotartifacts.KindSignature)
		must(t, err)
		found := false
		for _, e := range listed {
			found = found || e.ID == ev.ID
			if e.SubjectDigest != info.Digest() {
				t.Fatalf("listed for %+v: %+v", s, e)
			}
		}
		if !found {
			t.Fatalf("%s is not listed for %+v: %+v", ev.ID, s, listed)
		}
	}
	doc, ctype, err := c.GetEvidence(ctx, ev.ID)
	must(t, err)
	if got := readAll(t, doc); !bytes.Equal(got, bundle) || ctype != ev.MediaType {
		t.Fatalf("fetched %d bytes of %s", len(got), ctype)
	}
	doc.Close()

	pass, err := c.Verify(ctx, subject, map[string]any{"signatures": []any{
		map[string]any{"sigstore": map[string]any{"issuer": githubIssuer, "identity": "william@yossarian.net"}},
	}}, nil)
	must(t, err)
	if !pass.Verified || pass.SubjectDigest != info.Digest() || !pass.Rules[0].Passed || len(pass.Rules[0].Evidence) == 0 {
		t.Fatalf("verify: %+v", pass)
	}
	fail, err := c.Verify(ctx, subject, map[string]any{"signatures": []any{
		map[string]any{"sigstore": map[string]any{"issuer": githubIssuer, "identity": "mallory@example.com"}},
	}}, nil)
	must(t, err)
	if fail.Verified || len(fail.FailedRules()) == 0 || !strings.Contains(fail.Rules[0].Reason, "SANs do not match") {
		t.Fatalf("verify with the wrong identity: %+v", fail)
	}
	// Overwritten content is not covered by the old signature.
	_, err = c.PutObject(ctx, bucket, "app.txt", strings.NewReader("tampered"), nil)
	must(t, err)
	after, err := c.Verify(ctx, subject, map[string]any{"signatures": []any{
		map[string]any{"sigstore": map[string]any{"issuer": githubIssuer, "identity": "william@yossarian.net"}},
	}}, nil)
	must(t, err)
	if after.Verified {
		t.Fatalf("the tampered object verified: %+v", after)
	}
}

// A key-based raw signature (as cosign sign-blob writes it), a DSSE-signed SLSA attestation,
// a store signature, an SBOM and SBOM search.
func TestEvidenceKeysAndSBOMs(t *testing.T) {
	ctx, c := ctxT(t), admin(t)
	bucket := newBucket(t, c)
	artifact := randomBytes(4096)
	info, err := c.PutObject(ctx, bucket, "app.bin", bytes.NewReader(artifact), nil)
	must(t, err)
	subject := zotartifacts.ObjectSubject(bucket, "app.bin")

	private, key := trustNewKey(t, c, "go release key", "")
	raw, err := c.AttachEvidence(ctx, subject, zotartifacts.KindSignature, rawSignature(t, private, artifact), nil)
	must(t, err)
	if raw.Format != "raw" || raw.MediaType != "text/plain" {
		t.Fatalf("raw signature: %+v", raw)
	}
	policy := map[string]any{"signatures": []any{map[string]any{"key": key.ID}}}
	ok, err := c.Verify(ctx, subject, policy, nil)
	must(t, err)
	if !ok.Verified {
		t.Fatalf("key verification: %+v", ok)
	}
	keys, err := c.ListKeys(ctx)
	must(t, err)
	found := false
	for _, k := range keys {
		found = found || k.ID == key.ID
	}
	if !found || key.Algorithm != "ecdsa-p256" {
		t.Fatalf("keys: %+v", keys)
	}

	// An in-toto statement with the real SLSA v1 predicate of tests/fixtures, in a DSSE
	// envelope signed by the same key; the policy asks for that predicate type.
	statement, err := json.Marshal(map[string]any{
		"_type":         "https://in-toto.io/Statement/v1",
		"subject":       []any{map[string]any{"name": "app.bin", "digest": map[string]string{"sha256": info.SHA256}}},
		"predicateType": "https://slsa.dev/provenance/v1",
		"predicate":     json.RawMessage(fixture(t, "sigstore/slsa_predicate_v1_0.json")),
	})
	must(t, err)
	const payloadType = "application/vnd.in-toto+json"
	pae := fmt.Sprintf("DSSEv1 %d %s %d %s", len(payloadType), payloadType, len(statement), statement)
	paeDigest := sha256.Sum256([]byte(pae))
	dsseSig, err := ecdsa.SignASN1(rand.Reader, private, paeDigest[:])
	must(t, err)
	envelope, err := json.Marshal(map[string]any{
		"payload":     base64.StdEncoding.EncodeToString(statement),
		"payloadType": payloadType,
		"signatures":  []any{map[string]string{"keyid": "", "sig": base64.StdEncoding.EncodeToString(dsseSig)}},
	})
	must(t, err)
	att, err := c.AttachEvidence(ctx, subject, zotartifacts.KindAttestation, bytes.NewReader(envelope), nil)
	must(t, err)
	if att.Kind != "attestation" || att.Details["predicate_type"] != "https://slsa.dev/provenance/v1" {
		t.Fatalf("attestation: %+v", att)
	}
	slsa := map[string]any{"attestations": []any{map[string]any{
		"predicate_type": "https://slsa.dev/provenance/v1",
		"signer":         map[string]any{"key": key.ID},
	}}}
	withProvenance, err := c.Verify(ctx, subject, slsa, nil)
	must(t, err)
	if !withProvenance.Verified {
		t.Fatalf("the SLSA attestation did not verify: %+v", withProvenance)
	}
	other, err := c.Verify(ctx, subject, map[string]any{"attestations": []any{map[string]any{
		"predicate_type": "https://example.com/never-attached/v1",
	}}}, nil)
	must(t, err)
	if other.Verified {
		t.Fatalf("a predicate type nobody attached verified: %+v", other)
	}

	signed, err := c.Sign(ctx, subject, "", nil)
	must(t, err)
	var storeEnvelope struct {
		PayloadType string `json:"payloadType"`
	}
	must(t, json.Unmarshal(signed.Envelope, &storeEnvelope))
	if signed.Format != "dsse" || storeEnvelope.PayloadType != payloadType {
		t.Fatalf("signed: %+v", signed)
	}

	purl := "pkg:golang/example.com/zot-go-" + randomHex(4) + "@v1.2.3"
	sbom, err := c.AttachEvidence(ctx, subject, zotartifacts.KindSBOM, strings.NewReader(`{"bomFormat":"CycloneDX","specVersion":"1.5","version":1,"components":[{"type":"library","name":"zot-go","version":"v1.2.3","purl":"`+purl+`"}]}`), nil)
	must(t, err)
	if sbom.MediaType != "application/vnd.cyclonedx+json" {
		t.Fatalf("sbom: %+v", sbom)
	}
	_, err = c.AttachEvidence(ctx, subject, zotartifacts.KindSBOM, strings.NewReader(`{"not":"an sbom"}`), nil)
	wantStatus(t, err, 0, "UnknownFormat")
	matches, err := c.SearchSBOMs(ctx, zotartifacts.SBOMQuery{PURL: purl})
	must(t, err)
	if len(matches) != 1 || matches[0]["subject_digest"] != info.Digest() {
		t.Fatalf("search: %+v", matches)
	}
	all, err := c.ListEvidence(ctx, subject, "")
	must(t, err)
	ids := map[string]bool{}
	for _, e := range all {
		ids[e.ID] = true
	}
	if !ids[raw.ID] || !ids[signed.ID] || !ids[sbom.ID] || !ids[att.ID] {
		t.Fatalf("all evidence: %+v", all)
	}

	// A stranger's key does not verify it; removing trust fails it too.
	must(t, c.RevokeKey(ctx, key.ID))
	revoked, err := c.Verify(ctx, subject, policy, nil)
	must(t, err)
	if revoked.Verified {
		t.Fatalf("a revoked key verified: %+v", revoked)
	}
}

// trustNewKey makes a P-256 key and has the store trust it (scope "" or bucket:<name>).
func trustNewKey(t *testing.T, c *zotartifacts.Client, name, scope string) (*ecdsa.PrivateKey, *zotartifacts.TrustedKey) {
	t.Helper()
	private, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	der, err := x509.MarshalPKIXPublicKey(&private.PublicKey)
	must(t, err)
	key, err := c.AddKey(ctxT(t), name, string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), scope)
	must(t, err)
	return private, key
}

// rawSignature is data's signature as cosign sign-blob writes it: base64 of an ECDSA
// signature over its sha256.
func rawSignature(t *testing.T, private *ecdsa.PrivateKey, data []byte) io.Reader {
	t.Helper()
	digest := sha256.Sum256(data)
	sig, err := ecdsa.SignASN1(rand.Reader, private, digest[:])
	must(t, err)
	return strings.NewReader(base64.StdEncoding.EncodeToString(sig))
}
