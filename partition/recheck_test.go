package partition

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/slapnode/slapnode/internal/nofollow"
	"github.com/slapnode/slapnode/runtime/builtin"
)

// recheckProfile has directories, files, a file rendered from another
// part's output, and a wrapper whose signature covers a file's content
// (hash-files).
const recheckProfile = `
software "rc" { version = "1" }
part "dirs" {
  recipe = "cookbook:mkdirectory"
  etc    = "${software.path}/etc"
  bin    = "${software.path}/bin"
}
part "a" {
  recipe  = "cookbook:write-file"
  output  = "${part.dirs.etc}/a.txt"
  content = "a on %s"
}
part "b" {
  recipe  = "cookbook:write-file"
  output  = "${part.dirs.etc}/b.txt"
  content = "b uses ${part.a.location}"
}
part "run" {
  recipe       = "cookbook:wrapper"
  command-line = "/bin/true"
  wrapper-path = "${part.dirs.bin}/run"
  hash-files   = part.b.location
}
`

// recheck applies the release at path as `apply --recheck` does when the
// cache cannot answer: the profile loaded and every part compared.
func recheck(t *testing.T, e *Engine, path string, plan bool) *Report {
	t.Helper()
	s, err := e.LoadSoftware(path)
	if err != nil {
		t.Fatal(err)
	}
	s.Recheck = true
	if err := e.InstallSoftware(context.Background(), s, false, plan); err != nil {
		t.Fatal(err)
	}
	return s.Report
}

func recheckSetup(t *testing.T) (e *Engine, path string, s *Software) {
	t.Helper()
	e = newEngine(t)
	path = writeProfile(t, t.TempDir(), fmt.Sprintf(recheckProfile, "${node.id}"))
	s, err := e.LoadSoftware(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.InstallSoftware(context.Background(), s, false, false); err != nil {
		t.Fatal(err)
	}
	return e, path, s
}

// hit is the cached recheck's answer, which must be there.
func hit(t *testing.T, e *Engine, path string) *Software {
	t.Helper()
	sw := e.RecheckUnchanged(path)
	if sw == nil {
		t.Fatal("the recheck cache did not answer for an unchanged release")
	}
	return sw
}

func miss(t *testing.T, e *Engine, path, why string) {
	t.Helper()
	if sw := e.RecheckUnchanged(path); sw != nil {
		t.Fatalf("%s: the recheck cache answered %s", why, sw.Report.Summary())
	}
}

// The first apply writes the cache; a recheck answered from it says what
// a recheck that evaluates the profile says — same report, same release —
// and has no profile: it parsed none.
func TestRecheckCacheAnswersLikeAFullRecheck(t *testing.T) {
	e, path, s := recheckSetup(t)
	sw := hit(t, e, path)
	if sw.Profile != nil {
		t.Fatal("the cached recheck loaded the profile")
	}
	full := recheck(t, e, path, false)
	if full.Counts[Unchanged] != 4 || len(full.Actions) != 4 {
		t.Fatalf("full recheck: %s", full.Summary())
	}
	if !reflect.DeepEqual(sw.Report, full) {
		t.Fatalf("cached report differs:\n%+v\n%+v", sw.Report, full)
	}
	if sw.URL != s.URL || sw.Path != s.Path || sw.Info != s.Info || !sw.Recheck {
		t.Fatalf("cached release %+v, loaded %+v", sw, s)
	}
	// The full recheck wrote the cache again.
	hit(t, e, path)
}

// An installed file deleted: plan and apply reinstall that part only,
// saying why; the cache does not answer until it is back.
func TestRecheckReinstallsPartWhoseFileIsMissing(t *testing.T) {
	e, path, s := recheckSetup(t)
	a := filepath.Join(s.Path, "etc", "a.txt")
	if err := os.Remove(a); err != nil {
		t.Fatal(err)
	}
	miss(t, e, path, "an installed file is missing")
	want := "installed file " + a + " is missing"
	for _, plan := range []bool{true, false} {
		r := recheck(t, e, path, plan)
		if r.Counts[Reinstall] != 1 || r.Counts[Unchanged] != 3 {
			t.Fatalf("plan=%v: %s", plan, r.Summary())
		}
		for _, act := range r.Actions {
			if act.Kind == Reinstall && (act.Part != "a" || act.Reason != want) {
				t.Fatalf("plan=%v: %+v, want part a, %q", plan, act, want)
			}
		}
	}
	if b, err := os.ReadFile(a); err != nil || !strings.HasPrefix(string(b), "a on") {
		t.Fatalf("a.txt not made again: %q %v", b, err)
	}
	hit(t, e, path)
	// An apply that is not a recheck leaves a complete release alone,
	// as slapgrid leaves a release with its .completed marker.
	os.Remove(a)
	s2, _ := e.LoadSoftware(path)
	if err := e.InstallSoftware(context.Background(), s2, false, false); err != nil || s2.Report != nil {
		t.Fatalf("complete release applied again: %v %v", err, s2.Report)
	}
}

// Each input of the evaluation, changed, makes the cache step aside.
func TestRecheckCacheInvalidation(t *testing.T) {
	t.Run("profile edited", func(t *testing.T) {
		e, path, _ := recheckSetup(t)
		b, _ := os.ReadFile(path)
		os.WriteFile(path, append(b, "# a comment\n"...), 0o644)
		miss(t, e, path, "profile edited")
		if r := recheck(t, e, path, false); r.Counts[Unchanged] != 4 {
			t.Fatalf("full recheck: %s", r.Summary())
		}
		hit(t, e, path)
	})
	t.Run("content of a hash-files file", func(t *testing.T) {
		e, path, s := recheckSetup(t)
		os.WriteFile(filepath.Join(s.Path, "etc", "b.txt"), []byte("edited"), 0o644)
		miss(t, e, path, "a file whose content is in a signature changed")
		r := recheck(t, e, path, false)
		if got := actions(r); got["run"] != Reinstall || got["b"] != Unchanged {
			t.Fatalf("full recheck: %v", got)
		}
		hit(t, e, path)
	})
	t.Run("variables", func(t *testing.T) {
		e, path, _ := recheckSetup(t)
		e.NodeID = "another"
		miss(t, e, path, "another node id")
		if got := actions(recheck(t, e, path, false)); got["a"] != Reinstall || got["b"] != Unchanged {
			t.Fatalf("full recheck: %v", got)
		}
		hit(t, e, path)
	})
	t.Run("module digest", func(t *testing.T) {
		e := newEngine(t)
		wasm, err := builtin.Module("cookbook")
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		mod := filepath.Join(dir, "m.wasm")
		os.WriteFile(mod, wasm, 0o644)
		path := writeProfile(t, dir, `
module "m" {
  source     = "m.wasm"
  allow_exec = ["/bin/true"]
  allow_net  = ["https://example.invalid"]
}
part "d" {
  recipe = "m:mkdirectory"
  path   = "${software.path}/d"
}
`)
		install(t, e, path)
		hit(t, e, path)
		// The same module with a custom section appended: another
		// digest, another module.
		os.WriteFile(mod, append(append([]byte{}, wasm...), 0, 4, 1, 'x', 'y', 'z'), 0o644)
		miss(t, e, path, "module file changed")
		os.WriteFile(mod, wasm, 0o644)
		hit(t, e, path)
	})
	t.Run("journal", func(t *testing.T) {
		e, path, s := recheckSetup(t)
		// A part forgotten by the journal (as a partly failed apply
		// leaves it): the journal is not the one the cache describes.
		j, err := openJournal(journalSpec{stateDir: filepath.Join(s.Path, ".slapnode"), bind: "software:" + filepath.Base(s.Path),
			key: e.key, trusted: true, dirID: dirIdentity(s.Path)})
		if err != nil {
			t.Fatal(err)
		}
		j.del("b")
		j.close()
		miss(t, e, path, "journal changed")
		if got := actions(recheck(t, e, path, false)); got["b"] != Install {
			t.Fatalf("full recheck: %v", got)
		}
		hit(t, e, path)
	})
	t.Run("release not complete", func(t *testing.T) {
		e, path, s := recheckSetup(t)
		os.Remove(filepath.Join(s.Path, ".completed"))
		miss(t, e, path, "no completion marker")
	})
}

// A cache truncated, damaged or forged is not used; the next full recheck
// writes it again.
func TestRecheckCacheDamaged(t *testing.T) {
	e, path, s := recheckSetup(t)
	cache := e.recheckPath(s.URL)
	good, err := os.ReadFile(cache)
	if err != nil {
		t.Fatal(err)
	}
	flipped := append([]byte{}, good...)
	flipped[len(flipped)-10] ^= 1
	forged := []byte(strings.Repeat("0", 64) + "\n" + string(good[65:]))
	for name, data := range map[string][]byte{
		"truncated": good[:len(good)/2], "empty": nil, "one byte changed": flipped, "forged": forged, "no mac": good[65:],
	} {
		os.WriteFile(cache, data, 0o600)
		miss(t, e, path, name)
	}
	if r := recheck(t, e, path, false); r.Counts[Unchanged] != 4 {
		t.Fatalf("full recheck: %s", r.Summary())
	}
	hit(t, e, path)
	if st, err := os.Stat(filepath.Dir(cache)); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("cache directory: %v %v", st.Mode(), err)
	}
}

// A profile that reads files with file() or templatefile() reads files
// the profile's digest does not cover: it is never answered from a cache.
func TestRecheckNotCachedWithFileFunctions(t *testing.T) {
	e := newEngine(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "greeting.txt"), []byte("hello"), 0o644)
	path := writeProfile(t, dir, `
part "a" {
  recipe  = "cookbook:write-file"
  output  = "${software.path}/a.txt"
  content = file("greeting.txt")
}
`)
	install(t, e, path)
	miss(t, e, path, "profile calls file()")
	if _, err := os.Stat(e.recheckPath(path)); !os.IsNotExist(err) {
		t.Fatalf("a cache was written: %v", err)
	}
}

// The cache's digest of the profile files is profile.Load's.
func TestRecheckFilesDigestIsTheLoaders(t *testing.T) {
	e := newEngine(t)
	path := writeProfile(t, t.TempDir(), fmt.Sprintf(recheckProfile, "x"))
	s, err := e.LoadSoftware(path)
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := filesDigest(s.Profile.Files); !ok || d != s.Profile.Digest {
		t.Fatalf("filesDigest %q, profile.Load %q", d, s.Profile.Digest)
	}
}

// The partition user replaces a directory holding an installed file with a
// link to a directory where that file is not: the check must not look
// through the link (the part is left alone, as uninstall leaves it), and
// nothing is written out there.
func TestHostileInstalledCheckThroughLink(t *testing.T) {
	e, sw, part, victims := hostileSetup(t)
	empty := filepath.Join(victims, "empty")
	os.MkdirAll(empty, 0o755)
	etc := filepath.Join(part.Path, "etc")
	os.Rename(etc, etc+".orig")
	if err := os.Symlink(empty, etc); err != nil {
		t.Fatal(err)
	}
	res, err := e.Instantiate(context.Background(), &InstanceRequest{Software: sw, Partition: part, Params: map[string]any{"v": "1"}}, false)
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	if got := actions(res.Report); got["page"] != Unchanged {
		t.Fatalf("looked through the link: %v", got)
	}
	if names, _ := os.ReadDir(empty); len(names) != 0 {
		t.Fatalf("written through the link: %v", names)
	}
	hostileIntact(t, victims)
}

// missingPath: a link is a file that is there (dangling or not); a file in
// place of a directory on the way means the path is not there.
func TestMissingPath(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "d"), 0o755)
	os.WriteFile(filepath.Join(dir, "f"), nil, 0o644)
	os.Symlink("/nonexistent", filepath.Join(dir, "dangling"))
	os.Symlink("/", filepath.Join(dir, "l"))
	d, err := nofollow.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	in := func(p ...string) []string {
		var out []string
		for _, x := range p {
			out = append(out, filepath.Join(dir, x))
		}
		return out
	}
	for _, c := range []struct {
		paths []string
		want  string
	}{
		{in("d", "f", "dangling", "l", "l/etc/passwd"), ""},
		{[]string{"/etc/passwd", filepath.Join(dir, "..")}, ""}, // never recorded: outside
		{in("f", "gone"), filepath.Join(dir, "gone")},
		{in("f/under"), filepath.Join(dir, "f/under")},
		{in("d/x/y"), filepath.Join(dir, "d/x/y")},
	} {
		if got := missingPath(d, dir, c.paths); got != c.want {
			t.Errorf("%v: %q, want %q", c.paths, got, c.want)
		}
	}
}
