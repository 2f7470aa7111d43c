package e2e

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/palisade-fw/palisade/api/v1"
	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/manager"
	"github.com/palisade-fw/palisade/internal/metal/metalsim"
	"github.com/palisade-fw/palisade/internal/testenv/harness"
	"github.com/palisade-fw/palisade/test/netns"
)

// The Gardener shape: the shoot's control plane namespace in the seed.
const shootNamespace = "shoot--proj--name"

var (
	seed           *harness.Stack
	workload       *harness.Workload
	workloadClient client.Client
	workloadKube   []byte
	ctx            = context.Background()
)

func TestMain(m *testing.M) {
	code := run(m)
	netns.CleanupBinary()
	os.Exit(code)
}

func run(m *testing.M) int {
	logger := harness.TestLogger()
	if os.Geteuid() != 0 {
		// Checked again per test (netns.RequirePrivileges), which skips with the reason.
		return m.Run()
	}
	var err error
	if workload, err = harness.StartWorkload(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = workload.Stop() }()
	workloadClient, workloadKube = workload.Client, workload.Kubeconfig
	seed, err = harness.Start(harness.Options{Webhooks: true, Logger: logger, Manager: func(o *manager.Options) {
		o.Firewall.RunningPoll = time.Second
	}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = seed.Stop() }()
	return m.Run()
}

// site is the network: an outside host, the cluster's node, and one namespace per firewall
// machine; only the first firewall is wired into the traffic path.
//
//	outside 185.1.2.50  --  fw 185.1.2.1 | fw 10.0.4.1  --  node 10.0.4.10
type site struct {
	*netns.Lab
	outside, node string
	firewalls     []string
}

const (
	outsideIP = "185.1.2.50"
	nodeIP    = "10.0.4.10"
)

func newSite(t *testing.T, firewalls int) *site {
	lab := netns.NewLab(t)
	s := &site{Lab: lab, outside: lab.NS("out"), node: lab.NS("node")}
	for i := range firewalls {
		s.firewalls = append(s.firewalls, lab.NS(fmt.Sprintf("fw%d", i)))
	}
	fw := s.firewalls[0]
	lab.Link(s.outside, "eth0", []string{outsideIP + "/24"}, fw, "vlan104009", []string{"185.1.2.1/24"})
	lab.Link(fw, "vrf30", []string{"10.0.4.1/22"}, s.node, "eth0", []string{nodeIP + "/22"})
	lab.Router(fw)
	lab.Route(s.outside, "default", "185.1.2.1")
	lab.Route(s.node, "default", "10.0.4.1")
	lab.Serve(s.outside, [2]string{"tcp", "[::]:8080"}, [2]string{"tcp", "[::]:8132"})
	// Every firewall reaches the seed and the workload API servers at their loopback
	// addresses, as the kubeconfigs in the userdata name them.
	for _, ns := range s.firewalls {
		for _, cfg := range []*rest.Config{seed.Config, workload.Env.Config} {
			u, err := url.Parse(cfg.Host)
			if err != nil {
				t.Fatal(err)
			}
			ForwardLoopback(t, ns, u.Host)
		}
	}
	return s
}

// agentConfig is the agent config the deployment ships inline, the seed's Gardener shape.
const agentConfig = `sources:
  seed:
    kubeconfig: /etc/firewall-controller/seed.yaml
    namespace: ` + shootNamespace + `
  shoot:
    kubeconfig: /etc/firewall-controller/shoot.yaml
    namespace: firewall
controllers:
  firewall:
    source: seed
  service:
    source: shoot
  cwnp:
    source: shoot
  monitor:
    source: shoot
nftables:
  ruleFile: /etc/firewall-controller/nftables/firewall-controller.v4
reporting:
  interval: 2s
# No FRR runs in the firewall namespaces: distance handling is off, so the result does not
# depend on whether the machine has frr installed (internal/agent/report tests it with a real bgpd).
distance:
  frrFile: "-"
`

func gardenerDeployment() *v2.FirewallDeployment {
	return &v2.FirewallDeployment{
		ObjectMeta: metav1.ObjectMeta{
			Name: "shoot-firewall", Namespace: shootNamespace,
			Annotations: map[string]string{v2.WorkloadKubeconfigAnnotation: "shoot-kubeconfig"},
		},
		Spec: v2.FirewallDeploymentSpec{
			Replicas: 1,
			Template: v2.FirewallTemplateSpec{
				Spec: v2.FirewallSpec{
					Size: metalsim.DefaultSize, Image: "firewall-ubuntu-3.0.20240201", Partition: metalsim.DefaultPartition,
					Project:  metalsim.DefaultProject,
					Networks: []string{metalsim.DefaultExternalNetwork, metalsim.DefaultPrivateNetwork},
					UserdataContents: []v2.UserdataContent{
						{Path: configDir + "config.yaml", Content: ptr(agentConfig)},
						{Path: configDir + "seed.yaml", SecretRef: &v2.UserdataSecretRef{Name: "seed-kubeconfig", GenerateFirewallControllerKubeconfig: true}},
						{Path: configDir + "shoot.yaml", SecretRef: &v2.UserdataSecretRef{Name: "shoot-kubeconfig"}},
					},
				},
			},
		},
	}
}

func TestManagerAndAgent(t *testing.T) {
	netns.RequirePrivileges(t)
	g := NewWithT(t)
	g.SetDefaultEventuallyTimeout(90 * time.Second)
	g.SetDefaultEventuallyPollingInterval(200 * time.Millisecond)
	s := newSite(t, 3)
	c := seed.Client

	g.Expect(c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: shootNamespace}})).To(Succeed())
	g.Expect(c.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "shoot-kubeconfig", Namespace: shootNamespace},
		Data:       map[string][]byte{v2.DefaultUserdataKey: workloadKube},
	})).To(Succeed())
	deploy := gardenerDeployment()
	g.Expect(c.Create(ctx, deploy)).To(Succeed())

	// Ready on a Firewall is the machine's state as metal-api sees it (upstream's meaning); a
	// firewall counts as ready in its set and deployment only once the agent applied its rules
	// too (Provisioned latches that moment).
	t.Log("the machine phones home, but the firewall is not ready before its agent applied rules")
	first := waitForMachine(g, nil)
	g.Eventually(func(g Gomega) {
		fw := firewall(g, first.Allocation.Hostname)
		g.Expect(fw.Status.MachineStatus).NotTo(BeNil())
		g.Expect(fw.Status.MachineStatus.LastEvent).NotTo(BeNil())
		g.Expect(fw.Status.MachineStatus.LastEvent.Event).To(Equal("Phoned Home"))
	}).Should(Succeed())
	g.Consistently(func(g Gomega) {
		fw := firewall(g, first.Allocation.Hostname)
		g.Expect(meta.IsStatusConditionTrue(fw.Status.Conditions, v2.ConditionProvisioned)).To(BeFalse())
		g.Expect(deployment(g, deploy).Status.ReadyReplicas).To(BeZero())
	}, 2*time.Second).Should(Succeed())
	s.Expect(pass(s.node, outsideIP+":8080")) // no firewall rules yet: the namespace forwards everything

	agentA := StartAgent(t, s.Lab, s.firewalls[0], first.Allocation.Hostname, first.Allocation.UserData)
	g.Eventually(func(g Gomega) {
		fw := firewall(g, first.Allocation.Hostname)
		g.Expect(meta.IsStatusConditionTrue(fw.Status.Conditions, v2.ConditionConnected)).To(BeTrue(), conditionsOf(fw))
		g.Expect(meta.IsStatusConditionTrue(fw.Status.Conditions, v2.ConditionProvisioned)).To(BeTrue(), conditionsOf(fw))
		g.Expect(fw.Status.ControllerStatus.ObservedGeneration).To(Equal(fw.Generation))
		g.Expect(deployment(g, deploy).Status.ReadyReplicas).To(Equal(1))
	}).Should(Succeed())
	g.Expect(s.In(s.firewalls[0], "nft", "list", "table", "inet", "firewall")).To(ContainSubstring("chain forward"),
		"Ready means the rules are in the kernel")
	s.Expect(drop(s.node, outsideIP+":8080")) // default drop now

	t.Log("the monitor in the workload cluster shows the firewall and the agent's report")
	g.Eventually(func(g Gomega) {
		mon := &v2.FirewallMonitor{}
		g.Expect(workloadClient.Get(ctx, client.ObjectKey{Namespace: "firewall", Name: first.Allocation.Hostname}, mon)).To(Succeed())
		g.Expect(mon.MachineStatus).NotTo(BeNil())
		g.Expect(meta.IsStatusConditionTrue(mon.Conditions, v2.ConditionReady)).To(BeTrue())
		g.Expect(mon.ControllerStatus).NotTo(BeNil())
		g.Expect(mon.ControllerStatus.RulesApplied).To(HaveValue(BeTrue()))
	}).Should(Succeed())

	t.Log("a CWNP in the workload cluster is enforced on real traffic and reported deployed")
	g.Expect(workloadClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "firewall"}})).To(Or(Succeed(), MatchError(ContainSubstring("already exists"))))
	policy := &v1.ClusterwideNetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "allow-konnectivity", Namespace: "firewall"},
		Spec: v1.PolicySpec{Egress: []v1.EgressRule{{
			To:    []v1.IPBlock{{CIDR: "185.1.2.0/24"}},
			Ports: []v1.NetworkPolicyPort{{Protocol: ptr(corev1.ProtocolTCP), Port: ptr(int32(8132))}},
		}}},
	}
	g.Expect(workloadClient.Create(ctx, policy)).To(Succeed())
	g.Eventually(func(g Gomega) {
		got := &v1.ClusterwideNetworkPolicy{}
		g.Expect(workloadClient.Get(ctx, client.ObjectKeyFromObject(policy), got)).To(Succeed())
		g.Expect(got.Status.State).To(Equal(v1.PolicyDeployed))
	}, 30*time.Second).Should(Succeed())
	s.Expect(pass(s.node, outsideIP+":8132"), drop(s.node, outsideIP+":8080"))

	t.Log("an image change rolls: the new firewall's agent connects before the old machine is freed")
	updateDeployment(g, deploy, func(d *v2.FirewallDeployment) { d.Spec.Template.Spec.Image = metalsim.DefaultImage })
	second := waitForMachine(g, []string{first.ID})
	agentB := StartAgent(t, s.Lab, s.firewalls[1], second.Allocation.Hostname, second.Allocation.UserData)
	waitForRollout(g, deploy, first.ID)
	readyAt := conditionTime(g, second.Allocation.Hostname, v2.ConditionProvisioned)
	freedAt := timelineTime(g, first.ID, metalsim.TimelineFreed)
	g.Expect(readyAt.Before(freedAt)).To(BeTrue(), "new firewall Ready at %s, old machine freed at %s", readyAt, freedAt)
	agentA.Stop()

	t.Log("an agent that cannot apply its rules keeps its firewall not Connected, and the rollout waits")
	updateDeployment(g, deploy, func(d *v2.FirewallDeployment) { d.Spec.Template.Spec.Image = "firewall-ubuntu-3.0.20240201" })
	third := waitForMachine(g, []string{first.ID, second.ID})
	refuseRules(t, s.Lab, s.firewalls[2])
	StartAgent(t, s.Lab, s.firewalls[2], third.Allocation.Hostname, third.Allocation.UserData)
	g.Eventually(func(g Gomega) {
		fw := firewall(g, third.Allocation.Hostname)
		cond := meta.FindStatusCondition(fw.Status.Conditions, v2.ConditionConnected)
		g.Expect(cond).NotTo(BeNil())
		g.Expect(cond.Reason).To(Equal(v2.ReasonRulesFailed), conditionsOf(fw))
	}).Should(Succeed())
	g.Consistently(func(g Gomega) {
		g.Expect(machine(g, second.ID).Allocation).NotTo(BeNil(), "the old firewall stays while the new one is not Connected")
		// readyReplicas counts the newest set (upstream's meaning); available counts them all.
		g.Expect(deployment(g, deploy).Status.AvailableReplicas).To(Equal(1))
	}, 5*time.Second).Should(Succeed())
	agentB.Stop()
}

// With no-controller-connection a deployment becomes Available without any agent.
func TestNoControllerConnection(t *testing.T) {
	netns.RequirePrivileges(t)
	g := NewWithT(t)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "shoot--proj--noagent-"}}
	g.Expect(seed.Client.Create(ctx, ns)).To(Succeed())
	deploy := gardenerDeployment()
	deploy.Namespace = ns.Name
	deploy.Annotations = map[string]string{v2.NoControllerConnectionAnnotation: "true"}
	deploy.Spec.Template.Spec.UserdataContents = nil
	deploy.Spec.Template.Spec.Userdata = `{"ignition":{"version":"3.4.0"}}`
	g.Expect(seed.Client.Create(ctx, deploy)).To(Succeed())
	g.Eventually(func(g Gomega) {
		d := &v2.FirewallDeployment{}
		g.Expect(seed.Client.Get(ctx, client.ObjectKeyFromObject(deploy), d)).To(Succeed())
		g.Expect(meta.IsStatusConditionTrue(d.Status.Conditions, v2.ConditionAvailable)).To(BeTrue())
		g.Expect(d.Status.ReadyReplicas).To(Equal(1))
	}, 90*time.Second).Should(Succeed())
}

// refuseRules makes every apply of the agent in ns fail, as a kernel that refuses the rules
// would: its table already holds a base chain "forward" on another hook, which the kernel
// never lets an apply change (the transaction fails with "operation not supported").
func refuseRules(t *testing.T, lab *netns.Lab, ns string) {
	t.Helper()
	lab.In(ns, "nft", "add", "table", "inet", "firewall")
	lab.In(ns, "nft", "add", "chain", "inet", "firewall", "forward", "{ type filter hook prerouting priority 0 ; }")
}

func waitForMachine(g Gomega, except []string) metalsim.MachineSnapshot {
	var found metalsim.MachineSnapshot
	g.Eventually(func(g Gomega) {
		var fresh []metalsim.MachineSnapshot
		for _, m := range seed.Sim.Machines() {
			if m.Allocation != nil && slices.Contains(m.Tags, v2.NamespaceTag+"="+shootNamespace) && !slices.Contains(except, m.ID) {
				fresh = append(fresh, m)
			}
		}
		g.Expect(fresh).To(HaveLen(1))
		found = fresh[0]
	}).Should(Succeed())
	return found
}

func deployment(g Gomega, d *v2.FirewallDeployment) *v2.FirewallDeployment {
	got := &v2.FirewallDeployment{}
	g.Expect(seed.Client.Get(ctx, client.ObjectKeyFromObject(d), got)).To(Succeed())
	return got
}

func machine(g Gomega, id string) metalsim.MachineSnapshot {
	m, ok := seed.Sim.Machine(id)
	g.Expect(ok).To(BeTrue())
	return m
}

func firewall(g Gomega, name string) *v2.Firewall {
	fw := &v2.Firewall{}
	g.Expect(seed.Client.Get(ctx, client.ObjectKey{Namespace: shootNamespace, Name: name}, fw)).To(Succeed())
	return fw
}

func conditionTime(g Gomega, name, condType string) time.Time {
	cond := meta.FindStatusCondition(firewall(g, name).Status.Conditions, condType)
	g.Expect(cond).NotTo(BeNil())
	g.Expect(cond.Status).To(Equal(metav1.ConditionTrue))
	return cond.LastTransitionTime.Time
}

func timelineTime(g Gomega, machineID string, kind metalsim.TimelineKind) time.Time {
	for _, e := range seed.Sim.Timeline() {
		if e.MachineID == machineID && e.Kind == kind {
			return e.Time
		}
	}
	g.Expect(fmt.Errorf("no %s event for machine %s", kind, machineID)).NotTo(HaveOccurred())
	return time.Time{}
}

func updateDeployment(g Gomega, d *v2.FirewallDeployment, mutate func(*v2.FirewallDeployment)) {
	g.Eventually(func() error {
		got := &v2.FirewallDeployment{}
		if err := seed.Client.Get(ctx, client.ObjectKeyFromObject(d), got); err != nil {
			return err
		}
		mutate(got)
		return seed.Client.Update(ctx, got)
	}).Should(Succeed())
}

// waitForRollout waits until the old machine is freed and the deployment is Available again.
func waitForRollout(g Gomega, d *v2.FirewallDeployment, oldMachine string) {
	g.Eventually(func(g Gomega) {
		g.Expect(machine(g, oldMachine).Allocation).To(BeNil(), "old machine still allocated")
		got := &v2.FirewallDeployment{}
		g.Expect(seed.Client.Get(ctx, client.ObjectKeyFromObject(d), got)).To(Succeed())
		g.Expect(meta.IsStatusConditionTrue(got.Status.Conditions, v2.ConditionAvailable)).To(BeTrue())
	}).Should(Succeed())
}

func conditionsOf(fw *v2.Firewall) string {
	var b strings.Builder
	for _, c := range fw.Status.Conditions {
		fmt.Fprintf(&b, "%s=%s (%s: %s)\n", c.Type, c.Status, c.Reason, c.Message)
	}
	return b.String()
}

func pass(ns, dst string) netns.Probe { return netns.Probe{NS: ns, Proto: "tcp", Dst: dst, Want: true} }
func drop(ns, dst string) netns.Probe {
	return netns.Probe{NS: ns, Proto: "tcp", Dst: dst, Want: false}
}

func ptr[T any](v T) *T { return &v }
