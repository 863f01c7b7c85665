package zotartifacts

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
)

// TokenSource supplies the bearer token sent with each request. Implementations must be safe
// for concurrent use. The SDK's own sources cache their token and fetch a new one shortly
// before it expires, or when the store answers 401 (see Invalidator).
type TokenSource interface {
	// Token returns the bearer token for the next request.
	Token(ctx context.Context) (string, error)
}

// Invalidator is implemented by a TokenSource that caches: after a 401 the client calls
// Invalidate and, when it reports true, sends the request once more with a new token.
type Invalidator interface {
	// Invalidate forgets the cached token; true when fetching a new one may help.
	Invalidate() bool
}

// StaticToken is a TokenSource that always answers the same token (an API token "zat_…" or
// any bearer token).
type StaticToken string

// Token implements TokenSource.
func (t StaticToken) Token(context.Context) (string, error) { return string(t), nil }

// cachedToken is a token fetched by fetch and reused until margin before it expires.
type cachedToken struct {
	margin time.Duration
	fetch  func(ctx context.Context) (string, time.Duration, error)

	mu      sync.Mutex
	token   string
	expires time.Time
	fetches int
}

func (c *cachedToken) Token(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != "" && time.Now().Before(c.expires.Add(-c.margin)) {
		return c.token, nil
	}
	token, lifetime, err := c.fetch(ctx)
	if err != nil {
		return "", err
	}
	c.token, c.expires = token, time.Now().Add(lifetime)
	c.fetches++
	return token, nil
}

func (c *cachedToken) Invalidate() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	had := c.token != ""
	c.token = ""
	return had
}

// Fetches reports how many tokens were fetched so far (observability, tests).
func (c *cachedToken) Fetches() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fetches
}

// OIDCClientCredentials configures an OAuth 2 client-credentials TokenSource (RFC 6749 §4.4)
// against an OpenID provider such as a Keycloak realm.
type OIDCClientCredentials struct {
	// ClientID and ClientSecret are the client's credentials (sent as HTTP Basic).
	ClientID, ClientSecret string
	// Issuer is the provider's issuer URL (Keycloak: https://keycloak/realms/<realm>); the
	// token endpoint is read from its discovery document. Give Issuer or TokenURL.
	Issuer string
	// TokenURL is the token endpoint, when known (no discovery).
	TokenURL string
	// Scope and Audience are sent when not empty.
	Scope, Audience string
	// RefreshMargin: a token is fetched again this long before it expires. Zero means 30s.
	RefreshMargin time.Duration
	// HTTPClient talks to the provider. Nil means http.DefaultClient.
	HTTPClient *http.Client
}

// CachingTokenSource is a TokenSource that caches its token: it also implements Invalidator
// and counts the tokens it fetched.
type CachingTokenSource interface {
	TokenSource
	Invalidator
	// Fetches reports how many tokens were fetched so far.
	Fetches() int
}

// TokenSource returns a caching TokenSource fetching access tokens with these credentials.
func (o OIDCClientCredentials) TokenSource() (CachingTokenSource, error) {
	if o.Issuer == "" && o.TokenURL == "" {
		return nil, fmt.Errorf("zotartifacts: OIDCClientCredentials needs Issuer or TokenURL")
	}
	hc, margin := orDefaults(o.HTTPClient, o.RefreshMargin, 30*time.Second)
	var mu sync.Mutex
	tokenURL := o.TokenURL
	fetch := func(ctx context.Context) (string, time.Duration, error) {
		mu.Lock()
		endpoint := tokenURL
		mu.Unlock()
		if endpoint == "" {
			var doc struct {
				TokenEndpoint string `json:"token_endpoint"`
			}
			wellKnown := strings.TrimRight(o.Issuer, "/") + "/.well-known/openid-configuration"
			if err := getJSON(ctx, hc, wellKnown, nil, &doc); err != nil {
				return "", 0, err
			}
			if doc.TokenEndpoint == "" {
				return "", 0, &Error{Code: "InvalidIssuer", Message: "the OIDC discovery document names no token_endpoint"}
			}
			endpoint = doc.TokenEndpoint
			mu.Lock()
			tokenURL = endpoint
			mu.Unlock()
		}
		form := url.Values{"grant_type": {"client_credentials"}}
		if o.Scope != "" {
			form.Set("scope", o.Scope)
		}
		if o.Audience != "" {
			form.Set("audience", o.Audience)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
		if err != nil {
			return "", 0, err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(url.QueryEscape(o.ClientID), url.QueryEscape(o.ClientSecret))
		var answer struct {
			AccessToken string  `json:"access_token"`
			ExpiresIn   float64 `json:"expires_in"`
		}
		if err := doJSON(hc, req, &answer); err != nil {
			return "", 0, err
		}
		if answer.AccessToken == "" {
			return "", 0, &Error{Code: "NoToken", Message: "the token endpoint sent no access_token"}
		}
		return answer.AccessToken, lifetime(answer.ExpiresIn), nil
	}
	return &cachedToken{margin: margin, fetch: fetch}, nil
}

// GitHubActions configures CI workload identity inside a GitHub Actions job (with
// `permissions: id-token: write`): the runner's OIDC token is fetched from
// ACTIONS_ID_TOKEN_REQUEST_URL (authorized by ACTIONS_ID_TOKEN_REQUEST_TOKEN) and exchanged at
// the store's POST /v1/auth/exchange for a short-lived store token. The store needs a trust
// rule matching the token's claims; no secret is stored in CI.
type GitHubActions struct {
	// StoreURL is the store's base URL (where /v1/auth/exchange is).
	StoreURL string
	// Audience is asked of the runner's token endpoint when not empty.
	Audience string
	// RequestURL and RequestToken default to the ACTIONS_ID_TOKEN_REQUEST_URL and
	// ACTIONS_ID_TOKEN_REQUEST_TOKEN environment variables.
	RequestURL, RequestToken string
	// RefreshMargin: a token is exchanged again this long before it expires. Zero means 60s.
	RefreshMargin time.Duration
	// HTTPClient talks to the runner and the store. Nil means http.DefaultClient.
	HTTPClient *http.Client
}

// TokenSource returns a caching TokenSource of exchanged store tokens; an error with Code
// "NoWorkloadIdentity" when the runner's variables are not set.
func (g GitHubActions) TokenSource() (CachingTokenSource, error) {
	if g.RequestURL == "" {
		g.RequestURL = os.Getenv("ACTIONS_ID_TOKEN_REQUEST_URL")
	}
	if g.RequestToken == "" {
		g.RequestToken = os.Getenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
	}
	if g.RequestURL == "" || g.RequestToken == "" {
		return nil, &Error{Code: "NoWorkloadIdentity", Message: "ACTIONS_ID_TOKEN_REQUEST_URL and " +
			"ACTIONS_ID_TOKEN_REQUEST_TOKEN are not set: run inside GitHub Actions with " +
			"`permissions: id-token: write`"}
	}
	if g.StoreURL == "" {
		return nil, fmt.Errorf("zotartifacts: GitHubActions needs StoreURL")
	}
	hc, margin := orDefaults(g.HTTPClient, g.RefreshMargin, 60*time.Second)
	fetch := func(ctx context.Context) (string, time.Duration, error) {
		u := g.RequestURL
		if g.Audience != "" {
			sep := "?"
			if strings.Contains(u, "?") {
				sep = "&"
			}
			u += sep + "audience=" + url.QueryEscape(g.Audience)
		}
		var runner struct {
			Value string `json:"value"`
		}
		if err := getJSON(ctx, hc, u, http.Header{"Authorization": {"Bearer " + g.RequestToken}}, &runner); err != nil {
			return "", 0, err
		}
		if runner.Value == "" {
			return "", 0, &Error{Code: "NoToken", Message: "the runner sent no OIDC token"}
		}
		body, _ := json.Marshal(map[string]string{"token": runner.Value})
		req, err := http.NewRequestWithContext(ctx, http.MethodPost,
			strings.TrimRight(g.StoreURL, "/")+"/v1/auth/exchange", bytes.NewReader(body))
		if err != nil {
			return "", 0, err
		}
		req.Header.Set("Content-Type", "application/json")
		var answer struct {
			Token     string  `json:"token"`
			ExpiresIn float64 `json:"expires_in"`
		}
		if err := doJSON(hc, req, &answer); err != nil {
			return "", 0, err
		}
		return answer.Token, lifetime(answer.ExpiresIn), nil
	}
	return &cachedToken{margin: margin, fetch: fetch}, nil
}

// orDefaults: http.DefaultClient for a nil client, def for a zero margin.
func orDefaults(hc *http.Client, margin, def time.Duration) (*http.Client, time.Duration) {
	if hc == nil {
		hc = http.DefaultClient
	}
	if margin == 0 {
		margin = def
	}
	return hc, margin
}

func lifetime(seconds float64) time.Duration {
	if seconds <= 0 {
		seconds = 300
	}
	return time.Duration(seconds * float64(time.Second))
}

func getJSON(ctx context.Context, hc *http.Client, u string, h http.Header, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	for k, v := range h {
		req.Header[k] = v
	}
	return doJSON(hc, req, out)
}

// doJSON sends a token-flow request (not retried: token endpoints are not idempotent) and
// decodes its JSON answer.
func doJSON(hc *http.Client, req *http.Request, out any) error {
	resp, err := hc.Do(req)
	if err != nil {
		return transportError(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		head, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return errorFromResponse(resp.StatusCode, resp.Header, head)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(out); err != nil {
		return &Error{Code: "InvalidTokenResponse", Message: req.URL.Redacted() + " answered no JSON object", Err: err}
	}
	return nil
}

func basicToken(user, password string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
}
