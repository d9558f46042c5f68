package profile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slapnode/slapnode/internal/benchprofile"
)

// checkOpts describes a closed recipe "m:tpl" (output, inline) and an open
// one "m:dirs", and a closed check "m:port" (host, port).
var checkOpts = CheckOptions{
	Recipe: func(mod, name string) (*OptionSpec, bool) {
		switch name {
		case "tpl":
			return &OptionSpec{Known: map[string][]string{"output": {"string"}, "inline": {"string"}, "mode": {"string", "integer"}}}, true
		case "dirs":
			return &OptionSpec{Known: map[string][]string{"mode": {"string"}}, Open: true}, true
		}
		return nil, false
	},
	Check: func(mod, name string) (*OptionSpec, bool) {
		return &OptionSpec{Known: map[string][]string{"host": {"string"}, "port": {"integer"}}}, name == "port"
	},
	Names: func(mod string, promise bool) ([]string, bool) {
		if promise {
			return []string{"port"}, true
		}
		return []string{"dirs", "tpl"}, true
	},
}

func checkErrors(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := write(t, files)
	p, diags := Load(filepath.Join(dir, "instance.hcl"), Instance)
	diags = append(diags, p.Check(checkOpts)...)
	var b strings.Builder
	WriteDiagnostics(&b, diags, p.Sources())
	return b.String()
}

func TestCheckFindsEveryMistake(t *testing.T) {
	got := checkErrors(t, map[string]string{
		"instance.hcl": `extends = ["base.hcl"]
part "page" {
  recipe = "m:tpl"
  outptu = "x"
  mode   = true
}
part "d" {
  recipe = "m:dirs"
  anything = "ok"
}
part "bad" {
  recipe = "m:tlp"
}
service "web" {
  command = "x"
  stop_grace = "soon"
}
promise "p" {
  check = "m:port"
  host  = "h"
  prot  = 1
  every = 5
}
`,
		"base.hcl": `request "r" {
  state = "strated"
}
`,
	})
	for _, want := range []string{
		`instance.hcl:4:3: error: Unknown option`, `takes no option "outptu". Did you mean "output"?`,
		`instance.hcl:5:12: error: Invalid option type`, `a string or a whole number is required, not bool`,
		`instance.hcl:12:12: error: Unknown recipe`, `has no recipe "tlp". Did you mean "tpl"?`,
		`instance.hcl:15:13: error: Invalid value for command`,
		`instance.hcl:16:16: error: Invalid value for stop_grace`,
		`instance.hcl:21:3: error: Unknown option`, `Did you mean "port"?`,
		`instance.hcl:22:11: error: Invalid value for every`,
		`base.hcl:2:11: error: Invalid value for state`, `"strated" is not one of "started", "stopped", "destroyed". Did you mean "started"?`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "anything") {
		t.Errorf("an open recipe's option reported:\n%s", got)
	}
	if i, j := strings.Index(got, "base.hcl:"), strings.Index(got, "instance.hcl:"); i > j {
		t.Errorf("not in file order:\n%s", got)
	}
}

// Helper values: declared in extra, read by other parts, or anything in a
// file slapnode convert wrote (a buildout section holds any option).
func TestCheckHelperValues(t *testing.T) {
	got := checkErrors(t, map[string]string{
		"instance.hcl": `extends = ["converted.hcl"]
part "page" {
  recipe = "m:tpl"
  output = "${self.dir}/${self.file}"
  extra  = { dir = "/srv" }
  file   = "index.html"
}
part "reader" {
  recipe = "m:tpl"
  output = part.page.file
}
`,
		"converted.hcl": `# Converted from instance.cfg by slapnode convert (instance profile).
part "legacy" {
  recipe  = "m:tpl"
  output  = "x"
  unused  = "buildout keeps any option"
}
`,
	})
	if got != "" {
		t.Errorf("helper values reported:\n%s", got)
	}
	p, _ := Load(filepath.Join(write(t, map[string]string{"instance.hcl": `part "x" {
  recipe = "m:tpl"
  extra  = { a = 1 }
  extra2 = "b"
}
`}), "instance.hcl"), Instance)
	if a := p.Part["x"].Attrs["a"]; a == nil || !a.Helper || p.Part["x"].Attrs["extra2"].Helper {
		t.Errorf("extra not flattened into helper values: %+v", p.Part["x"].Attrs)
	}
}

// TestCheckSameAsBefore: Check reports what the Check of commit 1e2e54a
// did on the benchmarks' profiles, with recipes that name all, some or
// none of the options, closed or open, converted or hand-written.
func TestCheckSameAsBefore(t *testing.T) {
	dir := t.TempDir()
	spec := func(open bool, known ...string) CheckOptions {
		o := bigOpts
		o.Recipe = func(mod, name string) (*OptionSpec, bool) {
			s := &OptionSpec{Known: map[string][]string{}, Open: open}
			for _, k := range known {
				s.Known[k] = []string{"string"} // wrong for list and obj
			}
			return s, name != "template"
		}
		return o
	}
	for _, tc := range []struct {
		name, src string
		kind      Kind
	}{{"big.hcl", bigProfile(), Instance}, {"converted.hcl", benchprofile.Converted(200), Software}} {
		path := filepath.Join(dir, tc.name)
		if err := os.WriteFile(path, []byte(tc.src), 0o644); err != nil {
			t.Fatal(err)
		}
		p, diags := Load(path, tc.kind)
		if diags.HasErrors() {
			t.Fatal(diags)
		}
		for _, converted := range []bool{false, true} {
			for _, b := range p.Blocks {
				b.Buildout = converted
			}
			for i, o := range []CheckOptions{bigOpts, cookbookOpts, checkOpts, spec(false), spec(false, "etc", "list", "path"),
				spec(true, "obj", "output", "id"), spec(false, "etc", "list", "obj", "label", "id", "path", "after", "output", "inline")} {
				if d := DiffCheck(p, o); d != "" {
					t.Errorf("%s converted=%v options %d:\n%s", tc.name, converted, i, d)
				}
			}
		}
	}
}
