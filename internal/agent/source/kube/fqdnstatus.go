package kube

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/palisade-fw/palisade/api/v1"
	"github.com/palisade-fw/palisade/internal/agent/dnsproxy"
	"github.com/palisade-fw/palisade/internal/agent/model"
)

// ConditionFQDNLearning is set on a CWNP while the DNS proxy's caps keep addresses of its
// names from being opened.
const ConditionFQDNLearning = "FQDNLearning"

// maxNamesPerSelector bounds status.fqdn_state per selector (a pattern may match many names).
const maxNamesPerSelector = 256

// FQDNStatusWriter writes status.fqdn_state of the shoot CWNPs with toFQDNs rules: the names
// and addresses the DNS proxy learned, at most once per interval and only when they changed,
// never per DNS answer.
type FQDNStatusWriter struct {
	Writer   client.Client
	Reader   client.Reader
	States   func() map[model.ObjectKey]dnsproxy.PolicyState
	Interval time.Duration
	Log      *slog.Logger

	written map[model.ObjectKey]string // what was last written, to skip unchanged writes
}

// Run writes every interval until ctx ends.
func (w *FQDNStatusWriter) Run(ctx context.Context) {
	w.written = map[model.ObjectKey]string{}
	tick := time.NewTicker(w.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			w.WriteOnce(ctx)
		}
	}
}

// WriteOnce writes every changed policy state.
func (w *FQDNStatusWriter) WriteOnce(ctx context.Context) {
	if w.written == nil {
		w.written = map[model.ObjectKey]string{}
	}
	for key, st := range w.States() {
		if key.Source != SourceShoot {
			continue
		}
		fqdn := FQDNState(st)
		data, _ := json.Marshal(struct {
			S map[string][]v1.IPSet
			M string
		}{fqdn, st.Message})
		if w.written[key] == string(data) {
			continue
		}
		if err := w.write(ctx, key, fqdn, st.Message); err != nil {
			w.Log.Error("writing CWNP fqdn_state", "object", key.String(), "err", err)
			continue
		}
		w.written[key] = string(data)
	}
}

func (w *FQDNStatusWriter) write(ctx context.Context, key model.ObjectKey, fqdn map[string][]v1.IPSet, message string) error {
	var obj v1.ClusterwideNetworkPolicy
	if err := w.Reader.Get(ctx, types.NamespacedName{Namespace: key.Namespace, Name: key.Name}, &obj); err != nil {
		return client.IgnoreNotFound(err)
	}
	patch := client.MergeFrom(obj.DeepCopy())
	obj.Status.FQDNState = fqdn
	if message != "" {
		meta.SetStatusCondition(&obj.Status.Conditions, metav1.Condition{Type: ConditionFQDNLearning, Status: metav1.ConditionFalse,
			Reason: "CapReached", Message: message, ObservedGeneration: obj.Generation})
	} else {
		meta.RemoveStatusCondition(&obj.Status.Conditions, ConditionFQDNLearning)
	}
	return w.Writer.Status().Patch(ctx, &obj, patch)
}

// FQDNState converts a policy's learned state to upstream's fqdn_state shape (expiry times
// in whole seconds, so refreshes within a second do not change the status).
func FQDNState(st dnsproxy.PolicyState) map[string][]v1.IPSet {
	out := make(map[string][]v1.IPSet, len(st.Selectors))
	for sel, names := range st.Selectors {
		sets := []v1.IPSet{}
		for i, n := range names {
			if i >= maxNamesPerSelector {
				break
			}
			set := v1.IPSet{FQDN: n.Name, SetName: n.Set, Version: "ip", IPExpirationTimes: map[string]metav1.Time{}}
			if n.IPv6 {
				set.Version = "ip6"
			}
			for a, exp := range n.Expires {
				set.IPExpirationTimes[a.String()] = metav1.NewTime(exp.Truncate(time.Second))
			}
			sets = append(sets, set)
		}
		out[sel] = sets
	}
	return out
}
