package zotartifacts_test

import (
	"os"
	"strings"
	"testing"
	"time"

	zotartifacts "github.com/zot-artifact-store/zot-artifact-store/sdk/go"
)

// identityEnv reads the OpenID provider the store trusts (tests/integration/test_sdk_go.py starts one).
func identityEnv(t *testing.T, names ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	var missing []string
	for _, n := range names {
		if out[n] = os.Getenv(n); out[n] == "" {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("set %s: an OpenID provider the store at ZAS_TEST_URL trusts (tests/integration/test_sdk_go.py starts one)", strings.Join(missing, ", "))
	}
	return out
}

func TestOIDCClientCredentials(t *testing.T) {
	env := identityEnv(t, "ZAS_TEST_OIDC_ISSUER", "ZAS_TEST_OIDC_CLIENT", "ZAS_TEST_OIDC_SECRET")
	ctx := ctxT(t)
	// The provider's tokens live 3 s: with a 1.5 s margin the second use after 1.7 s fetches
	// a new one.
	tokens, err := zotartifacts.OIDCClientCredentials{
		Issuer:        env["ZAS_TEST_OIDC_ISSUER"],
		ClientID:      env["ZAS_TEST_OIDC_CLIENT"],
		ClientSecret:  env["ZAS_TEST_OIDC_SECRET"],
		RefreshMargin: 1500 * time.Millisecond,
	}.TokenSource()
	must(t, err)
	c, err := zotartifacts.New(storeURL, zotartifacts.WithTokenSource(tokens))
	must(t, err)
	name := "go-oidc-" + randomHex(6)
	b, err := c.CreateBucket(ctx, name, nil)
	must(t, err)
	if b.Owner != "oidc:"+env["ZAS_TEST_OIDC_ISSUER"]+"#"+env["ZAS_TEST_OIDC_CLIENT"] {
		t.Fatalf("owner %q", b.Owner)
	}
	_, err = c.PutObject(ctx, name, "a.txt", strings.NewReader("one"), nil)
	must(t, err)
	if tokens.Fetches() != 1 {
		t.Fatalf("%d tokens fetched, want 1 (cached)", tokens.Fetches())
	}
	time.Sleep(1700 * time.Millisecond)
	_, err = c.HeadObject(ctx, name, "a.txt")
	must(t, err)
	if tokens.Fetches() != 2 {
		t.Fatalf("%d tokens fetched, want 2 (refreshed before expiry)", tokens.Fetches())
	}
	// The writer role maps from the realm role: no admin calls.
	_, err = c.ListTokens(ctx)
	if !zotartifacts.IsAccessDenied(err) {
		t.Fatalf("a writer listed tokens: %v", err)
	}

	// A wrong secret: the provider's refusal, not the store's.
	bad, err := zotartifacts.OIDCClientCredentials{
		Issuer: env["ZAS_TEST_OIDC_ISSUER"], ClientID: env["ZAS_TEST_OIDC_CLIENT"], ClientSecret: "wrong",
	}.TokenSource()
	must(t, err)
	wrong, err := zotartifacts.New(storeURL, zotartifacts.WithTokenSource(bad))
	must(t, err)
	_, err = wrong.ListBuckets(ctx)
	var e *zotartifacts.Error
	if !asError(err, &e) || (e.Status != 400 && e.Status != 401) || bad.Fetches() != 0 {
		t.Fatalf("a wrong client secret: %v", err)
	}
	if _, err := (zotartifacts.OIDCClientCredentials{ClientID: "x"}).TokenSource(); err == nil {
		t.Fatal("no issuer and no token URL was accepted")
	}
}

func TestGitHubActionsExchange(t *testing.T) {
	env := identityEnv(t, "ZAS_TEST_ACTIONS_TOKEN_URL", "ZAS_TEST_ACTIONS_TOKEN", "ZAS_TEST_OIDC_AUDIENCE")
	ctx := ctxT(t)
	// As inside a job: the runner's variables.
	t.Setenv("ACTIONS_ID_TOKEN_REQUEST_URL", env["ZAS_TEST_ACTIONS_TOKEN_URL"])
	t.Setenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", env["ZAS_TEST_ACTIONS_TOKEN"])
	tokens, err := zotartifacts.GitHubActions{StoreURL: storeURL, Audience: env["ZAS_TEST_OIDC_AUDIENCE"]}.TokenSource()
	must(t, err)
	c, err := zotartifacts.New(storeURL, zotartifacts.WithTokenSource(tokens))
	must(t, err)
	name := "go-gha-" + randomHex(6)
	b, err := c.CreateBucket(ctx, name, nil)
	must(t, err)
	if b.Owner != "workload:acme-releases:gh-release" {
		t.Fatalf("owner %q", b.Owner)
	}
	info, err := c.PutObject(ctx, name, "release.tar", strings.NewReader("artifact"), nil)
	must(t, err)
	if info.Size != 8 || tokens.Fetches() != 1 {
		t.Fatalf("%+v after %d exchanges", info, tokens.Fetches())
	}
	// Provenance the store vouches for, built from the job's verified claims.
	prov, err := c.Provenance(ctx, zotartifacts.ObjectSubject(name, "release.tar"))
	must(t, err)
	if len(prov) != 1 || prov[0].Kind != "attestation" || prov[0].Details["predicate_type"] != "https://slsa.dev/provenance/v1" ||
		prov[0].SubjectDigest != info.Digest() {
		t.Fatalf("provenance: %+v", prov)
	}
	// Only for what this session uploaded.
	_, err = admin(t).PutObject(ctx, name, "by-admin.txt", strings.NewReader("not the job's"), nil)
	must(t, err)
	_, err = c.Provenance(ctx, zotartifacts.ObjectSubject(name, "by-admin.txt"))
	if !zotartifacts.IsAccessDenied(err) {
		t.Fatalf("provenance for another's upload: %v", err)
	}

	// A token for another audience: no trust rule matches, the store refuses the exchange.
	other, err := zotartifacts.GitHubActions{StoreURL: storeURL, Audience: "someone-else"}.TokenSource()
	must(t, err)
	oc, err := zotartifacts.New(storeURL, zotartifacts.WithTokenSource(other))
	must(t, err)
	_, err = oc.ListBuckets(ctx)
	if !zotartifacts.IsUnauthenticated(err) {
		t.Fatalf("another audience: %v", err)
	}
	// The wrong runner secret: the runner's refusal.
	stolen, err := zotartifacts.GitHubActions{StoreURL: storeURL, RequestToken: "stolen"}.TokenSource()
	must(t, err)
	sc, err := zotartifacts.New(storeURL, zotartifacts.WithTokenSource(stolen))
	must(t, err)
	_, err = sc.ListBuckets(ctx)
	if !zotartifacts.IsUnauthenticated(err) {
		t.Fatalf("a stolen runner token: %v", err)
	}
}
