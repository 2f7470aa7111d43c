package metalsim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/metal-stack/metal-lib/httperrors"

	"github.com/palisade-fw/palisade/internal/metal"
)

// permission levels; a higher level includes the lower ones.
type permission int

const (
	permAny permission = iota
	permView
	permEdit
	permAdmin
)

var permGroups = map[permission]string{
	permView:  "[Metal-View Metal-Edit Metal-Admin]",
	permEdit:  "[Metal-Edit Metal-Admin]",
	permAdmin: "[Metal-Admin]",
}

func levelOf(authType string) permission {
	switch authType {
	case metal.AuthTypeView:
		return permView
	case metal.AuthTypeEdit:
		return permEdit
	case metal.AuthTypeAdmin:
		return permAdmin
	}
	return permAny
}

// route is one metal-api endpoint.
type route struct {
	method, path, op string
	perm             permission
	handle           func(rc *reqCtx) (any, error)
}

// reqCtx is what a handler gets: the request, the caller, and the state
// (locked and advanced to now).
type reqCtx struct {
	r        *http.Request
	body     []byte
	authType string
	st       *state
	now      time.Time
}

// decode reads the JSON body into v; an unreadable body is a 400.
func (rc *reqCtx) decode(v any) error {
	if err := json.Unmarshal(rc.body, v); err != nil {
		return errBadRequest("cannot read request body: %v", err)
	}
	return nil
}

// apiError becomes a {"statuscode","message"} answer.
type apiError struct {
	code int
	msg  string
}

func (e *apiError) Error() string { return e.msg }

func newAPIError(code int, format string, args ...any) *apiError {
	return &apiError{code: code, msg: fmt.Sprintf(format, args...)}
}
func errBadRequest(format string, args ...any) *apiError {
	return newAPIError(http.StatusBadRequest, format, args...)
}
func errNotFound(format string, args ...any) *apiError {
	return newAPIError(http.StatusNotFound, "NotFound "+format, args...)
}
func errUnprocessable(format string, args ...any) *apiError {
	return newAPIError(http.StatusUnprocessableEntity, format, args...)
}

func (s *Simulator) routes() []route {
	return []route{
		{"POST", "/v1/firewall/allocate", metal.OpFirewallAllocate, permEdit, s.allocateFirewall},
		{"POST", "/v1/firewall/find", metal.OpFirewallFind, permView, s.findFirewalls},
		{"GET", "/v1/firewall", metal.OpFirewallList, permView, s.listFirewalls},
		{"GET", "/v1/firewall/{id}", metal.OpFirewallGet, permView, s.getFirewall},
		{"GET", "/v1/machine/{id}", metal.OpMachineGet, permView, s.getMachine},
		{"POST", "/v1/machine/find", metal.OpMachineFind, permView, s.findMachines},
		{"POST", "/v1/machine", metal.OpMachineUpdate, permAdmin, s.updateMachine},
		{"DELETE", "/v1/machine/{id}", opMachineDelete, permAdmin, s.deleteMachine},
		{"DELETE", "/v1/machine/{id}/free", metal.OpMachineFree, permEdit, s.freeMachine},
		{"POST", "/v1/machine/{id}/reinstall", metal.OpMachineReinstall, permEdit, s.reinstallMachine},
		{"GET", "/v1/image", "image.list", permView, s.listImages},
		{"GET", "/v1/image/{id}", metal.OpImageGet, permView, s.getImage},
		{"GET", "/v1/image/{id}/latest", metal.OpImageLatest, permView, s.getLatestImage},
		{"POST", "/v1/image/find", metal.OpImageFind, permView, s.findImages},
		{"GET", "/v1/network", "network.list", permView, s.listNetworks},
		{"GET", "/v1/network/{id}", metal.OpNetworkGet, permView, s.getNetwork},
		{"POST", "/v1/network/find", metal.OpNetworkFind, permView, s.findNetworks},
		{"GET", "/v1/size/{id}", metal.OpSizeGet, permView, s.getSize},
		{"GET", "/v1/partition/{id}", metal.OpPartitionGet, permAny, s.getPartition},
		{"GET", "/v1/project/{id}", metal.OpProjectGet, permView, s.getProject},
		{"GET", "/v1/version", opVersion, permAny, s.version},
		{"GET", "/v1/health", opHealth, permAny, s.health},
	}
}

// buildHandler wires the routes. A second, method-less mux tells a wrong
// method (405) from an unknown path (404), both plain text like go-restful.
func (s *Simulator) buildHandler() http.Handler {
	mux := http.NewServeMux()
	paths := http.NewServeMux()
	seen := map[string]bool{}
	for _, rt := range s.routes() {
		mux.HandleFunc(rt.method+" "+rt.path, func(w http.ResponseWriter, r *http.Request) { s.serve(w, r, rt) })
		if !seen[rt.path] {
			seen[rt.path] = true
			paths.HandleFunc(rt.path, func(http.ResponseWriter, *http.Request) {})
		}
	}
	base := strings.TrimSuffix(s.cfg.BasePath, "/")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if admin, ok := strings.CutPrefix(r.URL.Path, AdminPrefix); ok {
			s.serveAdmin(w, r, admin)
			return
		}
		rest, ok := strings.CutPrefix(r.URL.Path, base)
		if !ok || !strings.HasPrefix(rest, "/") {
			s.unrouted(w, r, http.StatusNotFound)
			return
		}
		r2 := r.Clone(r.Context())
		r2.URL.Path = rest
		r2.URL.RawPath = ""
		if _, pattern := mux.Handler(r2); pattern == "" {
			code := http.StatusNotFound
			if _, p := paths.Handler(r2); p != "" {
				code = http.StatusMethodNotAllowed
			}
			s.unrouted(w, r, code)
			return
		}
		mux.ServeHTTP(w, r2)
	})
}

func (s *Simulator) unrouted(w http.ResponseWriter, r *http.Request, code int) {
	s.mu.Lock()
	s.counts["unrouted"]++
	if len(s.requests) < maxRecordedRequests {
		s.requests = append(s.requests, RequestRecord{Op: "unrouted", Method: r.Method, Path: r.URL.Path, Status: code})
	}
	s.mu.Unlock()
	writePlain(w, code)
}

// maxRecordedRequests bounds the request log so long benchmarks do not grow
// without limit; the per-operation counters keep counting past it.
const maxRecordedRequests = 100_000

// serve runs the filter chain of one routed request: auth, injected
// faults, media types, permission, then the handler under the state lock.
func (s *Simulator) serve(w http.ResponseWriter, r *http.Request, rt route) {
	authType, authErr := s.authenticate(r)
	s.mu.Lock()
	s.counts[rt.op]++
	rec := -1
	if len(s.requests) < maxRecordedRequests {
		rec = len(s.requests)
		// r.URL.Path had the base path stripped; record what the client sent.
		fullPath := strings.TrimSuffix(s.cfg.BasePath, "/") + r.URL.Path
		s.requests = append(s.requests, RequestRecord{Op: rt.op, Method: r.Method, Path: fullPath, AuthType: authType})
	}
	s.mu.Unlock()
	status := s.serveChecked(w, r, rt, authType, authErr)
	if rec >= 0 {
		s.mu.Lock()
		s.requests[rec].Status = status
		s.mu.Unlock()
	}
}

func (s *Simulator) serveChecked(w http.ResponseWriter, r *http.Request, rt route, authType string, authErr error) int {
	if authErr != nil {
		return writeError(w, http.StatusForbidden, authErr.Error())
	}
	// Read the body first: until it is consumed, net/http does not notice a
	// client that gave up, and an injected delay would outlive it.
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		return writeError(w, http.StatusBadRequest, "cannot read request body")
	}
	var delay time.Duration
	var failCode int
	s.mu.Lock()
	delay = s.st.faults.takeDelay(rt.op)
	failCode = s.st.faults.takeFailure(rt.op)
	s.mu.Unlock()
	if delay > 0 && !sleep(r.Context(), delay) {
		return 0 // the client went away
	}
	if failCode != 0 {
		msg := "injected failure"
		if failCode == http.StatusConflict {
			msg = "cannot update machine: already modified (injected conflict)"
		}
		return writeError(w, failCode, msg)
	}
	if r.Method == http.MethodPost || r.Method == http.MethodPut {
		if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
			return writePlain(w, http.StatusUnsupportedMediaType)
		}
	}
	if !acceptsJSON(r.Header.Get("Accept")) {
		return writePlain(w, http.StatusNotAcceptable)
	}
	if rt.perm != permAny && levelOf(authType) < rt.perm {
		return writeError(w, http.StatusForbidden, "you are not member in one of "+permGroups[rt.perm])
	}
	if d := s.takeServerSideDelay(rt.op); d > 0 {
		return s.serveDetached(w, r, rt, body, authType, d)
	}
	var out any
	var herr error
	s.locked(func(st *state, now time.Time) {
		out, herr = rt.handle(&reqCtx{r: r, body: body, authType: authType, st: st, now: now})
	})
	if herr != nil {
		var ae *apiError
		if errors.As(herr, &ae) {
			return writeError(w, ae.code, ae.msg)
		}
		return writeError(w, http.StatusInternalServerError, herr.Error())
	}
	return writeJSON(w, http.StatusOK, out)
}

func acceptsJSON(accept string) bool {
	if accept == "" {
		return true
	}
	for _, part := range strings.Split(accept, ",") {
		mt, _, _ := mime.ParseMediaType(strings.TrimSpace(part))
		if mt == "application/json" || mt == "*/*" || mt == "application/*" {
			return true
		}
	}
	return false
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) int {
	b, err := json.Marshal(v)
	if err != nil {
		return writeError(w, http.StatusInternalServerError, "encoding response: "+err.Error())
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(b)
	return code
}

// writeError answers as metal-api does: go-restful's WriteHeaderAndEntity
// with a *httperrors.HTTPErrorResponse, whose MarshalText turns the body into
// a JSON string holding the {"statuscode","message"} object. metal-go decodes
// exactly that and fails on a bare object.
func writeError(w http.ResponseWriter, code int, msg string) int {
	return writeJSON(w, code, httperrors.NewHTTPError(code, errors.New(msg)))
}

// writePlain mimics go-restful's router answers, e.g. "404: Page Not Found".
func writePlain(w http.ResponseWriter, code int) int {
	text := http.StatusText(code)
	if code == http.StatusNotFound {
		text = "Page Not Found"
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	_, _ = fmt.Fprintf(w, "%d: %s", code, text)
	return code
}
