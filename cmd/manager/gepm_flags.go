package main

import (
	"flag"
	"fmt"
	"os"
)

// The Gardener extension (gardener-extension-provider-metal, GEPM) deploys the upstream
// firewall-controller-manager per shoot with the upstream flag and environment names. They are
// accepted as aliases of Palisade's, so that GEPM's Deployment runs Palisade unchanged.
// (--namespace, which GEPM passes too, is a Palisade flag of its own.)

// flagAlias forwards a GEPM flag to a Palisade flag. The target is looked up when the alias is
// set, that is during flag.Parse, after run has defined every flag.
type flagAlias struct {
	fs      *flag.FlagSet
	name    string
	target  string
	isBool  bool
	convert func(string) string
}

func (a *flagAlias) String() string { return "" }

func (a *flagAlias) Set(v string) error {
	target := a.fs.Lookup(a.target)
	if target == nil {
		return fmt.Errorf("-%s is an alias of --%s, which this build does not have", a.name, a.target)
	}
	if a.convert != nil {
		v = a.convert(v)
	}
	return target.Value.Set(v)
}

// IsBoolFlag lets "-enable-leader-election" stand without a value, as GEPM writes it.
func (a *flagAlias) IsBoolFlag() bool { return a.isBool }

// ignoredFlag accepts a GEPM flag Palisade has no use for, so the upstream arguments parse.
type ignoredFlag struct{ isBool bool }

func (ignoredFlag) String() string     { return "" }
func (ignoredFlag) Set(string) error   { return nil }
func (f ignoredFlag) IsBoolFlag() bool { return f.isBool }

// gepmFlagAliases are GEPM's manager arguments (controlplane chart) and upstream's own flags.
var gepmFlagAliases = []flagAlias{
	{name: "cert-dir", target: "webhook-cert-dir"},
	{name: "log-level", target: "zap-log-level"},
	{name: "enable-leader-election", target: "leader-elect", isBool: true},
	// The seed API server the firewalls reach, written into the generated seed kubeconfigs.
	{name: "seed-api-url", target: "agent-api-server-url"},
	// Gardener's generic token kubeconfig keeps the kubeconfig under "kubeconfig".
	{name: "shoot-kubeconfig-secret-name", target: "workload-kubeconfig-secret", convert: func(v string) string {
		if v == "" {
			return v
		}
		return v + "/kubeconfig"
	}},
	{name: "shoot-token-secret-name", target: "workload-token-secret"},
	// The shoot's ssh-keypair Secret: its public key defaults empty sshPublicKeys.
	{name: "ssh-key-secret-name", target: "ssh-key-secret"},
	// Published in Firewall.status.shootAccess.
	{name: "shoot-api-url", target: "shoot-api-server-url"},
	// Upstream's names of the metrics and health addresses (GEPM leaves them at their defaults).
	{name: "metrics-addr", target: "metrics-bind-address"},
	{name: "health-addr", target: "health-probe-bind-address"},
}

// gepmIgnoredFlags parse but change nothing: Palisade reads the shoot token from the token
// Secret itself (shoot-token-path), reaches the shoot through the generic kubeconfig's own
// server (internal-shoot-api-url) and has no per-manager reconcile interval (reconcile-interval).
// (ssh-key-secret-namespace is a flag of cmd/manager: only the served namespace is accepted.)
var gepmIgnoredFlags = map[string]string{
	"internal-shoot-api-url": "GEPM: in-seed shoot API server URL (accepted, unused)",
	"shoot-token-path":       "GEPM: directory of the shoot token file (accepted, unused)",
	"reconcile-interval":     "upstream: periodic reconcile interval (accepted, unused)",
}

// gepmEnvAliases map upstream environment variables to Palisade's; Palisade's name wins.
var gepmEnvAliases = map[string]string{"METAL_AUTH_HMAC": "METAL_API_HMAC"}

// registerGEPMAliases adds the GEPM names to fs and copies the GEPM environment variables.
func registerGEPMAliases(fs *flag.FlagSet) {
	for i := range gepmFlagAliases {
		a := gepmFlagAliases[i]
		a.fs = fs
		fs.Var(&a, a.name, fmt.Sprintf("Alias of --%s (GEPM's name).", a.target))
	}
	for name, usage := range gepmIgnoredFlags {
		fs.Var(ignoredFlag{}, name, usage)
	}
	for from, to := range gepmEnvAliases {
		if v, ok := os.LookupEnv(from); ok && os.Getenv(to) == "" {
			_ = os.Setenv(to, v)
		}
	}
}

func init() { registerGEPMAliases(flag.CommandLine) }
