package zotartifacts

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// TokenRequest describes a new API token.
type TokenRequest struct {
	// Name says what the token is for.
	Name string `json:"name"`
	// Roles: admin, writer, reader, or a role defined in the server's auth.roles.
	Roles []string `json:"roles"`
	// ExpiresIn is the token's lifetime (60s .. 366 days; default 30 days).
	ExpiresIn time.Duration `json:"-"`
	// Statements narrow (Deny) or widen (Allow) what the roles allow; admins only.
	Statements []Statement `json:"statements,omitempty"`
}

// CreateToken creates an API token; its secret is in Secret of the answer, and nowhere else.
func (c *Client) CreateToken(ctx context.Context, t TokenRequest) (*APIToken, error) {
	in := map[string]any{"name": t.Name, "roles": t.Roles}
	if t.ExpiresIn > 0 {
		in["expires_in"] = t.ExpiresIn.Seconds()
	}
	if len(t.Statements) > 0 {
		in["statements"] = t.Statements
	}
	return callFor[APIToken](ctx, c, http.MethodPost, "/v1/tokens", in, false)
}

// ListTokens returns every API token (revoked ones too), without secrets.
func (c *Client) ListTokens(ctx context.Context) ([]APIToken, error) {
	var out struct {
		Tokens []APIToken `json:"tokens"`
	}
	if err := c.jsonCall(ctx, http.MethodGet, "/v1/tokens", nil, &out, true); err != nil {
		return nil, err
	}
	return out.Tokens, nil
}

// RevokeToken revokes an API token at once.
func (c *Client) RevokeToken(ctx context.Context, id string) error {
	return c.call(ctx, &request{method: http.MethodDelete, path: "/v1/tokens/" + seg(id), idempotent: true}, nil)
}

// Authorization is the store's answer to Authorize.
type Authorization struct {
	Principal string `json:"principal"` // who asked
	Action    string `json:"action"`    // the action asked about
	Resource  string `json:"resource"`  // the resource asked about
	Allowed   bool   `json:"allowed"`   // the decision
	Reason    string `json:"reason"`    // why (the role or statement that decided)
}

// Authorize asks whether the caller may do action (e.g. "s3:PutObject") on resource
// (e.g. "bucket/key").
func (c *Client) Authorize(ctx context.Context, action, resource string) (*Authorization, error) {
	var out Authorization
	in := map[string]any{"action": action, "resource": resource}
	if err := c.jsonCall(ctx, http.MethodPost, "/v1/authorize", in, &out, true); err != nil {
		return nil, err
	}
	return &out, nil
}

// WhoAmI returns the principal the store sees for the client's credentials ("anonymous"
// without any).
func (c *Client) WhoAmI(ctx context.Context) (string, error) {
	a, err := c.Authorize(ctx, "sts:GetCallerIdentity", "")
	if err != nil {
		return "", err
	}
	return a.Principal, nil
}

// AuditQuery filters the audit trail; empty fields do not filter.
type AuditQuery struct {
	// Principal (e.g. token:<id>) and Action (e.g. s3:PutObject) match exactly.
	Principal, Action string
	// Resource is a prefix.
	Resource string
	// Decision is "allow" or "deny".
	Decision string
	// Since (inclusive) and Until (exclusive).
	Since, Until time.Time
	// PageSize is how many records each request asks for (default 100, at most 1000).
	PageSize int
}

// AuditIterator walks audit records, newest first, following the server's cursor lazily:
// for it.Next() { rec := it.Record() }; then check it.Err().
type AuditIterator struct {
	pager[AuditRecord]
	ctx    context.Context
	c      *Client
	q      AuditQuery
	cursor string
}

// Audit queries the audit trail (admins only).
func (c *Client) Audit(ctx context.Context, q AuditQuery) *AuditIterator {
	if q.PageSize <= 0 {
		q.PageSize = 100
	}
	it := &AuditIterator{ctx: ctx, c: c, q: q}
	it.fetch = it.fetchPage
	return it
}

// Next advances to the next record; false at the end or on an error (see Err).
func (it *AuditIterator) Next() bool { return it.next() }

// Record is the record Next advanced to.
func (it *AuditIterator) Record() AuditRecord { return it.cur }

// Err is the error that stopped the iteration, nil at a normal end.
func (it *AuditIterator) Err() error { return it.err }

func (it *AuditIterator) fetchPage() ([]AuditRecord, bool, error) {
	v := url.Values{"limit": {strconv.Itoa(it.q.PageSize)}}
	for name, value := range map[string]string{
		"principal": it.q.Principal, "action": it.q.Action,
		"resource": it.q.Resource, "decision": it.q.Decision,
	} {
		if value != "" {
			v.Set(name, value)
		}
	}
	if !it.q.Since.IsZero() {
		v.Set("since", it.q.Since.UTC().Format(time.RFC3339))
	}
	if !it.q.Until.IsZero() {
		v.Set("until", it.q.Until.UTC().Format(time.RFC3339))
	}
	if it.cursor != "" {
		v.Set("cursor", it.cursor)
	}
	var out struct {
		Records []AuditRecord `json:"records"`
		Next    *string       `json:"next_cursor"`
	}
	if err := it.c.call(it.ctx, &request{method: http.MethodGet, path: "/v1/audit", query: v, idempotent: true}, &out); err != nil {
		return nil, false, err
	}
	last := out.Next == nil || *out.Next == ""
	if !last {
		it.cursor = *out.Next
	}
	return out.Records, last, nil
}

// PutPolicy creates or replaces the global policy name.
func (c *Client) PutPolicy(ctx context.Context, name string, doc PolicyDocument) (*Policy, error) {
	return callFor[Policy](ctx, c, http.MethodPut, "/v1/policies/"+seg(name), doc, true)
}

// GetPolicy returns the global policy name.
func (c *Client) GetPolicy(ctx context.Context, name string) (*Policy, error) {
	return callFor[Policy](ctx, c, http.MethodGet, "/v1/policies/"+seg(name), nil, true)
}

// ListPolicies returns the global policies.
func (c *Client) ListPolicies(ctx context.Context) ([]Policy, error) {
	var out struct {
		Policies []Policy `json:"policies"`
	}
	if err := c.jsonCall(ctx, http.MethodGet, "/v1/policies", nil, &out, true); err != nil {
		return nil, err
	}
	return out.Policies, nil
}

// DeletePolicy deletes the global policy name.
func (c *Client) DeletePolicy(ctx context.Context, name string) error {
	return c.call(ctx, &request{method: http.MethodDelete, path: "/v1/policies/" + seg(name), idempotent: true}, nil)
}

// Event is a CI event in CloudEvents binary mode (a Tekton TaskRun or PipelineRun event).
type Event struct {
	// ID is unique per event: a redelivery of the same ID is recorded once.
	ID string
	// Type, e.g. "dev.tekton.event.taskrun.successful.v1".
	Type string
	// Source is the CloudEvent source (e.g. the Tekton controller's URI).
	Source string
	// Subject is the CloudEvent subject (the run's name), optional.
	Subject string
	// Time is when it happened; now when zero.
	Time time.Time
	// EventSource is the store's event source id (?source=), optional with a bearer
	// credential allowed events:Publish.
	EventSource string
	// Data is the event's JSON body ({"taskRun": ...} or {"pipelineRun": ...}).
	Data any
}

// EventReceipt is the store's answer to PublishEvent.
type EventReceipt struct {
	EventID   string          `json:"event_id"`        // the store's id of the event
	Duplicate bool            `json:"duplicate"`       // true for a redelivery: nothing was recorded again
	Build     json.RawMessage `json:"build,omitempty"` // the build record the event updated (JSON), when there is one
}

// PublishEvent sends a CI event to POST /v1/events with the client's credentials (allowed
// events:Publish). It is retried only when the store refused it (429/503); a redelivery of
// the same ID is answered Duplicate.
func (c *Client) PublishEvent(ctx context.Context, ev Event) (*EventReceipt, error) {
	data, err := json.Marshal(ev.Data)
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	h.Set("Ce-Specversion", "1.0")
	h.Set("Ce-Id", ev.ID)
	h.Set("Ce-Type", ev.Type)
	source := ev.Source
	if source == "" {
		source = "zot-artifacts-go"
	}
	h.Set("Ce-Source", source)
	if ev.Subject != "" {
		h.Set("Ce-Subject", ev.Subject)
	}
	when := ev.Time
	if when.IsZero() {
		when = time.Now()
	}
	h.Set("Ce-Time", when.UTC().Format(time.RFC3339Nano))
	r := &request{method: http.MethodPost, path: "/v1/events", header: h,
		body: &body{data: data, length: int64(len(data)), ctype: "application/json"}}
	if ev.EventSource != "" {
		r.query = url.Values{"source": {ev.EventSource}}
	}
	var out EventReceipt
	if err := c.call(ctx, r, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// PutBucketPolicy sets bucket's policy (the document S3's PutBucketPolicy sets; its
// resources must be inside the bucket).
func (c *Client) PutBucketPolicy(ctx context.Context, bucket string, doc PolicyDocument) (*PolicyDocument, error) {
	return callFor[PolicyDocument](ctx, c, http.MethodPut, "/v1/buckets/"+seg(bucket)+"/policy", doc, true)
}

// GetBucketPolicy returns bucket's policy (404 NoSuchBucketPolicy when it has none).
func (c *Client) GetBucketPolicy(ctx context.Context, bucket string) (*PolicyDocument, error) {
	return callFor[PolicyDocument](ctx, c, http.MethodGet, "/v1/buckets/"+seg(bucket)+"/policy", nil, true)
}

// DeleteBucketPolicy removes bucket's policy.
func (c *Client) DeleteBucketPolicy(ctx context.Context, bucket string) error {
	return c.call(ctx, &request{method: http.MethodDelete, path: "/v1/buckets/" + seg(bucket) + "/policy", idempotent: true}, nil)
}
