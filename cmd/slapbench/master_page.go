package main

import (
	"fmt"
	"image/color"
	"math"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// The master's and the steady state's parts of the page (master.go,
// steady.go measure them).

// The targets for the master.
const (
	targetRequest  = 7500 // requestComputerPartition per second
	targetComputer = 1000 // getFullComputerInformation (50 partitions) per second
	targetRSSMiB   = 30   // peak RSS of the serving master
)

var phaseTitles = map[string]string{
	"request":        "`requestComputerPartition`, unchanged re-request (a requester polling for its connection parameters)",
	"request-change": "`requestComputerPartition` changing a parameter (one committed write each)",
	"computer":       fmt.Sprintf("`getFullComputerInformation`, a computer of %d busy partitions (a node's poll)", masterPartitions),
}

func (mb *masterBench) run(engine string) *masterRun {
	for i := range mb.Runs {
		if mb.Runs[i].Engine == engine && mb.Runs[i].Skipped == "" {
			return &mb.Runs[i]
		}
	}
	return nil
}

func (r *masterRun) phase(name string, clients int) *masterPhase {
	if r == nil {
		return nil
	}
	for i := range r.Phases {
		if r.Phases[i].Name == name && r.Phases[i].Clients == clients {
			return &r.Phases[i]
		}
	}
	return nil
}

func rateCell(ph *masterPhase) string {
	if ph == nil || len(ph.Rates) == 0 {
		return "–"
	}
	lo, hi := minMax(ph.Rates)
	return fmt.Sprintf("%s (%s–%s)", num(median(ph.Rates)), num(lo), num(hi))
}

// pairRatios is slapnode's rate over slapproxy's, repetition by
// repetition (the engines take turns within a repetition).
func pairRatios(a, b *masterPhase) []float64 {
	if a == nil || b == nil {
		return nil
	}
	var out []float64
	for i := 0; i < len(a.Rates) && i < len(b.Rates); i++ {
		if b.Rates[i] > 0 {
			out = append(out, a.Rates[i]/b.Rates[i])
		}
	}
	return out
}

func kib(k int) string { return fmt.Sprintf("%.1f MiB", float64(k)/1024) }

// masterTargetRows adds the master's rows to the targets table.
func masterTargetRows(p func(string, ...any), r *results, verdict func(bool, string) string) {
	mb := r.Master
	if mb == nil {
		return
	}
	sn := mb.run("slapnode")
	if sn == nil {
		return
	}
	vs := func(name string, clients int) string {
		px := mb.run("slapproxy").phase(name, clients)
		if px == nil {
			return ""
		}
		return fmt.Sprintf("; slapproxy %s/s", num(median(px.Rates)))
	}
	if ph := sn.phase("request", 1); ph != nil {
		x := median(ph.Rates)
		eight := ""
		if p8 := sn.phase("request", 8); p8 != nil {
			eight = fmt.Sprintf(", %s/s with 8 clients", num(median(p8.Rates)))
		}
		p("| master: `requestComputerPartition` ≥ %s/s (one client, unchanged re-request) | %s/s%s%s | %s |\n", num(targetRequest), num(x), eight, vs("request", 1), verdict(x >= targetRequest, "master-request"))
	}
	if ph := sn.phase("computer", 1); ph != nil {
		x := median(ph.Rates)
		p("| master: `getFullComputerInformation`, %d partitions, ≥ %s/s (one client) | %s/s%s | %s |\n", masterPartitions, num(targetComputer), num(x), vs("computer", 1), verdict(x >= targetComputer, "master-computer"))
	}
	if sn.PeakRSS > 0 {
		px := ""
		if r := mb.run("slapproxy"); r != nil {
			px = "; slapproxy " + kib(r.PeakRSS)
		}
		p("| master: peak RSS < %d MiB, serving all of the above | %s (VmHWM)%s | %s |\n", targetRSSMiB, kib(sn.PeakRSS), px, verdict(float64(sn.PeakRSS)/1024 < targetRSSMiB, "master-rss"))
	}
}

func init() {
	missedWhy["master-request"] = func(r *results) string {
		ph := r.Master.run("slapnode").phase("request", 1)
		x := median(ph.Rates)
		return fmt.Sprintf("**Master, one client's re-requests: %s/s, short of %s/s by %.0f%%** (%s µs of the master's CPU per call). The answer itself comes from the cache, found by the request's body as sent (store.go): what remains per call is HTTP on loopback (the request line and headers, the write) on both sides of one connection and the caller's authorisation; the client runs on the same two cores and one call waits for the other. Several clients at once overlap those waits (the 8-client figure).",
			num(x), num(targetRequest), 100*(1-x/targetRequest), num(median(ph.ServerCPU)))
	}
	missedWhy["master-computer"] = func(r *results) string {
		ph := r.Master.run("slapnode").phase("computer", 1)
		return fmt.Sprintf("**Master, getFullComputerInformation: %s/s, short of %s/s** (%s µs of the master's CPU per call): the %d KB answer is cached; the rest is writing it and the client reading it on the same two cores.",
			num(median(ph.Rates)), num(targetComputer), num(median(ph.ServerCPU)), ph.Bytes/1000)
	}
	missedWhy["master-rss"] = func(r *results) string {
		sn := r.Master.run("slapnode")
		return fmt.Sprintf("**Master, peak RSS %s, above %d MiB**: at the end %s anonymous (heap, stacks, SQLite's page cache) and %s of mapped files — the slapnode binary's code and the Go runtime's tables, shared with every other slapnode process and the first memory the kernel takes back. The master hands back the code only the other commands' initialisers touched once it listens (internal/memtrim); what stays is the code it runs. A master built without the other commands' packages would map less.",
			kib(sn.PeakRSS), targetRSSMiB, kib(sn.EndAnon), kib(sn.EndFile))
	}
}

// writeMaster is the master's section.
func writeMaster(b *strings.Builder, r *results, plots []plotFile) {
	mb := r.Master
	if mb == nil {
		return
	}
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	sn, px := mb.run("slapnode"), mb.run("slapproxy")
	p("## Master\n\n")
	p("`slapnode master` and, when it can be run here, SlapOS's slapproxy — each a process of its own, serving SLAP over loopback HTTP — are driven by the same client in the benchmark's process — a minimal HTTP/1.1 client (`cmd/slapbench/rawhttp.go`: one keep-alive connection per client, each request written as bytes prepared once, with the headers slapos.slap sends, each answer read whole by its Content-Length), since Go's own HTTP client costs about as much CPU per call as a cached answer costs the master, on the same two cores; the first answer of every phase is decoded and checked (the right instance with its parameters and connection parameters; the whole computer). Each master's database holds one computer of %d partitions, every one busy with an instance of five parameters and three connection parameters, each partition with an IPv4 and an IPv6 address, as a converged node leaves it. Each phase runs %.0f s, %d times, the engines taking turns within each repetition; calls/s are medians (range), the ratio slapnode / slapproxy is computed repetition by repetition. Server CPU per call is the master process's user+system time (`/proc/PID/stat`) over the phase divided by its calls; peak RSS is the process's `VmHWM` after every phase.\n\n",
		masterPartitions, mb.Seconds, mb.Repeat)
	for _, pl := range plots {
		if strings.HasPrefix(pl.Name, "master-") {
			p("![%s](bench/%s)\n\n", pl.Alt, pl.Name)
		}
	}
	p("| call | clients | slapnode calls/s | slapnode CPU µs/call | slapproxy calls/s | slapproxy CPU µs/call | ratio (range) |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, spec := range masterPhaseSpecs {
		a, c := sn.phase(spec.name, spec.clients), px.phase(spec.name, spec.clients)
		cpu := func(ph *masterPhase) string {
			if ph == nil {
				return "–"
			}
			return num(median(ph.ServerCPU))
		}
		rs := pairRatios(a, c)
		ratioCell := "–"
		if len(rs) > 0 {
			ratioCell = "**" + ratio(median(rs)) + "** (" + ratioRange(rs) + ")"
		}
		p("| %s | %d | %s | %s | %s | %s | %s |\n", phaseTitles[spec.name], spec.clients, rateCell(a), cpu(a), rateCell(c), cpu(c), ratioCell)
	}
	p("\n| memory of the serving master | slapnode | slapproxy |\n| --- | ---: | ---: |\n")
	row := func(label string, f func(*masterRun) int) {
		cell := func(x *masterRun) string {
			if x == nil || f(x) == 0 {
				return "–"
			}
			return kib(f(x))
		}
		p("| %s | %s | %s |\n", label, cell(sn), cell(px))
	}
	row("RSS once started, before any call", func(x *masterRun) int { return x.StartRSS })
	row("peak RSS (VmHWM), every phase served", func(x *masterRun) int { return x.PeakRSS })
	row("RSS at the end", func(x *masterRun) int { return x.EndRSS })
	row("of which anonymous (heap, stacks, database cache)", func(x *masterRun) int { return x.EndAnon })
	row("of which mapped files (code, read-only data, libraries)", func(x *masterRun) int { return x.EndFile })
	p("\nHow each master runs (database in the scratch directory, fresh for the run; set-up: the computer formatted, the release supplied, %d instances requested and their connection parameters published, through the SLAP API):\n\n", masterPartitions)
	for _, x := range mb.Runs {
		if x.Skipped != "" {
			p("- **%s: not measured in this run** — %s. Figures measured by hand with slapos.core run from a source checkout are under \"Recorded figures\" below (section *slapproxy*).\n", x.Engine, x.Skipped)
			continue
		}
		p("- %s (%s): `%s`; set-up took %.2f s.\n", x.Engine, strings.TrimPrefix(x.Version, "-c "), x.Command, x.SetupSecs)
	}
	p("\nWhat makes the difference: slapnode's master answers a call from one SQLite connection with statements prepared once, in one transaction, and keeps the answers it computed — a computer's document, a partition's, an unchanged re-request — until the next change that shows in them (docs/master.md, *Storage*); slapproxy (Flask's threaded development server) opens the database, parses every statement and rebuilds every answer with lxml on each call. A `requestComputerPartition` that changes a parameter is a committed write on both. Both run on the same two cores as the client.\n\n")
}

// writeSteady is the node's steady-state section.
func writeSteady(b *strings.Builder, r *results, plots []plotFile) {
	sb := r.Steady
	if sb == nil {
		return
	}
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	p("## Steady state of a node\n\n")
	p("What a node costs once its instances are deployed and nothing changes — the state a fleet spends nearly all its time in. SlapOS runs slapgrid every minute, and buildout in each partition it processes; slapnode runs `slapnode node converge` (or the same pass in `slapnode node run --master`, every interval), and its daemon supervises the services. Here: `slapnode master` in a process of its own, a node root registered with %d partitions, one instance requested per partition of a release whose instances run %d services each (`sleep`), all deployed by a first pass; then %d unchanged passes, each a `slapnode node converge` process that must report every partition up to date (timed with the process's rusage: wall, user+system CPU, peak RSS); then the node daemon, watched for %.0f s with its %d services running.\n\n",
		sb.Partitions, sb.Services, len(sb.Passes), sb.IdleSeconds, sb.Running)
	for _, pl := range plots {
		if strings.HasPrefix(pl.Name, "steady-") {
			p("![%s](bench/%s)\n\n", pl.Alt, pl.Name)
		}
	}
	var wall, cpu, rss []float64
	for _, m := range sb.Passes {
		wall, cpu, rss = append(wall, m.Wall), append(cpu, m.CPU), append(rss, m.RSSMB)
	}
	wlo, whi := minMax(wall)
	clo, chi := minMax(cpu)
	_, rhi := minMax(rss)
	p("| what | figure |\n| --- | --- |\n")
	p("| first pass: deploy %d instances, start %d services | %s s wall, %s s CPU, %.1f MiB peak RSS |\n", sb.Partitions, sb.Partitions*sb.Services, secs(sb.First.Wall), secs(sb.First.CPU), sb.First.RSSMB)
	p("| **one unchanged pass** (`slapnode node converge`, a process) | **%s s wall** (%s–%s), **%s s CPU** (%s–%s), **%.1f MiB** peak RSS |\n", secs(median(wall)), secs(wlo), secs(whi), secs(median(cpu)), secs(clo), secs(chi), rhi)
	if res, ok := goResult(r, idSteady, "ConvergeUnchanged"); ok {
		p("| one unchanged pass inside the daemon (`BenchmarkConvergeUnchanged`: `node run --master`'s loop, no process start) | %s (%s B, %s allocations per pass) |\n", nsDur(res.Metrics["ns/op"].Median), num(res.Metrics["B/op"].Median), num(res.Metrics["allocs/op"].Median))
	}
	p("| **the daemon, idle**, %d services running, over %.0f s | **%s s CPU** (%.3f%% of one core), %d context switches (%.1f/s) |\n", sb.Running, sb.IdleSeconds, secs(sb.IdleCPU), 100*sb.IdleCPU/sb.IdleSeconds, sb.IdleSwitches, float64(sb.IdleSwitches)/sb.IdleSeconds)
	p("| the daemon's memory | %s RSS (peak %s) |\n", kib(sb.DaemonRSS), kib(sb.DaemonHWM))
	perMin := 60 / math.Max(sb.IdleSeconds, 1)
	p("\nA minute of this node — one unchanged pass and the daemon — costs about %s s of CPU. ", secs(median(cpu)+sb.IdleCPU*perMin))
	p("An unchanged pass parses no profile and starts no WebAssembly: per partition it compares the master's timestamp and requested state with the partition's `converged.json`; per pass it reads the computer's document (the master answers it from its cache; in the daemon's loop, the client decodes it only when it changed) and confirms the release by its completion marker. It registers the node's partitions again only when they changed (or hourly, or when the master answers that it does not know the computer) and reports usage every 10 minutes, both remembered in the node root across runs (docs/master.md). The daemon sleeps between events: each 2-second tick of its reaper costs one `waitid` unless a child died.\n\n")
	p("Commands:\n\n")
	for _, c := range sb.Commands {
		p("    %s\n", c)
	}
	p("\n")
}

// drawMasterPlots draws the master's and the steady state's plots.
func drawMasterPlots(dir string, r *results) ([]plotFile, error) {
	var out []plotFile
	if mb := r.Master; mb != nil && mb.run("slapnode") != nil {
		pl := plot.New()
		pl.Title.Text = "SLAP calls per second (median of the repetitions), log scale"
		pl.Y.Label.Text = "calls per second"
		pl.Y.Scale = plot.LogScale{}
		pl.Y.Tick.Marker = plot.LogTicks{Prec: -1}
		var names []string
		for _, s := range masterPhaseSpecs {
			names = append(names, fmt.Sprintf("%s ×%d", s.name, s.clients))
		}
		engines := []struct {
			name string
			c    color.RGBA
		}{{"slapnode", color.RGBA{R: 30, G: 90, B: 200, A: 255}}, {"slapproxy", color.RGBA{R: 200, G: 40, B: 40, A: 255}}}
		pl.Add(plotter.NewGrid())
		w := vg.Points(18)
		maxY := 1.0
		for i, e := range engines {
			run := mb.run(e.name)
			if run == nil {
				continue
			}
			var vals plotter.Values
			for _, s := range masterPhaseSpecs {
				v := 1.0
				if ph := run.phase(s.name, s.clients); ph != nil && len(ph.Rates) > 0 {
					v = median(ph.Rates)
				}
				vals = append(vals, v)
				maxY = max(maxY, v)
			}
			bars, err := logBars(vals, w, 1)
			if err != nil {
				return nil, err
			}
			bars.Color = e.c
			bars.LineStyle.Width = 0
			bars.Offset = vg.Length(float64(i)-0.5) * w
			pl.Add(bars)
			pl.Legend.Add(e.name, bars)
		}
		pl.NominalX(names...)
		pl.Y.Min, pl.Y.Max = 1, maxY*20
		pl.Legend.Top = true
		if err := pl.Save(8*vg.Inch, 4.5*vg.Inch, filepath.Join(dir, "master-calls.png")); err != nil {
			return nil, err
		}
		out = append(out, plotFile{Name: "master-calls.png", Alt: "SLAP calls per second, slapnode master and slapproxy (log scale)"})
	}
	if sb := r.Steady; sb != nil && len(sb.Passes) > 0 {
		pl := plot.New()
		pl.Title.Text = fmt.Sprintf("A node of %d partitions × %d services: CPU seconds (log scale)", sb.Partitions, sb.Services)
		pl.Y.Label.Text = "CPU time (s)"
		pl.Y.Scale = plot.LogScale{}
		pl.Y.Tick.Marker = plot.LogTicks{Prec: -1}
		var cpu []float64
		for _, m := range sb.Passes {
			cpu = append(cpu, m.CPU)
		}
		vals := plotter.Values{sb.First.CPU, median(cpu), math.Max(sb.IdleCPU*60/math.Max(sb.IdleSeconds, 1), 1e-4)}
		bars, err := logBars(vals, vg.Points(40), 1e-4)
		if err != nil {
			return nil, err
		}
		bars.Color = color.RGBA{R: 30, G: 90, B: 200, A: 255}
		bars.LineStyle.Width = 0
		pl.Add(plotter.NewGrid(), bars)
		pl.NominalX("first pass (deploys everything)", "one unchanged pass", "idle daemon, one minute")
		pl.Y.Min, pl.Y.Max = 1e-4, math.Max(sb.First.CPU*10, 1)
		if err := pl.Save(8*vg.Inch, 4*vg.Inch, filepath.Join(dir, "steady-cpu.png")); err != nil {
			return nil, err
		}
		out = append(out, plotFile{Name: "steady-cpu.png", Alt: "CPU of a node's first pass, an unchanged pass and a minute of the idle daemon (log scale)"})
	}
	return out, nil
}

// logBars is a bar chart for a logarithmic axis, whose bars cannot start
// at 0: they stand on an undrawn chart of height floor.
func logBars(vals plotter.Values, w vg.Length, floor float64) (*plotter.BarChart, error) {
	base := make(plotter.Values, len(vals))
	above := make(plotter.Values, len(vals))
	for i, v := range vals {
		base[i] = floor
		above[i] = math.Max(v-floor, 0)
	}
	b, err := plotter.NewBarChart(base, w)
	if err != nil {
		return nil, err
	}
	bars, err := plotter.NewBarChart(above, w)
	if err != nil {
		return nil, err
	}
	bars.StackOn(b)
	return bars, nil
}
