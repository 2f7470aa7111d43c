package modroot

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFind(t *testing.T) {
	root, err := Find()
	if err != nil {
		t.Fatal(err)
	}
	if mod, err := os.ReadFile(filepath.Join(root, "go.mod")); err != nil || !strings.Contains(string(mod), "module github.com/palisade-fw/palisade\n") {
		t.Errorf("Find() = %s, not the module root (%v)", root, err)
	}
	t.Chdir(t.TempDir())
	if got, err := Find(); err == nil {
		t.Errorf("outside the module: %s, want an error", got)
	}
}
