package metal

import (
	"context"
	"errors"
	"net/http"
	"net/url"
)

// Each method below maps to one metal-api endpoint. GETs and finds are
// idempotent and retried; allocate, update, free and reinstall never are,
// because a lost response may still have changed state server-side (use
// FindFirewalls to recover).

func get[T any](ctx context.Context, c *HTTPClient, op, path string) (*T, error) {
	out := new(T)
	if err := c.do(ctx, call{op: op, method: http.MethodGet, path: path, idempotent: true}, out); err != nil {
		return nil, err
	}
	return out, nil
}

func find[T any](ctx context.Context, c *HTTPClient, op, path string, req any) ([]*T, error) {
	out := []*T{}
	if err := c.do(ctx, call{op: op, method: http.MethodPost, path: path, body: req, idempotent: true}, &out); err != nil {
		return nil, err
	}
	return out, nil
}

func mutate[T any](ctx context.Context, c *HTTPClient, op, method, path string, req any) (*T, error) {
	out := new(T)
	if err := c.do(ctx, call{op: op, method: method, path: path, body: req}, out); err != nil {
		return nil, err
	}
	return out, nil
}

var (
	errEmptyID    = errors.New("metal-api: empty id")
	errNilRequest = errors.New("metal-api: nil request")
)

// seg escapes one path segment.
func seg(id string) string { return url.PathEscape(id) }

// AllocateFirewall allocates a firewall machine. Never retried: on an error
// the machine may still have been allocated, so look it up by name and tags.
func (c *HTTPClient) AllocateFirewall(ctx context.Context, req *FirewallCreateRequest) (*FirewallResponse, error) {
	if req == nil {
		return nil, errNilRequest
	}
	body := *req
	if body.SSHPubKeys == nil {
		body.SSHPubKeys = []string{} // required by swagger; an empty list is fine
	}
	return mutate[FirewallResponse](ctx, c, OpFirewallAllocate, http.MethodPost, "v1/firewall/allocate", &body)
}

// FindFirewalls returns allocated firewalls matching all set filters.
func (c *HTTPClient) FindFirewalls(ctx context.Context, req *FirewallFindRequest) ([]*FirewallResponse, error) {
	if req == nil {
		req = &FirewallFindRequest{}
	}
	return find[FirewallResponse](ctx, c, OpFirewallFind, "v1/firewall/find", req)
}

// GetFirewall returns one firewall; 404 also when the machine is not a firewall.
func (c *HTTPClient) GetFirewall(ctx context.Context, id string) (*FirewallResponse, error) {
	if id == "" {
		return nil, errEmptyID
	}
	return get[FirewallResponse](ctx, c, OpFirewallGet, "v1/firewall/"+seg(id))
}

// GetMachine returns one machine, allocated or not.
func (c *HTTPClient) GetMachine(ctx context.Context, id string) (*MachineResponse, error) {
	if id == "" {
		return nil, errEmptyID
	}
	return get[MachineResponse](ctx, c, OpMachineGet, "v1/machine/"+seg(id))
}

// FindMachines returns machines matching all set filters.
func (c *HTTPClient) FindMachines(ctx context.Context, req *MachineFindRequest) ([]*MachineResponse, error) {
	if req == nil {
		req = &MachineFindRequest{}
	}
	return find[MachineResponse](ctx, c, OpMachineFind, "v1/machine/find", req)
}

// UpdateMachine changes tags, ssh keys or description. Needs Metal-Admin.
func (c *HTTPClient) UpdateMachine(ctx context.Context, req *MachineUpdateRequest) (*MachineResponse, error) {
	if req == nil {
		return nil, errNilRequest
	}
	if req.ID == "" {
		return nil, errEmptyID
	}
	return mutate[MachineResponse](ctx, c, OpMachineUpdate, http.MethodPost, "v1/machine", req)
}

// FreeMachine releases a machine (firewalls too). The answer already has no
// allocation. Never retried.
func (c *HTTPClient) FreeMachine(ctx context.Context, id string) (*MachineResponse, error) {
	if id == "" {
		return nil, errEmptyID
	}
	return mutate[MachineResponse](ctx, c, OpMachineFree, http.MethodDelete, "v1/machine/"+seg(id)+"/free", nil)
}

// ReinstallMachine reinstalls an allocated machine with another image.
func (c *HTTPClient) ReinstallMachine(ctx context.Context, req *MachineReinstallRequest) (*MachineResponse, error) {
	if req == nil {
		return nil, errNilRequest
	}
	if req.ID == "" {
		return nil, errEmptyID
	}
	return mutate[MachineResponse](ctx, c, OpMachineReinstall, http.MethodPost, "v1/machine/"+seg(req.ID)+"/reinstall", req)
}

// GetImage looks an image up by its exact id.
func (c *HTTPClient) GetImage(ctx context.Context, id string) (*ImageResponse, error) {
	if id == "" {
		return nil, errEmptyID
	}
	return get[ImageResponse](ctx, c, OpImageGet, "v1/image/"+seg(id))
}

// GetLatestImage resolves "os-major.minor" to the newest patch; a full id
// with a patch version matches exactly.
func (c *HTTPClient) GetLatestImage(ctx context.Context, id string) (*ImageResponse, error) {
	if id == "" {
		return nil, errEmptyID
	}
	return get[ImageResponse](ctx, c, OpImageLatest, "v1/image/"+seg(id)+"/latest")
}

// FindImages returns images matching all set filters.
func (c *HTTPClient) FindImages(ctx context.Context, req *ImageFindRequest) ([]*ImageResponse, error) {
	if req == nil {
		req = &ImageFindRequest{}
	}
	return find[ImageResponse](ctx, c, OpImageFind, "v1/image/find", req)
}

// GetNetwork returns one network.
func (c *HTTPClient) GetNetwork(ctx context.Context, id string) (*NetworkResponse, error) {
	if id == "" {
		return nil, errEmptyID
	}
	return get[NetworkResponse](ctx, c, OpNetworkGet, "v1/network/"+seg(id))
}

// FindNetworks returns networks matching all set filters.
func (c *HTTPClient) FindNetworks(ctx context.Context, req *NetworkFindRequest) ([]*NetworkResponse, error) {
	if req == nil {
		req = &NetworkFindRequest{}
	}
	return find[NetworkResponse](ctx, c, OpNetworkFind, "v1/network/find", req)
}

// GetSize returns one machine size.
func (c *HTTPClient) GetSize(ctx context.Context, id string) (*SizeResponse, error) {
	if id == "" {
		return nil, errEmptyID
	}
	return get[SizeResponse](ctx, c, OpSizeGet, "v1/size/"+seg(id))
}

// GetPartition returns one partition.
func (c *HTTPClient) GetPartition(ctx context.Context, id string) (*PartitionResponse, error) {
	if id == "" {
		return nil, errEmptyID
	}
	return get[PartitionResponse](ctx, c, OpPartitionGet, "v1/partition/"+seg(id))
}

// GetProject returns one project; its id is in Meta.ID.
func (c *HTTPClient) GetProject(ctx context.Context, id string) (*ProjectResponse, error) {
	if id == "" {
		return nil, errEmptyID
	}
	return get[ProjectResponse](ctx, c, OpProjectGet, "v1/project/"+seg(id))
}
