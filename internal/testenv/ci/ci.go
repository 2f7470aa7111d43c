// Package ci tells tests whether they run in CI, where a missing prerequisite is a failure.
package ci

import (
	"os"
	"testing"
)

// SkipOutsideCI skips a test whose prerequisite is missing on a developer's machine; in CI
// (env CI set), where .ci/run installs every prerequisite, the same gap fails the test.
func SkipOutsideCI(t testing.TB, reason string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatal("CI must run this test: " + reason)
	}
	t.Skip(reason)
}
