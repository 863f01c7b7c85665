package zotartifacts

import (
	"testing"
	"time"
)

// The retry rules, case by case (the suite's fault-proxy scenarios show them end to end).
func TestRetryPolicyRules(t *testing.T) {
	p := RetryPolicy{}.withDefaults()
	for _, tc := range []struct {
		err        Error
		idempotent bool
		want       bool
	}{
		{Error{Status: 503}, false, true},
		{Error{Status: 429}, false, true},
		{Error{Status: 502, Retryable: true}, false, false}, // may have been applied
		{Error{Status: 504, Retryable: true}, false, false},
		{Error{Status: 500}, false, false},
		{Error{Status: 502}, true, true},
		{Error{Status: 504}, true, true},
		{Error{Status: 500, Retryable: true}, true, true},
		{Error{Status: 500}, true, false},
		{Error{Status: 403}, true, false},
		{Error{Status: 404}, true, false},
		{Error{Status: 409}, true, false},
		{Error{Code: "ConnectError", Retryable: true}, false, true}, // nothing was sent
		{Error{Code: "ConnectionError", Retryable: true}, false, false},
		{Error{Code: "ConnectionError", Retryable: true}, true, true},
		{Error{Code: "ChecksumMismatch"}, true, false},
	} {
		if got := p.shouldRetry(&tc.err, tc.idempotent); got != tc.want {
			t.Errorf("%+v idempotent=%v: retry %v, want %v", tc.err, tc.idempotent, got, tc.want)
		}
	}
}

func TestRetryDelaysAreJitteredAndCapped(t *testing.T) {
	p := RetryPolicy{MaxAttempts: 10, InitialBackoff: 100 * time.Millisecond, MaxBackoff: time.Second, MaxRetryAfter: 5 * time.Second}
	e := &Error{Status: 503}
	for attempt := 1; attempt < 10; attempt++ {
		ceiling := 100 * time.Millisecond << uint(attempt-1)
		if ceiling > time.Second {
			ceiling = time.Second
		}
		distinct := map[time.Duration]bool{}
		for i := 0; i < 50; i++ {
			d, ok := p.delay(attempt, e, true)
			if !ok || d < 0 || d > ceiling {
				t.Fatalf("attempt %d: %v (ceiling %v)", attempt, d, ceiling)
			}
			distinct[d] = true
		}
		if len(distinct) < 10 {
			t.Fatalf("attempt %d: only %d distinct delays: no jitter", attempt, len(distinct))
		}
	}
	if _, ok := p.delay(10, e, true); ok {
		t.Fatal("retried past MaxAttempts")
	}
	if d, _ := p.delay(1, &Error{Status: 503, RetryAfter: 2 * time.Second}, false); d != 2*time.Second {
		t.Fatalf("Retry-After: %v", d)
	}
	if d, _ := p.delay(1, &Error{Status: 503, RetryAfter: time.Minute}, false); d != 5*time.Second {
		t.Fatalf("Retry-After capped: %v", d)
	}
	if _, ok := NoRetry.withDefaults().delay(1, e, true); ok {
		t.Fatal("NoRetry retried")
	}
	if parseRetryAfter("3") != 3*time.Second || parseRetryAfter("soon") != 0 {
		t.Fatal("parseRetryAfter")
	}
	if d := parseRetryAfter(time.Now().Add(10 * time.Second).UTC().Format(http1123)); d < 8*time.Second || d > 10*time.Second {
		t.Fatalf("an HTTP-date Retry-After: %v", d)
	}
}

const http1123 = "Mon, 02 Jan 2006 15:04:05 GMT"

func TestPlanParts(t *testing.T) {
	for _, tc := range []struct {
		size, part int64
		parts      int
		first      int64
	}{
		{0, DefaultPartSize, 1, 0},
		{1, DefaultPartSize, 1, 1},
		{DefaultPartSize, DefaultPartSize, 1, DefaultPartSize},
		{DefaultPartSize + 1, DefaultPartSize, 2, DefaultPartSize},
		{20 * MiB, 1, 4, MinPartSize},                                      // at least 5 MiB
		{MaxParts*MinPartSize + 1, MinPartSize, MaxParts, MinPartSize + 1}, // grown to fit 10,000
	} {
		plan := planParts(tc.size, tc.part)
		var total int64
		for i, p := range plan {
			if p.number != i+1 || p.offset != total {
				t.Fatalf("%+v: part %d is %+v", tc, i, p)
			}
			total += p.length
		}
		if len(plan) != tc.parts || plan[0].length != tc.first || total != tc.size {
			t.Fatalf("%+v: %d parts, first %d, total %d", tc, len(plan), plan[0].length, total)
		}
	}
}
