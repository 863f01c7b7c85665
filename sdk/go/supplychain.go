package zotartifacts

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Evidence kinds: where AttachEvidence and ListEvidence put and find documents.
const (
	// KindSignature is a Sigstore bundle, a DSSE envelope or a raw (base64) signature.
	KindSignature = "signatures"
	// KindSBOM is a CycloneDX (JSON or XML) or SPDX JSON SBOM.
	KindSBOM = "sboms"
	// KindAttestation is an in-toto statement in a signed DSSE envelope.
	KindAttestation = "attestations"
)

const maxEvidence = 16 << 20

func evidencePath(s Subject, kind string) (string, error) {
	switch {
	case s.Bucket != "" && s.Key != "":
		return objectPath(s.Bucket, s.Key) + "/" + kind, nil
	case s.Digest != "":
		return "/v1/digests/" + url.PathEscape(s.Digest) + "/" + kind, nil
	}
	return "", fmt.Errorf("zotartifacts: a subject needs Bucket and Key, or a Digest")
}

// AttachOptions are the optional settings of AttachEvidence.
type AttachOptions struct {
	// ContentType of the document; detected from the document when empty (a Sigstore
	// bundle's own mediaType, DSSE, text/plain for a raw signature; CycloneDX or SPDX).
	ContentType string
}

// AttachEvidence attaches a document of kind (KindSignature, KindSBOM, KindAttestation) to
// subject. The document is read from r into memory (evidence documents are small: the store
// takes at most 16 MiB), so it can be sent again when a retry is safe.
func (c *Client) AttachEvidence(ctx context.Context, subject Subject, kind string, r io.Reader, opts *AttachOptions) (*Evidence, error) {
	path, err := evidencePath(subject, kind)
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(r, maxEvidence+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxEvidence {
		return nil, &Error{Code: "EntityTooLarge", Message: "an evidence document is at most 16 MiB", Type: "about:blank"}
	}
	ctype := ""
	if opts != nil {
		ctype = opts.ContentType
	}
	if ctype == "" {
		if ctype, err = detectEvidenceType(kind, data); err != nil {
			return nil, err
		}
	}
	var ev Evidence
	b := &body{data: data, length: int64(len(data)), ctype: ctype}
	if err := c.call(ctx, &request{method: http.MethodPost, path: path, body: b}, &ev); err != nil {
		return nil, err
	}
	return &ev, nil
}

func detectEvidenceType(kind string, data []byte) (string, error) {
	var doc map[string]any
	_ = json.Unmarshal(data, &doc)
	switch kind {
	case KindSignature:
		if m, ok := doc["mediaType"].(string); ok && strings.HasPrefix(m, "application/vnd.dev.sigstore.bundle") {
			return m, nil
		}
		if _, ok := doc["payloadType"]; ok {
			return "application/vnd.dsse.envelope.v1+json", nil
		}
		if _, ok := doc["verificationMaterial"]; ok {
			return "application/vnd.dev.sigstore.bundle+json", nil
		}
		return "text/plain", nil
	case KindSBOM:
		if doc["bomFormat"] == "CycloneDX" {
			return "application/vnd.cyclonedx+json", nil
		}
		if _, ok := doc["spdxVersion"]; ok {
			return "application/spdx+json", nil
		}
		head := bytes.ToLower(bytes.TrimSpace(data[:min(len(data), 4096)]))
		if bytes.HasPrefix(head, []byte("<")) && bytes.Contains(head, []byte("cyclonedx")) {
			return "application/vnd.cyclonedx+xml", nil
		}
		return "", &Error{Code: "UnknownFormat", Message: "not a CycloneDX (JSON/XML) or SPDX JSON document: set ContentType", Type: "about:blank"}
	case KindAttestation:
		return "application/vnd.dsse.envelope.v1+json", nil
	}
	return "", fmt.Errorf("zotartifacts: unknown evidence kind %q", kind)
}

func min(a, b int) int {
	if a < b {
		return a
	}
	return b
}

// ListEvidence returns the evidence about subject of kind, or of every kind when kind is "".
func (c *Client) ListEvidence(ctx context.Context, subject Subject, kind string) ([]Evidence, error) {
	kinds := []string{kind}
	if kind == "" {
		kinds = []string{KindSignature, KindSBOM, KindAttestation}
	}
	var found []Evidence
	for _, k := range kinds {
		path, err := evidencePath(subject, k)
		if err != nil {
			return nil, err
		}
		var out map[string]json.RawMessage
		if err := c.jsonCall(ctx, http.MethodGet, path, nil, &out, true); err != nil {
			return nil, err
		}
		var page []Evidence
		if raw, ok := out[k]; ok {
			if err := json.Unmarshal(raw, &page); err != nil {
				return nil, &Error{Code: "InvalidResponse", Message: "the evidence listing is not the JSON expected: " + err.Error(), Err: err}
			}
		}
		found = append(found, page...)
	}
	return found, nil
}

// GetEvidence opens an evidence document exactly as it was attached; its content type is
// returned too. Close the reader.
func (c *Client) GetEvidence(ctx context.Context, id string) (io.ReadCloser, string, error) {
	resp, err := c.do(ctx, &request{method: http.MethodGet, path: "/v1/evidence/" + seg(id), idempotent: true})
	if err != nil {
		return nil, "", err
	}
	return resp.Body, resp.Header.Get("Content-Type"), nil
}

// VerifyOptions are the optional settings of Verify.
type VerifyOptions struct {
	// IssueVSA asks for a signed verification summary attestation when it passes.
	IssueVSA bool
}

// Verify checks subject against a policy, rule by rule: {"signatures": [{"key": id} or
// {"sigstore": {"issuer", "identity"}}], "threshold": n, "sbom": ..., "attestations": ...}
// (docs/openapi.json's VerificationPolicy). A failed check is a result with Verified false,
// not an error.
func (c *Client) Verify(ctx context.Context, subject Subject, policy map[string]any, opts *VerifyOptions) (*VerificationResult, error) {
	in := map[string]any{"subject": subject, "policy": policy}
	vsa := opts != nil && opts.IssueVSA
	if vsa {
		in["issue_vsa"] = true
	}
	var out VerificationResult
	if err := c.jsonCall(ctx, http.MethodPost, "/v1/verify", in, &out, !vsa); err != nil {
		return nil, err
	}
	return &out, nil
}

// Sign has the store sign subject with its own key (a DSSE envelope; with predicateType and
// predicate, an attestation of that type). The store needs a signing key configured.
func (c *Client) Sign(ctx context.Context, subject Subject, predicateType string, predicate any) (*Evidence, error) {
	in := map[string]any{"subject": subject}
	if predicateType != "" {
		in["predicate_type"] = predicateType
	}
	if predicate != nil {
		in["predicate"] = predicate
	}
	return callFor[Evidence](ctx, c, http.MethodPost, "/v1/sign", in, false)
}

// TrustedKey is a public key the store trusts for signatures.
type TrustedKey struct {
	ID        string `json:"id"`                   // the key's id (policies name it)
	Name      string `json:"name"`                 // what it is
	Algorithm string `json:"algorithm"`            // e.g. ecdsa-p256
	Scope     string `json:"scope"`                // "" (everywhere), bucket:<name> or repo:<name>
	PublicKey string `json:"public_key"`           // PEM
	CreatedAt string `json:"created_at"`           // RFC 3339
	CreatedBy string `json:"created_by"`           // who added it
	ExpiresAt string `json:"expires_at,omitempty"` // RFC 3339; empty: never
	RevokedAt string `json:"revoked_at,omitempty"` // RFC 3339; empty: trusted
}

// AddKey trusts a PEM public key for signatures; scope is "" (everywhere), "bucket:<name>"
// or "repo:<name>".
func (c *Client) AddKey(ctx context.Context, name, publicKeyPEM, scope string) (*TrustedKey, error) {
	in := map[string]any{"name": name, "public_key": publicKeyPEM, "scope": scope}
	return callFor[TrustedKey](ctx, c, http.MethodPost, "/v1/keys", in, false)
}

// ListKeys returns the trusted keys.
func (c *Client) ListKeys(ctx context.Context) ([]TrustedKey, error) {
	var out struct {
		Keys []TrustedKey `json:"keys"`
	}
	if err := c.jsonCall(ctx, http.MethodGet, "/v1/keys", nil, &out, true); err != nil {
		return nil, err
	}
	return out.Keys, nil
}

// RevokeKey stops trusting a key.
func (c *Client) RevokeKey(ctx context.Context, id string) error {
	return c.call(ctx, &request{method: http.MethodDelete, path: "/v1/keys/" + seg(id), idempotent: true}, nil)
}

// SBOMQuery is what SearchSBOMs looks for: a package URL (with a version it matches
// exactly) or a component name; Limit caps the results.
type SBOMQuery struct {
	PURL  string // a package URL; with a version it matches exactly
	Name  string // a component name
	Limit int    // the most results (0: the server's default)
}

// SearchSBOMs returns the subjects whose SBOM lists a component.
func (c *Client) SearchSBOMs(ctx context.Context, q SBOMQuery) ([]SBOMMatch, error) {
	if q.PURL == "" && q.Name == "" {
		return nil, fmt.Errorf("zotartifacts: SearchSBOMs needs PURL or Name")
	}
	v := url.Values{}
	if q.PURL != "" {
		v.Set("purl", q.PURL)
	}
	if q.Name != "" {
		v.Set("name", q.Name)
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	var out struct {
		Results []SBOMMatch `json:"results"`
	}
	if err := c.call(ctx, &request{method: http.MethodGet, path: "/v1/sboms/search", query: v, idempotent: true}, &out); err != nil {
		return nil, err
	}
	return out.Results, nil
}

// VerificationGate checks every download of a bucket (or every pull from repositories
// matching a name or glob) against a policy.
type VerificationGate struct {
	Name         string         `json:"name"`                   // the gate's name (default "default")
	Mode         string         `json:"mode"`                   // audit (log failures) or enforce (refuse them: 403 VerificationFailed)
	Policy       map[string]any `json:"policy"`                 // as Verify's policy
	Repositories string         `json:"repositories,omitempty"` // a repository gate's name or glob
}

func gatePath(bucket, repositories string) string {
	if repositories != "" {
		parts := strings.Split(repositories, "/")
		for i, p := range parts {
			parts[i] = url.PathEscape(p)
		}
		return "/v1/repositories/" + strings.Join(parts, "/") + "/verification"
	}
	return "/v1/buckets/" + seg(bucket) + "/verification"
}

func (g VerificationGate) body() map[string]any {
	name, mode := g.Name, g.Mode
	if name == "" {
		name = "default"
	}
	if mode == "" {
		mode = "audit"
	}
	return map[string]any{"name": name, "mode": mode, "policy": g.Policy}
}

// SetVerification checks every download from bucket against gate.Policy (admins only):
// mode "audit" (the default) logs failures, "enforce" refuses them.
func (c *Client) SetVerification(ctx context.Context, bucket string, gate VerificationGate) (*VerificationGate, error) {
	return callFor[VerificationGate](ctx, c, http.MethodPut, gatePath(bucket, ""), gate.body(), true)
}

// GetVerification returns bucket's gate (404 when it has none).
func (c *Client) GetVerification(ctx context.Context, bucket string) (*VerificationGate, error) {
	return callFor[VerificationGate](ctx, c, http.MethodGet, gatePath(bucket, ""), nil, true)
}

// DeleteVerification removes bucket's gate.
func (c *Client) DeleteVerification(ctx context.Context, bucket string) error {
	return c.call(ctx, &request{method: http.MethodDelete, path: gatePath(bucket, ""), idempotent: true}, nil)
}

// SetRepositoryVerification checks every image pull from repositories matching
// repositories (a name or a glob such as "prod/*"; the most specific gate applies).
func (c *Client) SetRepositoryVerification(ctx context.Context, repositories string, gate VerificationGate) (*VerificationGate, error) {
	return callFor[VerificationGate](ctx, c, http.MethodPut, gatePath("", repositories), gate.body(), true)
}

// GetRepositoryVerification returns the gate of repositories.
func (c *Client) GetRepositoryVerification(ctx context.Context, repositories string) (*VerificationGate, error) {
	return callFor[VerificationGate](ctx, c, http.MethodGet, gatePath("", repositories), nil, true)
}

// DeleteRepositoryVerification removes the gate of repositories.
func (c *Client) DeleteRepositoryVerification(ctx context.Context, repositories string) error {
	return c.call(ctx, &request{method: http.MethodDelete, path: gatePath("", repositories), idempotent: true}, nil)
}

// Provenance has the store build SLSA v1 provenance for objects the caller uploaded (with
// this identity; in a CI workload session, that very session), from what it verified itself
// (a GitHub Actions job's exchanged claims, a Kubernetes workload's, else the uploader), sign
// it and attach it to each: one statement names them all. Subjects are bucket and key.
func (c *Client) Provenance(ctx context.Context, objects ...Subject) ([]Evidence, error) {
	subjects := make([]map[string]string, len(objects))
	for i, o := range objects {
		subjects[i] = map[string]string{"bucket": o.Bucket, "key": o.Key}
	}
	var out struct {
		Evidence []Evidence `json:"evidence"`
	}
	if err := c.jsonCall(ctx, http.MethodPost, "/v1/provenance", map[string]any{"subjects": subjects}, &out, false); err != nil {
		return nil, err
	}
	return out.Evidence, nil
}
