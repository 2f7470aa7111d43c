package v1

import (
	"context"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	v1 "github.com/palisade-fw/palisade/api/v1"
)

func policy(mutate func(*v1.PolicySpec)) *v1.ClusterwideNetworkPolicy {
	p := &v1.ClusterwideNetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "firewall"}}
	mutate(&p.Spec)
	return p
}

func TestValidatePolicy(t *testing.T) {
	cases := []struct {
		name     string
		spec     func(*v1.PolicySpec)
		errs     []string
		warnings []string
	}{
		{"empty", func(*v1.PolicySpec) {}, nil, nil},
		{"dual stack with ranges", func(s *v1.PolicySpec) {
			s.Ingress = []v1.IngressRule{{
				From:  []v1.IPBlock{{CIDR: "10.0.0.0/8", Except: []string{"10.1.0.0/16"}}, {CIDR: "2001:db8::/32", Except: []string{"2001:db8:1::/48"}}},
				Ports: []v1.NetworkPolicyPort{{Port: ptr.To[int32](1)}, {Port: ptr.To[int32](8000), EndPort: ptr.To[int32](8000)}, {Port: ptr.To[int32](65535)}},
			}}
			s.Egress = []v1.EgressRule{{ToFQDNs: []v1.FQDNSelector{{MatchName: "example.com."}, {MatchPattern: "*.example.com"}, {MatchPattern: "*"}, {MatchName: "_sip._tcp.example.com"}}}}
		}, nil, nil},
		{"upstream except outside the block", func(s *v1.PolicySpec) {
			s.Egress = []v1.EgressRule{{To: []v1.IPBlock{{CIDR: "1.1.0.0/24", Except: []string{"1.1.1.0/16"}}}}}
		}, nil, []string{"spec.egress[0].to[0].except[0]: 1.1.1.0/16 is not inside cidr 1.1.0.0/24"}},
		{"IPv6 except outside the block", func(s *v1.PolicySpec) {
			s.Ingress = []v1.IngressRule{{From: []v1.IPBlock{{CIDR: "2001:db8::/48", Except: []string{"2001:db9::/64"}}}}}
		}, nil, []string{"spec.ingress[0].from[0].except[0]"}},
		{"host bits", func(s *v1.PolicySpec) {
			s.Ingress = []v1.IngressRule{{From: []v1.IPBlock{{CIDR: "10.0.0.1/8"}}}}
		}, nil, []string{"spec.ingress[0].from[0].cidr: 10.0.0.1/8 has host bits set; it is used as 10.0.0.0/8"}},
		{"bad cidr", func(s *v1.PolicySpec) {
			s.Ingress = []v1.IngressRule{{From: []v1.IPBlock{{CIDR: "10.0.0.0/33"}}}}
		}, []string{"spec.ingress[0].from[0].cidr"}, nil},
		{"bad except", func(s *v1.PolicySpec) {
			s.Ingress = []v1.IngressRule{{From: []v1.IPBlock{{CIDR: "10.0.0.0/8", Except: []string{"10.0.0.0"}}}}}
		}, []string{"spec.ingress[0].from[0].except[0]"}, nil},
		{"except of the other family", func(s *v1.PolicySpec) {
			s.Egress = []v1.EgressRule{{To: []v1.IPBlock{{CIDR: "0.0.0.0/0", Except: []string{"10.0.0.0/8", "fd00::/8"}}}}}
		}, []string{"spec.egress[0].to[0].except[1]", "same address family", "IPv4"}, nil},
		{"IPv4-mapped except in IPv6 block", func(s *v1.PolicySpec) {
			s.Egress = []v1.EgressRule{{To: []v1.IPBlock{{CIDR: "::/0", Except: []string{"10.0.0.0/8"}}}}}
		}, []string{"spec.egress[0].to[0].except[0]", "IPv6"}, nil},
		{"port 0", func(s *v1.PolicySpec) {
			s.Ingress = []v1.IngressRule{{Ports: []v1.NetworkPolicyPort{{Port: ptr.To[int32](0)}}}}
		}, []string{"spec.ingress[0].ports[0].port"}, nil},
		{"endPort too big", func(s *v1.PolicySpec) {
			s.Egress = []v1.EgressRule{{Ports: []v1.NetworkPolicyPort{{Port: ptr.To[int32](1), EndPort: ptr.To[int32](70000)}}}}
		}, []string{"spec.egress[0].ports[0].endPort"}, nil},
		{"endPort below port", func(s *v1.PolicySpec) {
			s.Egress = []v1.EgressRule{{Ports: []v1.NetworkPolicyPort{{Port: ptr.To[int32](9000), EndPort: ptr.To[int32](8000)}}}}
		}, []string{"spec.egress[0].ports[0].endPort", "greater than or equal to port 9000"}, nil},
		{"endPort without port", func(s *v1.PolicySpec) {
			s.Egress = []v1.EgressRule{{Ports: []v1.NetworkPolicyPort{{EndPort: ptr.To[int32](8000)}}}}
		}, []string{"spec.egress[0].ports[0].port", "Required"}, nil},
		{"label too long", func(s *v1.PolicySpec) {
			s.Egress = []v1.EgressRule{{ToFQDNs: []v1.FQDNSelector{{MatchName: strings.Repeat("a", 64) + ".com"}}}}
		}, []string{"spec.egress[0].toFQDNs[0].matchName", "longer than 63"}, nil},
		{"name too long", func(s *v1.PolicySpec) {
			s.Egress = []v1.EgressRule{{ToFQDNs: []v1.FQDNSelector{{MatchPattern: strings.Repeat("abcdefghi.", 26) + "com"}}}}
		}, []string{"spec.egress[0].toFQDNs[0].matchPattern", "253"}, nil},
		{"empty label", func(s *v1.PolicySpec) {
			s.Egress = []v1.EgressRule{{ToFQDNs: []v1.FQDNSelector{{MatchName: "example..com"}}}}
		}, []string{"spec.egress[0].toFQDNs[0].matchName", "empty label"}, nil},
		{"leading hyphen", func(s *v1.PolicySpec) {
			s.Egress = []v1.EgressRule{{ToFQDNs: []v1.FQDNSelector{{MatchName: "-bad.example.com"}}}}
		}, []string{"spec.egress[0].toFQDNs[0].matchName", "'-'"}, nil},
		{"wildcard in a name", func(s *v1.PolicySpec) {
			s.Egress = []v1.EgressRule{{ToFQDNs: []v1.FQDNSelector{{MatchName: "*.example.com"}}}}
		}, []string{"spec.egress[0].toFQDNs[0].matchName"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			warnings, err := (&ClusterwideNetworkPolicyValidator{}).ValidateCreate(context.Background(), policy(tc.spec))
			if tc.errs == nil {
				g.Expect(err).NotTo(HaveOccurred())
			}
			for _, want := range tc.errs {
				g.Expect(err).To(MatchError(ContainSubstring(want)))
			}
			g.Expect(warnings).To(HaveLen(len(tc.warnings)))
			for i, want := range tc.warnings {
				g.Expect(warnings[i]).To(ContainSubstring(want))
			}
		})
	}
}

func TestPolicyOutsideFirewallNamespaceWarns(t *testing.T) {
	g := NewWithT(t)
	p := policy(func(*v1.PolicySpec) {})
	p.Namespace = "default"
	warnings, err := (&ClusterwideNetworkPolicyValidator{}).ValidateCreate(context.Background(), p)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(warnings).To(ConsistOf(ContainSubstring(`namespace "default" and is not enforced`)))
}

func TestPolicyUpdateRatchets(t *testing.T) {
	g := NewWithT(t)
	old := policy(func(s *v1.PolicySpec) {
		s.Egress = []v1.EgressRule{{ToFQDNs: []v1.FQDNSelector{{MatchName: "-legacy.example.com"}}}}
	})
	labelled := old.DeepCopy()
	labelled.Labels = map[string]string{"team": "a"}
	_, err := (&ClusterwideNetworkPolicyValidator{}).ValidateUpdate(context.Background(), old, labelled)
	g.Expect(err).NotTo(HaveOccurred())

	changed := labelled.DeepCopy()
	changed.Spec.Egress[0].ToFQDNs[0].MatchName = "-other.example.com"
	_, err = (&ClusterwideNetworkPolicyValidator{}).ValidateUpdate(context.Background(), old, changed)
	g.Expect(err).To(MatchError(ContainSubstring("spec.egress[0].toFQDNs[0].matchName")))
}
