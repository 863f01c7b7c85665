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
	Name       string            `json:"name"`             // the bucket's name
	CreatedAt  string            `json:"created_at"`       // RFC 3339
	PublicRead bool              `json:"public_read"`      // anyone may read its objects
	Owner      string            `json:"owner,omitempty"`  // the principal that created it
	Labels     map[string]string `json:"labels,omitempty"` // the bucket's labels
}

// ObjectInfo is an object's metadata. SHA256 is lowercase hex; Digest() is "sha256:<hex>".
type ObjectInfo struct {
	Bucket      string            `json:"bucket"`               // the object's bucket
	Key         string            `json:"key"`                  // the object's key
	Size        int64             `json:"size"`                 // the whole object's size in bytes
	SHA256      string            `json:"sha256"`               // lowercase hex digest of the content
	ETag        string            `json:"etag"`                 // the entity tag, unquoted
	ContentType string            `json:"content_type"`         // the stored content type
	CreatedAt   string            `json:"created_at,omitempty"` // RFC 3339: first written
	UpdatedAt   string            `json:"updated_at,omitempty"` // RFC 3339: last written
	Labels      map[string]string `json:"labels,omitempty"`     // the object's labels
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
	PartNumber int    `json:"part_number"` // 1-based
	Size       int64  `json:"size"`        // bytes
	ETag       string `json:"etag"`        // the part's entity tag, for CompleteUpload
	SHA256     string `json:"sha256"`      // hex digest of the part
}

// Upload is a multipart upload in progress (Parts only when fetched with GetUpload).
type Upload struct {
	UploadID    string            `json:"upload_id"`    // the upload's id
	Bucket      string            `json:"bucket"`       // the object's bucket
	Key         string            `json:"key"`          // the object's key
	CreatedAt   string            `json:"created_at"`   // RFC 3339
	ContentType string            `json:"content_type"` // the content type the object will have
	Labels      map[string]string `json:"labels"`       // the labels the object will have
	Parts       []UploadPart      `json:"parts"`        // the parts stored so far (GetUpload)
}

// Subject is what supply-chain evidence is about: an object (its current sha256), an OCI
// image (repository and manifest digest) or a bare digest. Build one with ObjectSubject,
// ImageSubject or DigestSubject.
type Subject struct {
	Bucket     string `json:"bucket,omitempty"`     // with Key: an object
	Key        string `json:"key,omitempty"`        // with Bucket: an object
	Repository string `json:"repository,omitempty"` // with Digest: an OCI manifest
	Digest     string `json:"digest,omitempty"`     // sha256:<hex>; alone, a bare digest
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
	ID            string          `json:"id"`                 // the evidence id (GetEvidence)
	Kind          string          `json:"kind"`               // signature, sbom or attestation
	Format        string          `json:"format"`             // e.g. sigstore, dsse, raw, cyclonedx, spdx
	SubjectDigest string          `json:"subject_digest"`     // the digest it is about, sha256:<hex>
	Subject       string          `json:"subject"`            // bucket/key or repository@digest it was attached to
	MediaType     string          `json:"media_type"`         // the document's content type
	Digest        string          `json:"digest"`             // the document's own digest
	Size          int64           `json:"size"`               // the document's size in bytes
	CreatedAt     string          `json:"created_at"`         // RFC 3339
	CreatedBy     string          `json:"created_by"`         // the principal that attached it
	Details       map[string]any  `json:"details"`            // what the store read from it (identity, issuer, predicate type ...)
	Envelope      json.RawMessage `json:"envelope,omitempty"` // the signed DSSE envelope when the store signed it (Sign)
}

// RuleResult is one policy rule's outcome; Evidence lists the evidence ids it looked at.
type RuleResult struct {
	Rule     string   `json:"rule"`     // what the rule asked for, in words
	Passed   bool     `json:"passed"`   // whether it held
	Reason   string   `json:"reason"`   // why it passed or failed
	Evidence []string `json:"evidence"` // the evidence ids it looked at
}

// VerificationResult is the answer of Verify.
type VerificationResult struct {
	Verified      bool         `json:"verified"`       // every rule (or the threshold) passed
	Rules         []RuleResult `json:"rules"`          // each rule's outcome
	SubjectDigest string       `json:"subject_digest"` // the digest that was checked
	Subject       string       `json:"subject"`        // what was checked, in words
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
	ID         string            `json:"id"`                     // the token's id (its principal is token:<ID>)
	Name       string            `json:"name"`                   // what it is for
	Roles      []string          `json:"roles"`                  // the roles it has
	Owner      string            `json:"owner"`                  // who created it
	CreatedAt  string            `json:"created_at"`             // RFC 3339
	ExpiresAt  string            `json:"expires_at,omitempty"`   // RFC 3339; empty: never
	LastUsedAt string            `json:"last_used_at,omitempty"` // RFC 3339; empty: never used
	RevokedAt  string            `json:"revoked_at,omitempty"`   // RFC 3339; empty: not revoked
	Statements []json.RawMessage `json:"statements,omitempty"`   // its own IAM-style statements
	Secret     string            `json:"token,omitempty"`        // the bearer value zat_…, only in CreateToken's answer
}

// AuditRecord is one audit record as the server writes it (the AuditRecord schema of
// docs/openapi.json): principal, action, resource, decision, time, request_id and more.
type AuditRecord map[string]any

// Policy is a named global access policy.
type Policy struct {
	Name      string         `json:"name"`       // the policy's name
	Document  PolicyDocument `json:"document"`   // its statements
	CreatedAt string         `json:"created_at"` // RFC 3339
	UpdatedAt string         `json:"updated_at"` // RFC 3339
}

// PolicyDocument is an IAM-style policy: an explicit Deny wins over roles and Allows.
type PolicyDocument struct {
	Version   string      `json:"Version,omitempty"` // optional, e.g. 2012-10-17
	Statement []Statement `json:"Statement"`         // one to 100 statements
}

// Statement is one IAM-style policy statement. Principal, Action and Resource are a string
// or a list of strings (Principal also {"AWS": [...]}); Condition as the store documents it.
type Statement struct {
	Sid       string         `json:"Sid,omitempty"`       // an optional statement id
	Effect    string         `json:"Effect"`              // Allow or Deny
	Principal any            `json:"Principal"`           // *, a principal id, role:<r>, group:<g>, a list, or {"AWS": [...]}
	Action    any            `json:"Action"`              // e.g. s3:GetObject, oci:push, supplychain:sign; a string or a list
	Resource  any            `json:"Resource"`            // bucket, bucket/key-glob, repo:name-glob, admin:…, *; a string or a list
	Condition map[string]any `json:"Condition,omitempty"` // IpAddress / NotIpAddress, DateGreaterThan / DateLessThan
}

// SBOMMatch is one subject whose SBOM lists a searched component (the server's JSON).
type SBOMMatch map[string]any
