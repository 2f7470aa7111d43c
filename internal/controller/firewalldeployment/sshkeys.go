package firewalldeployment

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v2 "github.com/palisade-fw/palisade/api/v2"
)

// SSHPublicKeyKey is the key of the ssh key pair Secret holding the public key (Gardener's
// ssh-keypair Secret, as upstream reads it).
const SSHPublicKeyKey = "id_rsa.pub"

// sshKeyDefault returns the public key a deployment without sshPublicKeys gets from the ssh key
// pair Secret: its id_rsa.pub, trimmed, or "" when there is none.
func sshKeyDefault(secret *corev1.Secret) string {
	if secret == nil {
		return ""
	}
	return strings.TrimSpace(string(secret.Data[SSHPublicKeyKey]))
}

// defaultSSHKeys gives a deployment without sshPublicKeys the public key of the Secret
// SSHKeySecret in its namespace, as upstream's defaulting webhook does with
// -ssh-key-secret-name; keys the deployment carries (GEPM writes them) are never replaced. The
// defaults reach the sets and firewalls like the deployment's own keys, and are stored with the
// deployment's next write (the finalizer, on its first reconcile). Without the Secret or its
// key the deployment keeps no keys; the Secret's watch brings it back once the Secret exists.
func (r *Reconciler) defaultSSHKeys(ctx context.Context, deploy *v2.FirewallDeployment) error {
	spec := &deploy.Spec.Template.Spec
	if r.SSHKeySecret == "" || len(spec.SSHPublicKeys) > 0 {
		return nil
	}
	reader := r.Secrets
	if reader == nil {
		reader = r.Client
	}
	var secret corev1.Secret
	if err := reader.Get(ctx, client.ObjectKey{Namespace: deploy.Namespace, Name: r.SSHKeySecret}, &secret); err != nil {
		if apierrors.IsNotFound(err) {
			logf.FromContext(ctx).V(1).Info("No ssh key pair Secret for the deployment's default ssh key", "secret", r.SSHKeySecret)
			return nil
		}
		return fmt.Errorf("reading the ssh key pair Secret %q: %w", r.SSHKeySecret, err)
	}
	if key := sshKeyDefault(&secret); key != "" {
		spec.SSHPublicKeys = []string{key}
	}
	return nil
}

// deploymentsWithoutSSHKeys maps the ssh key pair Secret to the deployments of its namespace
// that take their key from it.
func (r *Reconciler) deploymentsWithoutSSHKeys(ctx context.Context, obj client.Object) []reconcile.Request {
	if r.SSHKeySecret == "" || obj.GetName() != r.SSHKeySecret {
		return nil
	}
	var list v2.FirewallDeploymentList
	if err := r.Client.List(ctx, &list, client.InNamespace(obj.GetNamespace())); err != nil {
		return nil
	}
	var reqs []reconcile.Request
	for i := range list.Items {
		if len(list.Items[i].Spec.Template.Spec.SSHPublicKeys) == 0 {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
		}
	}
	return reqs
}
