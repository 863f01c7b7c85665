package zotartifacts_test

// The suite runs against a live store: ZAS_TEST_URL (its base URL) and ZAS_TEST_TOKEN (an
// admin API token). The fault scenarios also need ZAS_TEST_FAULT_PROXY and
// ZAS_TEST_FAULT_CONTROL (tests/fixtures/faultproxy.py with tests/fixtures/faultcontrol.py in
// front of the same store). `make test` starts all of them (tests/integration/test_sdk_go.py).

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	zotartifacts "github.com/zot-artifact-store/zot-artifact-store/sdk/go"
)

var (
	storeURL     string
	adminToken   string
	faultProxy   string
	faultControl string
)

func TestMain(m *testing.M) {
	storeURL = os.Getenv("ZAS_TEST_URL")
	adminToken = os.Getenv("ZAS_TEST_TOKEN")
	faultProxy = os.Getenv("ZAS_TEST_FAULT_PROXY")
	faultControl = os.Getenv("ZAS_TEST_FAULT_CONTROL")
	if storeURL == "" || adminToken == "" {
		fmt.Println("The Go SDK's tests run against a live store: set ZAS_TEST_URL (e.g. " +
			"http://127.0.0.1:8080) and ZAS_TEST_TOKEN (an admin API token), and for the fault " +
			"scenarios ZAS_TEST_FAULT_PROXY and ZAS_TEST_FAULT_CONTROL; or run " +
			"`.venv/bin/pytest tests/integration/test_sdk_go.py`, which starts them all.")
		os.Exit(2)
	}
	// The examples read the variables a user sets (README.md).
	os.Setenv("ZOT_ARTIFACTS_URL", storeURL)
	os.Setenv("ZOT_ARTIFACTS_TOKEN", adminToken)
	os.Exit(m.Run())
}

// fast retries keep the fault scenarios quick.
var fast = zotartifacts.WithRetry(zotartifacts.RetryPolicy{MaxAttempts: 4, InitialBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func admin(t *testing.T, opts ...zotartifacts.Option) *zotartifacts.Client {
	t.Helper()
	c, err := zotartifacts.New(storeURL, append([]zotartifacts.Option{zotartifacts.WithToken(adminToken)}, opts...)...)
	must(t, err)
	return c
}

// viaProxy is an admin client whose requests pass the fault proxy; the proxy is reset.
func viaProxy(t *testing.T) *zotartifacts.Client {
	t.Helper()
	if faultProxy == "" || faultControl == "" {
		t.Fatal("set ZAS_TEST_FAULT_PROXY and ZAS_TEST_FAULT_CONTROL (tests/fixtures/faultproxy.py and faultcontrol.py in front of ZAS_TEST_URL)")
	}
	arm(t, "reset", nil)
	c, err := zotartifacts.New(faultProxy, zotartifacts.WithToken(adminToken), fast)
	must(t, err)
	return c
}

// arm sends a fault to the proxy's control port (see tests/fixtures/faultcontrol.py).
func arm(t *testing.T, action string, args map[string]any) {
	t.Helper()
	raw, _ := json.Marshal(args)
	resp, err := http.Post(faultControl+"/"+action, "application/json", bytes.NewReader(raw))
	must(t, err)
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("fault control %s: %d %s", action, resp.StatusCode, b)
	}
}

type seenRequest struct {
	Method    string            `json:"method"`
	Path      string            `json:"path"`
	Status    int               `json:"status"`
	Forwarded bool              `json:"forwarded"`
	Dropped   bool              `json:"dropped"`
	Headers   map[string]string `json:"headers"`
}

// seen lists what the proxy saw since its last reset.
func seen(t *testing.T, method, contains string) []seenRequest {
	t.Helper()
	resp, err := http.Get(faultControl + "/seen?" + url.Values{"method": {method}, "contains": {contains}}.Encode())
	must(t, err)
	defer resp.Body.Close()
	var out []seenRequest
	must(t, json.NewDecoder(resp.Body).Decode(&out))
	return out
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		_, file, line, _ := runtime.Caller(1)
		t.Fatalf("%s:%d: %v", filepath.Base(file), line, err)
	}
}

func newBucket(t *testing.T, c *zotartifacts.Client) string {
	t.Helper()
	name := "go-" + randomHex(8)
	_, err := c.CreateBucket(ctxT(t), name, nil)
	must(t, err)
	return name
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// randomFile writes size random bytes to a file in the test's directory and returns it open,
// with its sha256.
func randomFile(t *testing.T, size int64) (*os.File, string) {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "big.bin"))
	must(t, err)
	t.Cleanup(func() { f.Close() })
	h := sha256.New()
	buf := make([]byte, 4<<20)
	for left := size; left > 0; {
		n := int64(len(buf))
		if left < n {
			n = left
		}
		_, _ = rand.Read(buf[:n])
		h.Write(buf[:n])
		_, err := f.Write(buf[:n])
		must(t, err)
		left -= n
	}
	return f, hex.EncodeToString(h.Sum(nil))
}

// fixture reads a file of the repository's test data (tests/fixtures/data).
func fixture(t *testing.T, name string) []byte {
	t.Helper()
	path := filepath.Join("..", "..", "tests", "fixtures", "data", name)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the repository's test data is missing (%v): run the suite from a checkout", err)
	}
	return b
}

func readAll(t *testing.T, r io.Reader) []byte {
	t.Helper()
	b, err := io.ReadAll(r)
	must(t, err)
	return b
}

func wantStatus(t *testing.T, err error, status int, code string) *zotartifacts.Error {
	t.Helper()
	var e *zotartifacts.Error
	if !asError(err, &e) {
		t.Fatalf("want an *Error with status %d, got %T %v", status, err, err)
	}
	if e.Status != status || (code != "" && e.Code != code) {
		t.Fatalf("want %d %s, got %d %s: %v", status, code, e.Status, e.Code, e)
	}
	return e
}

var _ = strings.TrimSpace
