package metalsim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/palisade-fw/palisade/internal/metal"
)

// AdminPrefix is where the simulator serves its fault endpoints, outside
// metal-api's base path:
//
//	GET  /_sim/faults          lists the faults, their arguments and the operation names
//	POST /_sim/faults/{name}   applies one fault; the body holds its arguments as JSON
//
// The same names and arguments work in the config file's "faults" list.
// The endpoints are unauthenticated: metal-sim is a test tool.
const AdminPrefix = "/_sim/"

// FaultSpec applies one named fault, from the config file or over HTTP.
type FaultSpec struct {
	Name string          `json:"name"`
	Args json.RawMessage `json:"args,omitempty"`
}

// faultEntry exposes one Faults method by name.
type faultEntry struct {
	doc string
	// args is an example of the arguments, shown by GET /_sim/faults.
	args  any
	apply func(f *Faults, raw json.RawMessage) error
	// decode only parses the arguments, for Config.Validate.
	decode func(raw json.RawMessage) error
}

// fault adapts a Faults method that takes its arguments as one struct A.
// Unknown argument fields are rejected so a typo does not silently apply
// a different fault.
func fault[A any](doc string, fn func(f *Faults, a A) error) faultEntry {
	decode := func(raw json.RawMessage) (A, error) {
		var a A
		if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
			return a, nil
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&a); err != nil {
			return a, fmt.Errorf("arguments: %w", err)
		}
		return a, nil
	}
	var example A
	return faultEntry{
		doc: doc, args: example,
		apply: func(f *Faults, raw json.RawMessage) error {
			a, err := decode(raw)
			if err != nil {
				return err
			}
			return fn(f, a)
		},
		decode: func(raw json.RawMessage) error { _, err := decode(raw); return err },
	}
}

// Argument shapes shared by several faults.
type (
	countArgs struct {
		N int `json:"count"`
	}
	targetArgs struct {
		// Target is a machine id or an allocation hostname.
		Target string `json:"target"`
	}
	failArgs struct {
		Op   string `json:"op"`
		N    int    `json:"count"`
		Code int    `json:"code"`
	}
	delayArgs struct {
		Op    string   `json:"op,omitempty"`
		N     int      `json:"count,omitempty"`
		Delay Duration `json:"delay"`
	}
	stallArgs struct {
		Target string `json:"target"`
		Event  string `json:"event,omitempty"`
	}
	switchArgs struct {
		On bool `json:"on"`
	}
)

func (a targetArgs) check() error {
	if a.Target == "" {
		return errors.New("target is required")
	}
	return nil
}

// faultTable names every fault. Exposing a new Faults method takes one
// entry here: its name, a line of help and an adapter to its arguments.
var faultTable = map[string]faultEntry{
	"reset": fault("remove every injected fault", func(f *Faults, _ struct{}) error {
		f.Reset()
		return nil
	}),
	"lose-next-allocate-response": fault("the next count allocations succeed but answer 500", func(f *Faults, a countArgs) error {
		f.LoseNextAllocateResponse(a.N)
		return nil
	}),
	"duplicate-next-allocate": fault("the next count allocations allocate a second machine with the same name and tags", func(f *Faults, a countArgs) error {
		f.DuplicateNextAllocate(a.N)
		return nil
	}),
	"fail-next": fault("answer the next count requests of op with code (any 4xx or 5xx, e.g. 409, 503)", func(f *Faults, a failArgs) error {
		if !f.knownOp(a.Op) || a.Code < 400 || a.Code > 599 {
			return fmt.Errorf("need a known op and a code 400-599, got %q %d", a.Op, a.Code)
		}
		f.FailNext(a.Op, a.N, a.Code)
		return nil
	}),
	"conflict-on-update": fault("answer the next count machine updates with 409, as an optimistic-locking conflict", func(f *Faults, a countArgs) error {
		f.ConflictOnUpdate(a.N)
		return nil
	}),
	"latency": fault("delay every request by delay (real time)", func(f *Faults, a delayArgs) error {
		f.Latency(a.Delay.Duration)
		return nil
	}),
	"delay-next": fault("delay the next count requests of op by delay (real time)", func(f *Faults, a delayArgs) error {
		if !f.knownOp(a.Op) {
			return fmt.Errorf("unknown op %q", a.Op)
		}
		f.DelayNext(a.Op, a.N, a.Delay.Duration)
		return nil
	}),
	"slow-server-side": fault("carry out the next count requests of op delay after they arrived, even when the client gave up (an allocate that completes after the client's timeout)", func(f *Faults, a delayArgs) error {
		if !f.knownOp(a.Op) {
			return fmt.Errorf("unknown op %q", a.Op)
		}
		f.SlowServerSide(a.Op, a.N, a.Delay.Duration)
		return nil
	}),
	"stall-provisioning": fault("stop the install at event (default Installing)", func(f *Faults, a stallArgs) error {
		if a.Target == "" {
			return errors.New("target is required")
		}
		if a.Event == "" {
			a.Event = metal.EventInstalling
		}
		f.StallProvisioningAt(a.Target, a.Event)
		return nil
	}),
	"resume-provisioning": targetFault("lift a stall", func(f *Faults, t string) error { f.ResumeProvisioning(t); return nil }),
	"crash-loop":          targetFault("crash at the end of every install attempt", func(f *Faults, t string) error { f.CrashLoop(t); return nil }),
	"stop-crash-loop":     targetFault("let the next install attempt succeed", func(f *Faults, t string) error { f.StopCrashLoop(t); return nil }),
	"stop-heartbeat":      targetFault("freeze the last event time (liveliness turns Unknown or Dead)", func(f *Faults, t string) error { f.StopHeartbeat(t); return nil }),
	"resume-heartbeat":    targetFault("restart heartbeats", func(f *Faults, t string) error { f.ResumeHeartbeat(t); return nil }),
	"fail-reclaim":        targetFault("the next free does not reclaim the machine", func(f *Faults, t string) error { f.FailReclaim(t); return nil }),
	"vanish":              targetFault("delete the machine as an admin would outside Palisade", (*Faults).Vanish),
	"lock":                targetFault("set the machine LOCKED: free answers 422", (*Faults).Lock),
	"unlock":              targetFault("return the machine to the available state", (*Faults).Unlock),
	"reboot":              targetFault("Planned Reboot now, Phoned Home after bootingNewKernel", (*Faults).Reboot),
	"shuffle-tags": fault("return tags in random order", func(f *Faults, a switchArgs) error {
		f.ShuffleTags(a.On)
		return nil
	}),
}

func targetFault(doc string, fn func(f *Faults, target string) error) faultEntry {
	return fault(doc, func(f *Faults, a targetArgs) error {
		if err := a.check(); err != nil {
			return err
		}
		return fn(f, a.Target)
	})
}

// Apply applies one named fault with its JSON arguments, exactly as
// POST /_sim/faults/{name} does.
func (f *Faults) Apply(spec FaultSpec) error {
	entry, ok := faultTable[spec.Name]
	if !ok {
		return fmt.Errorf("unknown fault %q (known: %s)", spec.Name, strings.Join(faultNames(), ", "))
	}
	if err := entry.apply(f, spec.Args); err != nil {
		return fmt.Errorf("fault %s: %w", spec.Name, err)
	}
	return nil
}

func faultNames() []string {
	names := make([]string, 0, len(faultTable))
	for n := range faultTable {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// operations lists the names fail-next and delay-next accept.
func (s *Simulator) operations() []string {
	var ops []string
	for _, rt := range s.routes() {
		ops = append(ops, rt.op)
	}
	slices.Sort(ops)
	return slices.Compact(ops)
}

func (f *Faults) knownOp(op string) bool { return slices.Contains(f.sim.operations(), op) }

// checkFaults parses the config file's faults without applying them.
func checkFaults(specs []FaultSpec) []error {
	var errs []error
	for i, spec := range specs {
		entry, ok := faultTable[spec.Name]
		if !ok {
			errs = append(errs, fmt.Errorf("faults[%d]: unknown fault %q", i, spec.Name))
			continue
		}
		if err := entry.decode(spec.Args); err != nil {
			errs = append(errs, fmt.Errorf("faults[%d] %s: %w", i, spec.Name, err))
		}
	}
	return errs
}

type faultDescription struct {
	Name string `json:"name"`
	Doc  string `json:"doc"`
	Args any    `json:"args"`
}

// serveAdmin answers the /_sim/ endpoints; it is not metal-api, so errors
// are a plain {"error": "..."} object.
func (s *Simulator) serveAdmin(w http.ResponseWriter, r *http.Request, rest string) {
	switch {
	case rest == "faults" && r.Method == http.MethodGet:
		list := struct {
			Faults     []faultDescription `json:"faults"`
			Operations []string           `json:"operations"`
		}{Operations: s.operations()}
		for _, n := range faultNames() {
			e := faultTable[n]
			list.Faults = append(list.Faults, faultDescription{Name: n, Doc: e.doc, Args: e.args})
		}
		adminJSON(w, http.StatusOK, list)
	case strings.HasPrefix(rest, "faults/") && r.Method == http.MethodPost:
		var args json.RawMessage
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&args); err != nil && !errors.Is(err, io.EOF) {
			adminJSON(w, http.StatusBadRequest, map[string]string{"error": "body: " + err.Error()})
			return
		}
		name := strings.TrimPrefix(rest, "faults/")
		if err := s.faults.Apply(FaultSpec{Name: name, Args: args}); err != nil {
			code := http.StatusBadRequest
			if _, known := faultTable[name]; !known {
				code = http.StatusNotFound
			}
			adminJSON(w, code, map[string]string{"error": err.Error()})
			return
		}
		adminJSON(w, http.StatusOK, map[string]string{"applied": name, "at": s.Now().Format(time.RFC3339)})
	default:
		adminJSON(w, http.StatusNotFound, map[string]string{"error": "unknown admin endpoint " + r.Method + " " + r.URL.Path})
	}
}

func adminJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
