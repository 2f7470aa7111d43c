package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/scheme"
)

// resourceName is how kubectl names the kind in its messages.
const resourceName = "firewalldeployment.firewall.metal-stack.io"

// Options is the state shared by every command: kubectl's connection flags and the streams.
type Options struct {
	ConfigFlags *genericclioptions.ConfigFlags
	genericiooptions.IOStreams
	// NewClient builds the API client; tests replace it. Default: from ConfigFlags.
	NewClient func() (client.Client, error)
	scheme    *runtime.Scheme
}

// NewRootCommand is `kubectl palisade`.
func NewRootCommand(streams genericiooptions.IOStreams) *cobra.Command {
	o := &Options{ConfigFlags: genericclioptions.NewConfigFlags(true), IOStreams: streams, scheme: scheme.New()}
	o.NewClient = o.clientFromFlags
	root := &cobra.Command{
		Use:           "kubectl-palisade",
		Short:         "Operate Palisade firewalls: rollouts of FirewallDeployments, verdicts on flows",
		SilenceUsage:  true,
		SilenceErrors: true,
		Annotations:   map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl palisade"},
	}
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	o.ConfigFlags.AddFlags(root.PersistentFlags())
	root.AddCommand(o.rolloutCommand(), o.explainCommand())
	return root
}

func (o *Options) clientFromFlags() (client.Client, error) {
	cfg, err := o.ConfigFlags.ToRESTConfig()
	if err != nil {
		return nil, err
	}
	return client.New(cfg, client.Options{Scheme: o.scheme})
}

func (o *Options) namespace() (string, error) {
	ns, _, err := o.ConfigFlags.ToRawKubeConfigLoader().Namespace()
	return ns, err
}

func (o *Options) rolloutCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rollout SUBCOMMAND",
		Short: "Manage the rollout of a FirewallDeployment",
		Long: "Manage the rollout of a FirewallDeployment, as `kubectl rollout` does for a Deployment.\n\n" +
			"History needs spec.revisionHistoryLimit > 0: only kept revisions can be shown or restored.",
	}
	cmd.AddCommand(o.statusCommand(), o.historyCommand(), o.undoCommand(), o.pauseCommand(), o.resumeCommand(), o.restartCommand())
	return cmd
}

// snapshot reads the deployment, the sets it controls and their firewalls.
func (o *Options) snapshot(ctx context.Context, c client.Client, ns, name string) (Snapshot, error) {
	var s Snapshot
	deploy := &v2.FirewallDeployment{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, deploy); err != nil {
		return s, err
	}
	s.Deployment = deploy
	var sets v2.FirewallSetList
	if err := c.List(ctx, &sets, client.InNamespace(ns)); err != nil {
		return s, err
	}
	setUIDs := map[string]bool{}
	for _, set := range sets.Items {
		if controlledBy(set.OwnerReferences, string(deploy.UID)) {
			s.Sets = append(s.Sets, set)
			setUIDs[string(set.UID)] = true
		}
	}
	var fws v2.FirewallList
	if err := c.List(ctx, &fws, client.InNamespace(ns)); err != nil {
		return s, err
	}
	for _, fw := range fws.Items {
		for _, ref := range fw.OwnerReferences {
			if ref.Controller != nil && *ref.Controller && setUIDs[string(ref.UID)] {
				s.Firewalls = append(s.Firewalls, fw)
				break
			}
		}
	}
	return s, nil
}

// target resolves the one FirewallDeployment argument into a client, namespace and name.
func (o *Options) target(args []string) (client.Client, string, string, error) {
	if len(args) != 1 {
		return nil, "", "", errors.New("exactly one FirewallDeployment name is required")
	}
	ns, err := o.namespace()
	if err != nil {
		return nil, "", "", err
	}
	c, err := o.NewClient()
	if err != nil {
		return nil, "", "", err
	}
	return c, ns, args[0], nil
}

func (o *Options) statusCommand() *cobra.Command {
	var (
		watch    bool
		timeout  time.Duration
		interval time.Duration
	)
	cmd := &cobra.Command{
		Use:   "status NAME",
		Short: "Show the status of the rollout; with --watch (default) wait until it is done",
		Long: "Show the status of the rollout, with the old and new firewalls while it runs.\n" +
			"Exits non-zero when the rollout exceeded its progress deadline or --timeout passed.",
		Example: "  kubectl palisade rollout status -n tenant-a edge\n  kubectl palisade rollout status edge --watch=false",
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ns, name, err := o.target(args)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, timeout)
				defer cancel()
			}
			last := ""
			var result Status
			err = wait.PollUntilContextCancel(ctx, interval, true, func(ctx context.Context) (bool, error) {
				s, err := o.snapshot(ctx, c, ns, name)
				if err != nil {
					return false, err
				}
				result = RolloutStatus(s)
				if result.Message != last {
					fmt.Fprintln(o.Out, result.Message)
					last = result.Message
				}
				return result.Done || result.Failed || !watch, nil
			})
			switch {
			case result.Failed:
				return errors.New(result.Message)
			case err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
				return fmt.Errorf("timed out waiting for the rollout of %s/%s", resourceName, name)
			}
			return err
		},
	}
	cmd.Flags().BoolVarP(&watch, "watch", "w", true, "Watch the rollout until it is done.")
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "How long to wait before giving up (0: forever).")
	cmd.Flags().DurationVar(&interval, "interval", time.Second, "How often to look again while watching.")
	_ = cmd.Flags().MarkHidden("interval")
	return cmd
}

func (o *Options) historyCommand() *cobra.Command {
	var revision int
	printFlags := genericclioptions.NewPrintFlags("").WithTypeSetter(o.scheme)
	cmd := &cobra.Command{
		Use:     "history NAME",
		Short:   "List the revisions of a FirewallDeployment",
		Example: "  kubectl palisade rollout history edge\n  kubectl palisade rollout history edge --revision 3 -o yaml",
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ns, name, err := o.target(args)
			if err != nil {
				return err
			}
			s, err := o.snapshot(cmd.Context(), c, ns, name)
			if err != nil {
				return err
			}
			wantsObjects := printFlags.OutputFormat != nil && *printFlags.OutputFormat != ""
			// Revisions start at 0, so only the flag being given selects one.
			byRevision := cmd.Flags().Changed("revision")
			if byRevision || wantsObjects {
				printer, err := printFlags.ToPrinter()
				if err != nil {
					return err
				}
				if byRevision {
					set, err := SetForRevision(s, revision)
					if err != nil {
						return err
					}
					return printer.PrintObj(set.DeepCopy(), o.Out)
				}
				list := &v2.FirewallSetList{Items: s.Sets}
				return printer.PrintObj(list, o.Out)
			}
			return printHistory(o.Out, name, History(s))
		},
	}
	cmd.Flags().IntVar(&revision, "revision", 0, "Print the FirewallSet of this revision.")
	printFlags.AddFlags(cmd)
	return cmd
}

func printHistory(w io.Writer, name string, revs []Revision) error {
	fmt.Fprintf(w, "%s/%s\n", resourceName, name)
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "REVISION\tSET\tIMAGE\tSIZE\tREPLICAS\tREADY\tCHANGE-CAUSE")
	for _, r := range revs {
		mark := ""
		if r.Current {
			mark = " (current)"
		}
		cause := r.ChangeCause
		if cause == "" {
			cause = "<none>"
		}
		fmt.Fprintf(tw, "%d%s\t%s\t%s\t%s\t%d\t%d\t%s\n", r.Number, mark, r.Set, r.Image, r.Size, r.Replicas, r.Ready, cause)
	}
	return tw.Flush()
}

func (o *Options) undoCommand() *cobra.Command {
	var toRevision int
	cmd := &cobra.Command{
		Use:   "undo NAME",
		Short: "Roll back to a previous revision (a new rollout to its spec)",
		Long: "Copy the firewall spec of a kept revision into the FirewallDeployment's template; the\n" +
			"manager then rolls to it like to any other change, without a traffic gap.\n" +
			"Userdata from Secrets is read again: undo restores the references, not old Secret contents.",
		Example: "  kubectl palisade rollout undo edge\n  kubectl palisade rollout undo edge --to-revision 2",
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ns, name, err := o.target(args)
			if err != nil {
				return err
			}
			target := PreviousRevision
			if cmd.Flags().Changed("to-revision") {
				target = toRevision
			}
			// The manager writes the deployment too (status, finalizers): on a conflict, read
			// everything again and decide again rather than overwrite what changed.
			var rev int
			err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
				s, err := o.snapshot(cmd.Context(), c, ns, name)
				if err != nil {
					return err
				}
				var tmpl *v2.FirewallTemplateSpec
				if tmpl, rev, err = UndoTemplate(s, target); err != nil {
					return err
				}
				deploy := s.Deployment
				base := deploy.DeepCopy()
				deploy.Spec.Template = *tmpl
				return c.Patch(cmd.Context(), deploy, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(o.Out, "%s/%s rolled back to revision %d\n", resourceName, name, rev)
			return nil
		},
	}
	cmd.Flags().IntVar(&toRevision, "to-revision", 0, "The revision to roll back to (default: the one before the current).")
	return cmd
}

// annotate sets (value non-nil) or removes one annotation with an optimistic-lock patch.
func (o *Options) annotate(ctx context.Context, args []string, key string, value *string, verb, already string) error {
	c, ns, name, err := o.target(args)
	if err != nil {
		return err
	}
	deploy := &v2.FirewallDeployment{}
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, deploy); err != nil {
			return err
		}
		current, has := deploy.Annotations[key]
		if (value == nil && !has) || (value != nil && has && current == *value) {
			if already != "" {
				return fmt.Errorf("%s/%s is %s", resourceName, name, already)
			}
		}
		base := deploy.DeepCopy()
		if value == nil {
			delete(deploy.Annotations, key)
		} else {
			if deploy.Annotations == nil {
				deploy.Annotations = map[string]string{}
			}
			deploy.Annotations[key] = *value
		}
		return c.Patch(ctx, deploy, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "%s/%s %s\n", resourceName, name, verb)
	if value == nil && key == v2.PausedAnnotation && v2.IsPaused(deploy.Annotations) {
		fmt.Fprintf(o.ErrOut, "Warning: %s/%s is still paused by %s (set by Cluster API)\n", resourceName, name, v2.ClusterAPIPausedAnnotation)
	}
	return nil
}

func strPtr(s string) *string { return &s }

func (o *Options) pauseCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "pause NAME",
		Short: "Pause a FirewallDeployment: no metal-api writes, no changes to its sets and firewalls",
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.annotate(cmd.Context(), args, v2.PausedAnnotation, strPtr("true"), "paused", "already paused")
		},
	}
}

func (o *Options) resumeCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "resume NAME",
		Short: "Resume a paused FirewallDeployment",
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.annotate(cmd.Context(), args, v2.PausedAnnotation, nil, "resumed", "not paused")
		},
	}
}

func (o *Options) restartCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "restart NAME",
		Short: "Roll every firewall of a FirewallDeployment onto new machines, without a spec change",
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.annotate(cmd.Context(), args, v2.RollSetAnnotation, strPtr("true"), "restarted", "")
		},
	}
}
