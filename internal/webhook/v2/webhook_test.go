package v2

import (
	"context"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	admissionv1 "k8s.io/api/admission/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/userdata"
)

const testKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGmDzCHhKa6r3e0Ji4JgHk3QK5sZP0H2vb3V8vZfQ4rB user@host"

func spec() v2.FirewallSpec {
	return v2.FirewallSpec{Size: "s", Image: "i", Partition: "pa", Project: "pr", Networks: []string{"internet", "private"}}
}

func deployment() *v2.FirewallDeployment {
	return &v2.FirewallDeployment{
		ObjectMeta: metav1.ObjectMeta{Name: "d", Namespace: "ns"},
		Spec: v2.FirewallDeploymentSpec{
			Replicas: 1,
			Template: v2.FirewallTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "fw"}}, Spec: spec()},
		},
	}
}

func updateCtx() context.Context {
	return admission.NewContextWithRequest(context.Background(), admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{Operation: admissionv1.Update}})
}

func TestDefaulting(t *testing.T) {
	g := NewWithT(t)
	d := deployment()
	g.Expect((&FirewallDeploymentDefaulter{}).Default(context.Background(), d)).To(Succeed())
	g.Expect(d.Spec.Strategy).To(Equal(v2.StrategyRollingUpdate))
	g.Expect(d.Spec.Selector).To(Equal(map[string]string{"app": "fw"}))
	g.Expect(d.Spec.Template.Spec.Interval).To(Equal("10s"))

	again := d.DeepCopy()
	g.Expect((&FirewallDeploymentDefaulter{}).Default(context.Background(), again)).To(Succeed())
	g.Expect(again).To(Equal(d), "defaulting is idempotent")

	kept := deployment()
	kept.Spec.Strategy, kept.Spec.Template.Spec.Interval = v2.StrategyRecreate, "1m"
	g.Expect((&FirewallDeploymentDefaulter{}).Default(context.Background(), kept)).To(Succeed())
	g.Expect(kept.Spec.Strategy).To(Equal(v2.StrategyRecreate))
	g.Expect(kept.Spec.Template.Spec.Interval).To(Equal("1m"))

	onUpdate := deployment()
	g.Expect((&FirewallDeploymentDefaulter{}).Default(updateCtx(), onUpdate)).To(Succeed())
	g.Expect(onUpdate.Spec.Selector).To(BeNil(), "the immutable selector is defaulted on create only")
	g.Expect(onUpdate.Spec.Template.Spec.Interval).To(Equal("10s"))

	set := &v2.FirewallSet{Spec: v2.FirewallSetSpec{Template: deployment().Spec.Template}}
	g.Expect((&FirewallSetDefaulter{}).Default(context.Background(), set)).To(Succeed())
	g.Expect(set.Spec.Selector).To(Equal(map[string]string{"app": "fw"}))
	g.Expect(set.Spec.Template.Spec.Interval).To(Equal("10s"))

	fw := &v2.Firewall{Spec: spec()}
	g.Expect((&FirewallDefaulter{}).Default(context.Background(), fw)).To(Succeed())
	g.Expect(fw.Spec.Interval).To(Equal("10s"))
}

func TestValidateFirewall(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*v2.Firewall)
		want   []string // substrings of the error; none means valid
	}{
		{"valid", func(*v2.Firewall) {}, nil},
		{"valid with everything", func(fw *v2.Firewall) {
			fw.Annotations = map[string]string{v2.NoControllerConnectionAnnotation: "true", v2.PausedAnnotation: "false", v2.WeightAnnotation: "-5"}
			fw.Spec.Interval = "1m30s"
			fw.Spec.ControllerURL = "https://example.com/fc"
			fw.Spec.NftablesExporterURL = "http://example.com:8080/exporter"
			fw.Spec.SSHPublicKeys = []string{testKey, testKey + "\n" + testKey + "\n"}
			fw.Spec.UserdataContents = []v2.UserdataContent{
				{Path: "/etc/firewall-controller/config.yaml", Content: ptr.To("x")},
				{Path: "/var/lib/x/y", SecretRef: &v2.UserdataSecretRef{Name: "s", GenerateFirewallControllerKubeconfig: true}},
				{Path: "/opt/a", ConfigMapRef: &v2.UserdataConfigMapRef{Name: "c"}},
				{Path: "/usr/local/bin/x", Content: ptr.To("")},
			}
		}, nil},
		{"interval zero", func(fw *v2.Firewall) { fw.Spec.Interval = "0s" }, []string{"spec.interval", "greater than zero"}},
		{"interval overflow", func(fw *v2.Firewall) { fw.Spec.Interval = "9999999999h" }, []string{"spec.interval", "duration"}},
		{"ftp controller URL", func(fw *v2.Firewall) { fw.Spec.ControllerURL = "ftp://example.com/fc" }, []string{"spec.controllerURL", "http or https"}},
		{"relative exporter URL", func(fw *v2.Firewall) { fw.Spec.NftablesExporterURL = "example.com/x" }, []string{"spec.nftablesExporterURL"}},
		{"URL without host", func(fw *v2.Firewall) { fw.Spec.ControllerURL = "https:///x" }, []string{"spec.controllerURL", "host"}},
		{"bad ssh key", func(fw *v2.Firewall) { fw.Spec.SSHPublicKeys = []string{testKey, "ssh-rsa notbase64"} }, []string{"spec.sshPublicKeys[1]", "authorized_keys"}},
		{"second ssh key line bad", func(fw *v2.Firewall) { fw.Spec.SSHPublicKeys = []string{testKey + "\ngarbage"} }, []string{"spec.sshPublicKeys[0]"}},
		{"blank ssh key", func(fw *v2.Firewall) { fw.Spec.SSHPublicKeys = []string{" "} }, []string{"spec.sshPublicKeys[0]", "Required"}},
		{"no-controller-connection not bool", func(fw *v2.Firewall) {
			fw.Annotations = map[string]string{v2.NoControllerConnectionAnnotation: "yes please"}
		}, []string{"metadata.annotations[firewall.metal-stack.io/no-controller-connection]", "boolean"}},
		{"paused not bool", func(fw *v2.Firewall) { fw.Annotations = map[string]string{v2.PausedAnnotation: "soon"} }, []string{"metadata.annotations[firewall.metal-stack.io/paused]"}},
		{"weight too big", func(fw *v2.Firewall) { fw.Annotations = map[string]string{v2.WeightAnnotation: "4294967296"} }, []string{"metadata.annotations[firewall.metal-stack.io/weight]", "32-bit"}},
		{"path under /boot", func(fw *v2.Firewall) {
			fw.Spec.UserdataContents = []v2.UserdataContent{{Path: "/boot/x", Content: ptr.To("")}}
		}, []string{"spec.userdataContents[0].path", "/etc/"}},
		{"path is a directory", func(fw *v2.Firewall) {
			fw.Spec.UserdataContents = []v2.UserdataContent{{Path: "/etc/", Content: ptr.To("")}}
		}, []string{"spec.userdataContents[0].path"}},
		{"path /etc itself", func(fw *v2.Firewall) {
			fw.Spec.UserdataContents = []v2.UserdataContent{{Path: "/etc", Content: ptr.To("")}}
		}, []string{"spec.userdataContents[0].path"}},
		{"path /etcetera", func(fw *v2.Firewall) {
			fw.Spec.UserdataContents = []v2.UserdataContent{{Path: "/etcetera/x", Content: ptr.To("")}}
		}, []string{"spec.userdataContents[0].path"}},
		{"relative path", func(fw *v2.Firewall) {
			fw.Spec.UserdataContents = []v2.UserdataContent{{Path: "etc/x", Content: ptr.To("")}}
		}, []string{"spec.userdataContents[0].path", "absolute"}},
		{"unclean path", func(fw *v2.Firewall) {
			fw.Spec.UserdataContents = []v2.UserdataContent{{Path: "/etc/./x", Content: ptr.To("")}}
		}, []string{"spec.userdataContents[0].path", "clean"}},
		{"escaping path", func(fw *v2.Firewall) {
			fw.Spec.UserdataContents = []v2.UserdataContent{{Path: "/etc/../root/x", Content: ptr.To("")}}
		}, []string{"spec.userdataContents[0].path", "clean"}},
		{"duplicate path", func(fw *v2.Firewall) {
			fw.Spec.UserdataContents = []v2.UserdataContent{{Path: "/etc/x", Content: ptr.To("")}, {Path: "/etc/x", Content: ptr.To("")}}
		}, []string{"spec.userdataContents[1].path", "Duplicate"}},
		{"two generated kubeconfigs", func(fw *v2.Firewall) {
			fw.Spec.UserdataContents = []v2.UserdataContent{
				{Path: "/etc/a", SecretRef: &v2.UserdataSecretRef{Name: "a", GenerateFirewallControllerKubeconfig: true}},
				{Path: "/etc/b", SecretRef: &v2.UserdataSecretRef{Name: "b", GenerateFirewallControllerKubeconfig: true}},
			}
		}, []string{"spec.userdataContents[1].secretRef.generateFirewallControllerKubeconfig", "spec.userdataContents[0]"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			fw := &v2.Firewall{ObjectMeta: metav1.ObjectMeta{Name: "fw"}, Spec: spec()}
			tc.mutate(fw)
			_, err := (&FirewallValidator{}).ValidateCreate(context.Background(), fw)
			if tc.want == nil {
				g.Expect(err).NotTo(HaveOccurred())
				return
			}
			g.Expect(apierrors.IsInvalid(err)).To(BeTrue(), "want an Invalid error, got %v", err)
			for _, w := range tc.want {
				g.Expect(err.Error()).To(ContainSubstring(w))
			}
		})
	}
}

func TestNetworkReferencesWarn(t *testing.T) {
	g := NewWithT(t)
	fw := &v2.Firewall{Spec: spec()}
	fw.Spec.EgressRules = []v2.EgressRuleSNAT{{NetworkID: "internet", IPs: []string{"1.2.3.4"}}, {NetworkID: "elsewhere"}}
	fw.Spec.RateLimits = []v2.RateLimit{{NetworkID: "nowhere", Rate: 10}}
	warnings, err := (&FirewallValidator{}).ValidateCreate(context.Background(), fw)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(warnings).To(HaveLen(2))
	g.Expect(warnings[0]).To(ContainSubstring(`spec.egressRules[1].networkID: network "elsewhere" is not one of spec.networks`))
	g.Expect(warnings[1]).To(ContainSubstring(`spec.rateLimits[0].networkID`))
}

func TestValidateTemplates(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*v2.FirewallDeployment)
		want   []string
	}{
		{"valid", func(*v2.FirewallDeployment) {}, nil},
		{"selector subset of labels", func(d *v2.FirewallDeployment) {
			d.Spec.Template.ObjectMeta.Labels["extra"] = "x"
			d.Spec.Selector = map[string]string{"app": "fw"}
		}, nil},
		{"selector value differs", func(d *v2.FirewallDeployment) { d.Spec.Selector = map[string]string{"app": "other"} },
			[]string{"spec.selector[app]", "spec.template.metadata.labels[app]"}},
		{"selector key missing", func(d *v2.FirewallDeployment) { d.Spec.Selector = map[string]string{"app": "fw", "tier": "edge"} },
			[]string{"spec.selector[tier]"}},
		{"invalid template label", func(d *v2.FirewallDeployment) { d.Spec.Template.ObjectMeta.Labels["bad key!"] = "x" },
			[]string{"spec.template.metadata.labels"}},
		{"invalid template annotation value type", func(d *v2.FirewallDeployment) {
			d.Spec.Template.ObjectMeta.Annotations = map[string]string{v2.WeightAnnotation: "heavy"}
		}, []string{"spec.template.metadata.annotations[firewall.metal-stack.io/weight]"}},
		{"template spec checked", func(d *v2.FirewallDeployment) { d.Spec.Template.Spec.Interval = "0s" },
			[]string{"spec.template.spec.interval"}},
		{"deployment annotation", func(d *v2.FirewallDeployment) {
			d.Annotations = map[string]string{v2.NoControllerConnectionAnnotation: "maybe"}
		}, []string{"metadata.annotations[firewall.metal-stack.io/no-controller-connection]"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			d := deployment()
			d.Spec.Selector = map[string]string{"app": "fw"}
			tc.mutate(d)
			_, err := (&FirewallDeploymentValidator{}).ValidateCreate(context.Background(), d)
			set := &v2.FirewallSet{ObjectMeta: d.ObjectMeta, Spec: v2.FirewallSetSpec{Selector: d.Spec.Selector, Template: d.Spec.Template}}
			_, setErr := (&FirewallSetValidator{}).ValidateCreate(context.Background(), set)
			if tc.want == nil {
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(setErr).NotTo(HaveOccurred())
				return
			}
			for _, w := range tc.want {
				g.Expect(err).To(MatchError(ContainSubstring(w)))
				g.Expect(setErr).To(MatchError(ContainSubstring(w)))
			}
		})
	}
}

func TestValidateUpdate(t *testing.T) {
	t.Run("strategy changes only when converged", func(t *testing.T) {
		g := NewWithT(t)
		old := deployment()
		old.Spec.Strategy = v2.StrategyRollingUpdate
		old.Status.TargetReplicas, old.Status.UpdatedReadyReplicas = 2, 1
		changed := old.DeepCopy()
		changed.Spec.Strategy = v2.StrategyRecreate
		_, err := (&FirewallDeploymentValidator{}).ValidateUpdate(context.Background(), old, changed)
		g.Expect(err).To(MatchError(ContainSubstring("spec.strategy: Forbidden: may only change when the deployment has converged")))

		old.Status.UpdatedReadyReplicas = 2
		_, err = (&FirewallDeploymentValidator{}).ValidateUpdate(context.Background(), old, changed)
		g.Expect(err).NotTo(HaveOccurred())

		old.Status.UpdatedReadyReplicas, old.Spec.Strategy = 1, ""
		same := old.DeepCopy()
		same.Spec.Strategy = v2.StrategyRollingUpdate
		_, err = (&FirewallDeploymentValidator{}).ValidateUpdate(context.Background(), old, same)
		g.Expect(err).NotTo(HaveOccurred(), "empty means RollingUpdate")
	})

	t.Run("selector cannot be added later", func(t *testing.T) {
		g := NewWithT(t)
		old := deployment()
		changed := old.DeepCopy()
		changed.Spec.Selector = map[string]string{"app": "fw"}
		_, err := (&FirewallDeploymentValidator{}).ValidateUpdate(context.Background(), old, changed)
		g.Expect(err).To(MatchError(ContainSubstring("spec.selector: Invalid value")))
	})

	t.Run("template metadata stays mutable", func(t *testing.T) {
		g := NewWithT(t)
		old := &v2.FirewallSet{Spec: v2.FirewallSetSpec{Selector: map[string]string{"app": "fw"}, Template: deployment().Spec.Template}}
		changed := old.DeepCopy()
		changed.Spec.Template.ObjectMeta.Labels["new"] = "label"
		changed.Spec.Template.ObjectMeta.Annotations = map[string]string{"note": "x"}
		_, err := (&FirewallSetValidator{}).ValidateUpdate(context.Background(), old, changed)
		g.Expect(err).NotTo(HaveOccurred())
	})

	t.Run("dnsPort is immutable once set", func(t *testing.T) {
		g := NewWithT(t)
		old := &v2.Firewall{Spec: spec()}
		withPort := old.DeepCopy()
		withPort.Spec.DNSPort = ptr.To[uint](53)
		_, err := (&FirewallValidator{}).ValidateUpdate(context.Background(), old, withPort)
		g.Expect(err).NotTo(HaveOccurred(), "setting it the first time is allowed")
		changed := withPort.DeepCopy()
		changed.Spec.DNSPort = ptr.To[uint](5353)
		_, err = (&FirewallValidator{}).ValidateUpdate(context.Background(), withPort, changed)
		g.Expect(err).To(MatchError(ContainSubstring("spec.dnsPort: Invalid value: 5353: is immutable once set (was 53)")))
		_, err = (&FirewallValidator{}).ValidateUpdate(context.Background(), withPort, old)
		g.Expect(err).To(MatchError(ContainSubstring("spec.dnsPort")))
	})

	t.Run("errors the stored object has already are ratcheted", func(t *testing.T) {
		g := NewWithT(t)
		old := &v2.Firewall{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{v2.WeightAnnotation: "heavy"}}, Spec: spec()}
		old.Spec.SSHPublicKeys = []string{"legacy"}
		finalized := old.DeepCopy()
		finalized.Finalizers = []string{v2.FirewallFinalizer}
		_, err := (&FirewallValidator{}).ValidateUpdate(context.Background(), old, finalized)
		g.Expect(err).NotTo(HaveOccurred())

		worse := finalized.DeepCopy()
		worse.Annotations[v2.WeightAnnotation] = "heavier"
		_, err = (&FirewallValidator{}).ValidateUpdate(context.Background(), old, worse)
		g.Expect(err).To(MatchError(ContainSubstring("metadata.annotations[firewall.metal-stack.io/weight]")))
		g.Expect(strings.Count(err.Error(), "sshPublicKeys")).To(BeZero())
	})
}

func TestGardenerUserdataDefaulting(t *testing.T) {
	g := NewWithT(t)
	gardener := func() *v2.FirewallDeployment {
		d := deployment()
		d.Name = "shoot-firewall"
		d.Labels = map[string]string{GardenerShootNamespaceLabel: "shoot--proj--name"}
		return d
	}
	want := []v2.UserdataContent{
		{Path: "/etc/firewall-controller/.seed-kubeconfig",
			SecretRef: &v2.UserdataSecretRef{Name: "firewall-controller-seed-access-shoot-firewall", GenerateFirewallControllerKubeconfig: true}},
		{Path: "/etc/firewall-controller/.kubeconfig",
			SecretRef: &v2.UserdataSecretRef{Name: "firewall-controller-shoot-access-shoot-firewall"}},
	}

	for name, ctx := range map[string]context.Context{"create": context.Background(), "update": updateCtx()} {
		d := gardener()
		g.Expect((&FirewallDeploymentDefaulter{}).Default(ctx, d)).To(Succeed())
		g.Expect(d.Spec.Template.Spec.UserdataContents).To(Equal(want), name)
		shootSecret, ok := userdata.ShootKubeconfigSecret(d)
		g.Expect(ok).To(BeTrue(), "the manager writes the shoot kubeconfig for this entry")
		g.Expect(shootSecret).To(Equal("firewall-controller-shoot-access-shoot-firewall"))
	}

	own := gardener()
	own.Spec.Template.Spec.Userdata = `{"ignition":{"version":"3.4.0"}}`
	g.Expect((&FirewallDeploymentDefaulter{}).Default(context.Background(), own)).To(Succeed())
	g.Expect(own.Spec.Template.Spec.UserdataContents).To(BeEmpty(), "userdata of its own is kept")

	plain := deployment()
	g.Expect((&FirewallDeploymentDefaulter{}).Default(context.Background(), plain)).To(Succeed())
	g.Expect(plain.Spec.Template.Spec.UserdataContents).To(BeEmpty(), "only Gardener's deployments are defaulted")
}
