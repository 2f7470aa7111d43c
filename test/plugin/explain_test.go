package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/palisade-fw/palisade/api/v1"
	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/controller/firewall"
	"github.com/palisade-fw/palisade/internal/manager"
	"github.com/palisade-fw/palisade/internal/metal/metalsim"
	"github.com/palisade-fw/palisade/internal/plugin"
	"github.com/palisade-fw/palisade/internal/testenv/harness"
)

const explainNS = "tenant-explain"

// explainCmd runs `kubectl palisade explain` in explainNS.
func explainCmd(t *testing.T, kubeconfig string, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := plugin.NewRootCommand(genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	cmd.SetArgs(append([]string{"--kubeconfig", kubeconfig, "-n", explainNS, "explain"}, args...))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := cmd.ExecuteContext(ctx)
	t.Logf("$ kubectl palisade explain %s\n%s%s", strings.Join(args, " "), out.String(), errOut.String())
	return out.String(), err
}

func mustExplain(t *testing.T, kubeconfig string, args ...string) string {
	t.Helper()
	out, err := explainCmd(t, kubeconfig, args...)
	if err != nil {
		t.Fatalf("explain %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// explain reads the objects from the API server: the Firewall the manager created for a
// FirewallDeployment (its networks from the simulated metal-api), CWNPs with their learned
// toFQDNs addresses and Services. The one API server is seed and workload cluster at once,
// reached as the workload cluster through the Secret the deployment's workload-kubeconfig
// annotation names (inherited by its firewalls), or through --workload-kubeconfig.
func TestExplain(t *testing.T) {
	// The manager publishes status.shootAccess (as under Gardener) pointing at this API server.
	var stack *harness.Stack
	stack = harness.New(harness.Options{Manager: func(o *manager.Options) {
		o.Firewall.ShootAccess = firewall.ShootAccessConfig{GenericKubeconfigSecret: "generic", APIServerURL: stack.Config.Host}
	}})
	t.Cleanup(func() { _ = stack.Stop() })
	for _, start := range []func() error{stack.StartAPIServer, stack.StartSimulator, stack.StartManager} {
		if err := start(); err != nil {
			t.Fatal(err)
		}
	}
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := stack.WriteKubeconfig(kubeconfig); err != nil {
		t.Fatal(err)
	}
	kubeconfigData, err := os.ReadFile(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c := stack.Client
	for _, n := range []string{explainNS, "firewall", "shop"} {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n}}); err != nil {
			t.Fatal(err)
		}
	}
	must(t, c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "workload", Namespace: explainNS},
		Data: map[string][]byte{v2.DefaultUserdataKey: kubeconfigData}}))
	must(t, c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "generic", Namespace: explainNS},
		Data: map[string][]byte{"kubeconfig": kubeconfigData}}))
	for name, annotations := range map[string]map[string]string{
		"edge":  {v2.NoControllerConnectionAnnotation: "true", v2.WorkloadKubeconfigAnnotation: "workload"},
		"other": {v2.NoControllerConnectionAnnotation: "true"}, // reached through status.shootAccess
	} {
		must(t, c.Create(ctx, &v2.FirewallDeployment{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: explainNS, Annotations: annotations},
			Spec: v2.FirewallDeploymentSpec{
				Replicas: 1,
				Template: v2.FirewallTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}}, Spec: v2.FirewallSpec{
					Size: metalsim.DefaultSize, Image: metalsim.DefaultImage,
					Partition: metalsim.DefaultPartition, Project: metalsim.DefaultProject,
					Networks: []string{metalsim.DefaultExternalNetwork, metalsim.DefaultPrivateNetwork},
					Userdata: `{"ignition":{"version":"3.4.0"}}`,
				}},
			},
		}))
	}

	// The firewall, once metal-api reported its networks; a node address of its private network.
	var fw v2.Firewall
	var node netip.Addr
	waitFor(t, "the firewall carries its networks and the annotation", func() bool {
		var fws v2.FirewallList
		if err := c.List(ctx, &fws, client.InNamespace(explainNS), client.MatchingLabels{"app": "edge"}); err != nil || len(fws.Items) != 1 {
			return false
		}
		fw = fws.Items[0]
		for _, n := range fw.Status.FirewallNetworks {
			if n.NetworkType != nil && strings.HasPrefix(*n.NetworkType, "privateprimary") && len(n.Prefixes) > 0 {
				node = netip.MustParsePrefix(n.Prefixes[0]).Addr().Next().Next()
			}
		}
		return node.IsValid() && fw.Annotations[v2.WorkloadKubeconfigAnnotation] == "workload"
	})
	waitFor(t, "the other deployment's firewall carries its shoot access", func() bool {
		var fws v2.FirewallList
		return c.List(ctx, &fws, client.InNamespace(explainNS), client.MatchingLabels{"app": "other"}) == nil && len(fws.Items) == 1 &&
			fws.Items[0].Status.ShootAccess != nil && len(fws.Items[0].Status.FirewallNetworks) > 0
	})

	port := func(proto corev1.Protocol, p int32) v1.NetworkPolicyPort {
		return v1.NetworkPolicyPort{Protocol: &proto, Port: ptr.To(p)}
	}
	for _, p := range []*v1.ClusterwideNetworkPolicy{
		{ObjectMeta: metav1.ObjectMeta{Name: "allow-github", Namespace: "firewall"}, Spec: v1.PolicySpec{Egress: []v1.EgressRule{
			{Ports: []v1.NetworkPolicyPort{port(corev1.ProtocolTCP, 443), port(corev1.ProtocolTCP, 22)}, To: []v1.IPBlock{{CIDR: "140.82.112.0/20"}}}}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "allow-https", Namespace: "firewall"}, Spec: v1.PolicySpec{Egress: []v1.EgressRule{
			{Ports: []v1.NetworkPolicyPort{port(corev1.ProtocolTCP, 443)}, To: []v1.IPBlock{{CIDR: "140.82.0.0/24"}}}}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "git", Namespace: "firewall"}, Spec: v1.PolicySpec{Egress: []v1.EgressRule{
			{Ports: []v1.NetworkPolicyPort{port(corev1.ProtocolTCP, 22)}, ToFQDNs: []v1.FQDNSelector{{MatchName: "git.example.com"}}}}}},
	} {
		must(t, c.Create(ctx, p))
	}
	// The agent's report of what git.example.com resolved to.
	git := &v1.ClusterwideNetworkPolicy{}
	must(t, c.Get(ctx, client.ObjectKey{Namespace: "firewall", Name: "git"}, git))
	git.Status.FQDNState = map[string][]v1.IPSet{"git.example.com": {{FQDN: "git.example.com.", Version: "ip",
		IPExpirationTimes: map[string]metav1.Time{"192.0.2.22": metav1.NewTime(time.Now().Add(time.Hour))}}}}
	must(t, c.Status().Update(ctx, git))
	must(t, c.Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"}, Spec: corev1.ServiceSpec{
		Type: corev1.ServiceTypeLoadBalancer, LoadBalancerIP: "185.1.2.10", LoadBalancerSourceRanges: []string{"203.0.113.0/24"},
		Ports: []corev1.ServicePort{{Name: "https", Protocol: corev1.ProtocolTCP, Port: 443, TargetPort: intstr.FromInt32(8443)}},
	}}))

	from := node.String()
	checks := []struct {
		args []string
		want []string
	}{
		{[]string{"firewalldeployment/edge", "--from", from, "--to", "140.82.112.3:443/tcp", "--default-egress=false"},
			[]string{"firewall " + explainNS + "/" + fw.Name + " (current firewall of", "(egress): allowed by cwnp/allow-github egress[0] (443/tcp, 22/tcp to 140.82.112.0/20)"}},
		{[]string{"fw/" + fw.Name, "--from", from, "--to", "140.82.0.3:22/tcp"},
			[]string{"dropped: no rule matches; nearest: cwnp/allow-https egress[0] allows 443/tcp to 140.82.0.0/24 only",
				"  nearest: cwnp/allow-github egress[0] allows 443/tcp, 22/tcp to 140.82.112.0/20 (misses address: 140.82.0.3 is outside)",
				"  nearest: default-egress egress[0] allows 443/tcp, 53/tcp, 53/udp to 0.0.0.0/0, ::/0 (misses port: not 22/tcp)"}},
		{[]string{"firewall/" + fw.Name, "--from", from, "--to", "140.82.1.3:443/tcp", "--default-egress=false"},
			[]string{"dropped: no rule matches; nearest: cwnp/allow-https egress[0] allows 443/tcp to 140.82.0.0/24 only"}},
		{[]string{"firewall/" + fw.Name, "--to", "8.8.8.8:53/udp"},
			[]string{"the cluster -> 8.8.8.8:53 udp (egress): allowed by default-egress egress[0]"}},
		{[]string{"firewall/" + fw.Name, "--from", from, "--to", "192.0.2.22:22/tcp"},
			[]string{"allowed by cwnp/git egress[0] (22/tcp to the addresses learned for git.example.com)"}},
		{[]string{"firewall/" + fw.Name, "--to-service", "shop/web", "--from", "203.0.113.9"},
			[]string{"203.0.113.9 -> 185.1.2.10:443 tcp (ingress): allowed by service/shop/web port 443/tcp"}},
		{[]string{"fwdeploy/other", "--to-service", "shop/web", "--from", "203.0.113.9", "--port", "443/tcp"},
			[]string{"(current firewall of firewalldeployment.firewall.metal-stack.io other)", "allowed by service/shop/web port 443/tcp"}},
		{[]string{"firewall/" + fw.Name, "--to-service", "shop/web", "--from", "198.51.100.1", "--workload-kubeconfig", kubeconfig},
			[]string{"dropped: no rule matches; nearest: service/shop/web port 443/tcp allows 443/tcp to 185.1.2.10 from 203.0.113.0/24 only"}},
	}
	for _, check := range checks {
		out := mustExplain(t, kubeconfig, check.args...)
		for _, w := range check.want {
			if !strings.Contains(out, w) {
				t.Errorf("explain %s: output lacks %q:\n%s", strings.Join(check.args, " "), w, out)
			}
		}
	}

	// For machines: the verdict, the rule and its counter.
	out := mustExplain(t, kubeconfig, "firewall/"+fw.Name, "--from", from, "--to", "140.82.112.3:22/tcp", "-o", "json")
	var doc plugin.Explanation
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("-o json: %v\n%s", err, out)
	}
	if len(doc.Results) != 1 || !doc.Results[0].Allowed || doc.Results[0].By.Object != "cwnp/allow-github" ||
		!strings.HasSuffix(doc.Results[0].By.Counter, "-firewall/allow-github") || doc.Firewall != explainNS+"/"+fw.Name {
		t.Fatalf("-o json: %+v", doc)
	}
	if out := mustExplain(t, kubeconfig, "firewall/"+fw.Name, "--to", "140.82.112.3:23/tcp", "-o", "yaml"); !strings.Contains(out, "allowed: false") || !strings.Contains(out, "reason: no rule matches") {
		t.Fatalf("-o yaml:\n%s", out)
	}

	// Wrong input says what is wrong.
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"firewall/" + fw.Name, "--from", "198.51.100.1", "--to", "140.82.112.3:443", "--direction", "egress"}, "treats the flow as ingress"},
		{[]string{"firewall/nope", "--to", "140.82.112.3:443"}, "not found"},
		{[]string{"firewall/" + fw.Name, "--to-service", "shop/nope", "--from", "198.51.100.1"}, "not found in the workload cluster"},
		{[]string{"edge", "--to", "140.82.112.3:443"}, "write firewall/NAME or firewalldeployment/NAME"},
	} {
		if _, err := explainCmd(t, kubeconfig, bad.args...); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("explain %s: error %v, want %q", strings.Join(bad.args, " "), err, bad.want)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
