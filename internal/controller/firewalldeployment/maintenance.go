package firewalldeployment

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/controller/fwutil"
	"github.com/palisade-fw/palisade/internal/metal"
)

// ImageResolver finds the newest image of an OS minor version in metal-api.
type ImageResolver interface {
	GetLatestImage(ctx context.Context, id string) (*metal.ImageResponse, error)
}

// maintain runs once per maintenance window: the operator (Gardener's maintenance, or a user)
// sets firewall.metal-stack.io/maintain, and with spec.autoUpdate.machineImage the deployment
// moves to the newest image of its OS minor version. A fully qualified image in the spec is
// rewritten (the spec change rolls); a short one ("firewall-ubuntu-3.0") already means "the
// newest", so a roll is requested to get new machines with it. The annotation is removed
// either way, so that the next window triggers again.
//
// The reconcile annotation (one extra reconcile, which this is) is consumed here too.
//
// A failing step (metal-api cannot name the newest image) never blocks the rollout: it is
// reported in the Maintained condition, the maintain annotation stays, and retry says when to
// try again.
func (r *Reconciler) maintain(ctx context.Context, deploy *v2.FirewallDeployment, sets []*v2.FirewallSet) (changed bool, retry time.Duration, err error) {
	_, maintain := deploy.Annotations[v2.MaintenanceAnnotation]
	_, reconcile := deploy.Annotations[v2.ReconcileAnnotation]
	if !maintain && !reconcile {
		return false, 0, nil
	}
	before := deploy.DeepCopy()
	delete(deploy.Annotations, v2.ReconcileAnnotation)
	if maintain && deploy.Spec.AutoUpdate.MachineImage && r.Images != nil {
		if err := r.autoUpdateImage(ctx, deploy, sets); err != nil {
			setCondition(deploy, v2.ConditionMaintained, false, v2.ReasonMaintenanceFailed, err.Error())
			if !reconcile {
				return false, maintenanceRetry, nil
			}
			retry = maintenanceRetry
		} else {
			delete(deploy.Annotations, v2.MaintenanceAnnotation)
			setCondition(deploy, v2.ConditionMaintained, true, v2.ReasonMaintained, "the last maintenance went through")
		}
	} else {
		delete(deploy.Annotations, v2.MaintenanceAnnotation)
	}
	// The status is patched separately (deferred in Reconcile); this writes metadata and spec.
	if err := r.Client.Patch(ctx, deploy, client.MergeFrom(before)); err != nil {
		return false, 0, fmt.Errorf("finishing maintenance: %w", err)
	}
	return retry == 0, retry, nil
}

// maintenanceRetry is how soon a failed maintenance step is tried again.
const maintenanceRetry = time.Minute

// rollback handles RollbackToRevisionAnnotation: it copies the template of the set with that
// revision into the spec (the rollout then brings that set back) and removes the annotation.
// An unknown revision is reported and the annotation removed, so that it does not linger.
func (r *Reconciler) rollback(ctx context.Context, deploy *v2.FirewallDeployment, sets []*v2.FirewallSet) (bool, error) {
	value, ok := deploy.Annotations[v2.RollbackToRevisionAnnotation]
	if !ok {
		return false, nil
	}
	before := deploy.DeepCopy()
	delete(deploy.Annotations, v2.RollbackToRevisionAnnotation)
	var from *v2.FirewallSet
	for _, set := range sets {
		if set.DeletionTimestamp.IsZero() && strconv.Itoa(fwutil.Revision(set)) == value {
			from = set
		}
	}
	if from == nil {
		r.event(deploy, corev1.EventTypeWarning, "RollbackFailed", "Rollback", "No set with revision %q to roll back to", value)
		setCondition(deploy, v2.ConditionProgressing, false, v2.ReasonRollbackRevisionNotFound, fmt.Sprintf("no set with revision %q to roll back to", value))
	} else {
		labels := deploy.Spec.Template.ObjectMeta.Labels
		deploy.Spec.Template.Spec = *from.Spec.Template.Spec.DeepCopy()
		deploy.Spec.Template.ObjectMeta.Labels = labels
		r.event(deploy, corev1.EventTypeNormal, "RolledBack", "Rollback", "Rolled the template back to revision %s (set %s)", value, from.Name)
	}
	if err := r.Client.Patch(ctx, deploy, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
		return false, fmt.Errorf("rolling back: %w", err)
	}
	return true, nil
}

func (r *Reconciler) autoUpdateImage(ctx context.Context, deploy *v2.FirewallDeployment, sets []*v2.FirewallSet) error {
	spec := &deploy.Spec.Template.Spec
	short, qualified := osMinorImage(spec.Image)
	latest, err := r.Images.GetLatestImage(ctx, short)
	if err != nil {
		r.event(deploy, corev1.EventTypeWarning, "AutoUpdateFailed", "Maintain", "Resolving the newest image of %s failed: %v", short, err)
		return fmt.Errorf("resolving the newest image of %s: %w", short, err)
	}
	running, err := r.runningImages(ctx, deploy, sets)
	if err != nil {
		return err
	}
	outdated := false
	for _, id := range running {
		if id != latest.ID {
			outdated = true
		}
	}
	if !outdated && (!qualified || spec.Image == latest.ID) {
		logf.FromContext(ctx).Info("Maintenance: firewalls run the newest image", "image", latest.ID)
		return nil
	}
	if qualified {
		if spec.Image != latest.ID {
			r.event(deploy, corev1.EventTypeNormal, "AutoUpdate", "Maintain", "Updating the image from %s to %s", spec.Image, latest.ID)
			spec.Image = latest.ID
		}
		return nil
	}
	r.event(deploy, corev1.EventTypeNormal, "AutoUpdate", "Maintain", "Rolling the firewalls onto %s, the newest image of %s", latest.ID, short)
	if deploy.Annotations == nil {
		deploy.Annotations = map[string]string{}
	}
	deploy.Annotations[v2.RollSetAnnotation] = "true"
	return nil
}

// runningImages returns the image of every machine of the deployment's newest set.
func (r *Reconciler) runningImages(ctx context.Context, deploy *v2.FirewallDeployment, sets []*v2.FirewallSet) ([]string, error) {
	if len(sets) == 0 {
		return nil, nil
	}
	sortByRevision(sets)
	latest := sets[len(sets)-1]
	var list v2.FirewallList
	if err := r.Client.List(ctx, &list, client.InNamespace(deploy.Namespace)); err != nil {
		return nil, err
	}
	var images []string
	for _, fw := range list.Items {
		if owner := controllerName(&fw); owner != latest.Name || fw.Status.MachineStatus == nil {
			continue
		}
		images = append(images, fw.Status.MachineStatus.ImageID)
	}
	return images, nil
}

func controllerName(fw *v2.Firewall) string {
	for _, ref := range fw.OwnerReferences {
		if ref.Controller != nil && *ref.Controller {
			return ref.Name
		}
	}
	return ""
}

// osMinorImage shortens "firewall-ubuntu-3.0.20240503" to "firewall-ubuntu-3.0" and reports
// whether the input was fully qualified (carried a patch version).
func osMinorImage(image string) (short string, qualified bool) {
	i := strings.LastIndex(image, "-")
	if i < 0 {
		return image, false
	}
	parts := strings.Split(image[i+1:], ".")
	if len(parts) < 3 {
		return image, false
	}
	return image[:i+1] + parts[0] + "." + parts[1], true
}
