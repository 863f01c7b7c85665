package zotartifacts

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Error is every failure the SDK reports: an answer of the store (its problem JSON) or a
// failure on the way to it (Status 0, Code "ConnectError", "ConnectionError" or "Timeout"),
// or one of the SDK's own checks (Code "ChecksumMismatch").
type Error struct {
	// Code is the store's stable error code (docs/errors.md), e.g. "NoSuchKey".
	Code string
	// Message says what went wrong.
	Message string
	// Status is the HTTP status, 0 when no answer was received.
	Status int
	// Retryable tells whether the same request may succeed later.
	Retryable bool
	// RequestID identifies the request in the server's logs: quote it in bug reports.
	RequestID string
	// Type is the problem's type URI.
	Type string
	// Problem is the whole problem JSON (e.g. expected and actual digests), when there was one.
	Problem map[string]any
	// RetryAfter is the server's Retry-After, 0 when it sent none.
	RetryAfter time.Duration
	// Err is the underlying transport error, when there was one.
	Err error
}

// Error implements the error interface.
func (e *Error) Error() string {
	var b strings.Builder
	if e.Status != 0 {
		fmt.Fprintf(&b, "HTTP %d ", e.Status)
	}
	fmt.Fprintf(&b, "%s: %s", e.Code, e.Message)
	if e.RequestID != "" {
		fmt.Fprintf(&b, " (request %s)", e.RequestID)
	}
	return b.String()
}

// Unwrap returns the transport error underneath, if any.
func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrNotFound) (and the other sentinel errors) match any *Error of
// that HTTP status.
func (e *Error) Is(target error) bool {
	s, ok := target.(*statusSentinel)
	return ok && s.status == e.Status
}

type statusSentinel struct {
	status int
	name   string
}

func (s *statusSentinel) Error() string { return s.name }

// Sentinel errors for errors.Is: each matches every *Error of its HTTP status.
var (
	// ErrUnauthenticated matches HTTP 401: credentials missing, wrong or expired.
	ErrUnauthenticated error = &statusSentinel{http.StatusUnauthorized, "unauthenticated"}
	// ErrAccessDenied matches HTTP 403: authenticated but not allowed.
	ErrAccessDenied error = &statusSentinel{http.StatusForbidden, "access denied"}
	// ErrNotFound matches HTTP 404: no such bucket, object, upload, token or evidence.
	ErrNotFound error = &statusSentinel{http.StatusNotFound, "not found"}
	// ErrConflict matches HTTP 409, e.g. a bucket that exists or is not empty.
	ErrConflict error = &statusSentinel{http.StatusConflict, "conflict"}
	// ErrPreconditionFailed matches HTTP 412: a conditional write's condition does not hold.
	ErrPreconditionFailed error = &statusSentinel{http.StatusPreconditionFailed, "precondition failed"}
	// ErrInvalid matches HTTP 422: the content does not check out (e.g. a declared sha256).
	ErrInvalid error = &statusSentinel{http.StatusUnprocessableEntity, "unprocessable"}
)

// IsUnauthenticated reports whether err is (or wraps) an HTTP 401 *Error.
func IsUnauthenticated(err error) bool { return errors.Is(err, ErrUnauthenticated) }

// IsAccessDenied reports whether err is (or wraps) an HTTP 403 *Error.
func IsAccessDenied(err error) bool { return errors.Is(err, ErrAccessDenied) }

// IsNotFound reports whether err is (or wraps) an HTTP 404 *Error.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// IsConflict reports whether err is (or wraps) an HTTP 409 *Error.
func IsConflict(err error) bool { return errors.Is(err, ErrConflict) }

// IsPreconditionFailed reports whether err is (or wraps) an HTTP 412 *Error.
func IsPreconditionFailed(err error) bool { return errors.Is(err, ErrPreconditionFailed) }

// IsInvalid reports whether err is (or wraps) an HTTP 422 *Error.
func IsInvalid(err error) bool { return errors.Is(err, ErrInvalid) }

// IsRetryable reports whether err is an *Error the store marked retryable.
func IsRetryable(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Retryable
}

var retryableStatuses = map[int]bool{429: true, 502: true, 503: true, 504: true}

// refusedStatuses say the request was turned away before anything was done.
var refusedStatuses = map[int]bool{429: true, 503: true}

var defaultCodes = map[int]string{
	400: "InvalidArgument", 401: "Unauthenticated", 403: "AccessDenied", 404: "NotFound",
	409: "Conflict", 412: "PreconditionFailed", 416: "InvalidRange", 422: "Unprocessable",
	429: "SlowDown", 500: "InternalError", 502: "BadGateway", 503: "ServiceUnavailable",
	504: "GatewayTimeout",
}

// errorFromResponse is the error an HTTP answer stands for: its problem JSON when it has
// one, otherwise what the status says. body is at most a small prefix of the answer.
func errorFromResponse(status int, header http.Header, body []byte) *Error {
	var problem map[string]any
	_ = json.Unmarshal(body, &problem)
	str := func(name string) string {
		if v, ok := problem[name].(string); ok {
			return v
		}
		return ""
	}
	e := &Error{Status: status, Problem: problem, Code: str("code"), Type: str("type")}
	if e.Code == "" {
		e.Code = defaultCodes[status]
		if e.Code == "" {
			e.Code = "HTTP" + strconv.Itoa(status)
		}
	}
	for _, name := range []string{"message", "detail", "title"} {
		if e.Message = str(name); e.Message != "" {
			break
		}
	}
	if e.Message == "" {
		e.Message = strings.TrimSpace(string(body))
		if len(e.Message) > 200 {
			e.Message = e.Message[:200]
		}
		if e.Message == "" {
			e.Message = http.StatusText(status)
		}
	}
	if e.Type == "" {
		e.Type = "about:blank"
	}
	r, ok := problem["retryable"].(bool)
	e.Retryable = (ok && r) || retryableStatuses[status]
	e.RequestID = str("request_id")
	if e.RequestID == "" {
		e.RequestID = header.Get("X-Request-Id")
	}
	e.RetryAfter = parseRetryAfter(header.Get("Retry-After"))
	return e
}

func parseRetryAfter(v string) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil && s >= 0 {
		return time.Duration(s * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
	}
	return 0
}

func checksumError(what, expected, actual string) *Error {
	return &Error{
		Code:    "ChecksumMismatch",
		Message: fmt.Sprintf("%s has sha256 %s, the store says %s", what, actual, expected),
		Problem: map[string]any{"expected": expected, "actual": actual},
		Type:    "about:blank",
	}
}
