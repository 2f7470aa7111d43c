package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	v1 "github.com/palisade-fw/palisade/api/v1"
	v2 "github.com/palisade-fw/palisade/api/v2"
	"github.com/palisade-fw/palisade/internal/agent/model"
	"github.com/palisade-fw/palisade/internal/agent/source/kube"
	"github.com/palisade-fw/palisade/internal/agent/verdict"
	"github.com/palisade-fw/palisade/internal/workload"
)

// explainOptions are the flags of `kubectl palisade explain`.
type explainOptions struct {
	from, to, toService, port, node string
	direction                       string
	workloadKubeconfig              string
	workloadContext                 string
	cwnpNamespace                   string
	defaultEgress                   bool
	output                          string
}

// Explanation is what explain prints with -o json|yaml.
type Explanation struct {
	// Firewall is the Firewall (namespace/name) whose spec and networks were used.
	Firewall string `json:"firewall"`
	// Deployment is set when the firewall was picked as the current one of a deployment.
	Deployment string           `json:"deployment,omitempty"`
	Results    []verdict.Result `json:"results"`
}

func (o *Options) explainCommand() *cobra.Command {
	var e explainOptions
	cmd := &cobra.Command{
		Use:   "explain (firewall/NAME | firewalldeployment/NAME) (--to ADDR:PORT[/PROTO] | --to-service NS/NAME) [--from ADDR]",
		Short: "Tell whether a firewall lets a flow through, and which rule decides",
		Long: "Compute the verdict on the first packet of a flow with the agent's own policy model, from the\n" +
			"objects in the clusters: the Firewall (spec, allowedNetworks, networks) from the seed, the\n" +
			"ClusterwideNetworkPolicies (with the addresses their toFQDNs learned) and Services from the\n" +
			"workload cluster, and the seed's default egress.\n\n" +
			"The direction follows from the source, as in the firewall: from a cluster address it is\n" +
			"egress, from anywhere else ingress. Without --from the flow starts in the cluster (egress).\n\n" +
			"The workload cluster is reached with --workload-kubeconfig, else through the Secret the\n" +
			"firewall's " + v2.WorkloadKubeconfigAnnotation + " annotation names, else through\n" +
			"the firewall's status.shootAccess (reading those Secrets needs get on Secrets in the seed).",
		Example: "  kubectl palisade explain firewall/edge-x7k2p --from 10.0.0.5 --to 140.82.112.3:443/tcp\n" +
			"  kubectl palisade explain firewalldeployment/edge --to '[2606:50c0::1]:443'\n" +
			"  kubectl palisade explain fw/edge-x7k2p --to-service shop/web --from 203.0.113.9 -o yaml",
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.explain(cmd.Context(), e, args)
		},
	}
	f := cmd.Flags()
	f.StringVar(&e.from, "from", "", "Source address; default: any address of the cluster (egress).")
	f.StringVar(&e.to, "to", "", "Destination ADDR:PORT[/tcp|udp|sctp] (IPv6 as [ADDR]:PORT).")
	f.StringVar(&e.toService, "to-service", "", "Destination Service NAMESPACE/NAME in the workload cluster: every load-balancer IP and port.")
	f.StringVar(&e.port, "port", "", "With --to-service: only this PORT[/PROTO] of the Service.")
	f.StringVar(&e.node, "node", "", "With --to-service of type NodePort: the node address the flow goes to.")
	f.StringVar(&e.direction, "direction", "", "egress or ingress: checked against the addresses; without --from, egress.")
	f.StringVar(&e.workloadKubeconfig, "workload-kubeconfig", "", "Kubeconfig of the workload cluster (CWNPs and Services).")
	f.StringVar(&e.workloadContext, "workload-context", "", "Context of --workload-kubeconfig.")
	f.StringVar(&e.cwnpNamespace, "cwnp-namespace", "firewall", "Namespace of the ClusterwideNetworkPolicies (the agent's sources.shoot.namespace).")
	f.BoolVar(&e.defaultEgress, "default-egress", true, "Whether the agent contributes the seed's default egress (its nftables.defaultEgress).")
	f.StringVarP(&e.output, "output", "o", "", "Output format: json or yaml; default a line per flow.")
	return cmd
}

func (o *Options) explain(ctx context.Context, e explainOptions, args []string) error {
	if len(args) != 1 {
		return errors.New("exactly one firewall/NAME or firewalldeployment/NAME is required")
	}
	if (e.to == "") == (e.toService == "") {
		return errors.New("give one of --to or --to-service")
	}
	if e.output != "" && e.output != "json" && e.output != "yaml" {
		return fmt.Errorf("--output %q: json or yaml", e.output)
	}
	ns, err := o.namespace()
	if err != nil {
		return err
	}
	seed, err := o.NewClient()
	if err != nil {
		return err
	}
	fw, deployment, err := o.resolveFirewall(ctx, seed, ns, args[0])
	if err != nil {
		return err
	}
	shoot, err := o.workloadClient(ctx, seed, fw, e)
	if err != nil {
		return err
	}
	in, services, err := readInputs(ctx, shoot, fw, e.cwnpNamespace, time.Now())
	if err != nil {
		return err
	}
	in.DefaultEgress = e.defaultEgress
	flows, err := e.flows(services, in.Firewall)
	if err != nil {
		return err
	}
	out := Explanation{Firewall: fw.Namespace + "/" + fw.Name}
	if deployment != "" {
		out.Deployment = ns + "/" + deployment
	}
	for _, f := range flows {
		out.Results = append(out.Results, verdict.Explain(in, f))
	}
	return printExplanation(o.Out, out, e.output)
}

// resolveFirewall reads firewall/NAME, or picks the current firewall of firewalldeployment/NAME:
// one of the newest set, a ready one if there is.
func (o *Options) resolveFirewall(ctx context.Context, c client.Client, ns, arg string) (*v2.Firewall, string, error) {
	kind, name, found := strings.Cut(arg, "/")
	if !found {
		return nil, "", fmt.Errorf("%q: write firewall/NAME or firewalldeployment/NAME", arg)
	}
	switch strings.ToLower(kind) {
	case "firewall", "firewalls", "fw", "firewall.firewall.metal-stack.io":
		fw := &v2.Firewall{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, fw); err != nil {
			return nil, "", err
		}
		return fw, "", nil
	case "firewalldeployment", "firewalldeployments", "fwdeploy", resourceName:
		s, err := o.snapshot(ctx, c, ns, name)
		if err != nil {
			return nil, "", err
		}
		fw := CurrentFirewall(s)
		if fw == nil {
			return nil, "", fmt.Errorf("%s/%s has no firewall yet", resourceName, name)
		}
		return fw, name, nil
	}
	return nil, "", fmt.Errorf("%q: not a firewall or firewalldeployment", kind)
}

// CurrentFirewall is the firewall explain uses for a deployment: of the newest set, the first
// ready one by name, else the first by name; nil when the newest set has none.
func CurrentFirewall(s Snapshot) *v2.Firewall {
	set := s.latestSet()
	if set == nil {
		return nil
	}
	fws := s.firewallsOf(set)
	for i := range fws {
		if meta.IsStatusConditionTrue(fws[i].Status.Conditions, v2.ConditionReady) {
			return &fws[i]
		}
	}
	if len(fws) == 0 {
		return nil
	}
	return &fws[0]
}

// workloadClient connects to the workload cluster: the flag, else the firewall's workload
// kubeconfig annotation (the manager's convention for monitors), else its status.shootAccess.
func (o *Options) workloadClient(ctx context.Context, seed client.Client, fw *v2.Firewall, e explainOptions) (client.Client, error) {
	var cfg *rest.Config
	var err error
	switch {
	case e.workloadKubeconfig != "":
		cfg, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
			&clientcmd.ClientConfigLoadingRules{ExplicitPath: e.workloadKubeconfig},
			&clientcmd.ConfigOverrides{CurrentContext: e.workloadContext}).ClientConfig()
	case fw.Annotations[v2.WorkloadKubeconfigAnnotation] != "":
		ref, perr := workload.ParseSecretRef(fw.Annotations[v2.WorkloadKubeconfigAnnotation])
		if perr != nil {
			return nil, fmt.Errorf("annotation %s: %w", v2.WorkloadKubeconfigAnnotation, perr)
		}
		var data []byte
		if data, err = secretKey(ctx, seed, fw.Namespace, ref.Name, ref.Key); err == nil {
			cfg, err = WorkloadConfig(data, "", "")
		}
	case fw.Status.ShootAccess != nil:
		sa := fw.Status.ShootAccess
		ns := sa.Namespace
		if ns == "" {
			ns = fw.Namespace
		}
		var data []byte
		var token []byte
		if data, err = secretKey(ctx, seed, ns, sa.GenericKubeconfigSecretName, "kubeconfig", v2.DefaultUserdataKey); err == nil && sa.TokenSecretName != "" {
			token, err = secretKey(ctx, seed, ns, sa.TokenSecretName, "token")
		}
		if err == nil {
			cfg, err = WorkloadConfig(data, string(token), sa.APIServerURL)
		}
	default:
		return nil, fmt.Errorf("firewall %s/%s names no workload cluster (no %s annotation, no status.shootAccess): "+
			"give --workload-kubeconfig; the ClusterwideNetworkPolicies and Services live there", fw.Namespace, fw.Name, v2.WorkloadKubeconfigAnnotation)
	}
	if err != nil {
		return nil, fmt.Errorf("workload cluster: %w", err)
	}
	return client.New(cfg, client.Options{Scheme: o.scheme})
}

// secretKey returns the first of keys present in the Secret.
func secretKey(ctx context.Context, c client.Client, ns, name string, keys ...string) ([]byte, error) {
	s := &corev1.Secret{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, s); err != nil {
		return nil, fmt.Errorf("Secret %s/%s: %w", ns, name, err)
	}
	for _, k := range keys {
		if v, ok := s.Data[k]; ok {
			return v, nil
		}
	}
	return nil, fmt.Errorf("Secret %s/%s has none of the keys %s", ns, name, strings.Join(keys, ", "))
}

// WorkloadConfig builds the workload client from a kubeconfig (Gardener's generic token
// kubeconfig points at a token file that only exists on the firewall), the bearer token of
// the token Secret and the API server URL the firewall uses; empty token and server keep
// what the kubeconfig says.
func WorkloadConfig(kubeconfig []byte, token, server string) (*rest.Config, error) {
	raw, err := clientcmd.Load(kubeconfig)
	if err != nil {
		// The parser's message may quote the file; it holds credentials.
		return nil, errors.New("the kubeconfig cannot be parsed")
	}
	if token != "" {
		for _, user := range raw.AuthInfos {
			user.Token, user.TokenFile = token, ""
		}
	}
	if server != "" {
		for _, cluster := range raw.Clusters {
			cluster.Server = server
		}
	}
	cfg, err := clientcmd.NewDefaultClientConfig(*raw, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, errors.New("the kubeconfig cannot be used")
	}
	return cfg, nil
}

// readInputs reads what the agent reads: the Firewall (as the seed source parses it), the
// CWNPs of namespace cwnpNS and every Service (as the shoot source converts them), and the
// addresses the toFQDNs rules learned that have not expired at now.
func readInputs(ctx context.Context, shoot client.Client, fw *v2.Firewall, cwnpNS string, now time.Time) (verdict.Inputs, []corev1.Service, error) {
	in := verdict.Inputs{Firewall: kube.Firewall(fw), Learned: verdict.Learned{}}
	var cwnps v1.ClusterwideNetworkPolicyList
	if err := shoot.List(ctx, &cwnps, client.InNamespace(cwnpNS)); err != nil {
		if meta.IsNoMatchError(err) {
			return in, nil, errors.New("the workload cluster has no ClusterwideNetworkPolicy CRD (charts/palisade-workload installs it): is --workload-kubeconfig the right cluster?")
		}
		return in, nil, fmt.Errorf("listing ClusterwideNetworkPolicies in the workload cluster: %w", err)
	}
	for i := range cwnps.Items {
		p := kube.PolicyInput(&cwnps.Items[i])
		in.Policies = append(in.Policies, p)
		if l := LearnedAddresses(cwnps.Items[i].Status.FQDNState, now); len(l) > 0 {
			in.Learned[p.Key] = l
		}
	}
	var services corev1.ServiceList
	if err := shoot.List(ctx, &services); err != nil {
		return in, nil, fmt.Errorf("listing Services in the workload cluster: %w", err)
	}
	for i := range services.Items {
		if s, ok := kube.ServiceInput(&services.Items[i]); ok {
			in.Services = append(in.Services, s)
		}
	}
	return in, services.Items, nil
}

// LearnedAddresses turns a CWNP's status.fqdn_state into the addresses per selector that
// have not expired at now.
func LearnedAddresses(state map[string][]v1.IPSet, now time.Time) map[string][]netip.Addr {
	out := map[string][]netip.Addr{}
	for selector, sets := range state {
		for _, set := range sets {
			for ip, expires := range set.IPExpirationTimes {
				a, err := netip.ParseAddr(ip)
				if err != nil || !expires.After(now) {
					continue
				}
				if !slices.Contains(out[selector], a.Unmap()) {
					out[selector] = append(out[selector], a.Unmap())
				}
			}
		}
		slices.SortFunc(out[selector], netip.Addr.Compare)
	}
	return out
}

// flows turns the flags into the flows to explain.
func (e explainOptions) flows(services []corev1.Service, fw model.Firewall) ([]verdict.Flow, error) {
	var src netip.Addr
	if e.from != "" {
		a, err := netip.ParseAddr(e.from)
		if err != nil || a.Zone() != "" {
			return nil, fmt.Errorf("--from %q is not an IP address", e.from)
		}
		src = a.Unmap()
	}
	var flows []verdict.Flow
	if e.to != "" {
		addrPort, protoStr, _ := strings.Cut(e.to, "/")
		ap, err := netip.ParseAddrPort(addrPort)
		if err != nil || ap.Port() == 0 {
			return nil, fmt.Errorf("--to %q: write ADDR:PORT[/PROTO], IPv6 as [ADDR]:PORT", e.to)
		}
		proto, err := model.ParseProtocol(protoStr)
		if err != nil {
			return nil, fmt.Errorf("--to %q: %w", e.to, err)
		}
		flows = append(flows, verdict.Flow{Src: src, Dst: ap.Addr().Unmap(), Protocol: proto, Port: ap.Port()})
	} else {
		var err error
		if flows, err = e.serviceFlows(services, src); err != nil {
			return nil, err
		}
	}
	for _, f := range flows {
		if err := checkFlow(f, e.direction, fw); err != nil {
			return nil, err
		}
	}
	return flows, nil
}

func (e explainOptions) serviceFlows(services []corev1.Service, src netip.Addr) ([]verdict.Flow, error) {
	ns, name, ok := strings.Cut(e.toService, "/")
	if !ok {
		return nil, fmt.Errorf("--to-service %q: write NAMESPACE/NAME", e.toService)
	}
	i := slices.IndexFunc(services, func(s corev1.Service) bool { return s.Namespace == ns && s.Name == name })
	if i < 0 {
		return nil, fmt.Errorf("service %s/%s not found in the workload cluster", ns, name)
	}
	svc := services[i]
	var onlyProto model.Protocol
	var onlyPort uint16
	if e.port != "" {
		var err error
		if onlyProto, onlyPort, err = verdict.ParseProtoPort(e.port); err != nil {
			return nil, fmt.Errorf("--port: %w", err)
		}
	}
	input, exposed := kube.ServiceInput(&svc)
	if !exposed {
		return nil, fmt.Errorf("service %s/%s is of type %s: the firewall exposes only LoadBalancer and NodePort services", ns, name, svc.Spec.Type)
	}
	var dsts []netip.Addr
	nodePort := svc.Spec.Type == corev1.ServiceTypeNodePort
	if nodePort {
		a, err := netip.ParseAddr(e.node)
		if err != nil {
			return nil, fmt.Errorf("service %s/%s is a NodePort service: give --node with the address of a node", ns, name)
		}
		dsts = append(dsts, a.Unmap())
	}
	for _, ip := range input.Spec.IPs {
		if a, err := netip.ParseAddr(ip); err == nil && !nodePort && !slices.Contains(dsts, a.Unmap()) {
			dsts = append(dsts, a.Unmap())
		}
	}
	if len(dsts) == 0 {
		return nil, fmt.Errorf("service %s/%s has no load-balancer IP yet: the firewall opens nothing for it", ns, name)
	}
	var flows []verdict.Flow
	for _, dst := range dsts {
		if src.IsValid() && src.Is4() != dst.Is4() {
			continue
		}
		for _, p := range svc.Spec.Ports {
			proto, err := model.ParseProtocol(string(p.Protocol))
			if err != nil {
				continue
			}
			port := uint16(p.Port)
			if nodePort {
				port = uint16(p.NodePort)
			}
			if port == 0 || (onlyPort != 0 && (onlyPort != port || onlyProto != proto)) {
				continue
			}
			flows = append(flows, verdict.Flow{Src: src, Dst: dst, Protocol: proto, Port: port})
		}
	}
	if len(flows) == 0 {
		return nil, fmt.Errorf("service %s/%s has no port matching --port and --from's address family", ns, name)
	}
	return flows, nil
}

// checkFlow refuses flows the firewall cannot see as asked: mixed families, an ingress flow
// without a source, a --direction the addresses contradict.
func checkFlow(f verdict.Flow, direction string, fw model.Firewall) error {
	if f.Src.IsValid() && f.Src.Is4() != f.Dst.Is4() {
		return fmt.Errorf("%s and %s are of different address families", f.Src, f.Dst)
	}
	switch direction {
	case "", string(verdict.Egress):
	case string(verdict.Ingress):
		if !f.Src.IsValid() {
			return errors.New("an ingress flow needs --from: ingress rules and services match the source")
		}
	default:
		return fmt.Errorf("--direction %q: egress or ingress", direction)
	}
	if !f.Src.IsValid() || direction == "" {
		return nil
	}
	inCluster := slices.ContainsFunc(fw.ClusterPrefixes, func(p netip.Prefix) bool { return p.Contains(f.Src) })
	if inCluster != (direction == string(verdict.Egress)) {
		what := "in no cluster prefix, so the firewall treats the flow as ingress"
		if inCluster {
			what = "in a cluster prefix, so the firewall treats the flow as egress"
		}
		return fmt.Errorf("--direction %s: the source %s is %s", direction, f.Src, what)
	}
	return nil
}

func printExplanation(w io.Writer, out Explanation, format string) error {
	switch format {
	case "json":
		data, err := json.MarshalIndent(out, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", data)
		return err
	case "yaml":
		data, err := yaml.Marshal(out)
		if err != nil {
			return err
		}
		_, err = w.Write(data)
		return err
	}
	header := "firewall " + out.Firewall
	if out.Deployment != "" {
		header += " (current firewall of " + resourceName + " " + strings.SplitN(out.Deployment, "/", 2)[1] + ")"
	}
	fmt.Fprintln(w, header)
	for _, r := range out.Results {
		fmt.Fprintf(w, "%s (%s): %s\n", r.Flow, r.Direction, r.Summary())
		if r.By != nil {
			fmt.Fprintf(w, "  counter: %s\n", r.By.Counter)
		}
		for _, n := range r.Nearest {
			fmt.Fprintf(w, "  nearest: %s allows %s (misses %s)\n", n.Rule, n.Allows, n.Misses)
		}
		for _, n := range r.Notes {
			fmt.Fprintf(w, "  note: %s\n", n)
		}
	}
	return nil
}
