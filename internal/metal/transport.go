package metal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-openapi/runtime"
	"github.com/metal-stack/metal-lib/httperrors"
)

// maxErrorBody caps how much of a non-metal-api error body we keep.
const maxErrorBody = 4 << 10

// access is the permission a call needs on metal-api.
type access int

const (
	accessView access = iota
	accessEdit
	accessAdmin
)

// operation describes one metal-api call.
type operation struct {
	name string
	need access
	// idempotent calls (GET and find) may be retried on 5xx and timeouts.
	idempotent bool
}

// attempt is what the transport saw of one HTTP exchange. metal-go turns a
// body it cannot decode (the router's plain "404: Page Not Found") into an
// error without the status code; the transport keeps it.
type attempt struct {
	op     string
	status int
	body   []byte
}

type attemptKey struct{}

// instrumentedTransport counts and times each request by operation and
// status code and records the status for error classification. It never
// looks at the credential headers.
type instrumentedTransport struct {
	next      http.RoundTripper
	metrics   *metrics
	userAgent string
}

func (t *instrumentedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	at, _ := req.Context().Value(attemptKey{}).(*attempt)
	op := "unknown"
	if at != nil {
		op = at.op
	}
	req = req.Clone(req.Context())
	req.Header.Set("User-Agent", t.userAgent)
	start := time.Now()
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		t.metrics.observe(op, "error", time.Since(start).Seconds())
		return nil, err
	}
	t.metrics.observe(op, strconv.Itoa(resp.StatusCode), time.Since(start).Seconds())
	if at != nil {
		at.status = resp.StatusCode
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			// Keep the start of the body and hand it on unchanged.
			head, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
			at.body = head
			resp.Body = readCloser{io.MultiReader(bytes.NewReader(head), resp.Body), resp.Body}
		}
	}
	return resp, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

// invoke runs one operation through metal-go: fn gets a context that
// carries the attempt, the per-attempt timeout (0: only the call's deadline)
// and the credential for op.need. Idempotent operations are retried.
func invoke[T any](ctx context.Context, c *HTTPClient, op operation, fn func(ctx context.Context, timeout time.Duration, auth runtime.ClientAuthInfoWriter) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	attempts, attemptTimeout := 1, time.Duration(0)
	if op.idempotent {
		// Only calls we may retry get a per-attempt bound; a slow allocate
		// must run to the overall deadline rather than be cut and lost.
		attempts, attemptTimeout = c.retry.MaxAttempts, c.retry.AttemptTimeout
	}
	var zero T
	var lastErr error
	for i := 0; i < attempts; i++ {
		if i > 0 {
			if err := sleepCtx(ctx, c.backoff(i)); err != nil {
				return zero, fmt.Errorf("%w (retry aborted: %v)", lastErr, err)
			}
		}
		at := &attempt{op: op.name}
		out, err := fn(context.WithValue(ctx, attemptKey{}, at), attemptTimeout, c.credential(op.need))
		if err == nil {
			return out, nil
		}
		lastErr = classify(op.name, err, at)
		if !retryable(ctx, lastErr) {
			return zero, lastErr
		}
	}
	return zero, lastErr
}

// errorResponse is what every metal-go "default" response implements: the
// status code and metal-api's decoded error body.
type errorResponse interface {
	error
	Code() int
	GetPayload() *httperrors.HTTPErrorResponse
}

// classify turns metal-go's error into an *APIError when metal-api answered,
// or wraps errNoResponse when no answer arrived.
func classify(op string, err error, at *attempt) error {
	var resp errorResponse
	if errors.As(err, &resp) {
		apiErr := &APIError{Op: op, StatusCode: resp.Code()}
		if p := resp.GetPayload(); p != nil {
			apiErr.Message = p.Message
		}
		return apiErr
	}
	switch {
	case at.status == 0:
		// The URL in err is fine to show; credentials live in headers only.
		return fmt.Errorf("metal-api %s: %w: %w", op, errNoResponse, err)
	case at.status < 200 || at.status > 299:
		// Not metal-api's error body: the router (wrong base path, method or
		// media type) or a proxy answered.
		return &APIError{Op: op, StatusCode: at.status, Message: strings.TrimSpace(string(at.body)), RouteLevel: true}
	}
	return fmt.Errorf("metal-api %s: decoding response: %w", op, err)
}

// retryable: 5xx and transport failures, unless the caller's context is done.
func retryable(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	return IsServerError(err) || errors.Is(err, errNoResponse)
}

// backoff returns a fully jittered exponential delay for the given attempt.
func (c *HTTPClient) backoff(attempt int) time.Duration {
	d := c.retry.InitialBackoff << (attempt - 1)
	if d <= 0 || d > c.retry.MaxBackoff {
		d = c.retry.MaxBackoff
	}
	return d/2 + rand.N(d/2+1)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
