package agentaccess

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/userdata"
)

// Token lifetimes.
const (
	DefaultTokenTTL = 24 * time.Hour
	// MinTokenTTL is the shortest lifetime the API server issues (--service-account-max-token-expiration aside).
	MinTokenTTL = 10 * time.Minute
)

// AgentAccess provisions agent identities and kubeconfigs.
type AgentAccess struct {
	// Client reads and writes ServiceAccounts, Roles, RoleBindings and Secrets; its scheme must
	// know the v2 types (for owner references).
	Client client.Client
	// Clientset requests tokens (ServiceAccounts/token subresource).
	Clientset kubernetes.Interface
	// APIServerURL and CAData are how agents reach this API server.
	APIServerURL string
	CAData       []byte
	// TokenTTL is the requested token lifetime; 0 means DefaultTokenTTL, less than MinTokenTTL
	// is raised to it.
	TokenTTL time.Duration
	// UpstreamTokenTTL, when set, is the lifetime of the tokens in the seed and shoot
	// kubeconfigs of a Gardener deployment in the upstream layout (userdata.ShootKubeconfigSecret):
	// the upstream firewall-controller reads them once, at boot, and never again, so a rotated
	// token never reaches it (docs/integrations.md). Raised to MinTokenTTL like TokenTTL.
	UpstreamTokenTTL time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// ShootAccessSecrets are Secrets every agent may get besides those its userdata references:
	// the ones named in Firewall.status.shootAccess (Gardener).
	ShootAccessSecrets []string
	// Shoot connects to a deployment's workload cluster, for the shoot kubeconfig of Gardener
	// deployments (userdata.ShootKubeconfigSecret); nil: none is written.
	Shoot ShootConnector
}

// Ensure provisions deploy's agent identity and writes every generated kubeconfig its template
// asks for. A token is requested only when a Secret is missing, out of date or has less than a
// third of its lifetime left; otherwise nothing is written, so the rendered userdata and its
// hash stay stable. It returns when to run again (0: no generated kubeconfigs, no deadline).
// Without generated kubeconfigs the identity is removed.
func (a *AgentAccess) Ensure(ctx context.Context, deploy *v2.FirewallDeployment) (time.Duration, error) {
	wanted := secretKeys(userdata.GeneratedKubeconfigs(&deploy.Spec.Template.Spec))
	shootSecret, withShoot := userdata.ShootKubeconfigSecret(deploy)
	keep := maps.Clone(wanted)
	if withShoot {
		keep[shootSecret] = nil
	}
	if err := a.deleteStaleSecrets(ctx, deploy, keep); err != nil {
		return 0, err
	}
	if len(wanted) == 0 {
		return 0, a.deleteRBAC(ctx, deploy)
	}

	sa, err := a.ensureRBAC(ctx, deploy)
	if err != nil {
		return 0, err
	}
	params := kubeconfigParams{
		Server:    a.APIServerURL,
		CAData:    a.CAData,
		Namespace: deploy.Namespace,
		User:      userName(deploy.Namespace, sa.Name),
	}

	now := a.now()
	var next time.Duration
	due := func(refreshAt time.Time) {
		// Never less than a second, so a clock skew cannot cause a hot loop.
		wait := max(refreshAt.Sub(now), time.Second)
		if next == 0 || wait < next {
			next = wait
		}
	}
	for _, name := range slices.Sorted(maps.Keys(wanted)) {
		refreshAt, err := a.ensureSecret(ctx, deploy, sa, name, wanted[name], params)
		if err != nil {
			return 0, err
		}
		due(refreshAt)
	}
	if withShoot {
		refreshAt, err := a.ensureShootKubeconfig(ctx, deploy, shootSecret)
		if err != nil {
			return 0, err
		}
		due(refreshAt)
	}
	return next, nil
}

// ensureSecret writes the seed kubeconfig into the keys of Secret name unless the stored one is
// current, and returns when it must be refreshed.
func (a *AgentAccess) ensureSecret(ctx context.Context, deploy *v2.FirewallDeployment, sa *corev1.ServiceAccount, name string, keys []string, params kubeconfigParams) (time.Time, error) {
	params.Secret, params.Key = name, keys[0]
	request := func(ctx context.Context, now time.Time) (string, tokenState, error) {
		return a.requestTokenWith(ctx, now, a.tokenTTLFor(deploy), sa.Name, func(ctx context.Context, req *authenticationv1.TokenRequest) error {
			resp, err := a.Clientset.CoreV1().ServiceAccounts(sa.Namespace).CreateToken(ctx, sa.Name, req, metav1.CreateOptions{})
			if err == nil {
				*req = *resp
			}
			return err
		})
	}
	return a.writeKubeconfig(ctx, deploy, string(sa.UID), name, keys, params, request)
}

// tokenRequester returns a new token and its lifetime.
type tokenRequester func(ctx context.Context, now time.Time) (string, tokenState, error)

// writeKubeconfig writes a kubeconfig with a token of request into the keys of Secret name in
// deploy's namespace, unless the stored one is current (same parameters, same ServiceAccount
// UID, not due for refresh), and returns when it must be refreshed.
func (a *AgentAccess) writeKubeconfig(ctx context.Context, deploy *v2.FirewallDeployment, saUID, name string, keys []string, params kubeconfigParams, request tokenRequester) (time.Time, error) {
	params.Secret, params.Key = name, keys[0]
	secret := &corev1.Secret{}
	err := a.Client.Get(ctx, client.ObjectKey{Namespace: deploy.Namespace, Name: name}, secret)
	exists := err == nil
	if err != nil && !apierrors.IsNotFound(err) {
		return time.Time{}, fmt.Errorf("reading Secret %q: %w", name, err)
	}
	if exists && !metav1.IsControlledBy(secret, deploy) {
		return time.Time{}, fmt.Errorf("refusing to write the agent kubeconfig into Secret %q: it exists and is not controlled by FirewallDeployment %q", name, deploy.Name)
	}
	now := a.now()
	if exists {
		if state, ok := currentToken(secret, keys, params, saUID); ok && now.Before(state.refreshAt()) {
			return state.refreshAt(), nil
		}
	}

	token, state, err := request(ctx, now)
	if err != nil {
		return time.Time{}, err
	}
	kubeconfig, err := buildKubeconfig(params, token)
	if err != nil {
		return time.Time{}, err
	}

	before := secret.DeepCopy()
	if !exists {
		secret = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: deploy.Namespace}, Type: corev1.SecretTypeOpaque}
	}
	if err := controllerutil.SetControllerReference(deploy, secret, a.Client.Scheme()); err != nil {
		return time.Time{}, err
	}
	metav1.SetMetaDataLabel(&secret.ObjectMeta, userdata.GeneratedKubeconfigLabel, "true")
	metav1.SetMetaDataAnnotation(&secret.ObjectMeta, userdata.TokenIssuedAnnotation, state.issued.Format(time.RFC3339))
	metav1.SetMetaDataAnnotation(&secret.ObjectMeta, userdata.TokenExpiryAnnotation, state.expiry.Format(time.RFC3339))
	metav1.SetMetaDataAnnotation(&secret.ObjectMeta, userdata.ServiceAccountUIDAnnotation, saUID)
	if secret.Data == nil {
		secret.Data = map[string][]byte{}
	}
	for _, key := range keys {
		secret.Data[key] = kubeconfig
	}

	if !exists {
		err = a.Client.Create(ctx, secret)
	} else {
		// The optimistic lock turns a write based on a stale cache into a conflict and a retry.
		err = a.Client.Patch(ctx, secret, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}))
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("writing the agent kubeconfig to Secret %q: %w", name, err)
	}
	return state.refreshAt(), nil
}

// requestTokenWith asks create (a TokenRequest on the agent's ServiceAccount, answered in
// place) for a token with the default audiences. The API server may shorten the lifetime; the
// returned expiry is used.
func (a *AgentAccess) requestTokenWith(ctx context.Context, now time.Time, ttl time.Duration, serviceAccount string, create func(context.Context, *authenticationv1.TokenRequest) error) (string, tokenState, error) {
	seconds := int64(ttl / time.Second)
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &seconds}}
	if err := create(ctx, req); err != nil {
		return "", tokenState{}, fmt.Errorf("requesting a token for ServiceAccount %q: %w", serviceAccount, err)
	}
	// RFC3339 annotations have second precision; truncating keeps state and annotations equal.
	state := tokenState{issued: now.Truncate(time.Second), expiry: req.Status.ExpirationTimestamp.Time}
	if !state.expiry.After(state.issued) {
		state.expiry = state.issued.Add(ttl)
	}
	return req.Status.Token, state, nil
}

// deleteStaleSecrets removes generated kubeconfig Secrets of deploy that no entry asks for any
// more, so no valid token is left lying around.
func (a *AgentAccess) deleteStaleSecrets(ctx context.Context, deploy *v2.FirewallDeployment, wanted map[string][]string) error {
	var list corev1.SecretList
	err := a.Client.List(ctx, &list, client.InNamespace(deploy.Namespace), client.MatchingLabels{userdata.GeneratedKubeconfigLabel: "true"})
	if err != nil {
		return fmt.Errorf("listing generated kubeconfig Secrets: %w", err)
	}
	for i := range list.Items {
		s := &list.Items[i]
		if _, ok := wanted[s.Name]; ok || !metav1.IsControlledBy(s, deploy) {
			continue
		}
		if err := a.Client.Delete(ctx, s); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting stale Secret %q: %w", s.Name, err)
		}
	}
	return nil
}

// secretKeys groups generated refs by Secret: one token per Secret, written to each key.
func secretKeys(refs []v2.UserdataSecretRef) map[string][]string {
	keys := map[string][]string{}
	for _, ref := range refs {
		keys[ref.Name] = append(keys[ref.Name], ref.Key)
	}
	for name := range keys {
		slices.SortFunc(keys[name], strings.Compare)
		keys[name] = slices.Compact(keys[name])
	}
	return keys
}

func (a *AgentAccess) tokenTTL() time.Duration {
	return max(cmp.Or(a.TokenTTL, DefaultTokenTTL), MinTokenTTL)
}

// tokenTTLFor is the lifetime of deploy's tokens: UpstreamTokenTTL for a Gardener deployment
// in the upstream layout, whose firewall-controller never re-reads its kubeconfigs; TokenTTL
// for every other one.
func (a *AgentAccess) tokenTTLFor(deploy *v2.FirewallDeployment) time.Duration {
	if _, upstream := userdata.ShootKubeconfigSecret(deploy); upstream && a.UpstreamTokenTTL > 0 {
		return max(a.UpstreamTokenTTL, MinTokenTTL)
	}
	return a.tokenTTL()
}

func (a *AgentAccess) now() time.Time {
	if a.Now == nil {
		return time.Now()
	}
	return a.Now()
}
