package nft

import (
	"context"
	"fmt"
	"testing"

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
	n                          int
	check, run, readBack, file float64
}

func (p *phases) add(r Result) {
	p.n++
	p.check += r.Check.Seconds() * 1000
	p.run += r.Run.Seconds() * 1000
	p.readBack += r.ReadBack.Seconds() * 1000
	p.file += r.File.Seconds() * 1000
}

func (p *phases) report(b *testing.B) {
	if p.n == 0 {
		return
	}
	n := float64(p.n)
	b.ReportMetric(p.check/n, "check-ms")
	b.ReportMetric(p.run/n, "run-ms")
	b.ReportMetric(p.readBack/n, "readback-ms")
	b.ReportMetric(p.file/n, "file-ms")
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

// BenchmarkCheck: nft --check of the complete ruleset in an empty namespace.
func BenchmarkCheck(b *testing.B) {
	requireNFT(b)
	p, s := benchInput()
	snap, _ := model.Compose(fixture.Firewall(), p, s)
	r := ruleset.Render(snap, ruleset.Options{})
	_, iface := newScratch(b, "firewall")
	ap := New(iface, Options{})
	tx := iface.NewTransaction()
	addFull(tx, r, Inventory{})
	for b.Loop() {
		if err := ap.nft.Check(context.Background(), tx); err != nil {
			b.Fatal(err)
		}
	}
	reportShape(b, r)
}

// BenchmarkApplyFull: render, check, apply, read back and write the file, from scratch.
func BenchmarkApplyFull(b *testing.B) {
	requireNFT(b)
	p, s := benchInput()
	fw := fixture.Firewall()
	_, iface := newScratch(b, "firewall")
	ap := New(iface, Options{RuleFile: b.TempDir() + "/rules.v4"})
	var r *ruleset.Ruleset
	var ph phases
	for b.Loop() {
		ap.Forget() // a restarted agent: full sync against what the kernel holds
		snap, _ := model.Compose(fw, p, s)
		r = ruleset.Render(snap, ruleset.Options{})
		res, err := ap.Apply(context.Background(), r)
		if err != nil || !res.Full {
			b.Fatalf("full=%v err=%v", res.Full, err)
		}
		ph.add(res)
	}
	ph.report(b)
	reportShape(b, r)
}

// BenchmarkApplyOneCWNPChange: one policy changes one CIDR; render, check, apply the delta,
// read back and write the file.
func BenchmarkApplyOneCWNPChange(b *testing.B) {
	requireNFT(b)
	p, s := benchInput()
	fw := fixture.Firewall()
	_, iface := newScratch(b, "firewall")
	ap := New(iface, Options{RuleFile: b.TempDir() + "/rules.v4"})
	snap, _ := model.Compose(fw, p, s)
	if _, err := ap.Apply(context.Background(), ruleset.Render(snap, ruleset.Options{})); err != nil {
		b.Fatal(err)
	}
	i := 0
	var ph phases
	for b.Loop() {
		i++
		p[7].Spec.Egress[0].To[0].CIDR = fmt.Sprintf("30.%d.%d.0/24", i/256%256, i%256)
		snap, _ := model.Compose(fw, p, s)
		res, err := ap.Apply(context.Background(), ruleset.Render(snap, ruleset.Options{}))
		if err != nil || res.Full || !res.Changed {
			b.Fatalf("full=%v changed=%v err=%v", res.Full, res.Changed, err)
		}
		ph.add(res)
	}
	ph.report(b)
}

// BenchmarkUnchanged: an event that changes nothing: compose, render, compare; no nft call.
func BenchmarkUnchanged(b *testing.B) {
	requireNFT(b)
	p, s := benchInput()
	fw := fixture.Firewall()
	sc, iface := newScratch(b, "firewall")
	ap := New(iface, Options{})
	snap, _ := model.Compose(fw, p, s)
	if _, err := ap.Apply(context.Background(), ruleset.Render(snap, ruleset.Options{})); err != nil {
		b.Fatal(err)
	}
	calls := sc.Calls(b)
	for b.Loop() {
		snap, _ := model.Compose(fw, p, s)
		if res, err := ap.Apply(context.Background(), ruleset.Render(snap, ruleset.Options{})); err != nil || res.Changed {
			b.Fatalf("changed=%v err=%v", res.Changed, err)
		}
	}
	if n := sc.Calls(b) - calls; n != 0 {
		b.Fatalf("nft ran %d times for unchanged input", n)
	}
}
