package userdata

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	v2 "github.com/palisade-fw/palisade/api/v2"
)

// sshKeypairSecret is the shoot's ssh key pair Secret GEPM names with -ssh-key-secret-name.
const sshKeypairSecret = "ssh-keypair"

const keypairPublicKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHkQ7yB2n4cQ0m1sV3hT9pWz8xLq5dFe6rGu0aJkBcDe shoot-keypair"

// gepmDeploymentWithoutKeys is GEPM's deployment without sshPublicKeys.
func gepmDeploymentWithoutKeys(g Gomega, ns string) *unstructured.Unstructured {
	obj := &unstructured.Unstructured{}
	g.Expect(yaml.Unmarshal([]byte(gepmDeployment), &obj.Object)).To(Succeed())
	obj.SetNamespace(ns)
	obj.SetLabels(map[string]string{"gardener-shoot-namespace": ns})
	unstructured.RemoveNestedField(obj.Object, "spec", "template", "spec", "sshPublicKeys")
	return obj
}

func keypairSecret(ns string) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: sshKeypairSecret, Namespace: ns},
		Data: map[string][]byte{"id_rsa": []byte("private, never read"), "id_rsa.pub": []byte(keypairPublicKey + "\n")}}
}

// A deployment without sshPublicKeys gets the public key of the ssh key pair Secret of its
// namespace (-ssh-key-secret-name), as upstream's defaulting does: allocated with it and stored
// in the deployment. A Secret that appears only later brings the key to the running machine
// through the set, in place (the deployment, already stored, keeps none of its own).
func TestSSHKeyDefaultedFromTheKeypairSecret(t *testing.T) {
	g := NewWithT(t)
	g.SetDefaultEventuallyTimeout(60 * time.Second)
	g.SetDefaultEventuallyPollingInterval(100 * time.Millisecond)
	c := stack.Client

	By(t, "the Secret exists: the firewall is allocated with its key")
	ns := newNamespace(g, "shoot--ssh")
	g.Expect(c.Create(ctx, keypairSecret(ns))).To(Succeed())
	g.Expect(c.Create(ctx, gepmDeploymentWithoutKeys(g, ns))).To(Succeed())
	deploy := &v2.FirewallDeployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shoot-firewall"}}
	g.Eventually(func() int { return len(allocatedIn(ns)) }).Should(Equal(1))
	g.Expect(allocatedIn(ns)[0].Allocation.SSHPubKeys).To(Equal([]string{keypairPublicKey}))
	g.Eventually(func() []string { return get(g, deploy).Spec.Template.Spec.SSHPublicKeys }).
		Should(Equal([]string{keypairPublicKey}), "stored with the deployment, as upstream's webhook stores it")

	By(t, "the Secret appears after the allocation: the key reaches the machine in place")
	late := newNamespace(g, "shoot--ssh-late")
	g.Expect(c.Create(ctx, gepmDeploymentWithoutKeys(g, late))).To(Succeed())
	g.Eventually(func() int { return len(allocatedIn(late)) }).Should(Equal(1))
	machineID := allocatedIn(late)[0].ID
	g.Expect(allocatedIn(late)[0].Allocation.SSHPubKeys).To(BeEmpty())
	g.Expect(c.Create(ctx, keypairSecret(late))).To(Succeed())
	g.Eventually(func(g Gomega) {
		machines := allocatedIn(late)
		g.Expect(machines).To(HaveLen(1))
		g.Expect(machines[0].ID).To(Equal(machineID), "no new machine for a key")
		g.Expect(machines[0].Allocation.SSHPubKeys).To(Equal([]string{keypairPublicKey}))
	}).Should(Succeed())
	var sets v2.FirewallSetList
	g.Expect(c.List(ctx, &sets, client.InNamespace(late))).To(Succeed())
	g.Expect(sets.Items).To(HaveLen(1), "an ssh key is changed in place, not by a roll")
	g.Expect(sets.Items[0].Spec.Template.Spec.SSHPublicKeys).To(Equal([]string{keypairPublicKey}))
}
