package manager

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

// countingReader counts the reads that reach the API server.
type countingReader struct {
	client.Reader
	gets int
}

func (c *countingReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	c.gets++
	return c.Reader.Get(ctx, key, obj, opts...)
}

func TestReferenceCacheKeepsReadObjectsUntilTheyChange(t *testing.T) {
	ctx := context.Background()
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "kubeconfig", Namespace: "ns"}, Data: map[string][]byte{"value": []byte("v1")}}
	backend := fake.NewClientBuilder().WithObjects(secret).Build()
	direct := &countingReader{Reader: backend}
	c := newReferenceCache(direct, backend)
	key := client.ObjectKeyFromObject(secret)
	read := func() string {
		var s corev1.Secret
		if err := c.Get(ctx, key, &s); err != nil {
			t.Fatal(err)
		}
		return string(s.Data["value"])
	}

	read()
	read()
	if direct.gets != 2 {
		t.Errorf("before the watch listed, every read goes to the API server: %d reads", direct.gets)
	}
	c.watching = true
	read()
	read()
	if direct.gets != 3 {
		t.Errorf("with the watch running, a read object is served from memory: %d reads", direct.gets)
	}

	secret.Data["value"] = []byte("v2")
	if err := backend.Update(ctx, secret); err != nil {
		t.Fatal(err)
	}
	c.invalidate(refKey{"secrets", "ns", "kubeconfig"})
	if got := read(); got != "v2" || direct.gets != 4 {
		t.Errorf("after a change: %q with %d reads, want v2 read afresh", got, direct.gets)
	}

	var s corev1.Secret
	if err := c.Get(ctx, key, &s); err != nil {
		t.Fatal(err)
	}
	s.Data["value"] = []byte("mutated by a caller")
	if got := read(); got != "v2" {
		t.Errorf("a caller's change leaked into the cache: %q", got)
	}

	c.invalidate(refKey{"secrets", "ns", "unrelated"})
	if _, tracked := c.changes[refKey{"secrets", "ns", "unrelated"}]; tracked {
		t.Error("an unrelated Secret's event left a trace")
	}
}
