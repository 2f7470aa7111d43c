package fwutil

import (
	"testing"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
)

// A pass that wrote the status looks again soon, whatever it asked for, unless it asked sooner.
func TestRecheckAfterStatusWrite(t *testing.T) {
	for _, tc := range []struct {
		in, want ctrl.Result
	}{
		{ctrl.Result{}, ctrl.Result{RequeueAfter: StatusRecheck}},
		{ctrl.Result{RequeueAfter: 15 * time.Minute}, ctrl.Result{RequeueAfter: StatusRecheck}},
		{ctrl.Result{RequeueAfter: time.Second}, ctrl.Result{RequeueAfter: time.Second}},
	} {
		if got := RecheckAfterStatusWrite(tc.in); got != tc.want {
			t.Errorf("RecheckAfterStatusWrite(%+v) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}
