// Package version holds what a build stamps into Palisade's binaries. `make image` and
// `make release` set the three variables with
//
//	-ldflags "-X github.com/palisade-fw/palisade/internal/version.Version=0.1.0 -X ...Commit=... -X ...Date=..."
//
// (internal/release.LDFlags builds that string); a plain `go build` leaves the defaults.
package version

import "fmt"

// Version is the release version (the repository's VERSION file); "devel" for local builds.
var Version = "devel"

// Commit is the git commit the binary was built from.
var Commit = "unknown"

// Date is the commit date (RFC 3339) the binary was built from; a commit date rather than the
// build time keeps rebuilds of one commit byte-identical.
var Date = "unknown"

// String is what `--version` prints: the version first, so that scripts can take the first word.
func String() string {
	return fmt.Sprintf("%s (commit %s, %s)", Version, Commit, Date)
}
