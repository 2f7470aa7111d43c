package userdata

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"sigs.k8s.io/controller-runtime/pkg/client"

	v2 "github.com/palisade-fw/palisade/api/v2"
)

// DefaultMaxSize is the default limit of the rendered userdata.
const DefaultMaxSize = 512 * 1024

// Renderer turns a FirewallSpec's userdata into what is sent to metal-api.
type Renderer struct {
	// Reader reads referenced Secrets and ConfigMaps; a controller-runtime client or cache works.
	Reader client.Reader
	// MaxSize is the limit of the rendered bytes; 0 means DefaultMaxSize.
	MaxSize int
	// AgentUnits enables the units of the package's AgentUnits (firewall-controller.service)
	// in rendered userdataContents (not in legacy userdata, which is passed as is).
	AgentUnits bool
}

// New returns a Renderer with the default size limit and the agent units enabled.
func New(reader client.Reader) *Renderer {
	return &Renderer{Reader: reader, MaxSize: DefaultMaxSize, AgentUnits: true}
}

// Result is rendered userdata.
type Result struct {
	// Userdata is sent to metal-api at allocation.
	Userdata string
	// Hash is the hex SHA-256 that drives rolls: over Userdata for legacy userdata, and over the
	// files (generated tokens excluded, see contentHash) for userdataContents.
	Hash string
	// Files are the rendered paths, sorted.
	Files []string
}

// Render renders spec's userdata, reading referenced objects from namespace.
//
// Legacy spec.Userdata is returned verbatim. userdataContents become Ignition JSON with one
// file per entry, sorted by path, so the order of the list does not matter. All missing
// objects and keys are reported together; IsMissing finds the first. No userdata at all
// renders to the empty string.
func (r *Renderer) Render(ctx context.Context, namespace string, spec *v2.FirewallSpec) (*Result, error) {
	if spec.Userdata != "" && len(spec.UserdataContents) > 0 {
		return nil, errors.New("userdata and userdataContents are mutually exclusive")
	}
	if len(spec.UserdataContents) == 0 {
		if err := r.checkSize(len(spec.Userdata)); err != nil {
			return nil, err
		}
		return &Result{Userdata: spec.Userdata, Hash: sha256Hex([]byte(spec.Userdata))}, nil
	}

	files, err := r.resolveAll(ctx, namespace, spec.UserdataContents)
	if err != nil {
		return nil, err
	}
	rendered, err := buildIgnition(files, r.AgentUnits)
	if err != nil {
		return nil, fmt.Errorf("encoding Ignition config: %w", err)
	}
	if err := r.checkSize(len(rendered)); err != nil {
		return nil, err
	}
	paths := make([]string, len(files))
	for i, f := range files {
		paths[i] = f.path
	}
	return &Result{Userdata: string(rendered), Hash: contentHash(files, r.AgentUnits), Files: paths}, nil
}

// resolveAll reads every entry, sorted by path. Missing sources are collected so that one
// condition names all of them; any other error stops at once.
func (r *Renderer) resolveAll(ctx context.Context, namespace string, contents []v2.UserdataContent) ([]file, error) {
	sorted := slices.Clone(contents)
	slices.SortFunc(sorted, func(a, b v2.UserdataContent) int { return cmp.Compare(a.Path, b.Path) })

	files := make([]file, 0, len(sorted))
	var missingErrs []error
	for i, c := range sorted {
		if i > 0 && sorted[i-1].Path == c.Path {
			return nil, fmt.Errorf("userdataContents path %q is used more than once", c.Path)
		}
		f, err := r.resolve(ctx, namespace, c)
		if _, ok := IsMissing(err); ok {
			missingErrs = append(missingErrs, err)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("userdataContents %q: %w", c.Path, err)
		}
		files = append(files, f)
	}
	if len(missingErrs) > 0 {
		return nil, errors.Join(missingErrs...)
	}
	return files, nil
}

func (r *Renderer) checkSize(n int) error {
	limit := r.MaxSize
	if limit <= 0 {
		limit = DefaultMaxSize
	}
	if n > limit {
		return &TooLargeError{Size: n, Max: limit, Reason: v2.ReasonUserdataTooLarge}
	}
	return nil
}
