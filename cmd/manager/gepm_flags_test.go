package main

import (
	"flag"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// gepmArgs are the arguments GEPM's controlplane chart gives the manager, except --namespace
// (Palisade's own flag) and --metal-api-url (left out so that run stops right after parsing).
var gepmArgs = []string{
	"-cert-dir=/certs",
	"-log-level=info",
	"-seed-api-url=https://api.seed.example",
	"-shoot-api-url=https://api.shoot.example",
	"-internal-shoot-api-url=https://kube-apiserver",
	"-cluster-id=0f4c5a3e-1111-2222-3333-444455556666",
	"-enable-leader-election",
	"-shoot-kubeconfig-secret-name=generic-token-kubeconfig-abc",
	"-shoot-token-secret-name=shoot-access-firewall-controller-manager",
	"-ssh-key-secret-name=ssh-keypair-abc",
	"-shoot-token-path=/token",
	"-firewall-health-timeout=20m",
	"-create-timeout=10m",
}

func TestMain(m *testing.M) {
	if os.Getenv("PALISADE_TEST_RUN_MAIN") == "1" {
		os.Args = append([]string{"manager"}, strings.Fields(os.Getenv("PALISADE_TEST_ARGS"))...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// The real binary's flag set accepts GEPM's arguments: run gets past flag parsing and stops at
// the missing metal-api URL, not at an unknown flag.
func TestManagerAcceptsGEPMArguments(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "PALISADE_TEST_RUN_MAIN=1", "PALISADE_TEST_ARGS="+strings.Join(gepmArgs, " "))
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("manager without --metal-api-url succeeded:\n%s", out)
	}
	if !strings.Contains(string(out), "--metal-api-url is required") {
		t.Fatalf("manager did not get past flag parsing:\n%s", out)
	}

	cmd = exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "PALISADE_TEST_RUN_MAIN=1", "PALISADE_TEST_ARGS=-no-such-flag")
	if out, _ := cmd.CombinedOutput(); !strings.Contains(string(out), "not defined") {
		t.Fatalf("an unknown flag is not refused, so the check above proves nothing:\n%s", out)
	}
}

func TestGEPMAliasesSetPalisadeFlags(t *testing.T) {
	fs := flag.NewFlagSet("manager", flag.ContinueOnError)
	registerGEPMAliases(fs)
	var certDir, level, seedURL, shootURL, kubeconfigSecret, tokenSecret, sshKeySecret string
	var leader bool
	fs.StringVar(&certDir, "webhook-cert-dir", "", "")
	fs.StringVar(&level, "zap-log-level", "", "")
	fs.StringVar(&seedURL, "agent-api-server-url", "", "")
	fs.StringVar(&shootURL, "shoot-api-server-url", "", "")
	fs.StringVar(&kubeconfigSecret, "workload-kubeconfig-secret", "", "")
	fs.StringVar(&tokenSecret, "workload-token-secret", "", "")
	fs.StringVar(&sshKeySecret, "ssh-key-secret", "", "")
	fs.BoolVar(&leader, "leader-elect", false, "")
	if err := fs.Parse(gepmArgs[:10]); err == nil {
		t.Fatal("cluster-id is not defined on this flag set, parsing must fail") // sanity: unknown flags still fail
	}
	fs.String("cluster-id", "", "")
	if err := fs.Parse(gepmArgs[:11]); err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string]string{
		"webhook-cert-dir": certDir, "zap-log-level": level, "agent-api-server-url": seedURL, "shoot-api-server-url": shootURL,
		"workload-kubeconfig-secret": kubeconfigSecret, "workload-token-secret": tokenSecret, "ssh-key-secret": sshKeySecret,
	} {
		want := map[string]string{
			"webhook-cert-dir": "/certs", "zap-log-level": "info", "agent-api-server-url": "https://api.seed.example", "shoot-api-server-url": "https://api.shoot.example",
			"workload-kubeconfig-secret": "generic-token-kubeconfig-abc/kubeconfig", "workload-token-secret": "shoot-access-firewall-controller-manager",
			"ssh-key-secret": "ssh-keypair-abc",
		}[name]
		if got != want {
			t.Errorf("--%s = %q, want %q", name, got, want)
		}
	}
	if !leader {
		t.Error("-enable-leader-election did not set --leader-elect")
	}
}

func TestGEPMEnvironmentAlias(t *testing.T) {
	t.Setenv("METAL_API_HMAC", "")
	t.Setenv("METAL_AUTH_HMAC", "from-gepm")
	registerGEPMAliases(flag.NewFlagSet("x", flag.ContinueOnError))
	if got := os.Getenv("METAL_API_HMAC"); got != "from-gepm" {
		t.Errorf("METAL_API_HMAC = %q, want the value of METAL_AUTH_HMAC", got)
	}
	t.Setenv("METAL_API_HMAC", "palisade")
	registerGEPMAliases(flag.NewFlagSet("y", flag.ContinueOnError))
	if got := os.Getenv("METAL_API_HMAC"); got != "palisade" {
		t.Errorf("METAL_API_HMAC = %q, Palisade's own variable must win", got)
	}
}

// Palisade reads the ssh key Secret in each deployment's namespace: GEPM's
// -ssh-key-secret-namespace is accepted only as the one served namespace.
func TestSSHKeySecretNamespaceMustBeTheServedOne(t *testing.T) {
	for args, want := range map[string]string{
		"-namespace=shoot--p--n -ssh-key-secret-namespace=shoot--p--n": "--metal-api-url is required",
		"-namespace=shoot--p--n -ssh-key-secret-namespace=garden":      "only the one --namespace is accepted",
		"-ssh-key-secret-namespace=garden":                             "only the one --namespace is accepted",
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "PALISADE_TEST_RUN_MAIN=1", "PALISADE_TEST_ARGS="+args+" -metal-api-url=")
		out, _ := cmd.CombinedOutput()
		if !strings.Contains(string(out), want) {
			t.Errorf("%s: want %q in\n%s", args, want, out)
		}
	}
}
