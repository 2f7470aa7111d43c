package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/agent/config"
	"github.com/palisade-fw/palisade/internal/agent/droplog"
	"github.com/palisade-fw/palisade/internal/agent/host"
	"github.com/palisade-fw/palisade/internal/agent/ids"
	"github.com/palisade-fw/palisade/internal/agent/metrics"
	"github.com/palisade-fw/palisade/internal/agent/model"
	"github.com/palisade-fw/palisade/internal/agent/report"
	"github.com/palisade-fw/palisade/internal/agent/ruleset"
	"github.com/palisade-fw/palisade/internal/agent/runner"
	"github.com/palisade-fw/palisade/internal/agent/selfupdate"
	"github.com/palisade-fw/palisade/internal/signing"
)

// Note topics in the status message.
const (
	noteSelfUpdate = "selfUpdate"
	noteSSH        = "sshPublicKeys"
	noteEgress     = "egressRules"
	noteMetrics    = "metrics"
)

// extras are the parts beside the ruleset: metrics, the dropped-packet log, IDS statistics,
// host state and the self-update.
type extras struct {
	registry  *prometheus.Registry
	server    *metrics.Server // nil when metrics.address is "-"
	nft       *metrics.NftablesCollector
	dropHub   *droplog.Hub
	dropRead  *droplog.Reader
	ids       *ids.Source
	egress    *host.EgressAddresses
	ssh       *host.AuthorizedKeys
	updater   *selfupdate.Updater
	updates   chan model.HostSpec
	commitOne sync.Once
}

// Registry is the agent's Prometheus registry: other agent packages register their
// collectors on it (see docs/agent.md), and it is served on metrics.address.
func (a *Agent) Registry() *prometheus.Registry { return a.x.registry }

// wireExtras builds the extras and returns the applier the runner should use (measured).
func (a *Agent) wireExtras(ap runner.Applier) (runner.Applier, error) {
	cfg := a.cfg
	x := &a.x
	x.registry = metrics.NewRegistry()
	ap = metrics.NewApplyMetrics(x.registry).Wrap(ap)
	if a.netlink != nil {
		nl := a.netlink
		x.nft = metrics.NewNftablesCollector(func(ctx context.Context) (map[string]metrics.Counter, error) {
			values, err := nl.Counters(ctx)
			if err != nil {
				return nil, err
			}
			out := make(map[string]metrics.Counter, len(values))
			for k, v := range values {
				out[k] = metrics.Counter{Packets: v.Packets, Bytes: v.Bytes}
			}
			return out, nil
		})
		x.registry.MustRegister(x.nft)
	}
	if cfg.Metrics.Address != config.Disabled {
		x.server = metrics.NewServer(cfg.Metrics.Address, x.registry, a.log.With("controller", "metrics"))
	}
	if d := cfg.Controllers.Firewall.Droptailer; d != nil && d.Enabled {
		x.dropHub = droplog.NewHub(droplog.HubOptions{Firewall: cfg.Name, Buffer: d.Buffer, Rate: d.Rate, Registerer: x.registry})
		x.dropRead = &droplog.Reader{Group: ruleset.LogGroup, Hub: x.dropHub, Log: a.log.With("controller", "droptailer")}
		if x.server != nil {
			x.server.Handle("GET /droplog", x.dropHub)
		} else {
			a.log.Warn("controllers.firewall.droptailer needs metrics.address: the lines are served on /droplog there")
		}
	}
	if cfg.IDS != nil {
		x.ids = ids.NewSource(cfg.IDS.EveFile)
		x.registry.MustRegister(x.ids)
	}
	if cfg.Host.EgressAddressesEnabled() {
		x.egress = &host.EgressAddresses{StateFile: cfg.Host.EgressStateFile}
	}
	if f := cfg.Host.SSH.AuthorizedKeysFile; f != config.Disabled {
		x.ssh = &host.AuthorizedKeys{File: f, User: cfg.Host.SSH.User}
	}
	if s := cfg.Controllers.Firewall.SelfUpdate; s != nil && s.Enabled {
		u, err := newUpdater(s, a)
		if err != nil {
			return nil, err
		}
		x.updater = u
		x.updates = make(chan model.HostSpec, 1)
	}
	return ap, nil
}

func newUpdater(s *config.SelfUpdate, a *Agent) (*selfupdate.Updater, error) {
	u := &selfupdate.Updater{Binary: s.Binary, Running: report.Version, HealthTimeout: config.Duration(s.HealthTimeout),
		Log: a.log.With("controller", "selfUpdate")}
	if u.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("controllers.firewall.selfUpdate.binary: %w", err)
		}
		u.Binary = exe
	}
	if s.PublicKeyFile != "" {
		pem, err := os.ReadFile(s.PublicKeyFile)
		if err != nil {
			return nil, fmt.Errorf("controllers.firewall.selfUpdate.publicKeyFile: %w", err)
		}
		if u.PublicKey, err = signing.ParsePublicKey(pem); err != nil {
			return nil, fmt.Errorf("controllers.firewall.selfUpdate.publicKeyFile: %w", err)
		}
	}
	restart := s.RestartCommand
	if len(restart) == 0 {
		restart = []string{"systemctl", "restart", "firewall-controller.service"}
	}
	u.Restart = func(ctx context.Context) error {
		out, err := exec.CommandContext(ctx, restart[0], restart[1:]...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s: %v: %s", strings.Join(restart, " "), err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	return u, nil
}

// stats collects rule and device statistics, plus IDS statistics when configured.
func (a *Agent) stats(ctx context.Context) (*v2.FirewallStats, error) {
	st := &v2.FirewallStats{}
	if a.netlink != nil {
		var display func(string) string
		if a.x.nft != nil {
			display = a.x.nft.DisplayName
		}
		s, err := report.StatsNamed(ctx, a.netlink, "/sys", display)
		if err != nil {
			return nil, err
		}
		st = s
	}
	if a.x.ids != nil {
		idsStats, err := a.x.ids.Read(ctx)
		if a.hub != nil {
			note := ""
			if err != nil {
				note = err.Error()
			}
			a.hub.Note("ids", note)
		}
		st.IDSStats = idsStats
	}
	return st, nil
}

// Synced implements runner.SyncObserver: the host parts follow the firewall spec of every
// sync (the runner syncs when the spec, and with it the host spec, changed).
func (a *Agent) Synced(_ context.Context, res runner.SyncResult) {
	x := &a.x
	note := func(topic string, err error) {
		if a.hub == nil {
			if err != nil {
				a.log.Warn("host state", "topic", topic, "err", err)
			}
			return
		}
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		a.hub.Note(topic, msg)
	}
	if x.egress != nil && res.Applied {
		note(noteEgress, x.egress.Reconcile(res.Firewall.SNAT))
	}
	if x.ssh != nil && res.Firewall.Host.SSHPublicKeys != nil {
		changed, err := x.ssh.Write(res.Firewall.Host.SSHPublicKeys)
		if changed {
			a.log.Info("authorized_keys written", "file", x.ssh.File, "keys", len(res.Firewall.Host.SSHPublicKeys))
		}
		note(noteSSH, err)
	}
	if x.updater != nil {
		if res.Applied {
			x.commitOne.Do(func() {
				if err := x.updater.Healthy(); err != nil {
					a.log.Error("committing the self-update failed", "err", err)
				}
			})
		}
		select {
		case <-x.updates: // only the newest spec counts
		default:
		}
		x.updates <- res.Firewall.Host
	}
}

// runExtras starts the extras; errs receives the fatal errors.
func (a *Agent) runExtras(ctx context.Context, errs chan<- error) {
	x := &a.x
	if x.server != nil {
		// A taken port must not stop the firewall: it is reported and retried.
		go func() {
			for ctx.Err() == nil {
				lis, err := net.Listen("tcp", x.server.Addr)
				if err == nil {
					if a.hub != nil {
						a.hub.Note(noteMetrics, "")
					}
					if err := x.server.Serve(ctx, lis); err != nil {
						a.log.Error("serving metrics stopped", "err", err)
					}
					return
				}
				a.log.Error("cannot serve metrics; retrying", "address", x.server.Addr, "err", err)
				if a.hub != nil {
					a.hub.Note(noteMetrics, err.Error())
				}
				select {
				case <-ctx.Done():
				case <-time.After(30 * time.Second):
				}
			}
		}()
	}
	if x.dropRead != nil {
		go func() {
			for ctx.Err() == nil {
				if err := x.dropRead.Run(ctx); err != nil {
					a.log.Error("dropped-packet reader failed; retrying", "err", err)
				}
				select {
				case <-ctx.Done():
				case <-time.After(5 * time.Second):
				}
			}
		}()
	}
	if x.updater != nil {
		go a.runUpdater(ctx, errs)
	}
}

func (a *Agent) runUpdater(ctx context.Context, errs chan<- error) {
	u := a.x.updater
	if err := u.Startup(ctx); err != nil {
		if errors.Is(err, selfupdate.ErrRolledBack) {
			errs <- err
			return
		}
		a.log.Error("self-update state", "err", err)
	}
	go func() {
		if err := u.Watch(ctx); errors.Is(err, selfupdate.ErrRolledBack) {
			errs <- err
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case spec := <-a.x.updates:
			err := u.Update(ctx, spec.ControllerURL, spec.ControllerVersion)
			if a.hub != nil {
				msg := ""
				if err != nil {
					msg = err.Error()
				}
				a.hub.Note(noteSelfUpdate, msg)
			}
			if err != nil {
				a.log.Error("self-update", "version", spec.ControllerVersion, "err", err)
			}
		}
	}
}
