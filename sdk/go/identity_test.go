package zotartifacts_test

import (
	"strings"
	"testing"
	"time"

	zotartifacts "github.com/zot-artifact-store/zot-artifact-store/sdk/go"
)

func TestTokensAuditAndPolicies(t *testing.T) {
	ctx, c := ctxT(t), admin(t)
	bucket := newBucket(t, c)
	started := time.Now().Add(-2 * time.Second)

	writer, err := c.CreateToken(ctx, zotartifacts.TokenRequest{Name: "go-writer", Roles: []string{"writer"}, ExpiresIn: time.Hour})
	must(t, err)
	if !strings.HasPrefix(writer.Secret, "zat_") || writer.ExpiresAt == "" || writer.Roles[0] != "writer" {
		t.Fatalf("token: %+v", writer)
	}
	tokens, err := c.ListTokens(ctx)
	must(t, err)
	var listed *zotartifacts.APIToken
	for i := range tokens {
		if tokens[i].ID == writer.ID {
			listed = &tokens[i]
		}
	}
	if listed == nil || listed.Secret != "" {
		t.Fatalf("listed: %+v", listed)
	}
	w, err := zotartifacts.New(storeURL, zotartifacts.WithToken(writer.Secret))
	must(t, err)
	who, err := w.WhoAmI(ctx)
	must(t, err)
	if who != "token:"+writer.ID {
		t.Fatalf("whoami %q", who)
	}
	allowed, err := w.Authorize(ctx, "s3:PutObject", bucket+"/x")
	must(t, err)
	if !allowed.Allowed {
		t.Fatalf("authorize: %+v", allowed)
	}

	// A global policy denies this token writes under one prefix.
	name := "go-deny-" + randomHex(4)
	p, err := c.PutPolicy(ctx, name, zotartifacts.PolicyDocument{Statement: []zotartifacts.Statement{{
		Effect: "Deny", Principal: "token:" + writer.ID, Action: "s3:PutObject", Resource: bucket + "/locked/*",
	}}})
	must(t, err)
	if p.Name != name || len(p.Document.Statement) != 1 {
		t.Fatalf("policy: %+v", p)
	}
	got, err := c.GetPolicy(ctx, name)
	must(t, err)
	policies, err := c.ListPolicies(ctx)
	must(t, err)
	inList := false
	for _, q := range policies {
		inList = inList || q.Name == name
	}
	if got.Document.Statement[0].Effect != "Deny" || !inList {
		t.Fatalf("get %+v, listed %v", got, inList)
	}
	_, err = w.PutObject(ctx, bucket, "locked/a.txt", strings.NewReader("x"), nil)
	if !zotartifacts.IsAccessDenied(err) {
		t.Fatalf("denied by policy: %v", err)
	}
	_, err = w.PutObject(ctx, bucket, "open/a.txt", strings.NewReader("x"), nil)
	must(t, err)
	must(t, c.DeletePolicy(ctx, name))
	_, err = c.GetPolicy(ctx, name)
	if !zotartifacts.IsNotFound(err) {
		t.Fatalf("deleted policy: %v", err)
	}
	_, err = w.PutObject(ctx, bucket, "locked/a.txt", strings.NewReader("x"), nil)
	must(t, err)

	// The audit trail has the denial, newest first, walked in pages of 2.
	it := c.Audit(ctx, zotartifacts.AuditQuery{Principal: "token:" + writer.ID, Since: started, PageSize: 2})
	var records []zotartifacts.AuditRecord
	for it.Next() {
		records = append(records, it.Record())
	}
	must(t, it.Err())
	denied := 0
	for _, r := range records {
		if r["decision"] == "deny" && r["action"] == "s3:PutObject" {
			denied++
		}
	}
	// Three writes (more than a page): the denial, then two allowed, newest first.
	if len(records) != 3 || denied != 1 || records[2]["decision"] != "deny" ||
		records[0]["time"].(string) < records[2]["time"].(string) {
		t.Fatalf("%d audit records, %d denials: %v", len(records), denied, records)
	}
	deny := c.Audit(ctx, zotartifacts.AuditQuery{Principal: "token:" + writer.ID, Decision: "deny"})
	n := 0
	for deny.Next() {
		n++
	}
	must(t, deny.Err())
	if n != 1 {
		t.Fatalf("%d denials", n)
	}

	must(t, c.RevokeToken(ctx, writer.ID))
	_, err = w.WhoAmI(ctx)
	if !zotartifacts.IsUnauthenticated(err) {
		t.Fatalf("a revoked token: %v", err)
	}
}

func TestPublishEvent(t *testing.T) {
	ctx, c := ctxT(t), admin(t)
	run := "go-run-" + randomHex(4)
	ev := zotartifacts.Event{
		ID:      "go-" + randomHex(8),
		Type:    "dev.tekton.event.taskrun.successful.v1",
		Source:  "/apis/tekton.dev/v1/namespaces/ci/taskruns/" + run,
		Subject: run,
		Data: map[string]any{"taskRun": map[string]any{
			"kind": "TaskRun", "apiVersion": "tekton.dev/v1",
			"metadata": map[string]any{"name": run, "namespace": "ci", "uid": randomHex(16)},
			"status": map[string]any{
				"conditions":     []any{map[string]any{"type": "Succeeded", "status": "True", "reason": "Succeeded"}},
				"completionTime": "2026-11-28T10:05:00Z",
			},
		}},
	}
	receipt, err := c.PublishEvent(ctx, ev)
	must(t, err)
	if receipt.Duplicate || receipt.EventID == "" || !strings.Contains(string(receipt.Build), run) {
		t.Fatalf("receipt: %+v %s", receipt, receipt.Build)
	}
	again, err := c.PublishEvent(ctx, ev)
	must(t, err)
	if !again.Duplicate {
		t.Fatalf("a redelivery was recorded again: %+v", again)
	}
	ev.Type = "dev.tekton.event.customrun.started.v1"
	ev.ID = "go-" + randomHex(8)
	_, err = c.PublishEvent(ctx, ev)
	wantStatus(t, err, 400, "UnsupportedEvent")
}
