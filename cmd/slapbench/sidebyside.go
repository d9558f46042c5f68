package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// pythonBin is Debian's interpreter: python3-zc.buildout is installed for it.
const pythonBin = "/usr/bin/python3"

// The peer's two recipes and the cookbook recipes that do the same work.
var recipeMap = []string{
	"peerbench.recipes:mkdir=cookbook:mkdirectory",
	"peerbench.recipes:template=cookbook:template",
}

// leanLinks are the only distributions the peer's `lean` variant puts on
// PYTHONPATH (see the peer's NOTES.md, point 2).
var leanLinks = []string{"zc", "zc.buildout-*.egg-info", "setuptools", "setuptools-*.egg-info", "pkg_resources", "_distutils_hack"}

// Engines and runs, as named in results.json and on the page.
const (
	engBuildout = "zc.buildout"
	engSlapnode = "slapnode"

	runFirst     = "first"         // fresh directory / fresh node root (warm wazero cache for slapnode)
	runNoop      = "noop"          // buildout's unchanged re-run: every part compared
	runRecheck   = "noop-recheck"  // slapnode apply --recheck: every part compared with its state
	runComplete  = "noop-complete" // slapnode apply: a complete release is skipped
	runFirstCold = "first-cold"    // slapnode first apply with no compiled code at all: empty machine cache, no install-time cache
	// slapnode first apply of a fresh node on a machine where slapnode was
	// just installed by `make build`: its install-time cache
	// (lib/slapnode/wazero) present, the machine cache empty.
	runFirstInstalled = "first-installed"

	// The same directories and files created straight from Go, with no
	// engine: the recipes' own I/O, which neither engine can avoid.
	engFloor = "filesystem"
	runFloor = "floor"
)

// measure is one process run: wall time, user+system CPU time of the child
// (and of the children it waited for) and its peak resident set size.
type measure struct {
	Wall  float64 `json:"wall_s"`
	CPU   float64 `json:"cpu_s"`
	RSSMB float64 `json:"max_rss_mib"`
}

type sample struct {
	N      int     `json:"n"`
	Rep    int     `json:"rep"`
	Engine string  `json:"engine"`
	Run    string  `json:"run"`
	M      measure `json:"m"`
}

// sideBySide is the zc.buildout / slapnode comparison.
type sideBySide struct {
	Sizes    []int    `json:"sizes"`
	Samples  []sample `json:"samples"`
	Convert  []sample `json:"convert"` // slapnode convert of each N's buildout.cfg, once
	Order    string   `json:"order"`
	Cache    string   `json:"cache"`
	Commands []string `json:"commands"`
	Peer     *peerRun `json:"peer,omitempty"` // the peer's own recorded lean figures
	// HarnessRSS is this program's own peak RSS (VmHWM, MiB) after the
	// runs. Go starts a child with vfork, and Linux records the
	// address space the child leaves at its exec — the harness's — in
	// the child's peak RSS: no child's figure can be below this one.
	HarnessRSS float64 `json:"harness_rss_mib,omitempty"`
}

// peerRun is the `lean` rows of the peer's results.json, for a cross-check
// of this run's zc.buildout figures against the peer's.
type peerRun struct {
	Date string    `json:"date"`
	Rows []peerRow `json:"rows"`
}

type peerRow struct {
	N     int     `json:"n"`
	Run   string  `json:"run"`
	Wall  float64 `json:"wall_s"`
	RSSMB float64 `json:"max_rss_mib"`
}

// readPeer reads the peer's results.json (rows of [label, n, run, wall,
// min, max, cpu, rss MB, installed bytes]); nil when absent or unreadable.
func readPeer(dir string) *peerRun {
	b, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		return nil
	}
	var raw struct {
		Date string  `json:"date"`
		Rows [][]any `json:"rows"`
	}
	if json.Unmarshal(b, &raw) != nil {
		return nil
	}
	pr := &peerRun{Date: raw.Date}
	for _, r := range raw.Rows {
		if len(r) < 8 || r[0] != "lean" {
			continue
		}
		n, ok1 := r[1].(float64)
		run, ok2 := r[2].(string)
		wall, ok3 := r[3].(float64)
		rss, ok4 := r[7].(float64)
		if ok1 && ok2 && ok3 && ok4 && n > 0 {
			pr.Rows = append(pr.Rows, peerRow{N: int(n), Run: run, Wall: wall, RSSMB: rss})
		}
	}
	if len(pr.Rows) == 0 {
		return nil
	}
	return pr
}

func runSideBySide(c *config, slapnode string) (*sideBySide, error) {
	for _, f := range []string{"gen_buildout.py", "peer-buildout.py", "recipes/setup.py"} {
		if _, err := os.Stat(filepath.Join(c.peer, f)); err != nil {
			return nil, fmt.Errorf("the peer's benchmark is not in %s (-peer DIR): %w", c.peer, err)
		}
	}
	if err := os.RemoveAll(c.work); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(c.work, "runs"), 0o755); err != nil {
		return nil, err
	}
	lean, err := makeLeanEnv(c.work)
	if err != nil {
		return nil, err
	}
	seeded, err := seedRecipes(c)
	if err != nil {
		return nil, err
	}
	// The page shows the peer's scripts relative to the repository, as the
	// project's layout places them (../shared/peers/buildout-bench).
	peerShown := c.peer
	if rel, err := filepath.Rel(c.repo, c.peer); err == nil {
		peerShown = rel
	}
	sb := &sideBySide{
		Sizes: c.sizes,
		Order: "per repetition and N: zc.buildout first, filesystem floor, slapnode first (warm machine cache), slapnode first (just installed: empty machine cache), zc.buildout no-op, slapnode no-op (--recheck), slapnode no-op (complete)",
		Cache: "slapnode keeps compiled modules in one cache per machine that every node root shares (/var/cache/slapnode/wazero for root), and comes with its cookbook compiled by `make build` in an install-time cache beside the binary (lib/slapnode/wazero, only read; docs/wasm-abi.md §8); here `SLAPNODE_WASM_CACHE` points the machine cache at a scratch directory: warm for the \"first\" series (a fresh node root on a machine that has run slapnode before), empty for each \"just installed\" apply (a fresh node on a machine where slapnode was just installed: it reads the install-time cache), and empty with a copy of the binary that has no install-time cache beside it for the \"no compiled code\" apply (measured once, before the series)",
		Commands: []string{
			fmt.Sprintf("%s %s N buildout.cfg --no-develop", pythonBin, filepath.Join(peerShown, "gen_buildout.py")),
			fmt.Sprintf("slapnode convert buildout.cfg --recipe-map %s --recipe-map %s -o hcl", recipeMap[0], recipeMap[1]),
			fmt.Sprintf("PYTHONPATH=lean-env %s -S %s -o   (first, then again: no-op)", pythonBin, filepath.Join(peerShown, "peer-buildout.py")),
			"slapnode apply hcl/buildout.hcl --root ROOT   (first, fresh ROOT)",
			"slapnode apply hcl/buildout.hcl --root ROOT --recheck   (no-op, every part compared)",
			"slapnode apply hcl/buildout.hcl --root ROOT   (no-op, complete release skipped)",
		},
	}
	sb.Peer = readPeer(c.peer)
	profiles := map[int]string{}
	for _, n := range c.sizes {
		dir := filepath.Join(c.work, "profiles", fmt.Sprint(n))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		cfg := filepath.Join(dir, "buildout.cfg")
		if out, err := exec.Command(pythonBin, filepath.Join(c.peer, "gen_buildout.py"), fmt.Sprint(n), cfg, "--no-develop").CombinedOutput(); err != nil {
			return nil, fmt.Errorf("gen_buildout.py %d: %v\n%s", n, err, out)
		}
		args := []string{"convert", cfg, "-o", filepath.Join(dir, "hcl")}
		for _, m := range recipeMap {
			args = append(args, "--recipe-map", m)
		}
		m, out, err := timed(exec.Command(slapnode, args...), filepath.Join(dir, "convert.log"))
		if err != nil {
			return nil, fmt.Errorf("slapnode convert (N=%d): %v\n%s", n, err, out)
		}
		if !strings.Contains(out, "1 converted, 0 failed, 0 warnings") {
			return nil, fmt.Errorf("slapnode convert (N=%d) did not convert cleanly:\n%s", n, out)
		}
		sb.Convert = append(sb.Convert, sample{N: n, Engine: engSlapnode, Run: "convert", M: m})
		profiles[n] = filepath.Join(dir, "hcl", "buildout.hcl")
	}

	// The install-time cache `make build` prepared beside bin/slapnode:
	// the "just installed" applies read it.
	if err := checkInstallCache(slapnode); err != nil {
		return nil, err
	}
	// The machine-wide compilation cache of every slapnode run here: a
	// scratch directory, empty for the cold apply below.
	warm := filepath.Join(c.work, "wasm-cache")
	if err := os.RemoveAll(warm); err != nil {
		return nil, err
	}
	if err := os.Setenv("SLAPNODE_WASM_CACHE", warm); err != nil {
		return nil, err
	}
	// A first apply with no compiled code at all on the largest profile,
	// once: a binary alone (copied without its install-time cache, or on a
	// machine whose CPU features differ from the builder's) on a machine
	// that never ran slapnode. It compiles the cookbook into the cache
	// every later fresh root of the "first" series uses.
	bare, err := bareCopy(slapnode, filepath.Join(c.work, "bare"))
	if err != nil {
		return nil, err
	}
	big := c.sizes[len(c.sizes)-1]
	coldRoot := filepath.Join(c.work, "cold-root")
	logf("slapnode N=%d first apply with no compiled code (empty machine cache, no install-time cache)", big)
	m, err := slapnodeFirst(bare, profiles[big], coldRoot, big)
	stopNode(bare, coldRoot)
	if err != nil {
		return nil, err
	}
	if kinds := machineCacheKinds(warm); len(kinds) != 1 || kinds[0] != "file" {
		return nil, fmt.Errorf("the apply with no compiled code left %v in its machine cache %s, want one compiled entry", kinds, warm)
	}
	sb.Samples = append(sb.Samples, sample{N: big, Engine: engSlapnode, Run: runFirstCold, M: m})

	for rep := 1; rep <= c.repeat; rep++ {
		for _, n := range c.sizes {
			got, err := pair(c, slapnode, profiles[n], lean, seeded, n, rep)
			if err != nil {
				return nil, err
			}
			sb.Samples = append(sb.Samples, got...)
			line := fmt.Sprintf("rep %d/%d N=%d:", rep, c.repeat, n)
			for _, s := range got {
				line += fmt.Sprintf(" %s %s %.3fs;", s.Engine, s.Run, s.M.Wall)
			}
			logf("%s", line)
		}
	}
	// Removed once every run is done (see pair).
	if err := os.RemoveAll(filepath.Join(c.work, "runs")); err != nil {
		logf("removing the runs' directories: %v", err)
	}
	sb.HarnessRSS = harnessPeakRSS()
	return sb, nil
}

// pair runs both engines on the N-part profile: zc.buildout first,
// slapnode first, zc.buildout no-op, slapnode no-ops, so that both see the
// same machine load within a few seconds.
func pair(c *config, slapnode, profile, lean, seeded string, n, rep int) ([]sample, error) {
	bdir := filepath.Join(c.work, "runs", fmt.Sprintf("buildout-%d-%d", n, rep))
	root := filepath.Join(c.work, "runs", fmt.Sprintf("slapnode-%d-%d", n, rep))
	if err := prepareBuildout(bdir, filepath.Join(filepath.Dir(profile), "..", "buildout.cfg"), seeded); err != nil {
		return nil, err
	}
	// The runs' directories stay until every run is done (runSideBySide
	// removes them): on ext4, creating inodes is slower for a minute or
	// more after many were deleted (ialloc's recently_deleted), and a
	// removal here would charge the next engine with this run's cleanup
	// (the floor's removal made slapnode's first apply, which follows it,
	// up to twice as slow).
	defer stopNode(slapnode, root)
	var out []sample
	add := func(engine, run string, m measure) {
		out = append(out, sample{N: n, Rep: rep, Engine: engine, Run: run, M: m})
	}
	buildout := func(log string) (measure, error) {
		cmd := exec.Command(pythonBin, "-S", filepath.Join(c.peer, "peer-buildout.py"), "-o")
		cmd.Dir = bdir
		cmd.Env = append(os.Environ(), "PYTHONPATH="+lean)
		m, text, err := timed(cmd, filepath.Join(bdir, log))
		if err != nil {
			return m, fmt.Errorf("zc.buildout N=%d (%s): %v\n%s", n, log, err, tail(text))
		}
		return m, nil
	}

	m, err := buildout("first.log")
	if err != nil {
		return nil, err
	}
	if err := checkTree(filepath.Join(bdir, "work"), n); err != nil {
		return nil, fmt.Errorf("zc.buildout first run: %w", err)
	}
	add(engBuildout, runFirst, m)

	floor := filepath.Join(c.work, "runs", fmt.Sprintf("floor-%d-%d", n, rep))
	if m, err = ioFloor(floor, n); err != nil {
		return nil, err
	}
	add(engFloor, runFloor, m)

	if m, err = slapnodeFirst(slapnode, profile, root, n); err != nil {
		return nil, err
	}
	add(engSlapnode, runFirst, m)

	if m, err = installedFirst(c, slapnode, profile, n, rep); err != nil {
		return nil, err
	}
	add(engSlapnode, runFirstInstalled, m)

	if m, err = buildout("noop.log"); err != nil {
		return nil, err
	}
	if b, _ := os.ReadFile(filepath.Join(bdir, "noop.log")); strings.Contains(string(b), "Installing p") {
		return nil, fmt.Errorf("zc.buildout N=%d: the no-op re-run installed parts (see %s)", n, filepath.Join(bdir, "noop.log"))
	}
	add(engBuildout, runNoop, m)

	if m, err = slapnodeApply(slapnode, profile, root, filepath.Join(root, "recheck.log"),
		fmt.Sprintf("software: 0 installed, 0 reinstalled, 0 uninstalled, %d unchanged", n), "--recheck"); err != nil {
		return nil, err
	}
	add(engSlapnode, runRecheck, m)

	if m, err = slapnodeApply(slapnode, profile, root, filepath.Join(root, "complete.log"), "software: already installed"); err != nil {
		return nil, err
	}
	add(engSlapnode, runComplete, m)
	return out, nil
}

// installedFirst is the first apply of a fresh node root on a machine
// where slapnode was just installed: an empty machine cache, and the
// install-time cache of `make build` beside the binary. It checks that the
// cookbook was read from there (the machine cache holds only a link to it:
// a compilation would have written a file).
func installedFirst(c *config, slapnode, profile string, n, rep int) (measure, error) {
	root := filepath.Join(c.work, "runs", fmt.Sprintf("slapnode-installed-%d-%d", n, rep))
	cache := filepath.Join(c.work, "runs", fmt.Sprintf("wasm-installed-%d-%d", n, rep))
	defer stopNode(slapnode, root)
	warm := os.Getenv("SLAPNODE_WASM_CACHE")
	defer os.Setenv("SLAPNODE_WASM_CACHE", warm)
	if err := os.Setenv("SLAPNODE_WASM_CACHE", cache); err != nil {
		return measure{}, err
	}
	m, err := slapnodeFirst(slapnode, profile, root, n)
	if err != nil {
		return m, err
	}
	if kinds := machineCacheKinds(cache); len(kinds) != 1 || kinds[0] != "link" {
		return m, fmt.Errorf("slapnode N=%d just installed: its machine cache holds %v, want one link to the install-time cache (the cookbook was compiled instead of read)", n, kinds)
	}
	return m, nil
}

// installCacheOf is where slapnode looks for its install-time cache
// (runtime/wasmhost InstallCacheRel).
func installCacheOf(slapnode string) string {
	return filepath.Join(filepath.Dir(slapnode), "..", "lib", "slapnode", "wazero")
}

func checkInstallCache(slapnode string) error {
	entries, _ := filepath.Glob(filepath.Join(installCacheOf(slapnode), "wazero-*", "*"))
	if len(entries) == 0 {
		return fmt.Errorf("%s has no compiled cookbook beside it (%s is empty or missing): build it with `make build`", slapnode, installCacheOf(slapnode))
	}
	return nil
}

// bareCopy copies the binary to dir/bin/slapnode, where it finds no
// install-time cache.
func bareCopy(slapnode, dir string) (string, error) {
	bin := filepath.Join(dir, "bin", "slapnode")
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		return "", err
	}
	// Streamed, not read whole: the harness's own peak memory shows in
	// every child's (harnessPeakRSS).
	if err := copyFile(slapnode, bin, 0o755); err != nil {
		return "", err
	}
	if _, err := os.Stat(installCacheOf(bin)); err == nil {
		return "", fmt.Errorf("%s: an install-time cache is there", installCacheOf(bin))
	}
	return bin, nil
}

// machineCacheKinds lists the entries of a machine compilation cache:
// "link" for one linked from an install-time cache (read, not compiled),
// "file" for one compiled on this machine.
func machineCacheKinds(dir string) []string {
	files, _ := filepath.Glob(filepath.Join(dir, "wazero-*", "*"))
	var kinds []string
	for _, f := range files {
		fi, err := os.Lstat(f)
		switch {
		case err != nil:
			kinds = append(kinds, "error")
		case fi.Mode()&os.ModeSymlink != 0:
			kinds = append(kinds, "link")
		default:
			kinds = append(kinds, "file")
		}
	}
	return kinds
}

// slapnodeFirst is a first apply into a fresh root, checked like the
// peer's bench.py checks buildout's: N/2 directories and N/2 files.
func slapnodeFirst(slapnode, profile, root string, n int) (measure, error) {
	if err := os.MkdirAll(filepath.Join(root, "cache"), 0o755); err != nil {
		return measure{}, err
	}
	m, err := slapnodeApply(slapnode, profile, root, filepath.Join(root, "first.log"),
		fmt.Sprintf("software: %d installed, 0 reinstalled, 0 uninstalled, 0 unchanged", n))
	if err != nil {
		return m, err
	}
	works, _ := filepath.Glob(filepath.Join(root, "software", "*", "work"))
	if len(works) != 1 {
		return m, fmt.Errorf("slapnode N=%d: expected one software release with a work/ directory under %s, found %d", n, root, len(works))
	}
	if err := checkTree(works[0], n); err != nil {
		return m, fmt.Errorf("slapnode first apply: %w", err)
	}
	return m, nil
}

func slapnodeApply(slapnode, profile, root, log, want string, extra ...string) (measure, error) {
	args := append([]string{"apply", profile, "--root", root}, extra...)
	m, out, err := timed(exec.Command(slapnode, args...), log)
	if err != nil {
		return m, fmt.Errorf("slapnode %s: %v\n%s", strings.Join(args, " "), err, tail(out))
	}
	if !strings.Contains(out, want) {
		return m, fmt.Errorf("slapnode %s: expected %q in its output:\n%s", strings.Join(args, " "), want, tail(out))
	}
	return m, nil
}

// stopNode stops the daemon that `slapnode apply` starts for the root
// (untimed; a benchmark must not leave processes behind).
func stopNode(slapnode, root string) {
	if _, err := os.Stat(filepath.Join(root, "var", "run", "daemon.pid")); err != nil {
		return
	}
	if out, err := exec.Command(slapnode, "node", "stop", "--root", root).CombinedOutput(); err != nil {
		logf("slapnode node stop --root %s: %v: %s", root, err, out)
	}
}

// ioFloor creates the tree the peer's recipes create — (N+1)/2
// directories, N/2 six-line files — with plain syscalls and times it: on
// a loaded disk this floor is a large part of both engines' first run.
func ioFloor(dir string, n int) (measure, error) {
	work := filepath.Join(dir, "work")
	if err := os.MkdirAll(work, 0o755); err != nil {
		return measure{}, err
	}
	body := []byte("# generated by peerbench for bench (owner peer)\n[bench-1-0]\ndirectory = /srv/work/d0000\nparent = bench-0\nbase = /srv/work\nbuildout-directory = /srv\n")
	start := time.Now()
	for i := 0; i < n; i++ {
		if i%2 == 0 {
			if err := os.Mkdir(filepath.Join(work, fmt.Sprintf("d%04d", i)), 0o755); err != nil {
				return measure{}, err
			}
			continue
		}
		if err := os.WriteFile(filepath.Join(work, fmt.Sprintf("d%04d", i-1), fmt.Sprintf("t%04d.conf", i)), body, 0o644); err != nil {
			return measure{}, err
		}
	}
	m := measure{Wall: time.Since(start).Seconds()}
	return m, checkTree(work, n)
}

// checkTree verifies the work of the peer's two recipes under dir: (N+1)/2
// directories dXXXX, N/2 files dXXXX/tXXXX.conf.
func checkTree(dir string, n int) error {
	dirs, _ := filepath.Glob(filepath.Join(dir, "d*"))
	files, _ := filepath.Glob(filepath.Join(dir, "d*", "t*.conf"))
	if len(dirs) != (n+1)/2 || len(files) != n/2 {
		return fmt.Errorf("%s: expected %d directories and %d files, found %d and %d", dir, (n+1)/2, n/2, len(dirs), len(files))
	}
	return nil
}

// timed runs cmd with its output to log and returns its wall time, its
// rusage CPU time and peak RSS, and its output.
func timed(cmd *exec.Cmd, log string) (measure, string, error) {
	if err := os.MkdirAll(filepath.Dir(log), 0o755); err != nil {
		return measure{}, "", err
	}
	f, err := os.Create(log)
	if err != nil {
		return measure{}, "", err
	}
	cmd.Stdout, cmd.Stderr = f, f
	start := time.Now()
	err = cmd.Run()
	wall := time.Since(start)
	f.Close()
	out, _ := os.ReadFile(log)
	var m measure
	if cmd.ProcessState != nil {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			m = measure{
				Wall:  wall.Seconds(),
				CPU:   time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds(),
				RSSMB: float64(ru.Maxrss) / 1024, // Linux reports kilobytes
			}
		}
	}
	return m, string(out), err
}

func tail(s string) string {
	if len(s) > 2000 {
		return "…" + s[len(s)-2000:]
	}
	return s
}

// makeLeanEnv builds the peer's `lean` PYTHONPATH: a directory of symlinks
// to zc.buildout, setuptools, pkg_resources and _distutils_hack only.
func makeLeanEnv(work string) (string, error) {
	env := filepath.Join(work, "lean-env")
	if err := os.MkdirAll(env, 0o755); err != nil {
		return "", err
	}
	found := 0
	for _, pat := range leanLinks {
		ms, _ := filepath.Glob(filepath.Join("/usr/lib/python3/dist-packages", pat))
		for _, src := range ms {
			if err := os.Symlink(src, filepath.Join(env, filepath.Base(src))); err != nil {
				return "", err
			}
			found++
		}
	}
	if _, err := os.Stat(filepath.Join(env, "zc", "buildout")); err != nil {
		return "", fmt.Errorf("zc.buildout is not installed for %s (apt-get install python3-zc.buildout)", pythonBin)
	}
	return env, nil
}

// seedRecipes copies the peer's recipe egg into the scratch directory and
// builds its egg-info once, so that every buildout run finds it through a
// develop-eggs/ egg-link without running setup.py (the peer's `prelinked`
// and `lean` variants).
func seedRecipes(c *config) (string, error) {
	seeded := filepath.Join(c.work, "recipes-seeded")
	if err := copyTree(filepath.Join(c.peer, "recipes"), seeded); err != nil {
		return "", err
	}
	cmd := exec.Command(pythonBin, "setup.py", "-q", "egg_info")
	cmd.Dir = seeded
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("setup.py egg_info of the peer's recipes: %v\n%s", err, out)
	}
	return seeded, nil
}

func prepareBuildout(dir, cfg, seeded string) error {
	if err := os.MkdirAll(filepath.Join(dir, "develop-eggs"), 0o755); err != nil {
		return err
	}
	if err := copyFile(cfg, filepath.Join(dir, "buildout.cfg"), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "develop-eggs", "peerbench.recipes.egg-link"), []byte(seeded+"\n."), 0o644)
}

// copyTree copies a directory of regular files and directories, keeping
// modes (the peer's files are read-only; copies are made writable by
// their owner so that the scratch directory can be removed).
func copyTree(src, dst string) error {
	return filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		t := filepath.Join(dst, rel)
		switch {
		case fi.IsDir():
			return os.MkdirAll(t, fi.Mode().Perm()|0o700)
		case fi.Mode().IsRegular():
			return copyFile(p, t, fi.Mode().Perm()|0o600)
		}
		return nil
	})
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// stats summarises the samples of one (engine, run, N): median wall and
// CPU, their range, and the peak RSS over the runs (as the peer reports).
type stats struct {
	N                    int
	Runs                 int
	Wall, WallLo, WallHi float64
	CPU                  float64
	RSS                  float64
}

func summarize(samples []sample, engine, run string, n int) (stats, bool) {
	var walls, cpus []float64
	st := stats{N: n}
	for _, s := range samples {
		if s.Engine == engine && s.Run == run && s.N == n {
			walls = append(walls, s.M.Wall)
			cpus = append(cpus, s.M.CPU)
			st.RSS = max(st.RSS, s.M.RSSMB)
		}
	}
	if len(walls) == 0 {
		return st, false
	}
	st.Runs = len(walls)
	st.Wall, st.CPU = median(walls), median(cpus)
	st.WallLo, st.WallHi = minMax(walls)
	return st, true
}

// ratios pairs the samples of two runs by repetition and returns the
// per-pair ratios a/b of wall time, CPU time and peak RSS.
func ratios(samples []sample, n int, engA, runA, engB, runB string) (wall, cpu, rss []float64) {
	byRep := map[int][2]*measure{}
	for i := range samples {
		s := &samples[i]
		if s.N != n {
			continue
		}
		p := byRep[s.Rep]
		if s.Engine == engA && s.Run == runA {
			p[0] = &s.M
		}
		if s.Engine == engB && s.Run == runB {
			p[1] = &s.M
		}
		byRep[s.Rep] = p
	}
	reps := make([]int, 0, len(byRep))
	for r := range byRep {
		reps = append(reps, r)
	}
	sort.Ints(reps)
	for _, r := range reps {
		p := byRep[r]
		if p[0] == nil || p[1] == nil || p[1].Wall == 0 {
			continue
		}
		wall = append(wall, p[0].Wall/p[1].Wall)
		if p[1].CPU > 0 {
			cpu = append(cpu, p[0].CPU/p[1].CPU)
		}
		if p[1].RSSMB > 0 {
			rss = append(rss, p[0].RSSMB/p[1].RSSMB)
		}
	}
	return wall, cpu, rss
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func minMax(xs []float64) (float64, float64) {
	if len(xs) == 0 {
		return 0, 0
	}
	lo, hi := xs[0], xs[0]
	for _, x := range xs {
		lo, hi = min(lo, x), max(hi, x)
	}
	return lo, hi
}

// harnessPeakRSS is this process's VmHWM in MiB (0 when unknown).
func harnessPeakRSS() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb float64
			if _, err := fmt.Sscanf(strings.TrimSpace(rest), "%f kB", &kb); err == nil {
				return kb / 1024
			}
		}
	}
	return 0
}
