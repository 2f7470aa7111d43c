package kube

import (
	"context"
	"log/slog"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/palisade-fw/palisade/api/v1"
	"github.com/palisade-fw/palisade/internal/agent/model"
)

// Event reasons on CWNPs and Services.
const (
	ReasonDeployed = "Deployed"
	ReasonIgnored  = "Ignored"
	// ReasonRefused: the firewall does not open a Service (e.g. its load-balancer IP is in
	// no network of the firewall).
	ReasonRefused = "FirewallRefused"
)

// StatusWriter writes state, message and observedGeneration of every shoot CWNP after a
// sync, and an event whenever the state or message changes. Each object is written on its
// own: one failing write never keeps the others from being written.
type StatusWriter struct {
	writer   client.Client
	reader   client.Reader
	recorder record.EventRecorder
	log      *slog.Logger
}

// NewStatusWriter returns a writer; reader may be a cache, recorder may be nil.
func NewStatusWriter(w client.Client, r client.Reader, recorder record.EventRecorder, log *slog.Logger) *StatusWriter {
	return &StatusWriter{writer: w, reader: r, recorder: recorder, log: log}
}

// Report implements runner.Reporter.
func (s *StatusWriter) Report(ctx context.Context, verdicts []model.Verdict, applied bool) {
	for _, v := range verdicts {
		if v.Kind != "ClusterwideNetworkPolicy" || v.Key.Source != SourceShoot {
			continue
		}
		state := v1.PolicyIgnored
		if v.Accepted {
			if !applied {
				continue // not in the kernel yet: do not claim it is deployed
			}
			state = v1.PolicyDeployed
		}
		if err := s.write(ctx, v, state); err != nil {
			s.log.Error("writing CWNP status", "object", v.Key.String(), "err", err)
		}
	}
}

func (s *StatusWriter) write(ctx context.Context, v model.Verdict, state v1.PolicyDeploymentState) error {
	var obj v1.ClusterwideNetworkPolicy
	if err := s.reader.Get(ctx, types.NamespacedName{Namespace: v.Key.Namespace, Name: v.Key.Name}, &obj); err != nil {
		return client.IgnoreNotFound(err)
	}
	if obj.Generation != v.Generation {
		return nil // a newer spec is on its way; its own sync will report
	}
	st := obj.Status
	if st.State == state && st.Message == v.Message && st.ObservedGeneration == v.Generation {
		return nil
	}
	changed := st.State != state || st.Message != v.Message
	patch := client.MergeFrom(obj.DeepCopy())
	obj.Status.State, obj.Status.Message, obj.Status.ObservedGeneration = state, v.Message, v.Generation
	if err := s.writer.Status().Patch(ctx, &obj, patch); err != nil {
		return err
	}
	if changed && s.recorder != nil {
		if state == v1.PolicyDeployed {
			msg := "applied to the firewall"
			if v.Message != "" {
				msg += "; " + v.Message
			}
			s.recorder.Event(&obj, corev1.EventTypeNormal, ReasonDeployed, msg)
		} else {
			s.recorder.Event(&obj, corev1.EventTypeWarning, ReasonIgnored, v.Message)
		}
	}
	return nil
}

func newRecorder(cfg *rest.Config, scheme *runtime.Scheme, host string, log *slog.Logger) record.EventRecorder {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		log.Warn("no events: cannot build a client", "err", err)
		return nil
	}
	b := record.NewBroadcaster()
	b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: cs.CoreV1().Events("")})
	return b.NewRecorder(scheme, corev1.EventSource{Component: "palisade-agent", Host: host})
}

// ServiceEvents puts a Warning event on every shoot Service the firewall refuses, once per
// reason (a changed reason is a new event; an accepted Service clears the memory).
type ServiceEvents struct {
	reader   client.Reader
	recorder record.EventRecorder
	log      *slog.Logger

	mu   sync.Mutex
	last map[model.ObjectKey]string
}

// NewServiceEvents returns a reporter; recorder may be nil (then only the log says it).
func NewServiceEvents(r client.Reader, recorder record.EventRecorder, log *slog.Logger) *ServiceEvents {
	return &ServiceEvents{reader: r, recorder: recorder, log: log, last: map[model.ObjectKey]string{}}
}

// Report implements runner.Reporter.
func (s *ServiceEvents) Report(ctx context.Context, verdicts []model.Verdict, _ bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[model.ObjectKey]bool{}
	for _, v := range verdicts {
		if v.Kind != model.KindService || v.Key.Source != SourceShoot || v.Accepted {
			continue
		}
		seen[v.Key] = true
		if s.last[v.Key] == v.Message || s.recorder == nil {
			continue
		}
		var svc corev1.Service
		if err := s.reader.Get(ctx, types.NamespacedName{Namespace: v.Key.Namespace, Name: v.Key.Name}, &svc); err != nil {
			if client.IgnoreNotFound(err) != nil {
				s.log.Error("reading Service for its event", "object", v.Key.String(), "err", err)
			}
			continue
		}
		s.recorder.Event(&svc, corev1.EventTypeWarning, ReasonRefused, v.Message)
		s.last[v.Key] = v.Message
	}
	for k := range s.last {
		if !seen[k] {
			delete(s.last, k)
		}
	}
}

// NewRecorder returns an event recorder for the cluster of cfg, as component palisade-agent
// on host; nil when no client can be built (then there are no events).
func NewRecorder(cfg *rest.Config, host string, log *slog.Logger) record.EventRecorder {
	return newRecorder(cfg, Scheme(), host, log)
}
