package nft

import (
	"context"
	"fmt"
	"os/exec"
	"testing"
	"time"

	"github.com/palisade-fw/palisade/internal/agent/fixture"
	"github.com/palisade-fw/palisade/internal/agent/model"
	"github.com/palisade-fw/palisade/internal/agent/ruleset"
)

// The benchmark input: 1,000 CWNPs with 10,000 CIDRs and 2,000 LoadBalancer services.
const (
	benchPolicies = 1000
	benchCIDRs    = 10000
	benchServices = 2000
)

func benchInput() ([]model.PolicyInput, []model.ServiceInput) {
	return fixture.Large(benchPolicies, benchCIDRs, benchServices)
}

// phases sums the phases of every Apply so the benchmark reports where the time goes.
type phases struct {
	n                        int
	inventory, run, readBack float64
	operations               float64
}

func (p *phases) add(r Result) {
	p.n++
	p.inventory += r.Inventory.Seconds() * 1000
	p.run += r.Run.Seconds() * 1000
	p.readBack += r.ReadBack.Seconds() * 1000
	p.operations += float64(r.Operations)
}

func (p *phases) report(b *testing.B) {
	if p.n == 0 {
		return
	}
	n := float64(p.n)
	b.ReportMetric(p.inventory/n, "inventory-ms")
	b.ReportMetric(p.run/n, "commit-ms")
	b.ReportMetric(p.readBack/n, "readback-ms")
	b.ReportMetric(p.operations/n, "operations")
}

func reportShape(b *testing.B, r *ruleset.Ruleset) {
	st := r.Stats()
	b.ReportMetric(float64(st.ForwardRules), "forward-rules")
	b.ReportMetric(float64(st.Sets), "kernel-sets")
	b.ReportMetric(float64(st.Elements), "elements")
}

// BenchmarkRender: compose (parse, validate) and render; no I/O.
func BenchmarkRender(b *testing.B) {
	p, s := benchInput()
	fw := fixture.Firewall()
	var r *ruleset.Ruleset
	for b.Loop() {
		snap, _ := model.Compose(fw, p, s)
		r = ruleset.Render(snap, ruleset.Options{})
	}
	reportShape(b, r)
}

// agentApplier is configured as the agent configures it: netlink into a throwaway
// namespace, the rule file written in the background.
func agentApplier(b *testing.B) (*scratch, *Applier) {
	sc, nl := newScratch(b, "firewall")
	return sc, New(nl, Options{RuleFile: b.TempDir() + "/rules.v4"})
}

// waitFile waits for the background file write outside the timed part and reports it.
func waitFile(b *testing.B, ap *Applier, total *time.Duration) {
	b.StopTimer()
	start := time.Now()
	if err := ap.WaitFile(context.Background()); err != nil {
		b.Fatal(err)
	}
	*total += time.Since(start)
	b.StartTimer()
}

// BenchmarkApplyFull: the restart case, a full sync against what the kernel holds: render,
// list the table, one transaction, read back. The rule file is written afterwards in the
// background (file-after-ms, not part of the time per op).
func BenchmarkApplyFull(b *testing.B) {
	requireNFT(b)
	p, s := benchInput()
	fw := fixture.Firewall()
	_, ap := agentApplier(b)
	var r *ruleset.Ruleset
	var ph phases
	var file time.Duration
	for b.Loop() {
		ap.Forget() // a restarted agent: full sync against what the kernel holds
		snap, _ := model.Compose(fw, p, s)
		r = ruleset.Render(snap, ruleset.Options{})
		res, err := ap.Apply(context.Background(), r)
		if err != nil || !res.Full {
			b.Fatalf("full=%v err=%v", res.Full, err)
		}
		ph.add(res)
		waitFile(b, ap, &file)
	}
	ph.report(b)
	b.ReportMetric(file.Seconds()*1000/float64(ph.n), "file-after-ms")
	reportShape(b, r)
}

// BenchmarkApplyFromEmpty: first boot, the table does not exist yet.
func BenchmarkApplyFromEmpty(b *testing.B) {
	requireNFT(b)
	p, s := benchInput()
	fw := fixture.Firewall()
	sc, ap := agentApplier(b)
	var ph phases
	var file time.Duration
	for b.Loop() {
		b.StopTimer()
		ap.Forget()
		_, _ = exec.Command("ip", "netns", "exec", sc.ns, "nft", "delete", "table", "inet", "firewall").CombinedOutput()
		b.StartTimer()
		snap, _ := model.Compose(fw, p, s)
		res, err := ap.Apply(context.Background(), ruleset.Render(snap, ruleset.Options{}))
		if err != nil || !res.Full {
			b.Fatalf("full=%v err=%v", res.Full, err)
		}
		ph.add(res)
		waitFile(b, ap, &file)
	}
	ph.report(b)
	b.ReportMetric(file.Seconds()*1000/float64(ph.n), "file-after-ms")
}

// BenchmarkApplyOneCWNPChange: one policy changes one CIDR. As in the runner, only the
// policies are composed again (the composer parses only the changed one), the renderer
// reuses the services half and every unchanged component of the CWNP maps; the element
// delta is one small transaction.
func BenchmarkApplyOneCWNPChange(b *testing.B) {
	requireNFT(b)
	p, s := benchInput()
	fw := fixture.Firewall()
	_, ap := agentApplier(b)
	rend := ruleset.NewRenderer(ruleset.Options{})
	var composer model.PolicyComposer // as the runner composes
	pols, _ := composer.Compose(fw, p)
	svcs, _ := model.ComposeServices(fw, s)
	if _, err := ap.Apply(context.Background(), rend.Render(model.Snapshot{Firewall: fw, Policies: pols, Services: svcs})); err != nil {
		b.Fatal(err)
	}
	i := 0
	var ph phases
	var file, composeTime, renderTime time.Duration
	for b.Loop() {
		i++
		p[7].Spec.Egress[0].To[0].CIDR = fmt.Sprintf("30.%d.%d.0/24", i/256%256, i%256)
		start := time.Now()
		pols, _ := composer.Compose(fw, p)
		composed := time.Now()
		rs := rend.Render(model.Snapshot{Firewall: fw, Policies: pols, Services: svcs})
		composeTime += composed.Sub(start)
		renderTime += time.Since(composed)
		res, err := ap.Apply(context.Background(), rs)
		if err != nil || res.Full || !res.Changed {
			b.Fatalf("full=%v changed=%v err=%v", res.Full, res.Changed, err)
		}
		ph.add(res)
		waitFile(b, ap, &file)
	}
	ph.report(b)
	b.ReportMetric(composeTime.Seconds()*1000/float64(ph.n), "compose-ms")
	b.ReportMetric(renderTime.Seconds()*1000/float64(ph.n), "render-ms")
	b.ReportMetric(file.Seconds()*1000/float64(ph.n), "file-after-ms")
}

// BenchmarkApplyNewCWNP: a policy is added (and the previous one removed): new chain,
// counter and elements in one delta, read back afterwards. As in the runner, only the
// policies are composed and rendered again.
func BenchmarkApplyNewCWNP(b *testing.B) {
	requireNFT(b)
	p, s := benchInput()
	fw := fixture.Firewall()
	_, ap := agentApplier(b)
	rend := ruleset.NewRenderer(ruleset.Options{})
	var composer model.PolicyComposer // as the runner composes
	pols, _ := composer.Compose(fw, p)
	svcs, _ := model.ComposeServices(fw, s)
	if _, err := ap.Apply(context.Background(), rend.Render(model.Snapshot{Firewall: fw, Policies: pols, Services: svcs})); err != nil {
		b.Fatal(err)
	}
	extra := p[0]
	var ph phases
	var file time.Duration
	for i := 0; b.Loop(); i++ {
		extra.Key.Name = fmt.Sprintf("added-%d", i)
		pols, _ := composer.Compose(fw, append(p[:len(p):len(p)], extra))
		res, err := ap.Apply(context.Background(), rend.Render(model.Snapshot{Firewall: fw, Policies: pols, Services: svcs}))
		if err != nil || res.Full || !res.Changed {
			b.Fatalf("full=%v changed=%v err=%v", res.Full, res.Changed, err)
		}
		ph.add(res)
		waitFile(b, ap, &file)
	}
	ph.report(b)
}
