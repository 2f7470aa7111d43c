package release

import (
	"archive/tar"
	"bytes"
	"context"
	"embed"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The manager image: scratch plus CA certificates, a passwd entry for the non-root user and
// the static manager binary. The chart's podSecurityContext runs the same user.
const (
	ImageName        = "palisade-manager"
	ImageEntrypoint  = "/manager"
	ImageUser        = "65532:65532"
	ImageDescription = "Palisade firewall manager for metal-stack seed and management clusters"
	SourceURL        = "https://github.com/palisade-fw/palisade"
	// DefaultCABundle is where Debian's ca-certificates package keeps the bundle; it goes into
	// the image at the same path, one of those Go's crypto/x509 reads on Linux.
	DefaultCABundle = "/etc/ssl/certs/ca-certificates.crt"
	// RefNameAnnotation names an image in an OCI layout's index.json (the tag).
	RefNameAnnotation = "org.opencontainers.image.ref.name"
	// ImageNameAnnotation is containerd's name of an imported image.
	ImageNameAnnotation = "io.containerd.image.name"
)

//go:embed rootfs
var rootfs embed.FS

// ImageSpec is one image Palisade ships: a static binary of the module on the same base.
type ImageSpec struct {
	// Name is the image (and archive) name; the repository's last element.
	Name string
	// Package is the Go package built into the image.
	Package string
	// Entrypoint is the binary's path in the image, the exec-form entrypoint.
	Entrypoint  string
	Description string
}

// The images: the manager, and the droptailer receiver that the workload chart deploys
// (droptailer.enabled).
var (
	ManagerImage    = ImageSpec{Name: ImageName, Package: "./cmd/manager", Entrypoint: ImageEntrypoint, Description: ImageDescription}
	DroptailerImage = ImageSpec{Name: "palisade-droptailer", Package: "./cmd/droptailer", Entrypoint: "/droptailer",
		Description: "Palisade droptailer: prints the packets the firewalls dropped, in the workload cluster's firewall namespace"}
	// Images by the name `release image --image` takes.
	Images = map[string]ImageSpec{"manager": ManagerImage, "droptailer": DroptailerImage}
)

// Labels are the OCI labels of the manager image's config and the annotations of its index.
func Labels(info Info) map[string]string { return ManagerImage.Labels(info) }

// Labels are the OCI labels of the image config and the annotations of its index.
func (s ImageSpec) Labels(info Info) map[string]string {
	return map[string]string{
		"org.opencontainers.image.title":       s.Name,
		"org.opencontainers.image.description": s.Description,
		"org.opencontainers.image.version":     info.Version,
		"org.opencontainers.image.revision":    info.Commit,
		"org.opencontainers.image.created":     info.Date,
		"org.opencontainers.image.source":      SourceURL,
		"org.opencontainers.image.url":         SourceURL,
	}
}

// ImageOptions describe one image.
type ImageOptions struct {
	Info Info
	// Spec is the image; the zero value is ManagerImage.
	Spec ImageSpec
	// Binaries maps each platform to its static binary of Spec.Package.
	Binaries map[Platform]string
	// CABundle is the CA certificate file copied into the image; default DefaultCABundle.
	CABundle string
}

// BuildImage assembles the multi-platform image index. Nothing is downloaded: the base is
// empty (scratch).
func BuildImage(opts ImageOptions) (v1.ImageIndex, error) {
	caPath := opts.CABundle
	if caPath == "" {
		caPath = DefaultCABundle
	}
	ca, err := os.ReadFile(caPath)
	if err != nil {
		return nil, fmt.Errorf("CA bundle: %w", err)
	}
	spec := opts.Spec
	if spec.Name == "" {
		spec = ManagerImage
	}
	created := opts.Info.Time()
	base, err := baseLayer(ca, created)
	if err != nil {
		return nil, err
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, p := range Platforms {
		bin, ok := opts.Binaries[p]
		if !ok {
			return nil, fmt.Errorf("no %s binary for %s", spec.Name, p)
		}
		img, err := platformImage(spec, opts.Info, p, base, bin, created)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: p.OS, Architecture: p.Arch}},
		})
	}
	return mutate.Annotations(idx, spec.Labels(opts.Info)).(v1.ImageIndex), nil
}

func platformImage(spec ImageSpec, info Info, p Platform, base v1.Layer, binPath string, created time.Time) (v1.Image, error) {
	bin, err := os.ReadFile(binPath)
	if err != nil {
		return nil, err
	}
	binLayer, err := layer([]tarEntry{{name: path.Base(spec.Entrypoint), mode: 0o755, data: bin}}, created)
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img,
		mutate.Addendum{Layer: base, MediaType: types.OCILayer, History: v1.History{
			Created: v1.Time{Time: created}, CreatedBy: "palisade release: /etc/passwd, /etc/group, CA certificates, /tmp", Comment: "base"}},
		mutate.Addendum{Layer: binLayer, MediaType: types.OCILayer, History: v1.History{
			Created: v1.Time{Time: created}, CreatedBy: "palisade release: go " + joinArgs(BuildArgs(info, spec.Entrypoint, spec.Package))}},
	)
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = p.OS, p.Arch
	cfg.Created = v1.Time{Time: created}
	cfg.Author = SourceURL
	cfg.Config = v1.Config{
		// Exec form and no shell in the image: the entrypoint is the binary itself.
		Entrypoint: []string{spec.Entrypoint},
		User:       ImageUser,
		WorkingDir: "/",
		Labels:     spec.Labels(info),
	}
	return mutate.ConfigFile(img, cfg)
}

func joinArgs(args []string) string {
	var b bytes.Buffer
	for i, a := range args {
		if i > 0 {
			b.WriteByte(' ')
		}
		if bytes.ContainsAny([]byte(a), " ") {
			fmt.Fprintf(&b, "%q", a)
		} else {
			b.WriteString(a)
		}
	}
	return b.String()
}

// baseLayer holds what the binary needs around it: the passwd and group entries of the
// non-root user (rootfs/etc, also copied by the Dockerfile), the CA bundle and an empty /tmp
// for runs without the chart (which mounts an emptyDir there; the root filesystem stays
// read-only).
func baseLayer(ca []byte, created time.Time) (v1.Layer, error) {
	var entries []tarEntry
	err := fs.WalkDir(rootfs, "rootfs", func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == "rootfs" {
			return err
		}
		name := p[len("rootfs/"):]
		if d.IsDir() {
			entries = append(entries, tarEntry{name: name + "/", mode: 0o755, dir: true})
			return nil
		}
		data, err := rootfs.ReadFile(p)
		entries = append(entries, tarEntry{name: name, mode: 0o644, data: data})
		return err
	})
	if err != nil {
		return nil, err
	}
	entries = append(entries,
		tarEntry{name: "etc/ssl/", mode: 0o755, dir: true},
		tarEntry{name: "etc/ssl/certs/", mode: 0o755, dir: true},
		tarEntry{name: DefaultCABundle[1:], mode: 0o644, data: ca},
		tarEntry{name: "tmp/", mode: 0o1777, dir: true},
	)
	return layer(entries, created)
}

type tarEntry struct {
	name string
	mode int64
	data []byte
	dir  bool
	link string // a symbolic link to link
}

// writeTar writes entries sorted by name, root-owned, all with one timestamp, so that the
// same input always gives the same bytes.
func writeTar(w io.Writer, entries []tarEntry, mtime time.Time) error {
	entries = slices.Clone(entries)
	sort.Slice(entries, func(i, j int) bool { return entries[i].name < entries[j].name })
	tw := tar.NewWriter(w)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, ModTime: mtime, Format: tar.FormatPAX, Uname: "root", Gname: "root"}
		switch {
		case e.dir:
			h.Typeflag = tar.TypeDir
		case e.link != "":
			h.Typeflag, h.Linkname, h.Mode = tar.TypeSymlink, e.link, 0o777
		default:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := tw.Write(e.data); err != nil {
			return err
		}
	}
	return tw.Close()
}

// layer turns entries into a gzip-compressed OCI layer.
func layer(entries []tarEntry, mtime time.Time) (v1.Layer, error) {
	var buf bytes.Buffer
	if err := writeTar(&buf, entries, mtime); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(types.OCILayer))
}

// WriteLayout writes idx into a fresh OCI image layout at dir, named tag in index.json (the
// form skopeo, podman and crane read) and fullName (repository:tag, the name containerd and
// Docker give it on import), and returns the index's digest.
func WriteLayout(dir string, idx v1.ImageIndex, tag, fullName string) (v1.Hash, error) {
	if err := os.RemoveAll(dir); err != nil {
		return v1.Hash{}, err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return v1.Hash{}, err
	}
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{RefNameAnnotation: tag, ImageNameAnnotation: fullName})); err != nil {
		return v1.Hash{}, err
	}
	return idx.Digest()
}

// ReadLayout returns the image index named tag in the OCI layout at dir.
func ReadLayout(dir, tag string) (v1.ImageIndex, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, err
	}
	top, err := p.ImageIndex()
	if err != nil {
		return nil, err
	}
	m, err := top.IndexManifest()
	if err != nil {
		return nil, err
	}
	for _, d := range m.Manifests {
		if d.Annotations[RefNameAnnotation] == tag && d.MediaType.IsIndex() {
			return top.ImageIndex(d.Digest)
		}
	}
	return nil, fmt.Errorf("%s holds no image index named %q", dir, tag)
}

// WriteArchive tars the OCI layout at dir into file (an "OCI archive": `skopeo copy
// oci-archive:FILE ...`, `podman load -i FILE`, `docker load -i FILE` with Docker 25 or later).
func WriteArchive(dir, file string, mtime time.Time) error {
	var names []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		names = append(names, p)
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(names)
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	for _, p := range names {
		rel, _ := filepath.Rel(dir, p)
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		h := &tar.Header{Name: filepath.ToSlash(rel), ModTime: mtime, Mode: 0o644, Format: tar.FormatPAX}
		if st.IsDir() {
			h.Name += "/"
			h.Typeflag, h.Mode = tar.TypeDir, 0o755
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
			continue
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		h.Typeflag, h.Size = tar.TypeReg, int64(len(data))
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := tw.Write(data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return f.Close()
}

// Push uploads idx as ref (e.g. ghcr.io/palisade-fw/palisade-manager:0.1.0) with the
// credentials of the Docker config (~/.docker/config.json, `docker login` or `crane auth login`).
func Push(ctx context.Context, idx v1.ImageIndex, ref string, opts ...remote.Option) error {
	r, err := name.ParseReference(ref)
	if err != nil {
		return err
	}
	opts = append([]remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)}, opts...)
	return remote.WriteIndex(r, idx, opts...)
}
