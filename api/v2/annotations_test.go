package v2

import "testing"

func TestIsPaused(t *testing.T) {
	for _, tc := range []struct {
		name        string
		annotations map[string]string
		want        bool
	}{
		{"none", nil, false},
		{"palisade", map[string]string{PausedAnnotation: "true"}, true},
		{"palisade false", map[string]string{PausedAnnotation: "false"}, false},
		{"cluster api, empty value", map[string]string{ClusterAPIPausedAnnotation: ""}, true},
		// clusterctl move replaces every annotation with this one before deleting a source object.
		{"clusterctl delete-for-move", map[string]string{ClusterctlDeleteForMoveAnnotation: ""}, true},
		{"unrelated", map[string]string{ReconcileAnnotation: "true"}, false},
	} {
		if got := IsPaused(tc.annotations); got != tc.want {
			t.Errorf("%s: IsPaused = %v, want %v", tc.name, got, tc.want)
		}
	}
}
