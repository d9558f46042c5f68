package build

import (
	"archive/zip"
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slapnode/slapnode/recipes-wasm/sdk/go/recipetest"
)

// fakeRuby stands in for the ruby interpreter a release builds (the
// recipe's external tool, as sh and make are cmmi's): it runs the two
// programs the recipe gives it, setup.rb (installing a gem executable)
// and that gem (install, dependency), and logs how it was called.
const fakeRuby = `#!/bin/sh
log="$(dirname "$0")/calls"
case "$1" in
setup.rb)
	p=${3#--prefix=}
	mkdir -p "$p/bin"
	echo "#gem $(cat VERSION)" > "$p/bin/gem"
	echo "setup $*" >> "$log" ;;
*/gem)
	shift; cmd=$1; shift
	echo "gem $cmd $* GEM_HOME=$GEM_HOME CFLAGS=$CFLAGS PATH=${PATH%%:*}" >> "$log"
	case $cmd in
	install)
		name=; ver=; bindir=
		for a; do case $a in --bindir=*) bindir=${a#--bindir=} ;; --version=*) ver=${a#--version=} ;; --*) ;; *) [ -z "$name" ] && name=$a ;; esac; done
		printf '#!/bin/sh\necho "%s %s $GEM_HOME"\n' "$name" "$ver" > "$bindir/$name"
		chmod +x "$bindir/$name" ;;
	dependency)
		printf 'Gem %s-%s\n  dep (~> 1.2)\n  other (>= 0.3, < 2)\n  dev (= 1.0, development)\n' "$3" "$2" ;;
	esac ;;
esac
`

func rubygemsZip(t *testing.T, version string) []byte {
	var b bytes.Buffer
	z := zip.NewWriter(&b)
	for name, text := range map[string]string{"setup.rb": "# setup\n", "VERSION": version + "\n"} {
		w, err := z.Create("rubygems-" + version + "/" + name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(text))
	}
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestRubygems(t *testing.T) {
	e := recipetest.New(t).AsSoftware()
	e.Host.AllowExec = []string{"sh"}
	zipData := rubygemsZip(t, "3.4.21")
	e.WriteFile(filepath.Join(e.Context.ProfileDir, "rubygems-3.4.21.zip"), string(zipData))
	sum := md5.Sum(zipData)
	ruby := e.Path("ruby", "bin", "ruby")
	e.WriteFile(ruby, fakeRuby)
	if err := os.Chmod(ruby, 0o755); err != nil {
		t.Fatal(err)
	}
	opts := map[string]any{
		"url":             "rubygems-3.4.21.zip",
		"md5sum":          hex.EncodeToString(sum[:]),
		"ruby-executable": ruby,
		"gems":            "bundler==1.17.3\n  dep==1.4.0 other==0.3\n",
		"deployment":      "true",
		"gem-options":     "--with-icu-dir=/opt/icu\n",
		"environment":     "CFLAGS = -I/opt/icu/include\nGEM_HOME=%(GEM_HOME)s\n",
	}
	out := e.MustInstall("bundler", "rubygems", opts)
	loc := e.Path("parts", "bundler")
	launcher := e.Path("bin", "bundler")
	if out.Outputs["location"] != loc || !contains(out.Installed, loc) || !contains(out.Installed, launcher) {
		t.Fatalf("result %+v", out)
	}
	calls := e.ReadFile(e.Path("ruby", "bin", "calls"))
	for _, want := range []string{
		"setup setup.rb all --prefix=" + loc + " --no-rdoc --no-ri",
		"gem dependency -rv 1.17.3 ^bundler$ GEM_HOME=" + loc + "/lib/ruby/gems",
		"gem install --no-document --bindir=" + loc + "/bin --ignore-dependencies bundler --version=1.17.3 -- --with-icu-dir=/opt/icu GEM_HOME=" + loc + "/lib/ruby/gems CFLAGS=-I/opt/icu/include",
		"gem install --no-document --bindir=" + loc + "/bin --ignore-dependencies other --version=0.3 --",
	} {
		if !strings.Contains(calls, want) {
			t.Errorf("ruby was not called with %q:\n%s", want, calls)
		}
	}
	// The launcher exports the expanded environment and runs the gem's
	// executable.
	text := e.ReadFile(launcher)
	if !strings.HasPrefix(text, "#!/bin/sh\n") || !strings.Contains(text, "export GEM_HOME="+loc+"/lib/ruby/gems\n") ||
		!strings.Contains(text, ":"+loc+"/bin\n") || strings.Contains(text, "%(") || !strings.Contains(text, loc+"/bin/bundler \"$@\"") {
		t.Errorf("launcher:\n%s", text)
	}
	if _, err := os.Stat(e.Path("parts", "rubygems-3.4.21")); !os.IsNotExist(err) {
		t.Errorf("the rubygems sources were left: %v", err)
	}

	// Deployment: a dependency not pinned, a version out of its constraint.
	bad := func(gems, want string) {
		o := map[string]any{}
		for k, v := range opts {
			o[k] = v
		}
		o["gems"] = gems
		e.MustFail("bad", "rubygems", o, want)
	}
	bad("bundler==1.17.3 dep==1.4.0", "version for dependency other is missing")
	bad("bundler==1.17.3 dep==2.0 other==0.3", "version 2.0 for gem dep does not satisfy dependency constraint ~> 1.2 of gem bundler")
	bad("bundler==1.17.3 dep==1.4 other==2.0.1", "version 2.0.1 for gem other does not satisfy dependency constraint < 2 of gem bundler")
	bad("bundler", "version for gem bundler is missing")
	o := map[string]any{"gems": "x", "url": "rubygems-3.4.21.zip", "version": "3.4.21"}
	e.MustFail("both", "rubygems", o, "mutually exclusive")
	e.MustFail("nosum", "rubygems", map[string]any{"gems": "x", "url": "rubygems-3.4.21.zip"}, "add md5sum")
}

func TestGemConstraints(t *testing.T) {
	for _, c := range []struct {
		sym, want, have string
		ok              bool
	}{
		{"~>", "1.2", "1.9.9", true}, {"~>", "1.2", "2.0", false}, {"~>", "1.2.3", "1.2.9", true},
		{"~>", "1.2.3", "1.3", false}, {"~>", "1.2", "1.1", false}, {"<", "2", "1.99", true},
		{">=", "0.3", "0.3", true}, {"!=", "1.0", "1.0", false}, {"<", "2", "2.0", false},
	} {
		err := checkGemConstraint(gemConstraint{c.sym, c.want}, c.have, "d", "g")
		if (err == nil) != c.ok {
			t.Errorf("%s %s with %s: %v", c.sym, c.want, c.have, err)
		}
	}
	deps := parseGemDependencies("Gem a-1\n  b (~> 1.2)\n  c (>= 0.3, < 2)\n  d (= 1.0)\n  e (>= 0, development)\nnot a dep (< 1)\n")
	if len(deps) != 2 || deps[0].name != "b" || deps[1].name != "c" || len(deps[1].constraints) != 2 {
		t.Errorf("dependencies %+v", deps)
	}
	if v := zipVersion("https://rubygems.org/rubygems/rubygems-2.5.2.zip"); v != "2.5.2" {
		t.Errorf("zipVersion %q", v)
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
