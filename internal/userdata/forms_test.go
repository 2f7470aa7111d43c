package userdata

import (
	"slices"
	"testing"

	v2 "github.com/palisade-fw/palisade/api/v2"
)

func fromSecretName(path, name string) v2.UserdataContent {
	return v2.UserdataContent{Path: path, SecretName: name}
}

func fromSecretKeyRef(path, name, key string) v2.UserdataContent {
	return v2.UserdataContent{Path: path, ContentFrom: &v2.UserdataContentFrom{SecretKeyRef: &v2.UserdataKeyRef{Name: name, Key: key}}}
}

func fromConfigMapKeyRef(path, name, key string) v2.UserdataContent {
	return v2.UserdataContent{Path: path, ContentFrom: &v2.UserdataContentFrom{ConfigMapKeyRef: &v2.UserdataKeyRef{Name: name, Key: key}}}
}

func generatedFrom(path, name string) v2.UserdataContent {
	return v2.UserdataContent{Path: path, ContentFrom: &v2.UserdataContentFrom{FirewallControllerKubeconfigSecret: &v2.UserdataKeyRef{Name: name}}}
}

// The three forms written by the seed's FirewallDeployment, the seed's MetalStackCluster and the
// upstream userdata-contents branch render byte-identical userdata with the same hash.
func TestFormsAreEquivalent(t *testing.T) {
	reader := newReader(
		// As in seed 001: the agent config under controllerConfig, the kubeconfig under value.
		secret("cluster-firewall-controller-config", map[string]string{"controllerConfig": "sources: {}\n"}),
		secret("cluster-kubeconfig", map[string]string{"value": "apiVersion: v1\nkind: Config\n"}),
		configMap("settings", map[string]string{"value": "cm\n"}),
		secret("agent-kubeconfig", map[string]string{"value": "apiVersion: v1\nkind: Config\nclusters: []\n"}),
	)
	forms := map[string][]v2.UserdataContent{
		"secretRef": {
			fromSecret("/etc/firewall-controller/config.yaml", "cluster-firewall-controller-config", "controllerConfig"),
			fromSecret("/etc/firewall-controller/workload.yaml", "cluster-kubeconfig", "value"),
			fromConfigMap("/etc/firewall-controller/extra", "settings", ""),
			generated("/etc/firewall-controller/seed.yaml", "agent-kubeconfig"),
		},
		"secretName": {
			fromSecretName("/etc/firewall-controller/config.yaml", "cluster-firewall-controller-config"),
			fromSecretName("/etc/firewall-controller/workload.yaml", "cluster-kubeconfig"),
			fromConfigMap("/etc/firewall-controller/extra", "settings", ""),
			generated("/etc/firewall-controller/seed.yaml", "agent-kubeconfig"),
		},
		"contentFrom": {
			fromSecretKeyRef("/etc/firewall-controller/config.yaml", "cluster-firewall-controller-config", "controllerConfig"),
			fromSecretKeyRef("/etc/firewall-controller/workload.yaml", "cluster-kubeconfig", ""),
			fromConfigMapKeyRef("/etc/firewall-controller/extra", "settings", "value"),
			generatedFrom("/etc/firewall-controller/seed.yaml", "agent-kubeconfig"),
		},
	}
	want := render(t, New(reader), specWith(forms["secretRef"]...))
	for name, contents := range forms {
		spec := specWith(contents...)
		got := render(t, New(reader), spec)
		if got.Userdata != want.Userdata || got.Hash != want.Hash {
			t.Errorf("%s: renders differently from secretRef", name)
		}
		if s := ReferencedSecrets(spec); !slices.Equal(s, []string{"agent-kubeconfig", "cluster-firewall-controller-config", "cluster-kubeconfig"}) {
			t.Errorf("%s: ReferencedSecrets = %v", name, s)
		}
		if c := ReferencedConfigMaps(spec); !slices.Equal(c, []string{"settings"}) {
			t.Errorf("%s: ReferencedConfigMaps = %v", name, c)
		}
		gen := GeneratedKubeconfigs(spec)
		if len(gen) != 1 || gen[0].Name != "agent-kubeconfig" || gen[0].Key != v2.DefaultUserdataKey {
			t.Errorf("%s: GeneratedKubeconfigs = %v", name, gen)
		}
	}
	cfg := parseIgnition(t, want.Userdata)
	if got, _ := fileContents(t, cfg, "/etc/firewall-controller/config.yaml"); got != "sources: {}\n" {
		t.Errorf("config.yaml = %q", got)
	}
}

func TestChooseKey(t *testing.T) {
	for _, tc := range []struct {
		name, key string
		keys      []string
		want      string
	}{
		{"written key wins", "cfg", []string{"value"}, "cfg"},
		{"only key", "", []string{"controllerConfig"}, "controllerConfig"},
		{"only key is value", "", []string{"value"}, "value"},
		{"several keys", "", []string{"a", "value"}, "value"},
		{"several keys without value", "", []string{"a", "b"}, "value"},
		{"empty object", "", nil, "value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := chooseKey(tc.key, tc.keys); got != tc.want {
				t.Errorf("chooseKey(%q, %v) = %q, want %q", tc.key, tc.keys, got, tc.want)
			}
		})
	}
}

// A Secret with several keys and none of them "value" is reported as a missing key "value",
// so the condition says what to add.
func TestSecretNameWithSeveralKeysNeedsValue(t *testing.T) {
	r := New(newReader(secret("multi", map[string]string{"a": "1", "b": "2"})))
	_, err := r.Render(t.Context(), ns, specWith(fromSecretName("/etc/x", "multi")))
	m, ok := IsMissing(err)
	if !ok || m.Key != v2.DefaultUserdataKey || m.Reason != v2.ReasonKeyMissing {
		t.Fatalf("err = %v, want a missing key %q", err, v2.DefaultUserdataKey)
	}
	_, err = New(newReader()).Render(t.Context(), ns, specWith(fromSecretName("/etc/x", "absent")))
	if m, ok := IsMissing(err); !ok || m.Reason != v2.ReasonSecretMissing || m.Name != "absent" {
		t.Fatalf("err = %v, want a missing Secret", err)
	}
}
