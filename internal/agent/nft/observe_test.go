package nft

import (
	"os/exec"
	"testing"

	"golang.org/x/sys/unix"
)

// The watch ignores the agent's own transactions by the thread the kernel names.
func TestOwnThread(t *testing.T) {
	if !ownThread(uint32(unix.Gettid())) || !ownThread(uint32(unix.Getpid())) {
		t.Error("this thread is not recognised as the agent's own")
	}
	cmd := exec.Command("sleep", "5")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	if ownThread(uint32(cmd.Process.Pid)) {
		t.Error("another process counts as the agent's own")
	}
}
