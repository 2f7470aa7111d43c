package firewall

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v2 "github.com/palisade-fw/palisade/api/v2"
)

func TestClusterID(t *testing.T) {
	for _, tc := range []struct {
		name        string
		labels      map[string]string
		managerWide string
		want        string
	}{
		{"shoot UID label wins", map[string]string{v2.ClusterIDTag: "shoot-uid"}, "manager", "shoot-uid"},
		{"label without manager-wide id", map[string]string{v2.ClusterIDTag: "shoot-uid"}, "", "shoot-uid"},
		{"no label: manager-wide id", map[string]string{"app": "fw"}, "manager", "manager"},
		{"empty label: manager-wide id", map[string]string{v2.ClusterIDTag: ""}, "manager", "manager"},
		{"neither", nil, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fw := &v2.Firewall{ObjectMeta: metav1.ObjectMeta{Labels: tc.labels}}
			if got := clusterID(fw, tc.managerWide); got != tc.want {
				t.Errorf("clusterID = %q, want %q", got, tc.want)
			}
			r := &Reconciler{Config: Config{ClusterID: tc.managerWide}}
			var tag string
			for _, desired := range r.desiredTags(fw) {
				if v, ok := strings.CutPrefix(desired, v2.ClusterIDTag+"="); ok {
					tag = v
				}
			}
			if tag != tc.want {
				t.Errorf("desiredTags cluster tag = %q, want %q", tag, tc.want)
			}
		})
	}
}
