package userdata

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	v34 "github.com/coreos/ignition/v2/config/v3_4"
	ignition "github.com/coreos/ignition/v2/config/v3_4/types"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	v2 "github.com/palisade-fw/palisade/api/v2"
)

const ns = "shoot--proj--a"

func newReader(objs ...client.Object) client.Reader {
	s := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(s)
	return fake.NewClientBuilder().WithScheme(s).WithObjects(objs...).Build()
}

func secret(name string, data map[string]string) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Data: map[string][]byte{}}
	for k, v := range data {
		s.Data[k] = []byte(v)
	}
	return s
}

func configMap(name string, data map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Data: data}
}

func inline(path, content string) v2.UserdataContent {
	return v2.UserdataContent{Path: path, Content: &content}
}

func fromSecret(path, name, key string) v2.UserdataContent {
	return v2.UserdataContent{Path: path, SecretRef: &v2.UserdataSecretRef{Name: name, Key: key}}
}

func fromConfigMap(path, name, key string) v2.UserdataContent {
	return v2.UserdataContent{Path: path, ConfigMapRef: &v2.UserdataConfigMapRef{Name: name, Key: key}}
}

func generated(path, name string) v2.UserdataContent {
	return v2.UserdataContent{Path: path, SecretRef: &v2.UserdataSecretRef{Name: name, GenerateFirewallControllerKubeconfig: true}}
}

func specWith(contents ...v2.UserdataContent) *v2.FirewallSpec {
	return &v2.FirewallSpec{UserdataContents: contents}
}

// parseIgnition parses rendered userdata with Ignition's own parser, which also runs its
// validator; a fatal report fails the test.
func parseIgnition(t *testing.T, userdata string) ignition.Config {
	t.Helper()
	cfg, rpt, err := v34.Parse([]byte(userdata))
	if err != nil {
		t.Fatalf("Ignition rejects the rendered config: %v\n%s", err, rpt.String())
	}
	if len(rpt.Entries) > 0 {
		t.Errorf("Ignition reports: %s", rpt.String())
	}
	return cfg
}

// fileContents decodes the data URL of path from cfg.
func fileContents(t *testing.T, cfg ignition.Config, path string) (string, ignition.File) {
	t.Helper()
	for _, f := range cfg.Storage.Files {
		if f.Path != path {
			continue
		}
		src := *f.Contents.Source
		const prefix = "data:;base64,"
		if !strings.HasPrefix(src, prefix) {
			t.Fatalf("%s: unexpected source %q", path, src)
		}
		b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(src, prefix))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		return string(b), f
	}
	t.Fatalf("no file %s in the Ignition config", path)
	return "", ignition.File{}
}

func render(t *testing.T, r *Renderer, spec *v2.FirewallSpec) *Result {
	t.Helper()
	res, err := r.Render(context.Background(), ns, spec)
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	return res
}

func TestRenderEverySourceKind(t *testing.T) {
	r := New(newReader(
		secret("creds", map[string]string{"value": "secret-default", "other": "secret-other"}),
		configMap("settings", map[string]string{"value": "cm-default", "cfg": "cm-keyed"}),
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "blob", Namespace: ns}, BinaryData: map[string][]byte{"value": {0, 1, 2}}},
	))
	res := render(t, r, specWith(
		inline("/etc/a/inline.yaml", "inline: true\n"),
		fromSecret("/etc/a/secret-default", "creds", ""),
		fromSecret("/etc/a/secret-keyed", "creds", "other"),
		fromConfigMap("/etc/a/cm-default", "settings", ""),
		fromConfigMap("/etc/a/cm-keyed", "settings", "cfg"),
		fromConfigMap("/etc/a/cm-binary", "blob", ""),
	))
	cfg := parseIgnition(t, res.Userdata)

	for path, want := range map[string]struct {
		content string
		mode    int
	}{
		"/etc/a/inline.yaml":    {"inline: true\n", 0o644},
		"/etc/a/secret-default": {"secret-default", 0o600},
		"/etc/a/secret-keyed":   {"secret-other", 0o600},
		"/etc/a/cm-default":     {"cm-default", 0o644},
		"/etc/a/cm-keyed":       {"cm-keyed", 0o644},
		"/etc/a/cm-binary":      {"\x00\x01\x02", 0o644},
	} {
		got, f := fileContents(t, cfg, path)
		if got != want.content {
			t.Errorf("%s: content %q, want %q", path, got, want.content)
		}
		if f.Mode == nil || *f.Mode != want.mode {
			t.Errorf("%s: mode %v, want %o", path, f.Mode, want.mode)
		}
		if f.User.ID == nil || *f.User.ID != 0 || f.Group.ID == nil || *f.Group.ID != 0 {
			t.Errorf("%s: owner is not root:root", path)
		}
		if f.Overwrite == nil || !*f.Overwrite {
			t.Errorf("%s: overwrite not set", path)
		}
	}
	wantFiles := []string{"/etc/a/cm-binary", "/etc/a/cm-default", "/etc/a/cm-keyed", "/etc/a/inline.yaml", "/etc/a/secret-default", "/etc/a/secret-keyed"}
	if strings.Join(res.Files, ",") != strings.Join(wantFiles, ",") {
		t.Errorf("Files = %v, want %v", res.Files, wantFiles)
	}
	if len(res.Hash) != 64 {
		t.Errorf("hash %q is not a hex sha256", res.Hash)
	}
}

func TestRenderEnablesAgentUnits(t *testing.T) {
	res := render(t, New(newReader()), specWith(inline("/etc/x", "x")))
	cfg := parseIgnition(t, res.Userdata)
	enabled := map[string]bool{}
	for _, u := range cfg.Systemd.Units {
		enabled[u.Name] = u.Enabled != nil && *u.Enabled
	}
	// Exactly the units a release ships (internal/release.Units is this list).
	if len(enabled) != 1 || !enabled[FirewallControllerUnit] {
		t.Errorf("enabled units %v, want only %s", cfg.Systemd.Units, FirewallControllerUnit)
	}

	r := New(newReader())
	r.AgentUnits = false
	without := render(t, r, specWith(inline("/etc/x", "x")))
	if cfg := parseIgnition(t, without.Userdata); len(cfg.Systemd.Units) != 0 {
		t.Errorf("units rendered with AgentUnits=false: %v", cfg.Systemd.Units)
	}
	if without.Hash == res.Hash {
		t.Error("enabling the units does not change the hash")
	}
}

func TestRenderIsDeterministicAndOrderIndependent(t *testing.T) {
	objs := []client.Object{
		secret("s", map[string]string{"value": "s"}),
		configMap("c", map[string]string{"value": "c"}),
	}
	a := []v2.UserdataContent{inline("/etc/b", "b"), fromSecret("/etc/s", "s", ""), fromConfigMap("/etc/c", "c", ""), inline("/etc/a", "a")}
	b := []v2.UserdataContent{a[3], a[2], a[1], a[0]}

	first := render(t, New(newReader(objs...)), specWith(a...))
	again := render(t, New(newReader(objs...)), specWith(a...))
	reordered := render(t, New(newReader(objs...)), specWith(b...))
	for name, other := range map[string]*Result{"again": again, "reordered": reordered} {
		if other.Userdata != first.Userdata {
			t.Errorf("%s: userdata differs:\n%s\n%s", name, first.Userdata, other.Userdata)
		}
		if other.Hash != first.Hash {
			t.Errorf("%s: hash differs", name)
		}
	}
}

func TestHashFollowsContent(t *testing.T) {
	base := render(t, New(newReader(secret("s", map[string]string{"value": "one"}))), specWith(fromSecret("/etc/s", "s", "")))
	changed := render(t, New(newReader(secret("s", map[string]string{"value": "two"}))), specWith(fromSecret("/etc/s", "s", "")))
	moved := render(t, New(newReader(secret("s", map[string]string{"value": "one"}))), specWith(fromSecret("/etc/t", "s", "")))
	if base.Hash == changed.Hash {
		t.Error("a changed Secret does not change the hash")
	}
	if base.Hash == moved.Hash {
		t.Error("a changed path does not change the hash")
	}
}

func TestRenderMissingSources(t *testing.T) {
	reader := newReader(
		secret("creds", map[string]string{"value": "x"}),
		configMap("settings", map[string]string{"value": "x"}),
	)
	for name, tc := range map[string]struct {
		content v2.UserdataContent
		want    MissingError
	}{
		"secret":           {fromSecret("/etc/x", "absent", ""), MissingError{KindSecret, "absent", "value", v2.ReasonSecretMissing}},
		"secret key":       {fromSecret("/etc/x", "creds", "nope"), MissingError{KindSecret, "creds", "nope", v2.ReasonKeyMissing}},
		"generated secret": {generated("/etc/x", "not-yet"), MissingError{KindSecret, "not-yet", "value", v2.ReasonSecretMissing}},
		"configmap":        {fromConfigMap("/etc/x", "absent", "k"), MissingError{KindConfigMap, "absent", "k", v2.ReasonConfigMapMissing}},
		"configmap key":    {fromConfigMap("/etc/x", "settings", "nope"), MissingError{KindConfigMap, "settings", "nope", v2.ReasonKeyMissing}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := New(reader).Render(context.Background(), ns, specWith(tc.content))
			got, ok := IsMissing(err)
			if !ok {
				t.Fatalf("error %v is not a MissingError", err)
			}
			if *got != tc.want {
				t.Errorf("got %+v, want %+v", *got, tc.want)
			}
			if ConditionReason(err) != tc.want.Reason {
				t.Errorf("ConditionReason = %q", ConditionReason(err))
			}
			for _, part := range []string{tc.want.Kind, tc.want.Name, tc.want.Key} {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("message %q does not name %q", err, part)
				}
			}
		})
	}
}

func TestRenderReportsAllMissingWithoutLeakingContent(t *testing.T) {
	reader := newReader(secret("creds", map[string]string{"value": "TOP-SECRET"}))
	_, err := New(reader).Render(context.Background(), ns, specWith(
		fromSecret("/etc/ok", "creds", ""),
		fromSecret("/etc/a", "first", ""),
		fromConfigMap("/etc/b", "second", ""),
	))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{`Secret "first"`, `ConfigMap "second"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not name %s", err, want)
		}
	}
	if strings.Contains(err.Error(), "TOP-SECRET") {
		t.Error("error leaks secret content")
	}
	if m, _ := IsMissing(err); m == nil || m.Name != "first" {
		t.Errorf("IsMissing returns %+v, want the first missing object by path", m)
	}
}

func TestRenderSizeLimit(t *testing.T) {
	r := New(newReader())
	r.MaxSize = 1024
	_, err := r.Render(context.Background(), ns, specWith(inline("/etc/big", strings.Repeat("x", 2048))))
	tl, ok := IsTooLarge(err)
	if !ok {
		t.Fatalf("error %v is not a TooLargeError", err)
	}
	if tl.Max != 1024 || tl.Size <= 1024 || tl.Reason != v2.ReasonUserdataTooLarge {
		t.Errorf("unexpected %+v", tl)
	}
	if ConditionReason(err) != v2.ReasonUserdataTooLarge {
		t.Errorf("ConditionReason = %q", ConditionReason(err))
	}
	if _, err := r.Render(context.Background(), ns, specWith(inline("/etc/small", "x"))); err != nil {
		t.Errorf("small userdata rejected: %v", err)
	}
	if _, err := r.Render(context.Background(), ns, &v2.FirewallSpec{Userdata: strings.Repeat("x", 1025)}); err == nil {
		t.Error("oversized legacy userdata accepted")
	}
	if (&Renderer{}).checkSize(DefaultMaxSize+1) == nil {
		t.Error("zero MaxSize does not fall back to the default")
	}
}

func TestRenderLegacyUserdataVerbatim(t *testing.T) {
	legacy := `{"ignition":{"version":"2.2.0"}}`
	res := render(t, New(newReader()), &v2.FirewallSpec{Userdata: legacy})
	if res.Userdata != legacy {
		t.Errorf("legacy userdata changed: %q", res.Userdata)
	}
	if res.Hash != sha256Hex([]byte(legacy)) {
		t.Errorf("legacy hash %q is not the sha256 of the userdata", res.Hash)
	}
	if len(res.Files) != 0 {
		t.Errorf("legacy userdata lists files %v", res.Files)
	}

	empty := render(t, New(newReader()), &v2.FirewallSpec{})
	if empty.Userdata != "" {
		t.Errorf("no userdata renders to %q", empty.Userdata)
	}

	both := &v2.FirewallSpec{Userdata: legacy, UserdataContents: []v2.UserdataContent{inline("/etc/x", "x")}}
	if _, err := New(newReader()).Render(context.Background(), ns, both); err == nil {
		t.Error("userdata and userdataContents together accepted")
	}
}

func TestRenderRejectsDuplicatePaths(t *testing.T) {
	_, err := New(newReader()).Render(context.Background(), ns, specWith(inline("/etc/x", "a"), inline("/etc/x", "b")))
	if err == nil || !strings.Contains(err.Error(), "/etc/x") {
		t.Errorf("duplicate path: got %v", err)
	}
}

func TestRenderedJSONRoundTrips(t *testing.T) {
	res := render(t, New(newReader()), specWith(inline("/etc/x", "x")))
	var cfg ignition.Config
	if err := json.Unmarshal([]byte(res.Userdata), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Ignition.Version != IgnitionVersion || IgnitionVersion != ignition.MaxVersion.String() {
		t.Errorf("version %q", cfg.Ignition.Version)
	}
	again, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if string(again) != res.Userdata {
		t.Errorf("re-encoding changes the bytes:\n%s\n%s", res.Userdata, again)
	}
}

func TestReferencedNames(t *testing.T) {
	spec := specWith(
		fromSecret("/a", "b-secret", ""),
		generated("/b", "a-generated"),
		fromSecret("/c", "b-secret", "other"),
		fromConfigMap("/d", "z-cm", ""),
		fromConfigMap("/e", "y-cm", ""),
		inline("/f", "x"),
	)
	if got := strings.Join(ReferencedSecrets(spec), ","); got != "a-generated,b-secret" {
		t.Errorf("ReferencedSecrets = %s", got)
	}
	if got := strings.Join(ReferencedConfigMaps(spec), ","); got != "y-cm,z-cm" {
		t.Errorf("ReferencedConfigMaps = %s", got)
	}
	gen := GeneratedKubeconfigs(spec)
	if len(gen) != 1 || gen[0].Name != "a-generated" || gen[0].Key != "value" {
		t.Errorf("GeneratedKubeconfigs = %+v", gen)
	}
	if ReferencedSecrets(nil) != nil || ReferencedConfigMaps(&v2.FirewallSpec{}) != nil {
		t.Error("no references should give nil")
	}
}
