package release

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slapnode/slapnode/hcl/profile"
)

func write(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func check(t *testing.T, files map[string]string, o Options) []Problem {
	t.Helper()
	dir := write(t, files)
	p, diags := profile.Load(filepath.Join(dir, "software.hcl"), profile.Software)
	for _, d := range diags {
		// An unpinned extends URL cannot be fetched: Check still sees the
		// file that names it.
		if d.Summary != "Cannot extend URL" {
			t.Fatalf("load: %v", diags)
		}
	}
	return Check(p, o)
}

const sum64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// hostBin is a fake PATH directory with one program, so that pins are
// checked against known content.
func hostBin(t *testing.T, content string) (dir, digest string) {
	t.Helper()
	dir = t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cc"), []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256([]byte(content))
	return dir, hex.EncodeToString(s[:])
}

func TestEachRule(t *testing.T) {
	bin, ccSum := hostBin(t, "#!/bin/sh\necho cc\n")
	o := Options{PathDirs: []string{bin}}
	cases := []struct {
		name  string
		files map[string]string
		rule  string
		line  int
		col   int
		want  string // in the message
		fix   string // in the fix
	}{
		{
			name: "download without checksum",
			files: map[string]string{"software.hcl": `
part "src" {
  recipe = "cookbook:download"
  url    = "https://example.org/hello-1.0.tar.gz"
  md5sum = ""
}
part "lib" {
  recipe = "cookbook:cmmi"
  url    = "https://example.org/lib-2.1.tar.gz"
}
`},
			rule: RuleChecksum, line: 9, col: 3, want: "downloads https://example.org/lib-2.1.tar.gz without a checksum", fix: "sha256",
		},
		{
			name: "local download without checksum gets the digest in the fix",
			files: map[string]string{"software.hcl": `
part "src" {
  recipe = "cookbook:download-unpacked"
  url    = "src/hello.tar.gz"
}
`, "src/hello.tar.gz": "abc"},
			rule: RuleChecksum, line: 4, col: 3, want: "downloads src/hello.tar.gz", fix: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
		},
		{
			name: "custom recipe downloading a remote URL",
			files: map[string]string{"software.hcl": `
module "mine" {
  source = "builtin:cookbook"
}
part "x" {
  recipe = "mine:fetch"
  url    = "http://example.org/x"
}
`},
			rule: RuleChecksum, line: 7, col: 3, want: "downloads http://example.org/x",
		},
		{
			name: "patch without checksum",
			files: map[string]string{"software.hcl": `
part "lib" {
  recipe  = "cookbook:cmmi"
  url     = "https://example.org/lib-2.1.tar.gz"
  sha256  = "` + sum64 + `"
  patches = ["https://example.org/fix.patch"]
}
`},
			rule: RuleChecksum, line: 6, col: 3, want: "patch https://example.org/fix.patch",
		},
		{
			name: "module without checksum",
			files: map[string]string{"software.hcl": `
module "mine" {
  source = "mine.wasm"
}
`, "mine.wasm": "\x00asm"},
			rule: RuleChecksum, line: 3, col: 3, want: "module mine", fix: `sha256 = "`,
		},
		{
			name: "extends URL without checksum",
			files: map[string]string{"software.hcl": `extends = ["base.hcl"]
`, "base.hcl": `extends = ["https://example.org/stack/base.hcl"]
`},
			rule: RuleExtends, line: 1, col: 12, want: "extends https://example.org/stack/base.hcl without a checksum", fix: "#sha256=",
		},
		{
			name: "git branch",
			files: map[string]string{"software.hcl": `
part "repo" {
  recipe     = "mine:gitclone"
  repository = "https://example.org/repo.git"
  branch     = "main"
}
module "mine" {
  source = "builtin:cookbook"
}
`},
			rule: RuleFloating, line: 5, col: 3, want: "checks out a branch", fix: "revision",
		},
		{
			name: "git revision that is a branch name",
			files: map[string]string{"software.hcl": `
module "mine" {
  source = "builtin:cookbook"
}
part "repo" {
  recipe     = "mine:gitclone"
  repository = "https://example.org/repo.git"
  revision   = "refs/heads/stable"
}
`},
			rule: RuleFloating, line: 8, col: 3, want: "a branch, which moves",
		},
		{
			name: "floating version",
			files: map[string]string{"software.hcl": `
part "versions" {
  jinja2 = "3.1.4"
  flask  = ">=2.0"
}
`},
			rule: RuleFloating, line: 4, col: 3, want: `version of flask is ">=2.0", a range`,
		},
		{
			name: "version option that moves",
			files: map[string]string{"software.hcl": `
part "node" {
  recipe       = "cookbook:build"
  node_version = "latest"
  commands     = [["true"]]
}
`},
			rule: RuleFloating, line: 4, col: 3, want: "a name that moves",
		},
		{
			name: "branch archive URL",
			files: map[string]string{"software.hcl": `
part "src" {
  recipe = "cookbook:download"
  url    = "https://example.org/proj/archive/master.tar.gz"
  sha256 = "` + sum64 + `"
}
`},
			rule: RuleFloating, line: 4, col: 3, want: `names "master.tar.gz", which moves`,
		},
		{
			name: "unpinned host command",
			files: map[string]string{"software.hcl": `
module "cookbook" {
  source     = "builtin:cookbook"
  allow_exec = ["${software.path}/bin/make", "cc"]
}
`},
			rule: RuleExec, line: 4, col: 46, want: `host command "cc", which is not pinned`, fix: "sha256:" + ccSum,
		},
		{
			name: "host command pinned to other content",
			files: map[string]string{"software.hcl": `
module "cookbook" {
  source     = "builtin:cookbook"
  allow_exec = ["cc"]
}
part "release-pins" {
  commands = { cc = "sha256:` + sum64 + `" }
}
`},
			rule: RuleExec, line: 4, col: 17, want: "the host's program changed",
		},
		{
			name: "command from a parameter",
			files: map[string]string{"software.hcl": `
instance "default" {
  profile = "instance.hcl"
}
`, "instance.hcl": `
module "m" {
  source     = "builtin:cookbook"
  allow_exec = [parameter.tool]
}
`},
			rule: RuleExec, line: 4, col: 17, want: "chosen at install time",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			probs := check(t, tc.files, o)
			var found *Problem
			for i, p := range probs {
				if p.Rule == tc.rule && strings.Contains(p.Message, tc.want) {
					found = &probs[i]
				}
			}
			if found == nil {
				t.Fatalf("no %s problem containing %q in:\n%v", tc.rule, tc.want, probs)
			}
			if found.Range.Start.Line != tc.line || found.Range.Start.Column != tc.col {
				t.Errorf("at %d:%d, want %d:%d", found.Range.Start.Line, found.Range.Start.Column, tc.line, tc.col)
			}
			if !strings.Contains(found.Fix, tc.fix) {
				t.Errorf("fix %q does not contain %q", found.Fix, tc.fix)
			}
			if len(probs) != 1 {
				t.Errorf("%d problems, want 1:\n%v", len(probs), probs)
			}
		})
	}
}

func TestFrozenReleasePasses(t *testing.T) {
	bin, ccSum := hostBin(t, "#!/bin/sh\necho cc\n")
	files := map[string]string{
		"software.hcl": `extends = ["https://example.org/base.hcl#sha256=` + sum64 + `"]
module "cookbook" {
  source     = "builtin:cookbook"
  allow_exec = ["cc", "${software.path}/parts/make/bin/make", "${part.gcc.location}/bin/gcc"]
}
module "mine" {
  source = "mine.wasm"
  sha256 = "` + sum64 + `"
}
part "release-pins" {
  commands = { cc = "sha256:` + ccSum + `" }
}
part "versions" {
  jinja2 = "==3.1.4"
}
part "gcc" {
  recipe  = "cookbook:cmmi"
  url     = "https://ftp.gnu.org/gcc/gcc-14.2.0.tar.xz"
  sha256  = "` + sum64 + `"
  patches = ["https://example.org/fix.patch#sha256=` + sum64 + `"]
  version = "14.2.0"
}
part "repo" {
  recipe     = "mine:gitclone"
  repository = "https://example.org/repo.git"
  revision   = "v1.2.3"
}
part "repo2" {
  recipe     = "mine:gitclone"
  repository = "https://example.org/repo.git"
  revision   = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
}
part "page" {
  recipe = "cookbook:template"
  url    = "https://example.org/"
  output = "${software.path}/x"
}
instance "default" {
  profile = "instance.hcl"
}
`,
		"instance.hcl": `
promise "up" {
  check = "cookbook:check_url_available"
  url   = "http://${partition.ipv4}:8080/"
}
`,
	}
	// The extends URL cannot be fetched in a test: check the file that
	// names it without loading it.
	dir := write(t, files)
	saved := profile.FetchURL
	profile.FetchURL = func(string) (string, error) {
		p := filepath.Join(dir, "base.hcl")
		return p, os.WriteFile(p, []byte("# base\n"), 0o644)
	}
	defer func() { profile.FetchURL = saved }()
	p, diags := profile.Load(filepath.Join(dir, "software.hcl"), profile.Software)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if probs := Check(p, Options{PathDirs: []string{bin}}); len(probs) != 0 {
		t.Errorf("a frozen release has problems:\n%v", probs)
	}
	if err := Err(nil); err != nil {
		t.Error(err)
	}
}

func TestHelloWebIsNotFrozenAndSaysHow(t *testing.T) {
	p, diags := profile.Load("../../examples/helloweb/software.hcl", profile.Software)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	bin, sum := hostBin(t, "compiler")
	probs := Check(p, Options{PathDirs: []string{bin}})
	if len(probs) != 1 || probs[0].Rule != RuleExec || !strings.Contains(probs[0].Fix, "sha256:"+sum) {
		t.Fatalf("problems: %v", probs)
	}
	err := Err(probs)
	if !errors.Is(err, ErrNotFrozen) {
		t.Fatalf("Err: %v", err)
	}
	// Rendered with position, source line, caret and fix.
	for _, want := range []string{"software.hcl:14:17: exec:", `allow_exec = ["cc"]`, "^^^^", "fix: pin it"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("rendered problems lack %q:\n%s", want, err)
		}
	}
	if d := Diagnostics(probs); len(d) != 1 || d[0].Subject == nil || d[0].Subject.Start.Line != 14 {
		t.Errorf("diagnostics: %v", d)
	}
}

func TestFloatingRefs(t *testing.T) {
	for ref, floating := range map[string]bool{
		"4b825dc642cb6eb9a060e54bf8d69288fbee4904": false, "refs/tags/1.0": false, "v2.3.1": false, "1.0-rc1": false,
		"main": true, "HEAD": true, "refs/heads/x": true, "4b825dc": true, "feature-x": true,
	} {
		if got := floatingRef(ref) != ""; got != floating {
			t.Errorf("floatingRef(%q) floating=%v, want %v", ref, got, floating)
		}
	}
	for v, floating := range map[string]bool{
		"1.2.3": false, "==1.2.3": false, "2024.1": false,
		"latest": true, "*": true, ">=1": true, "~1.2": true, "^1": true, "1.x": true, "1.2 || 1.3": true, "": true,
	} {
		if got := floatingVersion(v) != ""; got != floating {
			t.Errorf("floatingVersion(%q) floating=%v, want %v", v, got, floating)
		}
	}
}
