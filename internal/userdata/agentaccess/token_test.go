package agentaccess

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/palisade-fw/palisade/internal/userdata"
)

var params = kubeconfigParams{Server: "https://api:6443", CAData: []byte("CA"), Namespace: "ns", User: userName("ns", "fw-firewall-agent")}

func storedSecret(t *testing.T, p kubeconfigParams, issued, expiry time.Time, keys ...string) *corev1.Secret {
	t.Helper()
	kc, err := buildKubeconfig(p, "the-token")
	if err != nil {
		t.Fatal(err)
	}
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{
		userdata.TokenIssuedAnnotation:       issued.Format(time.RFC3339),
		userdata.TokenExpiryAnnotation:       expiry.Format(time.RFC3339),
		userdata.ServiceAccountUIDAnnotation: "uid-1",
	}}, Data: map[string][]byte{}}
	for _, k := range keys {
		s.Data[k] = kc
	}
	return s
}

func TestCurrentToken(t *testing.T) {
	issued := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	expiry := issued.Add(3 * time.Hour)

	state, ok := currentToken(storedSecret(t, params, issued, expiry, "value"), []string{"value"}, params, "uid-1")
	if !ok {
		t.Fatal("an up-to-date Secret is not current")
	}
	if want := issued.Add(2 * time.Hour); !state.refreshAt().Equal(want) {
		t.Errorf("refreshAt = %v, want %v (two thirds of the lifetime)", state.refreshAt(), want)
	}

	otherServer := params
	otherServer.Server = "https://elsewhere:6443"
	otherCA := params
	otherCA.CAData = []byte("new CA")
	for name, tc := range map[string]struct {
		secret *corev1.Secret
		keys   []string
		params kubeconfigParams
		uid    string
	}{
		"new server":          {storedSecret(t, params, issued, expiry, "value"), []string{"value"}, otherServer, "uid-1"},
		"new CA":              {storedSecret(t, params, issued, expiry, "value"), []string{"value"}, otherCA, "uid-1"},
		"recreated SA":        {storedSecret(t, params, issued, expiry, "value"), []string{"value"}, params, "uid-2"},
		"missing key":         {storedSecret(t, params, issued, expiry, "value"), []string{"value", "other"}, params, "uid-1"},
		"no annotations":      {&corev1.Secret{Data: map[string][]byte{"value": []byte("x")}}, []string{"value"}, params, ""},
		"expiry before issue": {storedSecret(t, params, expiry, issued, "value"), []string{"value"}, params, "uid-1"},
		"not a kubeconfig at all": {func() *corev1.Secret {
			s := storedSecret(t, params, issued, expiry, "value")
			s.Data["value"] = []byte("garbage")
			return s
		}(), []string{"value"}, params, "uid-1"},
	} {
		if _, ok := currentToken(tc.secret, tc.keys, tc.params, tc.uid); ok {
			t.Errorf("%s: Secret considered current", name)
		}
	}
}

func TestTokenTTLBounds(t *testing.T) {
	for ttl, want := range map[time.Duration]time.Duration{0: DefaultTokenTTL, time.Minute: MinTokenTTL, 2 * time.Hour: 2 * time.Hour} {
		if got := (&AgentAccess{TokenTTL: ttl}).tokenTTL(); got != want {
			t.Errorf("TokenTTL %v -> %v, want %v", ttl, got, want)
		}
	}
}

func TestAgentRulesAlwaysNameTheirObjects(t *testing.T) {
	for _, r := range AgentRules(nil, nil) {
		t.Fatalf("a rule without resourceNames grants every object of its kind: %+v", r)
	}
	for _, r := range AgentRules([]string{"fw-a"}, []string{"a"}) {
		if len(r.ResourceNames) == 0 {
			t.Errorf("rule without resourceNames: %+v", r)
		}
	}
	rules := AgentRules(nil, []string{"a"})
	last := rules[len(rules)-1]
	if last.Resources[0] != "secrets" || len(last.ResourceNames) != 1 || len(last.Verbs) != 1 || last.Verbs[0] != "get" {
		t.Errorf("unexpected Secret rule %+v", last)
	}
}

func TestServiceAccountNameIsBounded(t *testing.T) {
	long := make([]byte, 253)
	for i := range long {
		long[i] = 'a'
	}
	d := deployment("ns", string(long))
	if n := ServiceAccountName(d); len(n) > maxNameLength {
		t.Errorf("name has %d characters", len(n))
	}
	if n := ServiceAccountName(deployment("ns", "edge")); n != "edge-firewall-agent" {
		t.Errorf("name %q", n)
	}
}
