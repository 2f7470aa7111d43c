package ruleset

import "fmt"

// LogGroup is the nflog group the drop (and accept) log statements send packets to; the
// agent's dropped-packet reader (internal/agent/droplog) listens on it. Packets logged to a
// group nobody listens on are discarded by the kernel, not written to the kernel log.
const LogGroup = 7

// logStatement logs to LogGroup with a prefix that names the action.
func logStatement(prefix string) string {
	return fmt.Sprintf("log prefix %q group %d", prefix, LogGroup)
}
