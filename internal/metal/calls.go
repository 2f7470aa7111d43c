package metal

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-openapi/runtime"
	"github.com/metal-stack/metal-go/api/client/firewall"
	"github.com/metal-stack/metal-go/api/client/image"
	"github.com/metal-stack/metal-go/api/client/machine"
	"github.com/metal-stack/metal-go/api/client/network"
	"github.com/metal-stack/metal-go/api/client/partition"
	"github.com/metal-stack/metal-go/api/client/project"
	"github.com/metal-stack/metal-go/api/client/size"
	"github.com/metal-stack/metal-go/api/models"
)

// Each method below is one metal-go call. GETs and finds are idempotent and
// retried; allocate, update, free and reinstall never are, because a lost
// response may still have changed state server-side (use FindFirewalls to
// recover). need is the least permission metal-api requires.
var (
	opAllocate   = operation{name: OpFirewallAllocate, need: accessEdit}
	opFWFind     = operation{name: OpFirewallFind, need: accessView, idempotent: true}
	opFWGet      = operation{name: OpFirewallGet, need: accessView, idempotent: true}
	opMGet       = operation{name: OpMachineGet, need: accessView, idempotent: true}
	opMFind      = operation{name: OpMachineFind, need: accessView, idempotent: true}
	opMUpdate    = operation{name: OpMachineUpdate, need: accessAdmin}
	opMFree      = operation{name: OpMachineFree, need: accessEdit}
	opMReinstall = operation{name: OpMachineReinstall, need: accessEdit}
	opImgGet     = operation{name: OpImageGet, need: accessView, idempotent: true}
	opImgLatest  = operation{name: OpImageLatest, need: accessView, idempotent: true}
	opImgFind    = operation{name: OpImageFind, need: accessView, idempotent: true}
	opNetGet     = operation{name: OpNetworkGet, need: accessView, idempotent: true}
	opNetFind    = operation{name: OpNetworkFind, need: accessView, idempotent: true}
	opSizeGet    = operation{name: OpSizeGet, need: accessView, idempotent: true}
	opPartGet    = operation{name: OpPartitionGet, need: accessView, idempotent: true}
	opProjGet    = operation{name: OpProjectGet, need: accessView, idempotent: true}
)

var (
	errEmptyID    = errors.New("metal-api: empty id")
	errNilRequest = errors.New("metal-api: nil request")
)

// call runs fn as op and converts its payload M into the domain type T.
func call[T, M any](ctx context.Context, c *HTTPClient, op operation, fn func(ctx context.Context, timeout time.Duration, auth runtime.ClientAuthInfoWriter) (*M, error)) (*T, error) {
	payload, err := invoke(ctx, c, op, fn)
	if err != nil {
		return nil, err
	}
	return convert[T](payload)
}

// callList is call for list answers.
func callList[T, M any](ctx context.Context, c *HTTPClient, op operation, fn func(ctx context.Context, timeout time.Duration, auth runtime.ClientAuthInfoWriter) ([]*M, error)) ([]*T, error) {
	payload, err := invoke(ctx, c, op, fn)
	if err != nil {
		return nil, err
	}
	return convertAll[T](payload)
}

// AllocateFirewall allocates a firewall machine. Never retried: on an error
// the machine may still have been allocated, so look it up by name and tags.
func (c *HTTPClient) AllocateFirewall(ctx context.Context, req *FirewallCreateRequest) (*FirewallResponse, error) {
	if req == nil {
		return nil, errNilRequest
	}
	r := *req
	if r.SSHPubKeys == nil {
		r.SSHPubKeys = []string{} // required by swagger; an empty list is fine
	}
	body, err := convert[models.V1FirewallCreateRequest](&r)
	if err != nil {
		return nil, err
	}
	return call[FirewallResponse](ctx, c, opAllocate, func(ctx context.Context, t time.Duration, auth runtime.ClientAuthInfoWriter) (*models.V1FirewallResponse, error) {
		ok, err := c.api.Firewall.AllocateFirewall(firewall.NewAllocateFirewallParamsWithContext(ctx).WithTimeout(t).WithBody(body), auth)
		if err != nil {
			return nil, err
		}
		return ok.Payload, nil
	})
}

// FindFirewalls returns allocated firewalls matching all set filters.
func (c *HTTPClient) FindFirewalls(ctx context.Context, req *FirewallFindRequest) ([]*FirewallResponse, error) {
	if req == nil {
		req = &FirewallFindRequest{}
	}
	if err := refuseFalse(map[string]*bool{"allocation_succeeded": req.AllocationSucceeded}); err != nil {
		return nil, err
	}
	body, err := convert[models.V1FirewallFindRequest](req)
	if err != nil {
		return nil, err
	}
	return callList[FirewallResponse](ctx, c, opFWFind, func(ctx context.Context, t time.Duration, auth runtime.ClientAuthInfoWriter) ([]*models.V1FirewallResponse, error) {
		ok, err := c.api.Firewall.FindFirewalls(firewall.NewFindFirewallsParamsWithContext(ctx).WithTimeout(t).WithBody(body), auth)
		if err != nil {
			return nil, err
		}
		return ok.Payload, nil
	})
}

// GetFirewall returns one firewall; 404 also when the machine is not a firewall.
func (c *HTTPClient) GetFirewall(ctx context.Context, id string) (*FirewallResponse, error) {
	if id == "" {
		return nil, errEmptyID
	}
	return call[FirewallResponse](ctx, c, opFWGet, func(ctx context.Context, t time.Duration, auth runtime.ClientAuthInfoWriter) (*models.V1FirewallResponse, error) {
		ok, err := c.api.Firewall.FindFirewall(firewall.NewFindFirewallParamsWithContext(ctx).WithTimeout(t).WithID(id), auth)
		if err != nil {
			return nil, err
		}
		return ok.Payload, nil
	})
}

// GetMachine returns one machine, allocated or not.
func (c *HTTPClient) GetMachine(ctx context.Context, id string) (*MachineResponse, error) {
	if id == "" {
		return nil, errEmptyID
	}
	return call[MachineResponse](ctx, c, opMGet, func(ctx context.Context, t time.Duration, auth runtime.ClientAuthInfoWriter) (*models.V1MachineResponse, error) {
		ok, err := c.api.Machine.FindMachine(machine.NewFindMachineParamsWithContext(ctx).WithTimeout(t).WithID(id), auth)
		if err != nil {
			return nil, err
		}
		return ok.Payload, nil
	})
}

// FindMachines returns machines matching all set filters.
func (c *HTTPClient) FindMachines(ctx context.Context, req *MachineFindRequest) ([]*MachineResponse, error) {
	if req == nil {
		req = &MachineFindRequest{}
	}
	if err := refuseFalse(map[string]*bool{"allocation_succeeded": req.AllocationSucceeded}); err != nil {
		return nil, err
	}
	body, err := convert[models.V1MachineFindRequest](req)
	if err != nil {
		return nil, err
	}
	return callList[MachineResponse](ctx, c, opMFind, func(ctx context.Context, t time.Duration, auth runtime.ClientAuthInfoWriter) ([]*models.V1MachineResponse, error) {
		ok, err := c.api.Machine.FindMachines(machine.NewFindMachinesParamsWithContext(ctx).WithTimeout(t).WithBody(body), auth)
		if err != nil {
			return nil, err
		}
		return ok.Payload, nil
	})
}

// UpdateMachine changes tags, ssh keys or description. Needs Metal-Admin.
func (c *HTTPClient) UpdateMachine(ctx context.Context, req *MachineUpdateRequest) (*MachineResponse, error) {
	if req == nil {
		return nil, errNilRequest
	}
	if req.ID == "" {
		return nil, errEmptyID
	}
	body, err := convert[models.V1MachineUpdateRequest](req)
	if err != nil {
		return nil, err
	}
	return call[MachineResponse](ctx, c, opMUpdate, func(ctx context.Context, t time.Duration, auth runtime.ClientAuthInfoWriter) (*models.V1MachineResponse, error) {
		ok, err := c.api.Machine.UpdateMachine(machine.NewUpdateMachineParamsWithContext(ctx).WithTimeout(t).WithBody(body), auth)
		if err != nil {
			return nil, err
		}
		return ok.Payload, nil
	})
}

// FreeMachine releases a machine (firewalls too). The answer already has no
// allocation. Never retried.
func (c *HTTPClient) FreeMachine(ctx context.Context, id string) (*MachineResponse, error) {
	if id == "" {
		return nil, errEmptyID
	}
	return call[MachineResponse](ctx, c, opMFree, func(ctx context.Context, t time.Duration, auth runtime.ClientAuthInfoWriter) (*models.V1MachineResponse, error) {
		ok, err := c.api.Machine.FreeMachine(machine.NewFreeMachineParamsWithContext(ctx).WithTimeout(t).WithID(id), auth)
		if err != nil {
			return nil, err
		}
		return ok.Payload, nil
	})
}

// ReinstallMachine reinstalls an allocated machine with another image.
func (c *HTTPClient) ReinstallMachine(ctx context.Context, req *MachineReinstallRequest) (*MachineResponse, error) {
	if req == nil {
		return nil, errNilRequest
	}
	if req.ID == "" {
		return nil, errEmptyID
	}
	body, err := convert[models.V1MachineReinstallRequest](req)
	if err != nil {
		return nil, err
	}
	return call[MachineResponse](ctx, c, opMReinstall, func(ctx context.Context, t time.Duration, auth runtime.ClientAuthInfoWriter) (*models.V1MachineResponse, error) {
		ok, err := c.api.Machine.ReinstallMachine(machine.NewReinstallMachineParamsWithContext(ctx).WithTimeout(t).WithID(req.ID).WithBody(body), auth)
		if err != nil {
			return nil, err
		}
		return ok.Payload, nil
	})
}

// GetImage looks an image up by its exact id.
func (c *HTTPClient) GetImage(ctx context.Context, id string) (*ImageResponse, error) {
	if id == "" {
		return nil, errEmptyID
	}
	return call[ImageResponse](ctx, c, opImgGet, func(ctx context.Context, t time.Duration, auth runtime.ClientAuthInfoWriter) (*models.V1ImageResponse, error) {
		ok, err := c.api.Image.FindImage(image.NewFindImageParamsWithContext(ctx).WithTimeout(t).WithID(id), auth)
		if err != nil {
			return nil, err
		}
		return ok.Payload, nil
	})
}

// GetLatestImage resolves "os-major.minor" to the newest patch; a full id
// with a patch version matches exactly.
func (c *HTTPClient) GetLatestImage(ctx context.Context, id string) (*ImageResponse, error) {
	if id == "" {
		return nil, errEmptyID
	}
	return call[ImageResponse](ctx, c, opImgLatest, func(ctx context.Context, t time.Duration, auth runtime.ClientAuthInfoWriter) (*models.V1ImageResponse, error) {
		ok, err := c.api.Image.FindLatestImage(image.NewFindLatestImageParamsWithContext(ctx).WithTimeout(t).WithID(id), auth)
		if err != nil {
			return nil, err
		}
		return ok.Payload, nil
	})
}

// FindImages returns images matching all set filters.
func (c *HTTPClient) FindImages(ctx context.Context, req *ImageFindRequest) ([]*ImageResponse, error) {
	if req == nil {
		req = &ImageFindRequest{}
	}
	body, err := convert[models.V1ImageFindRequest](req)
	if err != nil {
		return nil, err
	}
	return callList[ImageResponse](ctx, c, opImgFind, func(ctx context.Context, t time.Duration, auth runtime.ClientAuthInfoWriter) ([]*models.V1ImageResponse, error) {
		ok, err := c.api.Image.FindImages(image.NewFindImagesParamsWithContext(ctx).WithTimeout(t).WithBody(body), auth)
		if err != nil {
			return nil, err
		}
		return ok.Payload, nil
	})
}

// GetNetwork returns one network.
func (c *HTTPClient) GetNetwork(ctx context.Context, id string) (*NetworkResponse, error) {
	if id == "" {
		return nil, errEmptyID
	}
	return call[NetworkResponse](ctx, c, opNetGet, func(ctx context.Context, t time.Duration, auth runtime.ClientAuthInfoWriter) (*models.V1NetworkResponse, error) {
		ok, err := c.api.Network.FindNetwork(network.NewFindNetworkParamsWithContext(ctx).WithTimeout(t).WithID(id), auth)
		if err != nil {
			return nil, err
		}
		return ok.Payload, nil
	})
}

// FindNetworks returns networks matching all set filters.
func (c *HTTPClient) FindNetworks(ctx context.Context, req *NetworkFindRequest) ([]*NetworkResponse, error) {
	if req == nil {
		req = &NetworkFindRequest{}
	}
	if err := refuseFalse(map[string]*bool{"nat": req.NAT, "privatesuper": req.PrivateSuper, "underlay": req.Underlay}); err != nil {
		return nil, err
	}
	body, err := convert[models.V1NetworkFindRequest](req)
	if err != nil {
		return nil, err
	}
	return callList[NetworkResponse](ctx, c, opNetFind, func(ctx context.Context, t time.Duration, auth runtime.ClientAuthInfoWriter) ([]*models.V1NetworkResponse, error) {
		ok, err := c.api.Network.FindNetworks(network.NewFindNetworksParamsWithContext(ctx).WithTimeout(t).WithBody(body), auth)
		if err != nil {
			return nil, err
		}
		return ok.Payload, nil
	})
}

// GetSize returns one machine size.
func (c *HTTPClient) GetSize(ctx context.Context, id string) (*SizeResponse, error) {
	if id == "" {
		return nil, errEmptyID
	}
	return call[SizeResponse](ctx, c, opSizeGet, func(ctx context.Context, t time.Duration, auth runtime.ClientAuthInfoWriter) (*models.V1SizeResponse, error) {
		ok, err := c.api.Size.FindSize(size.NewFindSizeParamsWithContext(ctx).WithTimeout(t).WithID(id), auth)
		if err != nil {
			return nil, err
		}
		return ok.Payload, nil
	})
}

// GetPartition returns one partition.
func (c *HTTPClient) GetPartition(ctx context.Context, id string) (*PartitionResponse, error) {
	if id == "" {
		return nil, errEmptyID
	}
	return call[PartitionResponse](ctx, c, opPartGet, func(ctx context.Context, t time.Duration, auth runtime.ClientAuthInfoWriter) (*models.V1PartitionResponse, error) {
		ok, err := c.api.Partition.FindPartition(partition.NewFindPartitionParamsWithContext(ctx).WithTimeout(t).WithID(id), auth)
		if err != nil {
			return nil, err
		}
		return ok.Payload, nil
	})
}

// GetProject returns one project; its id is in Meta.ID.
func (c *HTTPClient) GetProject(ctx context.Context, id string) (*ProjectResponse, error) {
	if id == "" {
		return nil, errEmptyID
	}
	return call[ProjectResponse](ctx, c, opProjGet, func(ctx context.Context, t time.Duration, auth runtime.ClientAuthInfoWriter) (*models.V1ProjectResponse, error) {
		ok, err := c.api.Project.FindProject(project.NewFindProjectParamsWithContext(ctx).WithTimeout(t).WithID(id), auth)
		if err != nil {
			return nil, err
		}
		return ok.Payload, nil
	})
}

// refuseFalse rejects boolean filters set to false: metal-go v0.42.5's find
// models hold them as bool with omitempty, so false would silently become
// "no filter" and match more than asked.
func refuseFalse(filters map[string]*bool) error {
	for name, v := range filters {
		if v != nil && !*v {
			return fmt.Errorf("metal-api: metal-go cannot send the filter %s=false; leave it unset and filter the answer", name)
		}
	}
	return nil
}

// credential returns the signer for calls that need a.
func (c *HTTPClient) credential(a access) runtime.ClientAuthInfoWriter { return c.auth[a] }
