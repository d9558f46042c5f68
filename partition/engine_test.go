package partition

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/slapnode/slapnode/hcl/profile"
	"github.com/slapnode/slapnode/runtime/builtin"
	"github.com/slapnode/slapnode/runtime/wasmhost"
)

// testCache is a compilation cache shared by the tests of this package (and
// kept between runs): compiling the Go cookbook costs a second or more.
var testCache = filepath.Join(os.TempDir(), "slapnode-test-wazero-cache")

// newEngine returns an engine on a fresh node root, skipping (or failing
// under make test) when the cookbook is not built.
func newEngine(t testing.TB) *Engine {
	t.Helper()
	if _, err := builtin.Module("cookbook"); err != nil {
		if os.Getenv("SLAPNODE_REQUIRE_WASM") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	root := t.TempDir()
	h, err := wasmhost.New(context.Background(), wasmhost.Config{CacheDir: testCache, DownloadDir: filepath.Join(root, "cache", "download")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(context.Background()) })
	return &Engine{Root: root, NodeID: "test", Host: h}
}

func writeProfile(t testing.TB, dir, content string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "software.hcl")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// install loads and installs a software profile, forcing a pass over the
// parts even when the profile is unchanged (the engine decides per part).
func install(t testing.TB, e *Engine, path string) *Software {
	t.Helper()
	s, err := e.LoadSoftware(path)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(s.Path, ".completed"))
	if err := e.InstallSoftware(context.Background(), s, false, false); err != nil {
		t.Fatal(err)
	}
	return s
}

func actions(r *Report) map[string]ActionKind {
	m := map[string]ActionKind{}
	for _, a := range r.Actions {
		m[a.Part] = a.Kind
	}
	return m
}

const chainProfile = `
part "dirs" {
  recipe = "cookbook:mkdirectory"
  etc    = "${software.path}/etc"
  data   = "${software.path}/%s"
}
part "a" {
  recipe  = "cookbook:write-file"
  output  = "${part.dirs.etc}/a.txt"
  content = "a"
}
part "b" {
  recipe  = "cookbook:write-file"
  output  = "${part.dirs.etc}/b.txt"
  content = "b uses ${part.a.location}"
}
part "lone" {
  recipe  = "cookbook:write-file"
  output  = "${software.path}/lone.txt"
  content = "%s"
}
`

func TestApplyTwiceChangesNothing(t *testing.T) {
	e := newEngine(t)
	path := writeProfile(t, t.TempDir(), fmt.Sprintf(chainProfile, "data", "lone"))
	s := install(t, e, path)
	if got := s.Report.Summary(); got != "4 installed, 0 reinstalled, 0 uninstalled, 0 unchanged" {
		t.Fatalf("first apply: %s", got)
	}
	b, err := os.ReadFile(filepath.Join(s.Path, "etc", "b.txt"))
	if err != nil || string(b) != "b uses "+filepath.Join(s.Path, "etc", "a.txt") {
		t.Fatalf("b.txt = %q, %v", b, err)
	}
	s = install(t, e, path)
	if got := s.Report.Summary(); got != "0 installed, 0 reinstalled, 0 uninstalled, 4 unchanged" {
		t.Fatalf("second apply: %s", got)
	}
	// A complete release is skipped altogether.
	s2, _ := e.LoadSoftware(path)
	if err := e.InstallSoftware(context.Background(), s2, false, false); err != nil || s2.Report != nil {
		t.Fatalf("completed release not skipped: %v %v", err, s2.Report)
	}
}

func TestChangeReinstallsPartAndDependents(t *testing.T) {
	e := newEngine(t)
	dir := t.TempDir()
	path := writeProfile(t, dir, fmt.Sprintf(chainProfile, "data", "lone"))
	install(t, e, path)

	// dirs changes (a new data dir) but its etc output does not: only dirs.
	writeProfile(t, dir, fmt.Sprintf(chainProfile, "data2", "lone"))
	s := install(t, e, path)
	got := actions(s.Report)
	want := map[string]ActionKind{"dirs": Reinstall, "a": Unchanged, "b": Unchanged, "lone": Unchanged}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("after changing dirs.data: %v, want %v", got, want)
		}
	}
	for _, a := range s.Report.Actions {
		if a.Part == "dirs" && strings.Join(a.Changed, ",") != "data" {
			t.Errorf("changed options of dirs: %v", a.Changed)
		}
	}

	// Changing a's content changes nothing a publishes to b... but a's
	// location is the same, so b stays; lone changes alone.
	writeProfile(t, dir, strings.Replace(fmt.Sprintf(chainProfile, "data2", "lone2"), `content = "a"`, `content = "A"`, 1))
	s = install(t, e, path)
	got = actions(s.Report)
	want = map[string]ActionKind{"dirs": Unchanged, "a": Reinstall, "b": Unchanged, "lone": Reinstall}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("after changing a and lone: %v, want %v", got, want)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(s.Path, "etc", "a.txt")); string(b) != "A" {
		t.Fatalf("a.txt = %q", b)
	}

	// Moving a's output changes its location output: b is reinstalled too.
	writeProfile(t, dir, strings.Replace(fmt.Sprintf(chainProfile, "data2", "lone2"), `/a.txt`, `/a2.txt`, 1))
	s = install(t, e, path)
	got = actions(s.Report)
	want = map[string]ActionKind{"dirs": Unchanged, "a": Reinstall, "b": Reinstall, "lone": Unchanged}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("after moving a: %v, want %v", got, want)
		}
	}
	if _, err := os.Stat(filepath.Join(s.Path, "etc", "a.txt")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("old a.txt not removed on reinstall: %v", err)
	}
}

func TestRemovedPartIsUninstalled(t *testing.T) {
	e := newEngine(t)
	dir := t.TempDir()
	path := writeProfile(t, dir, fmt.Sprintf(chainProfile, "data", "lone"))
	s := install(t, e, path)
	lone := filepath.Join(s.Path, "lone.txt")
	if _, err := os.Stat(lone); err != nil {
		t.Fatal(err)
	}
	src := fmt.Sprintf(chainProfile, "data", "lone")
	src = src[:strings.Index(src, `part "lone"`)]
	writeProfile(t, dir, src)
	s = install(t, e, path)
	if got := actions(s.Report)["lone"]; got != Uninstall {
		t.Fatalf("lone: %v", s.Report.Actions)
	}
	if _, err := os.Stat(lone); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("lone.txt still there: %v", err)
	}
}

func TestPlanChangesNothing(t *testing.T) {
	e := newEngine(t)
	dir := t.TempDir()
	path := writeProfile(t, dir, fmt.Sprintf(chainProfile, "data", "lone"))
	install(t, e, path)
	writeProfile(t, dir, strings.Replace(fmt.Sprintf(chainProfile, "data", "lone"), `/a.txt`, `/a2.txt`, 1))
	s, err := e.LoadSoftware(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.InstallSoftware(context.Background(), s, false, true); err != nil {
		t.Fatal(err)
	}
	got := actions(s.Report)
	if got["a"] != Reinstall || got["b"] != Reinstall || got["dirs"] != Unchanged {
		t.Fatalf("plan: %v", s.Report.Actions)
	}
	if _, err := os.Stat(filepath.Join(s.Path, "etc", "a2.txt")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("plan wrote a file")
	}
}

func TestReferenceErrorsHavePositions(t *testing.T) {
	e := newEngine(t)
	for name, tc := range map[string]struct{ src, want string }{
		"cycle": {`part "x" {
  recipe = "cookbook:mkdirectory"
  d = part.y.d
}
part "y" {
  recipe = "cookbook:mkdirectory"
  d = part.x.d
}
`, "software.hcl:3:7: error: Reference cycle"},
		"missing": {`part "x" {
  recipe = "cookbook:mkdirectory"
  d      = "${part.nope.d}/x"
}
`, "software.hcl:3:15: error: Reference to undeclared part"},
		"bad option": {`part "x" {
  recipe = "cookbook:write-file"
  output = "/x"
  content = 12
  mode = true
}
`, "software.hcl:5:3: error: Invalid options for cookbook:write-file"},
		"unknown recipe": {`part "x" {
  recipe = "cookbook:nope"
}
`, "software.hcl:2:12: error: Unknown recipe"},
	} {
		t.Run(name, func(t *testing.T) {
			path := writeProfile(t, t.TempDir(), tc.src)
			s, err := e.LoadSoftware(path)
			if err == nil {
				err = e.InstallSoftware(context.Background(), s, false, false)
			}
			var pe *profile.Error
			if !errors.As(err, &pe) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// killProfile has enough parts that a kill lands in the middle of an apply.
func killProfile(n int) string {
	var b strings.Builder
	b.WriteString("part \"dirs\" {\n  recipe = \"cookbook:mkdirectory\"\n  d = \"${software.path}/files\"\n}\n")
	prev := "part.dirs.d"
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "part \"f%d\" {\n  recipe = \"cookbook:write-file\"\n  output = \"${part.dirs.d}/f%d\"\n  content = \"after ${%s}\"\n}\n", i, i, prev)
		prev = fmt.Sprintf("part.f%d.location", i)
	}
	return b.String()
}

// TestHelperProcessApply is run by TestKillMidApplyConverges in a child
// process, which the parent kills with SIGKILL during the apply.
func TestHelperProcessApply(t *testing.T) {
	path := os.Getenv("SLAPNODE_HELPER_PROFILE")
	if path == "" {
		t.Skip("helper process for TestKillMidApplyConverges")
	}
	h, err := wasmhost.New(context.Background(), wasmhost.Config{CacheDir: testCache})
	if err != nil {
		t.Fatal(err)
	}
	e := &Engine{Root: os.Getenv("SLAPNODE_HELPER_ROOT"), NodeID: "test", Host: h, Out: os.Stdout}
	s, err := e.LoadSoftware(path)
	if err != nil {
		t.Fatal(err)
	}
	e.InstallSoftware(context.Background(), s, false, false)
}

func TestKillMidApplyConverges(t *testing.T) {
	e := newEngine(t)
	const n = 150
	path := writeProfile(t, t.TempDir(), killProfile(n))
	for _, killAfter := range []int{5, 60} {
		t.Run(fmt.Sprint("after ", killAfter, " parts"), func(t *testing.T) {
			root := t.TempDir()
			cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcessApply$", "-test.v")
			cmd.Env = append(os.Environ(), "SLAPNODE_HELPER_PROFILE="+path, "SLAPNODE_HELPER_ROOT="+root)
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			sc := bufio.NewScanner(out)
			seen := 0
			for sc.Scan() {
				if strings.HasPrefix(strings.TrimSpace(sc.Text()), "+ ") {
					seen++
					if seen == killAfter {
						cmd.Process.Signal(syscall.SIGKILL)
						break
					}
				}
			}
			cmd.Wait()
			if seen < killAfter {
				t.Fatalf("child finished after %d parts before it could be killed", seen)
			}
			killed := &Engine{Root: root, NodeID: "test", Host: e.Host}
			s := install(t, killed, path)
			if c := s.Report.Counts; c[Install]+c[Unchanged] != n+1 || c[Uninstall] != 0 {
				t.Fatalf("re-apply after kill: %s", s.Report.Summary())
			}
			if c := s.Report.Counts; c[Unchanged] < killAfter-2 {
				t.Errorf("re-apply redid work the killed apply had recorded: %s", s.Report.Summary())
			}
			clean := install(t, e, path)
			if a, b := tree(t, s.Path), tree(t, clean.Path); a != b {
				t.Fatalf("converged tree differs from a clean apply:\n%s\nvs\n%s", a, b)
			}
			// And a further apply is a no-op.
			s = install(t, killed, path)
			if s.Report.Counts[Unchanged] != n+1 {
				t.Fatalf("apply after convergence: %s", s.Report.Summary())
			}
		})
	}
}

// tree lists the files under dir (relative, with content), state excluded.
func tree(t *testing.T, dir string) string {
	var lines []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() && (d.Name() == ".slapnode") {
			return filepath.SkipDir
		}
		if d.Type().IsRegular() && rel != ".completed" {
			b, _ := os.ReadFile(p)
			lines = append(lines, rel+"="+strings.ReplaceAll(string(b), dir, "ROOT"))
		}
		return nil
	})
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func TestWrapperIsExecutable(t *testing.T) {
	e := newEngine(t)
	path := writeProfile(t, t.TempDir(), `
part "bin" {
  recipe = "cookbook:mkdirectory"
  bin    = "${software.path}/bin"
}
part "run" {
  recipe         = "cookbook:wrapper"
  command-line   = "/bin/echo hello"
  wrapper-path   = "${part.bin.bin}/hello"
}
`)
	s := install(t, e, path)
	st, err := os.Stat(filepath.Join(s.Path, "bin", "hello"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm()&0o111 == 0 {
		t.Fatalf("wrapper not executable: %v", st.Mode())
	}
	out, err := exec.Command(filepath.Join(s.Path, "bin", "hello")).Output()
	if err != nil || strings.TrimSpace(string(out)) != "hello" {
		t.Fatalf("wrapper ran: %q %v", out, err)
	}
}

func TestCompletedWithoutParsing(t *testing.T) {
	e := newEngine(t)
	dir := t.TempDir()
	path := writeProfile(t, dir, fmt.Sprintf(chainProfile, "data", "lone"))
	if ok, _ := e.Completed(path); ok {
		t.Fatal("complete before any install")
	}
	install(t, e, path)
	if ok, types := e.Completed(path); !ok || types != 0 {
		t.Fatalf("after install: %v %d", ok, types)
	}
	writeProfile(t, dir, fmt.Sprintf(chainProfile, "data", "changed"))
	if ok, _ := e.Completed(path); ok {
		t.Fatal("a changed profile still counts as complete")
	}
}

// TestStepsAreObserved: the steps that can take seconds (compiling a
// module, installing a part) are announced to Engine.Step, begun and
// ended, so that the CLI can show them; the engine prints nothing itself.
func TestStepsAreObserved(t *testing.T) {
	e := newEngine(t)
	var mu sync.Mutex
	var events []string
	e.Step = func(what string) func() {
		mu.Lock()
		events = append(events, "begin "+what)
		mu.Unlock()
		return func() {
			mu.Lock()
			events = append(events, "end "+what)
			mu.Unlock()
		}
	}
	install(t, e, writeProfile(t, t.TempDir(), fmt.Sprintf(chainProfile, "data", "lone")))
	got := strings.Join(events, "\n")
	for _, want := range []string{
		// The cookbook's description may come from the machine's
		// cache: then it is compiled inside the first part's step.
		"begin installing part dirs (cookbook:mkdirectory)",
		"end installing part dirs (cookbook:mkdirectory)",
		"begin installing part lone (cookbook:write-file)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("steps:\n%s\nwant %q", got, want)
		}
	}
	if strings.Count(got, "begin ") != strings.Count(got, "end ") {
		t.Errorf("a step was not ended:\n%s", got)
	}
	// A fresh engine on the same node compiles the cookbook again (the
	// compilation cache makes it quick) and says so.
	e2 := &Engine{Root: t.TempDir(), NodeID: "test", Host: e.Host, Step: e.Step}
	events = nil
	install(t, e2, writeProfile(t, t.TempDir(), fmt.Sprintf(chainProfile, "data", "lone")))
	if !strings.Contains(strings.Join(events, "\n"), "begin compiling module cookbook") {
		t.Errorf("module compilation not announced:\n%s", strings.Join(events, "\n"))
	}
}

// TestPreloadLoadsOnce: a part that needs the cookbook while Preload is
// still loading it waits for that load instead of compiling it again, and
// gets the module with its description (run with -race: the description is
// written by the load and read by the part).
func TestPreloadLoadsOnce(t *testing.T) {
	base := newEngine(t)
	for i := 0; i < 3; i++ {
		var mu sync.Mutex
		compiles := 0
		e := &Engine{Root: t.TempDir(), NodeID: "test", Host: base.Host, Step: func(what string) func() {
			if strings.HasPrefix(what, "compiling module cookbook") {
				mu.Lock()
				compiles++
				mu.Unlock()
			}
			return func() {}
		}}
		e.Preload(context.Background(), "cookbook")
		install(t, e, writeProfile(t, t.TempDir(), fmt.Sprintf(chainProfile, "data", "lone")))
		m, err := e.module(context.Background(), nil, "cookbook", nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := m.Description.Recipes["mkdirectory"]; !ok {
			t.Fatalf("description without mkdirectory: %v", m.Description.Recipes)
		}
		mu.Lock()
		n := compiles
		mu.Unlock()
		if n != 1 {
			t.Fatalf("run %d: the cookbook was loaded %d times, want once", i, n)
		}
	}
}
