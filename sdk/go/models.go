package zotartifacts

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Bucket is a bucket's settings.
type Bucket struct {
	Name       string            `json:"name"`
	CreatedAt  string            `json:"created_at"`
	PublicRead bool              `json:"public_read"`
	Owner      string            `json:"owner,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
}

// ObjectInfo is an object's metadata. SHA256 is lowercase hex; Digest() is "sha256:<hex>".
type ObjectInfo struct {
	Bucket      string            `json:"bucket"`
	Key         string            `json:"key"`
	Size        int64             `json:"size"`
	SHA256      string            `json:"sha256"`
	ETag        string            `json:"etag"`
	ContentType string            `json:"content_type"`
	CreatedAt   string            `json:"created_at,omitempty"`
	UpdatedAt   string            `json:"updated_at,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
}

// Digest is the object's content digest, "sha256:<hex>".
func (o ObjectInfo) Digest() string { return "sha256:" + o.SHA256 }

func (o *ObjectInfo) normalize() {
	o.ETag = strings.Trim(o.ETag, `"`)
	o.SHA256 = strings.ToLower(strings.TrimPrefix(o.SHA256, "sha256:"))
	if o.ContentType == "" {
		o.ContentType = "application/octet-stream"
	}
}

// objectFromHeaders reads an object's metadata from a GET/HEAD answer's headers; the size is
// the whole object's (from Content-Range for a partial answer).
func objectFromHeaders(bucket, key string, h http.Header) ObjectInfo {
	o := ObjectInfo{
		Bucket: bucket, Key: key,
		SHA256:      h.Get("X-Checksum-Sha256"),
		ETag:        h.Get("ETag"),
		ContentType: h.Get("Content-Type"),
	}
	size := h.Get("Content-Length")
	if cr := h.Get("Content-Range"); strings.Contains(cr, "/") {
		size = cr[strings.LastIndex(cr, "/")+1:]
	}
	o.Size, _ = strconv.ParseInt(size, 10, 64)
	if lm, err := http.ParseTime(h.Get("Last-Modified")); err == nil {
		o.UpdatedAt = lm.UTC().Format(time.RFC3339)
	}
	if raw := h.Get("X-Artifact-Labels"); raw != "" {
		_ = json.Unmarshal([]byte(raw), &o.Labels)
	}
	o.normalize()
	return o
}

// UploadPart is a part stored in a multipart upload.
type UploadPart struct {
	PartNumber int    `json:"part_number"`
	Size       int64  `json:"size"`
	ETag       string `json:"etag"`
	SHA256     string `json:"sha256"`
}

// Upload is a multipart upload in progress (Parts only when fetched with GetUpload).
type Upload struct {
	UploadID    string            `json:"upload_id"`
	Bucket      string            `json:"bucket"`
	Key         string            `json:"key"`
	CreatedAt   string            `json:"created_at"`
	ContentType string            `json:"content_type"`
	Labels      map[string]string `json:"labels"`
	Parts       []UploadPart      `json:"parts"`
}

// Subject is what supply-chain evidence is about: an object (its current sha256), an OCI
// image (repository and manifest digest) or a bare digest. Build one with ObjectSubject,
// ImageSubject or DigestSubject.
type Subject struct {
	Bucket     string `json:"bucket,omitempty"`
	Key        string `json:"key,omitempty"`
	Repository string `json:"repository,omitempty"`
	Digest     string `json:"digest,omitempty"`
}

// ObjectSubject is the subject bucket/key (its current content).
func ObjectSubject(bucket, key string) Subject { return Subject{Bucket: bucket, Key: key} }

// ImageSubject is an OCI manifest in repository.
func ImageSubject(repository, digest string) Subject {
	return Subject{Repository: repository, Digest: digest}
}

// DigestSubject is a bare digest "sha256:<hex>" (a bare 64-hex sha256 is prefixed).
func DigestSubject(digest string) Subject {
	if !strings.Contains(digest, ":") && len(digest) == 64 {
		digest = "sha256:" + digest
	}
	return Subject{Digest: digest}
}

// Evidence is a signature, SBOM or attestation attached to a subject digest.
type Evidence struct {
	ID            string          `json:"id"`
	Kind          string          `json:"kind"`
	Format        string          `json:"format"`
	SubjectDigest string          `json:"subject_digest"`
	Subject       string          `json:"subject"`
	MediaType     string          `json:"media_type"`
	Digest        string          `json:"digest"`
	Size          int64           `json:"size"`
	CreatedAt     string          `json:"created_at"`
	CreatedBy     string          `json:"created_by"`
	Details       map[string]any  `json:"details"`
	Envelope      json.RawMessage `json:"envelope,omitempty"`
}

// RuleResult is one policy rule's outcome; Evidence lists the evidence ids it looked at.
type RuleResult struct {
	Rule     string   `json:"rule"`
	Passed   bool     `json:"passed"`
	Reason   string   `json:"reason"`
	Evidence []string `json:"evidence"`
}

// VerificationResult is the answer of Verify.
type VerificationResult struct {
	Verified      bool         `json:"verified"`
	Rules         []RuleResult `json:"rules"`
	SubjectDigest string       `json:"subject_digest"`
	Subject       string       `json:"subject"`
	// VSA is the signed verification summary attestation, when asked for and verified.
	VSA *Evidence `json:"vsa,omitempty"`
}

// FailedRules are the rules that did not pass.
func (v *VerificationResult) FailedRules() []RuleResult {
	var out []RuleResult
	for _, r := range v.Rules {
		if !r.Passed {
			out = append(out, r)
		}
	}
	return out
}

// APIToken is an API token; Secret (the "zat_…" bearer value) only in CreateToken's answer.
type APIToken struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Roles      []string          `json:"roles"`
	Owner      string            `json:"owner"`
	CreatedAt  string            `json:"created_at"`
	ExpiresAt  string            `json:"expires_at,omitempty"`
	LastUsedAt string            `json:"last_used_at,omitempty"`
	RevokedAt  string            `json:"revoked_at,omitempty"`
	Statements []json.RawMessage `json:"statements,omitempty"`
	Secret     string            `json:"token,omitempty"`
}

// AuditRecord is one audit record as the server writes it (the AuditRecord schema of
// docs/openapi.json): principal, action, resource, decision, time, request_id and more.
type AuditRecord map[string]any

// Policy is a named global access policy.
type Policy struct {
	Name      string         `json:"name"`
	Document  PolicyDocument `json:"document"`
	CreatedAt string         `json:"created_at"`
	UpdatedAt string         `json:"updated_at"`
}

// PolicyDocument is an IAM-style policy: an explicit Deny wins over roles and Allows.
type PolicyDocument struct {
	Version   string      `json:"Version,omitempty"`
	Statement []Statement `json:"Statement"`
}

// Statement is one IAM-style policy statement. Principal, Action and Resource are a string
// or a list of strings (Principal also {"AWS": [...]}); Condition as the store documents it.
type Statement struct {
	Sid       string         `json:"Sid,omitempty"`
	Effect    string         `json:"Effect"`
	Principal any            `json:"Principal"`
	Action    any            `json:"Action"`
	Resource  any            `json:"Resource"`
	Condition map[string]any `json:"Condition,omitempty"`
}

// SBOMMatch is one subject whose SBOM lists a searched component (the server's JSON).
type SBOMMatch map[string]any
