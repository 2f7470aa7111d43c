package metal

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxErrorBody caps how much of an error body we keep in an APIError.
const maxErrorBody = 4 << 10

// call describes one metal-api operation.
type call struct {
	op     string
	method string
	path   string // relative to the base path, without leading slash
	body   any
	// idempotent calls (GET and find) may be retried on 5xx and timeouts.
	idempotent bool
}

// do runs c and decodes a 2xx body into out.
func (c *HTTPClient) do(ctx context.Context, cl call, out any) error {
	var payload []byte
	if cl.body != nil {
		var err error
		if payload, err = json.Marshal(cl.body); err != nil {
			return fmt.Errorf("metal-api %s: encoding request: %w", cl.op, err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	attempts := 1
	if cl.idempotent {
		attempts = c.retry.MaxAttempts
	}
	var lastErr error
	for attempt := 0; attempt < attempts; attempt++ {
		if attempt > 0 {
			if err := sleepCtx(ctx, c.backoff(attempt)); err != nil {
				return fmt.Errorf("%w (retry aborted: %v)", lastErr, err)
			}
		}
		lastErr = c.attempt(ctx, cl, payload, out)
		if lastErr == nil || !retryable(ctx, lastErr) {
			return lastErr
		}
	}
	return lastErr
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

func (c *HTTPClient) attempt(ctx context.Context, cl call, payload []byte, out any) error {
	if cl.idempotent {
		// Only calls we may retry get a per-attempt bound; a slow allocate
		// must run to the overall deadline rather than be cut and lost.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.retry.AttemptTimeout)
		defer cancel()
	}

	req, err := c.newRequest(ctx, cl, payload)
	if err != nil {
		return err
	}
	start := time.Now()
	resp, err := c.httpClient.Do(req)
	if err != nil {
		c.metrics.observe(cl.op, "error", time.Since(start).Seconds())
		// The URL in err is fine to show; credentials live in headers only.
		return fmt.Errorf("metal-api %s: %w: %w", cl.op, errNoResponse, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	c.metrics.observe(cl.op, strconv.Itoa(resp.StatusCode), time.Since(start).Seconds())
	if err != nil {
		return fmt.Errorf("metal-api %s: %w: reading body: %w", cl.op, errNoResponse, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return decodeError(cl.op, resp, body)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("metal-api %s: decoding response: %w", cl.op, err)
	}
	return nil
}

func (c *HTTPClient) newRequest(ctx context.Context, cl call, payload []byte) (*http.Request, error) {
	u := c.base.JoinPath(cl.path)
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, cl.method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("metal-api %s: %w", cl.op, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	switch {
	case len(c.hmacKey) > 0:
		headers, err := hmacHeaders(c.hmacKey, c.authType, cl.method, c.clock.Now())
		if err != nil {
			return nil, fmt.Errorf("metal-api %s: %w", cl.op, err)
		}
		for k, v := range headers {
			req.Header.Set(k, v)
		}
	case c.bearer != "":
		req.Header.Set(HeaderAuthorization, "Bearer "+c.bearer)
	}
	return req, nil
}

// decodeError builds an APIError from metal-api's {statuscode, message} body
// or, for router-level answers, from the plain text.
func decodeError(op string, resp *http.Response, body []byte) error {
	apiErr := &APIError{Op: op, StatusCode: resp.StatusCode}
	mediaType, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	var parsed HTTPErrorResponse
	// metal-api writes the object inside a JSON string.
	var quoted string
	if json.Unmarshal(body, &quoted) == nil {
		body = []byte(quoted)
	}
	if mediaType == "application/json" && json.Unmarshal(body, &parsed) == nil && parsed.Message != "" {
		apiErr.Message = parsed.Message
		return apiErr
	}
	if len(body) > maxErrorBody {
		body = body[:maxErrorBody]
	}
	apiErr.Message = strings.TrimSpace(string(body))
	apiErr.RouteLevel = true
	return apiErr
}
