package zotartifacts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Version is the SDK's version, sent in the User-Agent.
const Version = "0.1.0"

// Client talks to one store's /v1 API. It is safe for concurrent use.
type Client struct {
	base      *url.URL
	http      *http.Client
	auth      func(ctx context.Context) (string, error) // the Authorization header value
	tokens    TokenSource
	retry     RetryPolicy
	userAgent string
}

// Option configures a Client in New.
type Option func(*Client)

// WithToken authenticates with a bearer token: an API token ("zat_…") or any token the store
// accepts (an OIDC access token).
func WithToken(token string) Option { return WithTokenSource(StaticToken(token)) }

// WithBasic authenticates with HTTP Basic (the root user, or any user name and an API token
// as the password).
func WithBasic(username, password string) Option {
	return func(c *Client) {
		value := "Basic " + basicToken(username, password)
		c.tokens = nil
		c.auth = func(context.Context) (string, error) { return value, nil }
	}
}

// WithTokenSource authenticates with bearer tokens from ts (e.g. OIDCClientCredentials or
// GitHubActions). When ts implements Invalidator, a 401 makes the client fetch a new token
// and send the request once more (when its body can be read again).
func WithTokenSource(ts TokenSource) Option {
	return func(c *Client) {
		c.tokens = ts
		c.auth = func(ctx context.Context) (string, error) {
			t, err := ts.Token(ctx)
			if err != nil {
				return "", err
			}
			return "Bearer " + t, nil
		}
	}
}

// WithHTTPClient sends requests with hc (timeouts, proxies, TLS). Redirects are not followed
// by the SDK's requests either way.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.http = hc } }

// WithRetry replaces the default RetryPolicy (5 attempts, 200ms..10s full-jitter backoff).
func WithRetry(p RetryPolicy) Option { return func(c *Client) { c.retry = p } }

// WithUserAgent sets the User-Agent header (default "zot-artifacts-go/<Version>").
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// New returns a client of the store at baseURL (e.g. "http://127.0.0.1:8080"). Without an
// authentication option requests are anonymous.
func New(baseURL string, opts ...Option) (*Client, error) {
	if baseURL == "" {
		return nil, fmt.Errorf("zotartifacts: a base URL is required (e.g. http://127.0.0.1:8080)")
	}
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("zotartifacts: %q is not an http(s) URL", baseURL)
	}
	c := &Client{base: u, userAgent: "zot-artifacts-go/" + Version}
	for _, o := range opts {
		o(c)
	}
	if c.http == nil {
		c.http = &http.Client{Transport: defaultTransport()}
	}
	c.retry = c.retry.withDefaults()
	return c, nil
}

func defaultTransport() http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 16
	// Go 1.19's transport copies a request body through its write buffer (4 KiB by default:
	// a syscall per 4 KiB); large buffers keep big transfers at a few syscalls per MiB.
	t.WriteBufferSize = 256 << 10
	t.ReadBufferSize = 256 << 10
	t.ResponseHeaderTimeout = 5 * time.Minute
	return t
}

// BaseURL returns the store's base URL the client was made with.
func (c *Client) BaseURL() string { return c.base.String() }

// body is a request body: either bytes (JSON, small documents), a reopenable source (a file
// section) or a one-shot reader that is never sent twice.
type body struct {
	data    []byte
	open    func() (io.Reader, error) // a fresh reader of the same bytes for each attempt
	once    io.Reader
	length  int64 // -1: unknown (chunked)
	ctype   string
	started func() // before each attempt sends it
}

func (b *body) replayable() bool { return b == nil || b.once == nil }

func jsonBody(v any) (*body, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return &body{data: data, length: int64(len(data)), ctype: "application/json"}, nil
}

type request struct {
	method     string
	path       string // below the base URL, already escaped
	href       string // instead of path: a whole URL the store handed out (a presigned href)
	anonymous  bool   // sent without the client's credentials (a presigned href)
	query      url.Values
	header     http.Header
	body       *body
	idempotent bool
	accept     []int // non-2xx statuses answered as a response, not an error
}

func (c *Client) url(path string, query url.Values) string {
	u := c.base.String() + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	return u
}

// do sends r with retries (as RetryPolicy says) and returns a response the caller must
// close: 2xx or a status in r.accept; anything else is an *Error.
func (c *Client) do(ctx context.Context, r *request) (*http.Response, error) {
	attempt, renewed := 0, false
	for {
		attempt++
		resp, sent, err := c.once(ctx, r)
		if err == nil {
			return resp, nil
		}
		var e *Error
		if !errors.As(err, &e) {
			return nil, err
		}
		if e.Status == http.StatusUnauthorized && !renewed && !r.anonymous && r.body.replayable() {
			renewed = true
			if inv, ok := c.tokens.(Invalidator); ok && inv.Invalidate() {
				if err := sent.released(ctx); err != nil {
					return nil, err
				}
				attempt--
				continue
			}
		}
		if !r.body.replayable() {
			return nil, err
		}
		wait, ok := c.retry.delay(attempt, e, r.idempotent)
		if !ok {
			return nil, err
		}
		// net/http may still be reading the last attempt's body after it answered: the next
		// attempt re-reads the same source only once that is over.
		if err := sent.released(ctx); err != nil {
			return nil, err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, err
		case <-t.C:
		}
	}
}

func (c *Client) once(ctx context.Context, r *request) (*http.Response, *sentBody, error) {
	var reader io.Reader
	var sent *sentBody
	length := int64(0)
	if r.body != nil {
		length = r.body.length
		switch {
		case r.body.data != nil:
			reader = bytes.NewReader(r.body.data)
		case r.body.open != nil:
			rd, err := r.body.open()
			if err != nil {
				return nil, nil, err
			}
			reader = rd
		default:
			reader = r.body.once
		}
		if r.body.started != nil {
			r.body.started()
		}
		sent = &sentBody{r: reader, done: make(chan struct{})}
	}
	resp, err := c.roundTrip(ctx, r, sent, length)
	return resp, sent, err
}

func (c *Client) roundTrip(ctx context.Context, r *request, sent *sentBody, length int64) (*http.Response, error) {
	handed := false // to net/http, which closes the body whatever happens
	defer func() {
		if !handed {
			sent.Close()
		}
	}()
	u := c.url(r.path, r.query)
	if r.href != "" {
		u = r.href
	}
	var reqBody io.Reader
	if sent != nil {
		reqBody = sent
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u, reqBody)
	if err != nil {
		return nil, err
	}
	if sent != nil {
		req.ContentLength = length
		if length == 0 {
			sent.Close()
			req.Body = http.NoBody
		}
	}
	for k, v := range r.header {
		req.Header[k] = v
	}
	req.Header.Set("User-Agent", c.userAgent)
	if r.body != nil && r.body.ctype != "" && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", r.body.ctype)
	}
	if c.auth != nil && !r.anonymous {
		value, err := c.auth(ctx)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", value)
	}
	handed = true
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, transportError(err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return resp, nil
	}
	for _, s := range r.accept {
		if s == resp.StatusCode {
			return resp, nil
		}
	}
	defer resp.Body.Close()
	head, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return nil, errorFromResponse(resp.StatusCode, resp.Header, head)
}

// sentBody is a request body handed to net/http: Close (which net/http calls once it is
// done with the body, possibly after the response arrived) releases it; the caller's reader
// is never closed.
type sentBody struct {
	r    io.Reader
	once sync.Once
	done chan struct{}
}

func (b *sentBody) Read(p []byte) (int, error) { return b.r.Read(p) }

func (b *sentBody) Close() error {
	if b != nil {
		b.once.Do(func() { close(b.done) })
	}
	return nil
}

// released waits until net/http let go of the body (nil: there was none).
func (b *sentBody) released(ctx context.Context) error {
	if b == nil {
		return nil
	}
	select {
	case <-b.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// transportError classifies a failure below HTTP.
func transportError(err error) *Error {
	code := "ConnectionError"
	var ne net.Error
	var op *net.OpError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED) || (errors.As(err, &op) && op.Op == "dial"):
		code = "ConnectError"
	case errors.As(err, &ne) && ne.Timeout():
		code = "Timeout"
	}
	return &Error{Code: code, Message: err.Error(), Retryable: true, Type: "about:blank", Err: err}
}

// call sends r and decodes a JSON answer into out (when out is not nil).
func (c *Client) call(ctx context.Context, r *request, out any) error {
	resp, err := c.do(ctx, r)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return &Error{Code: "InvalidResponse", Status: resp.StatusCode, Message: "the store's answer is not the JSON expected: " + err.Error(), Err: err}
	}
	return nil
}

// jsonCall sends in as a JSON body (when not nil) and decodes the answer into out.
func (c *Client) jsonCall(ctx context.Context, method, path string, in, out any, idempotent bool) error {
	r := &request{method: method, path: path, idempotent: idempotent}
	if in != nil {
		b, err := jsonBody(in)
		if err != nil {
			return err
		}
		r.body = b
	}
	return c.call(ctx, r, out)
}

// callFor sends in as a JSON body (when not nil) and decodes the answer as a T.
func callFor[T any](ctx context.Context, c *Client, method, path string, in any, idempotent bool) (*T, error) {
	var out T
	if err := c.jsonCall(ctx, method, path, in, &out, idempotent); err != nil {
		return nil, err
	}
	return &out, nil
}

// seg escapes one path segment (a "/" in a key too, so a key never looks like a sub-route).
func seg(s string) string { return url.PathEscape(s) }

func objectPath(bucket, key string) string {
	return "/v1/buckets/" + seg(bucket) + "/objects/" + seg(key)
}

// NewFromEnv returns a client of the store at $ZOT_ARTIFACTS_URL, authenticated with
// $ZOT_ARTIFACTS_TOKEN, or HTTP Basic with $ZOT_ARTIFACTS_USERNAME and
// $ZOT_ARTIFACTS_PASSWORD, or anonymous (the CLI's and the Python SDK's variables). opts come
// after those and may replace them.
func NewFromEnv(opts ...Option) (*Client, error) {
	u := os.Getenv("ZOT_ARTIFACTS_URL")
	if u == "" {
		return nil, &Error{Code: "NoConfiguration", Message: "ZOT_ARTIFACTS_URL is not set", Type: "about:blank"}
	}
	var auth []Option
	if t := os.Getenv("ZOT_ARTIFACTS_TOKEN"); t != "" {
		auth = append(auth, WithToken(t))
	} else if user := os.Getenv("ZOT_ARTIFACTS_USERNAME"); user != "" {
		auth = append(auth, WithBasic(user, os.Getenv("ZOT_ARTIFACTS_PASSWORD")))
	}
	return New(u, append(auth, opts...)...)
}
