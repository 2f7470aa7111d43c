package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// recordOps records the order of the durable steps for the test's lifetime.
func recordOps(t *testing.T, failOn string) *[]string {
	t.Helper()
	saved := ops
	t.Cleanup(func() { ops = saved })
	var steps []string
	step := func(name string, real func() error) error {
		steps = append(steps, name)
		if name == failOn {
			return errors.New(name + " failed")
		}
		return real()
	}
	ops.syncFile = func(f *os.File) error {
		return step("sync "+strings.TrimPrefix(filepath.Base(f.Name()), "."), func() error { return saved.syncFile(f) })
	}
	ops.syncDir = func(f *os.File) error { return step("sync dir", func() error { return saved.syncDir(f) }) }
	ops.rename = func(o, n string) error { return step("rename", func() error { return saved.rename(o, n) }) }
	return &steps
}

func entries(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}

// The data is synced before the rename and the directory after it: a crash at any point
// leaves the old or the new file, and a completed write survives.
func TestWriteFileSyncsRenamesSyncsDir(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	steps := recordOps(t, "")
	if err := WriteFile(path, []byte("new"), 0o600); err != nil {
		t.Fatal(err)
	}
	if len(*steps) != 3 || !strings.HasPrefix((*steps)[0], "sync state.json.") || (*steps)[1] != "rename" || (*steps)[2] != "sync dir" {
		t.Errorf("steps %q, want the temporary file synced, renamed, the directory synced", *steps)
	}
	if got, _ := os.ReadFile(path); string(got) != "new" {
		t.Errorf("content %q", got)
	}
	if names := entries(t, dir); !slices.Equal(names, []string{"state.json"}) {
		t.Errorf("directory holds %v, want only the file", names)
	}
}

// A failure at any step leaves the old file as it was and no temporary file behind.
func TestWriteFileFailureKeepsOldFile(t *testing.T) {
	for _, failOn := range []string{"sync", "rename"} {
		t.Run(failOn, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "authorized_keys")
			if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
				t.Fatal(err)
			}
			saved := ops
			t.Cleanup(func() { ops = saved })
			boom := errors.New("boom")
			if failOn == "sync" {
				ops.syncFile = func(*os.File) error { return boom }
			} else {
				ops.rename = func(string, string) error { return boom }
			}
			if err := WriteFile(path, []byte("new"), 0o600); !errors.Is(err, boom) {
				t.Fatalf("err %v, want the %s error", err, failOn)
			}
			if got, _ := os.ReadFile(path); string(got) != "old" {
				t.Errorf("content %q, want the old one", got)
			}
			if names := entries(t, dir); !slices.Equal(names, []string{"authorized_keys"}) {
				t.Errorf("directory holds %v after a failed write", names)
			}
		})
	}
}

// The mode is exactly perm whatever the umask, also when the file existed with another mode;
// Parents creates missing directories; Owner gives the file away.
func TestWriteFileModeParentsOwner(t *testing.T) {
	old := syscall.Umask(0o077)
	t.Cleanup(func() { syscall.Umask(old) })
	dir := t.TempDir()
	path := filepath.Join(dir, "a", "b", "rules.v4")
	if err := WriteFile(path, []byte("x"), 0o644); err == nil {
		t.Fatal("wrote into a missing directory without Parents")
	}
	if err := WriteFile(path, []byte("x"), 0o644, Parents(0o750)); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{path: 0o644, filepath.Join(dir, "a"): 0o700 | os.ModeDir, filepath.Join(dir, "a", "b"): 0o700 | os.ModeDir} {
		// MkdirAll applies the umask (0o750 &^ 0o077): directories are the caller's business.
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode() != want {
			t.Errorf("%s mode %v, want %v", p, st.Mode(), want)
		}
	}
	if err := WriteFile(path, []byte("y"), 0o755); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o755 {
		t.Errorf("rewritten mode %v, want 0755", st.Mode())
	}

	if os.Geteuid() != 0 {
		return
	}
	if err := WriteFile(path, []byte("z"), 0o600, Owner(65534, 65534)); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	if sys := st.Sys().(*syscall.Stat_t); sys.Uid != 65534 || sys.Gid != 65534 {
		t.Errorf("owner %d:%d, want 65534:65534", sys.Uid, sys.Gid)
	}
}

func TestWriteFileIfChanged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	for i, tc := range []struct {
		data    string
		changed bool
	}{{"a", true}, {"a", false}, {"b", true}} {
		changed, err := WriteFileIfChanged(path, []byte(tc.data), 0o600)
		if err != nil || changed != tc.changed {
			t.Errorf("write %d (%q): changed %v err %v, want changed %v", i, tc.data, changed, err, tc.changed)
		}
	}
}

// Create/Finish/Commit lets a caller check the complete file before it replaces the old one
// (the self-update runs the new binary first); Abort after Commit does nothing.
func TestCreateFinishCommit(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "agent")
	if err := os.WriteFile(path, []byte("v1"), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := Create(path, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Abort()
	if _, err := f.WriteString("v2"); err != nil {
		t.Fatal(err)
	}
	if err := f.Finish(); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(f.TempName()); string(got) != "v2" || !strings.HasPrefix(filepath.Base(f.TempName()), ".agent.") {
		t.Errorf("temporary %s holds %q", f.TempName(), got)
	}
	if got, _ := os.ReadFile(path); string(got) != "v1" {
		t.Errorf("replaced before Commit: %q", got)
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	f.Abort()
	if got, _ := os.ReadFile(path); string(got) != "v2" {
		t.Errorf("after Commit %q", got)
	}
	if names := entries(t, dir); !slices.Equal(names, []string{"agent"}) {
		t.Errorf("directory holds %v", names)
	}

	aborted, err := Create(path, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = aborted.WriteString("v3")
	aborted.Abort()
	if names := entries(t, dir); !slices.Equal(names, []string{"agent"}) {
		t.Errorf("directory holds %v after Abort", names)
	}
}
