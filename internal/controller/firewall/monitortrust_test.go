package firewall

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v2 "github.com/palisade-fw/palisade/api/v2"
)

func TestDecideMonitorReport(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) metav1.Time { return metav1.NewTime(now.Add(d)) }
	seed := func(updated time.Duration) *v2.ControllerConnection {
		return &v2.ControllerConnection{Updated: at(updated), SeedUpdated: at(updated)}
	}
	mon := func(updated, seedUpdated time.Duration) *v2.ControllerStatus {
		return &v2.ControllerStatus{Updated: at(updated), SeedUpdated: at(seedUpdated)}
	}
	const stale = 2 * time.Minute
	for name, tc := range map[string]struct {
		current     *v2.ControllerConnection
		mon         *v2.ControllerStatus
		fromMonitor bool
		want        reportDecision
	}{
		"no monitor report":                        {current: seed(-time.Minute), mon: nil, want: ignoreReport},
		"first report, monitor only":               {current: nil, mon: mon(-time.Second, -time.Second), want: adoptReport},
		"newer monitor report after our own":       {current: seed(-time.Minute), mon: mon(0, 0), fromMonitor: true, want: adoptReport},
		"fresh seed report wins":                   {current: seed(-time.Minute), mon: mon(0, 0), want: ignoreReport},
		"stale seed report: monitor may take over": {current: seed(-10 * time.Minute), mon: mon(0, 0), want: adoptReport},
		"older monitor report":                     {current: seed(-time.Minute), mon: mon(-2*time.Minute, 0), fromMonitor: true, want: ignoreReport},
		"future lastRun is forged":                 {current: nil, mon: mon(time.Hour, 0), want: refuseFutureReport},
		"future lastRunAgainstSeed is forged":      {current: seed(-time.Minute), mon: mon(0, 24*time.Hour), fromMonitor: true, want: refuseFutureReport},
		"clock skew within a minute is tolerated":  {current: nil, mon: mon(30*time.Second, 30*time.Second), want: adoptReport},
	} {
		if got := decideMonitorReport(tc.current, tc.mon, tc.fromMonitor, now, stale); got != tc.want {
			t.Errorf("%s: decision %d, want %d", name, got, tc.want)
		}
	}
}

func TestReportFromMonitor(t *testing.T) {
	t1, t2 := metav1.NewTime(time.Unix(100, 0)), metav1.NewTime(time.Unix(200, 0))
	cs := &v2.ControllerConnection{Updated: t1}
	if !reportFromMonitor(cs, &v2.ControllerStatus{Updated: t2}, t1, true) {
		t.Error("the report the manager recorded adopting is the monitor's")
	}
	if reportFromMonitor(cs, &v2.ControllerStatus{Updated: t2}, t2, true) {
		t.Error("a report the manager did not adopt is the seed's")
	}
	if !reportFromMonitor(cs, &v2.ControllerStatus{Updated: t1}, metav1.Time{}, false) {
		t.Error("after a restart, a report equal to the monitor's is the monitor's")
	}
	if reportFromMonitor(cs, &v2.ControllerStatus{Updated: t2}, metav1.Time{}, false) || reportFromMonitor(nil, nil, t1, true) {
		t.Error("unknown origin counts as the seed's")
	}
}

func TestRollRequestsAreRateLimitedPerFirewall(t *testing.T) {
	var trust monitorTrust
	now := time.Unix(1000, 0)
	if ok, _ := trust.allowRoll("a", now, 10*time.Minute); !ok {
		t.Fatal("first request refused")
	}
	if ok, wait := trust.allowRoll("a", now.Add(time.Minute), 10*time.Minute); ok || wait != 9*time.Minute {
		t.Errorf("second request within the interval: allowed %v, wait %v", ok, wait)
	}
	if ok, _ := trust.allowRoll("b", now.Add(time.Minute), 10*time.Minute); !ok {
		t.Error("another firewall's request refused")
	}
	if ok, _ := trust.allowRoll("a", now.Add(10*time.Minute), 10*time.Minute); !ok {
		t.Error("request after the interval refused")
	}
}

func TestTenantConditionsCarryNoSeedMessages(t *testing.T) {
	secretName, metalErr := "workload-kubeconfig", "metal-api: 500 internal error talking to ipam"
	for _, c := range []metav1.Condition{
		{Type: v2.ConditionUserdataReady, Status: metav1.ConditionFalse, Reason: v2.ReasonSecretMissing, Message: "Secret " + secretName + " is missing"},
		{Type: v2.ConditionCreated, Status: metav1.ConditionFalse, Reason: "AllocationFailed", Message: metalErr},
		{Type: v2.ConditionReady, Status: metav1.ConditionFalse, Reason: "NotReady", Message: metalErr},
	} {
		got := tenantCondition(c)
		if strings.Contains(got.Message, secretName) || strings.Contains(got.Message, "metal-api") {
			t.Errorf("%s message %q leaks seed details", c.Type, got.Message)
		}
		if got.Reason != c.Reason || got.Status != c.Status || got.Type != c.Type {
			t.Errorf("%s: type, status or reason changed: %+v", c.Type, got)
		}
	}
	agent := metav1.Condition{Type: v2.ConditionConnected, Status: metav1.ConditionFalse, Reason: v2.ReasonRulesFailed, Message: "the agent failed to apply its rules: nft error"}
	if got := tenantCondition(agent); got.Message != agent.Message {
		t.Errorf("the agent's own message was dropped: %q", got.Message)
	}
}
