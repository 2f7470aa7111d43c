package metal

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/palisade-fw/palisade/internal/testenv/ci"
)

// swaggerPath is the wire contract. CI checks out shared/ beside the clone,
// so from internal/metal it is <repo>/../shared/reference.
var swaggerPath = filepath.Join("..", "..", "..", "shared", "reference", "metal-api.swagger.json")

type swaggerSchema struct {
	Ref                  string                    `json:"$ref"`
	Type                 string                    `json:"type"`
	Format               string                    `json:"format"`
	Items                *swaggerSchema            `json:"items"`
	AdditionalProperties *swaggerSchema            `json:"additionalProperties"`
	Properties           map[string]*swaggerSchema `json:"properties"`
	Required             []string                  `json:"required"`
}

func loadSwagger(t *testing.T) map[string]*swaggerSchema {
	t.Helper()
	b, err := os.ReadFile(swaggerPath)
	if errors.Is(err, fs.ErrNotExist) {
		ci.SkipOutsideCI(t, "swagger contract "+swaggerPath+" is absent (shared/ not checked out beside the repo); skipping")
	}
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Definitions map[string]*swaggerSchema `json:"definitions"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Definitions
}

// requiredButOptional lists swagger-required request fields that metal-api
// treats as optional and that we deliberately omit when unset.
var requiredButOptional = map[string]bool{
	"v1.MachineUpdateRequest.description":     true, // server treats it as optional; FCM omits it
	"v1.MachineAllocationNetwork.autoacquire": true, // nil means true on the server
}

// TestStructsMatchSwagger walks every request and response struct and
// checks that each JSON field exists in the swagger definition with a
// matching type, and that required fields are always emitted.
func TestStructsMatchSwagger(t *testing.T) {
	defs := loadSwagger(t)
	roots := []struct {
		value any
		def   string
	}{
		{FirewallCreateRequest{}, "v1.FirewallCreateRequest"},
		{FirewallFindRequest{}, "v1.FirewallFindRequest"},
		{MachineFindRequest{}, "v1.MachineFindRequest"},
		{MachineUpdateRequest{}, "v1.MachineUpdateRequest"},
		{MachineReinstallRequest{}, "v1.MachineReinstallRequest"},
		{ImageFindRequest{}, "v1.ImageFindRequest"},
		{NetworkFindRequest{}, "v1.NetworkFindRequest"},
		{MachineResponse{}, "v1.MachineResponse"},
		{FirewallResponse{}, "v1.FirewallResponse"},
		{ImageResponse{}, "v1.ImageResponse"},
		{NetworkResponse{}, "v1.NetworkResponse"},
		{SizeResponse{}, "v1.SizeResponse"},
		{PartitionResponse{}, "v1.PartitionResponse"},
		{ProjectResponse{}, "v1.ProjectResponse"},
	}
	c := &contractChecker{t: t, defs: defs, seen: map[string]bool{}}
	for _, r := range roots {
		c.checkStruct(reflect.TypeOf(r.value), r.def)
	}
	if len(c.seen) < 30 {
		t.Errorf("only %d definitions checked; the walk is not following references", len(c.seen))
	}
}

type contractChecker struct {
	t    *testing.T
	defs map[string]*swaggerSchema
	seen map[string]bool
}

var timeType = reflect.TypeOf(time.Time{})

func (c *contractChecker) checkStruct(typ reflect.Type, def string) {
	key := typ.String() + "=" + def
	if c.seen[key] {
		return
	}
	c.seen[key] = true
	schema := c.defs[def]
	if schema == nil {
		c.t.Errorf("%s: swagger has no definition %q", typ, def)
		return
	}
	emitted := map[string]bool{}
	for f := range typ.Fields() {
		tag := f.Tag.Get("json")
		if !f.IsExported() || tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		where := def + "." + name
		prop := schema.Properties[name]
		if prop == nil {
			c.t.Errorf("%s (Go %s.%s): field not in swagger", where, typ.Name(), f.Name)
			continue
		}
		optional := strings.Contains(opts, "omitempty") || strings.Contains(opts, "omitzero")
		if slices.Contains(schema.Required, name) && optional && !requiredButOptional[where] {
			c.t.Errorf("%s: required in swagger but omitted when empty", where)
		}
		emitted[name] = true
		c.checkType(f.Type, prop, where)
	}
	for _, req := range schema.Required {
		if !emitted[req] {
			c.t.Errorf("%s.%s: required in swagger but missing in Go type %s", def, req, typ)
		}
	}
}

func (c *contractChecker) checkType(typ reflect.Type, prop *swaggerSchema, where string) {
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	if prop.Ref != "" {
		if typ.Kind() != reflect.Struct || typ == timeType {
			c.t.Errorf("%s: swagger refers to %s, Go has %s", where, prop.Ref, typ)
			return
		}
		c.checkStruct(typ, strings.TrimPrefix(prop.Ref, "#/definitions/"))
		return
	}
	bad := func() { c.t.Errorf("%s: swagger %s/%s, Go %s", where, prop.Type, prop.Format, typ) }
	switch prop.Type {
	case "string":
		if prop.Format == "date-time" {
			if typ != timeType {
				bad()
			}
		} else if typ.Kind() != reflect.String {
			bad()
		}
	case "boolean":
		if typ.Kind() != reflect.Bool {
			bad()
		}
	case "integer":
		switch prop.Format {
		case "int32":
			if typ.Kind() != reflect.Int32 {
				bad()
			}
		case "int64":
			if typ.Kind() != reflect.Int64 {
				bad()
			}
		default:
			if k := typ.Kind(); k != reflect.Int && k != reflect.Int32 && k != reflect.Int64 {
				bad()
			}
		}
	case "array":
		if typ.Kind() != reflect.Slice || prop.Items == nil {
			bad()
			return
		}
		c.checkType(typ.Elem(), prop.Items, where+"[]")
	case "object":
		if typ.Kind() != reflect.Map || typ.Key().Kind() != reflect.String || prop.AdditionalProperties == nil {
			bad()
			return
		}
		c.checkType(typ.Elem(), prop.AdditionalProperties, where+"{}")
	default:
		bad()
	}
}

// A response as metal-api writes it decodes into our types, including the
// camelCase expirationDate and zero times.
func TestDecodeServerStyleResponse(t *testing.T) {
	body := `{"id":"m1","liveliness":"Alive","tags":["a=b"],"bios":{"vendor":"v","version":"1","date":"d"},
	"hardware":{"memory":1,"cpu_cores":2,"disks":[],"nics":[]},"ledstate":{"value":"","description":""},
	"state":{"value":"","description":"","metal_hammer_version":"x"},
	"events":{"log":[{"event":"Phoned Home","time":"2024-05-01T10:00:00.123Z"},{"event":"Booting New Kernel","time":"2024-05-01T09:59:00Z"}],
	 "last_event_time":"2024-05-01T10:00:00Z","crash_loop":false,"failed_machine_reclaim":false},
	"allocation":{"created":"2024-05-01T09:50:00Z","creator":"metal-admin@metal-stack.io","name":"fw","hostname":"fw","project":"p",
	 "image":{"id":"firewall-ubuntu-3.0.20240503","expirationDate":"0001-01-01T00:00:00Z","features":["firewall"]},
	 "networks":[{"networkid":"internet","prefixes":[],"ips":["1.2.3.4"],"destinationprefixes":[],"vrf":1,"asn":0,"nat":true,
	  "private":false,"underlay":false,"networktype":"external","networktypev2":"external","nattypev2":"ipv4-masquerade","projectid":""}],
	 "ssh_pub_keys":[],"succeeded":false,"reinstall":false,"role":"firewall","allocationuuid":"u","filesystemlayout":{"id":"ignored"}}}`
	var m MachineResponse
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatal(err)
	}
	if m.Events.Log[0].Event != EventPhonedHome || m.Liveliness != LivelinessAlive {
		t.Errorf("events/liveliness not decoded: %+v", m.Events)
	}
	if m.Allocation == nil || m.Allocation.Image == nil || m.Allocation.Image.ID != "firewall-ubuntu-3.0.20240503" {
		t.Fatalf("allocation image not decoded: %+v", m.Allocation)
	}
	if !m.Allocation.Image.ExpirationDate.IsZero() || m.Allocation.Networks[0].IPs[0] != "1.2.3.4" {
		t.Errorf("image/network fields not decoded: %+v", m.Allocation)
	}
}
