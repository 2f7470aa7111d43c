package userdata

import (
	"encoding/base64"
	"encoding/json"

	ignition "github.com/coreos/ignition/v2/config/v3_4/types"
)

// IgnitionVersion is the Ignition config spec the renderer emits (that of the types package
// imported above). 3.4.0 is understood by Ignition 2.15 and later; newer specs would lock out
// older images for no gain here.
const IgnitionVersion = "3.4.0"

// FirewallControllerUnit runs the agent; `make release` ships it (internal/release).
const FirewallControllerUnit = "firewall-controller.service"

// AgentUnits are the units rendered userdata enables, sorted: exactly those a release ships.
// Upstream also enabled droptailer.service, a journal forwarder on the firewall; Palisade's
// agent reads the drop log itself and a receiver in the workload cluster pulls it
// (cmd/droptailer), so there is no such unit to enable.
var AgentUnits = []string{FirewallControllerUnit}

// buildIgnition returns the Ignition JSON for files, which must be sorted by path. The same
// input gives the same bytes: struct fields marshal in declaration order and every list is
// sorted.
func buildIgnition(files []file, agentUnits bool) ([]byte, error) {
	cfg := ignition.Config{Ignition: ignition.Ignition{Version: IgnitionVersion}}
	for _, f := range files {
		cfg.Storage.Files = append(cfg.Storage.Files, ignitionFile(f))
	}
	if agentUnits {
		for _, name := range AgentUnits {
			cfg.Systemd.Units = append(cfg.Systemd.Units, ignition.Unit{Name: name, Enabled: ptr(true)})
		}
	}
	return json.Marshal(cfg)
}

func ignitionFile(f file) ignition.File {
	root := 0
	// A data URL keeps the content inline; base64 is safe for any bytes.
	source := "data:;base64," + base64.StdEncoding.EncodeToString(f.content)
	return ignition.File{
		Node: ignition.Node{
			Path: f.path,
			// Images may ship defaults at these paths; without overwrite Ignition would fail.
			Overwrite: ptr(true),
			User:      ignition.NodeUser{ID: ptr(root)},
			Group:     ignition.NodeGroup{ID: ptr(root)},
		},
		FileEmbedded1: ignition.FileEmbedded1{
			Contents: ignition.Resource{Source: &source},
			Mode:     ptr(f.mode),
		},
	}
}

func ptr[T any](v T) *T { return &v }
