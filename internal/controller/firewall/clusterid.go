package firewall

import (
	v2 "github.com/palisade-fw/palisade/api/v2"
)

// clusterID is the value of a machine's cluster tag (v2.ClusterIDTag). A firewall labelled
// with the same key names its own cluster: Gardener's extension puts the shoot UID into the
// deployment's selector and template labels, which every firewall of it carries, so that one
// manager serving several shoots, or a manager in another seed after a migration, tags (and
// finds) each shoot's machines by the shoot's id. Without the label the manager-wide
// --cluster-id applies.
func clusterID(fw *v2.Firewall, managerWide string) string {
	if id := fw.Labels[v2.ClusterIDTag]; id != "" {
		return id
	}
	return managerWide
}
