// Command release builds Palisade's shipped artifacts without a Docker daemon (docs/packaging.md):
//
//	release image  [--image manager|droptailer] [--out bin/image] [--repository R] [--ca-bundle FILE]
//	                                                                       an image: OCI layout + OCI archive
//	release push   --ref R:TAG [--layout bin/image/oci]                    push the image index to a registry
//	release agent  [--out bin/release] [--key FILE]                        agent binaries, units, bundles, sums, signatures
//	release verify --dir bin/release [--public-key FILE]                   check a release against its sums and signatures
//
// The version comes from the VERSION file, commit and date from git; --version, --commit and
// --date override them.
package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"

	"github.com/palisade-fw/palisade/internal/modroot"
	"github.com/palisade-fw/palisade/internal/release"
	"github.com/palisade-fw/palisade/internal/signing"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "release:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: release image|push|agent|verify [flags]")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	root, err := modroot.Find()
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet(args[0], flag.ExitOnError)
	version := fs.String("version", "", "release version (default: the VERSION file)")
	commit := fs.String("commit", "", "commit to stamp (default: git HEAD)")
	date := fs.String("date", "", "RFC 3339 date to stamp (default: the commit date)")
	info := func() (release.Info, error) {
		i, err := release.GitInfo(root)
		if err != nil {
			return i, err
		}
		for dst, v := range map[*string]string{&i.Version: *version, &i.Commit: *commit, &i.Date: *date} {
			if v != "" {
				*dst = v
			}
		}
		return i, nil
	}
	switch args[0] {
	case "image":
		image := fs.String("image", "manager", "which image: manager or droptailer")
		out := fs.String("out", "", "output directory (default bin/image for the manager, bin/image-<image> for the others)")
		repo := fs.String("repository", "", "image repository recorded in the archive, the chart's image.repository (default ghcr.io/palisade-fw/<name>)")
		ca := fs.String("ca-bundle", release.DefaultCABundle, "CA certificates copied into the image")
		_ = fs.Parse(args[1:])
		spec, ok := release.Images[*image]
		if !ok {
			return fmt.Errorf("image: unknown --image %q (manager or droptailer)", *image)
		}
		if *out == "" {
			*out = filepath.Join(root, "bin", "image")
			if spec != release.ManagerImage {
				*out += "-" + *image
			}
		}
		if *repo == "" {
			*repo = "ghcr.io/palisade-fw/" + spec.Name
		}
		i, err := info()
		if err != nil {
			return err
		}
		return buildImage(ctx, root, spec, i, *out, *repo, *ca)
	case "push":
		layoutDir := fs.String("layout", filepath.Join(root, "bin", "image", "oci"), "OCI layout written by `release image`")
		ref := fs.String("ref", "", "destination, e.g. ghcr.io/palisade-fw/palisade-manager:0.1.0 (required)")
		_ = fs.Parse(args[1:])
		i, err := info()
		if err != nil {
			return err
		}
		if *ref == "" {
			return errors.New("push: --ref is required")
		}
		idx, err := release.ReadLayout(*layoutDir, i.Version)
		if err != nil {
			return err
		}
		if err := release.Push(ctx, idx, *ref); err != nil {
			return err
		}
		d, _ := idx.Digest()
		fmt.Printf("pushed %s@%s\n", *ref, d)
		return nil
	case "agent":
		out := fs.String("out", filepath.Join(root, "bin", "release"), "output directory (emptied first)")
		keyFile := fs.String("key", os.Getenv("PALISADE_SIGNING_KEY_FILE"), "PEM ed25519 private key (default: env PALISADE_SIGNING_KEY_FILE, then PALISADE_SIGNING_KEY with the PEM itself; without either an ephemeral key)")
		_ = fs.Parse(args[1:])
		i, err := info()
		if err != nil {
			return err
		}
		key, ephemeral, err := signingKey(*keyFile)
		if err != nil {
			return err
		}
		if ephemeral {
			fmt.Fprintln(os.Stderr, "release: no signing key given; signing with an ephemeral key (CI only), public key in "+release.PublicKeyFile)
		}
		return buildAgent(ctx, root, i, *out, key)
	case "verify":
		dir := fs.String("dir", filepath.Join(root, "bin", "release"), "release directory")
		pubFile := fs.String("public-key", "", "PEM public key (default: "+release.PublicKeyFile+" in --dir, which only proves integrity)")
		_ = fs.Parse(args[1:])
		if *pubFile == "" {
			*pubFile = filepath.Join(*dir, release.PublicKeyFile)
		}
		pemBytes, err := os.ReadFile(*pubFile)
		if err != nil {
			return err
		}
		pub, err := signing.ParsePublicKey(pemBytes)
		if err != nil {
			return err
		}
		names, err := release.VerifyRelease(*dir, pub)
		if err != nil {
			return err
		}
		fmt.Printf("%d artifacts verified\n", len(names))
		return nil
	}
	return fmt.Errorf("unknown command %q", args[0])
}

func buildImage(ctx context.Context, root string, spec release.ImageSpec, info release.Info, out, repo, ca string) error {
	bins := map[release.Platform]string{}
	for _, p := range release.Platforms {
		bin := filepath.Join(out, p.OS+"-"+p.Arch, filepath.Base(spec.Entrypoint))
		fmt.Fprintf(os.Stderr, "building %s for %s\n", spec.Package, p)
		if err := release.Build(ctx, root, spec.Package, p, info, bin); err != nil {
			return err
		}
		bins[p] = bin
	}
	idx, err := release.BuildImage(release.ImageOptions{Info: info, Spec: spec, Binaries: bins, CABundle: ca})
	if err != nil {
		return err
	}
	layoutDir := filepath.Join(out, "oci")
	digest, err := release.WriteLayout(layoutDir, idx, info.Version, repo+":"+info.Version)
	if err != nil {
		return err
	}
	archive := filepath.Join(out, spec.Name+"-"+info.Version+".oci.tar")
	if err := release.WriteArchive(layoutDir, archive, info.Time()); err != nil {
		return err
	}
	fmt.Printf("%s:%s@%s\n  layout  %s\n  archive %s\n", repo, info.Version, digest, layoutDir, archive)
	return nil
}

func buildAgent(ctx context.Context, root string, info release.Info, out string, key ed25519.PrivateKey) error {
	bins := map[release.Platform]string{}
	tmp, err := os.MkdirTemp("", "palisade-agent-build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	for _, p := range release.Platforms {
		bin := filepath.Join(tmp, release.AgentBinaryName(p))
		fmt.Fprintf(os.Stderr, "building the agent for %s\n", p)
		if err := release.Build(ctx, root, "./cmd/agent", p, info, bin); err != nil {
			return err
		}
		bins[p] = bin
	}
	names, err := release.WriteRelease(release.ReleaseOptions{Info: info, Agents: bins, Key: key, Dir: out})
	if err != nil {
		return err
	}
	fmt.Printf("agent %s (%s): %d artifacts in %s\n", info.Version, info.Commit, len(names), out)
	return nil
}

// signingKey reads the release key from file, else from env PALISADE_SIGNING_KEY (PEM), else
// generates an ephemeral one; the key itself is never printed.
func signingKey(file string) (ed25519.PrivateKey, bool, error) {
	var pemBytes []byte
	switch {
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, false, fmt.Errorf("signing key: %w", err)
		}
		pemBytes = b
	case os.Getenv("PALISADE_SIGNING_KEY") != "":
		pemBytes = []byte(os.Getenv("PALISADE_SIGNING_KEY"))
	default:
		_, priv, err := signing.GenerateKey()
		return priv, true, err
	}
	key, err := signing.ParsePrivateKey(pemBytes)
	if err != nil {
		return nil, false, fmt.Errorf("signing key: %w", err)
	}
	return key, false, nil
}
