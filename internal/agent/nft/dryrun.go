package nft

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/pmezard/go-difflib/difflib"

	"github.com/palisade-fw/palisade/internal/agent/ruleset"
)

// Diff returns a unified diff from the live table to desired, both as `nft -s list table`
// prints them. The desired side is loaded into a throwaway network namespace, so neither the
// live ruleset nor the rule file is touched.
func (a *Applier) Diff(ctx context.Context, desired *ruleset.Ruleset) (string, error) {
	live, err := listTable(ctx, nil, desired.Table)
	if err != nil {
		return "", fmt.Errorf("listing the live table: %w", err)
	}
	want, err := ListInScratchNetns(ctx, Text(desired), desired.Table)
	if err != nil {
		return "", err
	}
	return difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A:        difflib.SplitLines(live),
		B:        difflib.SplitLines(want),
		FromFile: "live: table inet " + desired.Table,
		ToFile:   "desired: table inet " + desired.Table,
		Context:  3,
	})
}

// ListInScratchNetns loads text into a new, empty network namespace and returns the table as
// nft lists it (without counter values). It needs CAP_SYS_ADMIN and `unshare` (util-linux).
func ListInScratchNetns(ctx context.Context, text, table string) (string, error) {
	f, err := os.CreateTemp("", "palisade-ruleset-*.nft")
	if err != nil {
		return "", err
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	// File and table are passed as arguments, never spliced into the script.
	script := `nft -f "$1" && nft -s list table inet "$2"`
	return listTable(ctx, []string{"unshare", "--net", "--", "sh", "-c", script, "sh", f.Name(), table}, table)
}

// CheckInScratchNetns runs `nft --check` on text in a new, empty network namespace.
func CheckInScratchNetns(ctx context.Context, text string) error {
	cmd := exec.CommandContext(ctx, "unshare", "--net", "--", "nft", "--check", "-f", "-")
	cmd.Stdin = strings.NewReader(text)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("nft --check: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// listTable runs argv (default: nft -s list table inet <table>) and treats a missing table
// as empty.
func listTable(ctx context.Context, argv []string, table string) (string, error) {
	if argv == nil {
		argv = []string{"nft", "-s", "list", "table", "inet", table}
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := stderr.String()
		if strings.Contains(msg, "No such file or directory") && len(argv) == 6 {
			return "", nil
		}
		return "", fmt.Errorf("%s: %w: %s", argv[0], err, strings.TrimSpace(msg))
	}
	return stdout.String(), nil
}
