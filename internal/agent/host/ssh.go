package host

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/palisade-fw/palisade/internal/agent/atomicfile"
)

// AuthorizedKeys writes spec.sshPublicKeys as the admin user's authorized_keys. The file is
// the agent's: it is replaced as a whole (atomically, so sshd never reads half a file), an
// empty list leaves no key at all. A key that does not parse is left out (and reported):
// it must not hold up the removal of a revoked key.
type AuthorizedKeys struct {
	File string
	// User owns the file and its .ssh directory; empty keeps the current owner.
	User string
}

const authorizedKeysHeader = "# managed by the palisade agent from Firewall spec.sshPublicKeys; changes are overwritten\n"

// Render returns the file content for keys, and an error naming the keys left out because
// sshd would not accept them.
func Render(keys []string) ([]byte, error) {
	var b bytes.Buffer
	var errs []error
	b.WriteString(authorizedKeysHeader)
	for i, k := range keys {
		k = strings.TrimSpace(k)
		if k == "" {
			continue
		}
		if strings.ContainsAny(k, "\r\n") {
			errs = append(errs, fmt.Errorf("sshPublicKeys[%d] left out: more than one line", i))
			continue
		}
		if _, _, _, _, err := ssh.ParseAuthorizedKey([]byte(k)); err != nil {
			errs = append(errs, fmt.Errorf("sshPublicKeys[%d] left out: %w", i, err))
			continue
		}
		b.WriteString(k)
		b.WriteByte('\n')
	}
	return b.Bytes(), errors.Join(errs...)
}

// Write replaces the file when its content differs; changed tells whether it did.
func (a AuthorizedKeys) Write(keys []string) (changed bool, err error) {
	data, renderErr := Render(keys)
	if current, err := os.ReadFile(a.File); err == nil && bytes.Equal(current, data) {
		return false, renderErr
	}
	uid, gid := -1, -1
	if a.User != "" {
		u, err := user.Lookup(a.User)
		if err != nil {
			return false, fmt.Errorf("user %q: %w", a.User, err)
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
	}
	dir := filepath.Dir(a.File)
	if _, err := os.Stat(dir); os.IsNotExist(err) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return false, err
		}
		if uid >= 0 {
			if err := os.Chown(dir, uid, gid); err != nil {
				return false, err
			}
		}
	}
	// sshd's StrictModes wants the file not writable by others; 0600 like ssh-copy-id.
	if err := atomicfile.WriteFile(a.File, data, 0o600, atomicfile.Owner(uid, gid)); err != nil {
		return false, err
	}
	return true, renderErr
}
