// Package modroot finds the checkout a tool or test runs in. It imports nothing of the module,
// so that small tools (hack/release) need not pull in the test environment to use it.
package modroot

import (
	"fmt"
	"os"
	"path/filepath"
)

// Find walks up from the working directory to the directory holding go.mod.
func Find() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("no go.mod above %s: run inside the Palisade module", wd)
		}
	}
}
