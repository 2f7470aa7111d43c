package metal

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/metal-stack/metal-go/api/models"
)

// notInMetalGo are fields of the reference swagger (a newer metal-api) that
// metal-go v0.42.5's models lack. They stay in the domain types, which
// follow the swagger, but always arrive empty through metal-go.
var notInMetalGo = map[string]bool{
	"v1.MachineNetwork.networktypev2": true,
	"v1.MachineNetwork.nattypev2":     true,
	"v1.MachineNetwork.projectid":     true,
	"v1.NetworkResponse.networktype":  true,
	"v1.NetworkResponse.nattype":      true,
}

// TestDomainFieldsExistInMetalGo backs convert: every JSON field of a domain
// type has a field of the same name in the metal-go model it is copied
// to or from, recursively, so the JSON copy loses nothing unnoticed.
func TestDomainFieldsExistInMetalGo(t *testing.T) {
	pairs := []struct{ domain, model any }{
		{FirewallCreateRequest{}, models.V1FirewallCreateRequest{}},
		{FirewallFindRequest{}, models.V1FirewallFindRequest{}},
		{MachineFindRequest{}, models.V1MachineFindRequest{}},
		{MachineUpdateRequest{}, models.V1MachineUpdateRequest{}},
		{MachineReinstallRequest{}, models.V1MachineReinstallRequest{}},
		{ImageFindRequest{}, models.V1ImageFindRequest{}},
		{NetworkFindRequest{}, models.V1NetworkFindRequest{}},
		{MachineResponse{}, models.V1MachineResponse{}},
		{FirewallResponse{}, models.V1FirewallResponse{}},
		{ImageResponse{}, models.V1ImageResponse{}},
		{NetworkResponse{}, models.V1NetworkResponse{}},
		{SizeResponse{}, models.V1SizeResponse{}},
		{PartitionResponse{}, models.V1PartitionResponse{}},
		{ProjectResponse{}, models.V1ProjectResponse{}},
	}
	seen := map[reflect.Type]bool{}
	var walk func(domain, model reflect.Type)
	walk = func(domain, model reflect.Type) {
		domain, model = elem(domain), elem(model)
		if domain.Kind() != reflect.Struct || domain == timeType || seen[domain] {
			return
		}
		seen[domain] = true
		fields := map[string]reflect.StructField{}
		for f := range model.Fields() {
			fields[jsonName(f)] = f
		}
		for f := range domain.Fields() {
			name := jsonName(f)
			where := "v1." + domain.Name() + "." + name
			mf, ok := fields[name]
			if !ok {
				if !notInMetalGo[where] {
					t.Errorf("%s: no field %q in metal-go's %s", where, name, model.Name())
				}
				continue
			}
			walk(f.Type, mf.Type)
		}
	}
	for _, p := range pairs {
		walk(reflect.TypeOf(p.domain), reflect.TypeOf(p.model))
	}
	if len(seen) < 25 {
		t.Errorf("only %d types walked; references are not followed", len(seen))
	}
}

func elem(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
		t = t.Elem()
	}
	return t
}

func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	return name
}

// TestRequestsOnTheWire pins what metal-go puts on the wire for the requests
// Palisade sends: the domain request converted to metal-go's model and
// encoded as go-openapi's JSON producer does.
func TestRequestsOnTheWire(t *testing.T) {
	yes := true
	tests := []struct {
		name string
		req  func() (any, error)
		want string
	}{
		{
			name: "allocate firewall",
			req: func() (any, error) {
				return convert[models.V1FirewallCreateRequest](&FirewallCreateRequest{
					Name: "fw-1", Hostname: "fw-1", Description: "created by palisade",
					ProjectID: "p", PartitionID: "part", SizeID: "size", ImageID: "firewall-ubuntu-3.0",
					SSHPubKeys: []string{}, UserData: `{"ignition":{}}`,
					Tags:          []string{"cluster.metal-stack.io/id=c1"},
					Networks:      []MachineAllocationNetwork{{NetworkID: "internet", AutoAcquire: &yes}, {NetworkID: "tenant"}},
					FirewallRules: &FirewallRules{Egress: []FirewallEgressRule{{Protocol: "TCP", Ports: []int32{443}, To: []string{"0.0.0.0/0"}, Comment: "https"}}},
				})
			},
			want: `{"description":"created by palisade","dns_servers":null,` +
				`"firewall_rules":{"egress":[{"comment":"https","ports":[443],"protocol":"TCP","to":["0.0.0.0/0"]}],"ingress":null},` +
				`"hostname":"fw-1","imageid":"firewall-ubuntu-3.0","ips":null,"name":"fw-1",` +
				`"networks":[{"autoacquire":true,"networkid":"internet"},{"autoacquire":null,"networkid":"tenant"}],` +
				`"ntp_servers":null,"partitionid":"part","placement_tags":null,"projectid":"p","sizeid":"size",` +
				`"ssh_pub_keys":[],"tags":["cluster.metal-stack.io/id=c1"],"user_data":"{\"ignition\":{}}"}`,
		},
		{
			name: "find by name, project and tags",
			req: func() (any, error) {
				return convert[models.V1FirewallFindRequest](&FirewallFindRequest{AllocationName: "fw-1", AllocationProject: "p", Tags: []string{"a=b"}})
			},
			want: `{"allocation_name":"fw-1","allocation_project":"p","disk_names":null,"disk_sizes":null,` +
				`"network_asns":null,"network_destination_prefixes":null,"network_ids":null,"network_ips":null,` +
				`"network_prefixes":null,"network_vrfs":null,"nics_mac_addresses":null,"nics_names":null,` +
				`"nics_neighbor_mac_addresses":null,"nics_neighbor_names":null,"nics_neighbor_vrfs":null,"nics_vrfs":null,"tags":["a=b"]}`,
		},
		{
			name: "update tags only leaves the description alone (null)",
			req: func() (any, error) {
				return convert[models.V1MachineUpdateRequest](&MachineUpdateRequest{ID: "m1", Tags: []string{"a=b"}})
			},
			want: `{"description":null,"id":"m1","ssh_pub_keys":null,"tags":["a=b"]}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := tt.req()
			if err != nil {
				t.Fatal(err)
			}
			got, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Fatalf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

// A false boolean filter cannot pass through metal-go v0.42.5 (its model
// drops false); the client refuses it instead of widening the search.
func TestFalseBoolFilterIsRefused(t *testing.T) {
	c, err := New(Config{URL: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	no := false
	if _, err := c.FindNetworks(t.Context(), &NetworkFindRequest{PrivateSuper: &no}); err == nil || !strings.Contains(err.Error(), "privatesuper") {
		t.Errorf("network find with privatesuper=false: %v", err)
	}
	if _, err := c.FindFirewalls(t.Context(), &FirewallFindRequest{AllocationSucceeded: &no}); err == nil || !strings.Contains(err.Error(), "allocation_succeeded") {
		t.Errorf("firewall find with allocation_succeeded=false: %v", err)
	}
}
