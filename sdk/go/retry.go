package zotartifacts

import (
	"math/rand"
	"sync"
	"time"
)

// RetryPolicy says when a request is tried again and how long to wait first: exponential
// backoff with full jitter (before attempt n+1 a random time in
// [0, min(MaxBackoff, InitialBackoff*2^(n-1))]), or the server's Retry-After when it sent one
// (capped at MaxRetryAfter).
//
// Idempotent requests (reads, whole-object PUTs, parts, deletes) are retried on answers the
// store marks retryable, on HTTP 429/502/503/504 and on broken connections. The others
// (creating a token, attaching evidence, completing an upload, a token exchange) only on what
// proves the request was not applied: a refused connection, 429 and 503. A request whose
// body was a plain io.Reader is never retried: its bytes are consumed.
type RetryPolicy struct {
	// MaxAttempts counts the first try: 1 means no retries. Zero means 5.
	MaxAttempts int
	// InitialBackoff is the ceiling of the first wait. Zero means 200ms.
	InitialBackoff time.Duration
	// MaxBackoff caps the exponential ceiling. Zero means 10s.
	MaxBackoff time.Duration
	// MaxRetryAfter caps a server's Retry-After. Zero means 60s.
	MaxRetryAfter time.Duration
}

// NoRetry is a RetryPolicy that never retries.
var NoRetry = RetryPolicy{MaxAttempts: 1}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = 5
	}
	if p.InitialBackoff <= 0 {
		p.InitialBackoff = 200 * time.Millisecond
	}
	if p.MaxBackoff <= 0 {
		p.MaxBackoff = 10 * time.Second
	}
	if p.MaxRetryAfter <= 0 {
		p.MaxRetryAfter = 60 * time.Second
	}
	return p
}

// shouldRetry: may a request that failed with err be sent again?
func (p RetryPolicy) shouldRetry(err *Error, idempotent bool) bool {
	if err.Status == 0 {
		// Nothing reached the server when the connection was refused: always safe.
		// Otherwise the request may have been applied: only when repeating changes nothing.
		return err.Code == "ConnectError" || (idempotent && err.Retryable)
	}
	if idempotent {
		return err.Retryable || retryableStatuses[err.Status]
	}
	return refusedStatuses[err.Status]
}

// delay before the next try after attempt (1-based) failed with err; ok false when the
// request must not be retried.
func (p RetryPolicy) delay(attempt int, err *Error, idempotent bool) (time.Duration, bool) {
	if attempt >= p.MaxAttempts || !p.shouldRetry(err, idempotent) {
		return 0, false
	}
	if err.RetryAfter > 0 {
		if err.RetryAfter > p.MaxRetryAfter {
			return p.MaxRetryAfter, true
		}
		return err.RetryAfter, true
	}
	ceiling := p.InitialBackoff << uint(attempt-1)
	if ceiling > p.MaxBackoff || ceiling <= 0 {
		ceiling = p.MaxBackoff
	}
	return jitter(ceiling), true
}

var (
	rngMu sync.Mutex
	rng   = rand.New(rand.NewSource(time.Now().UnixNano()))
)

func jitter(ceiling time.Duration) time.Duration {
	rngMu.Lock()
	defer rngMu.Unlock()
	return time.Duration(rng.Int63n(int64(ceiling) + 1))
}
