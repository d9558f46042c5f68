package buildout

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slapnode/slapnode/internal/testcorpus"
)

func sections(t *testing.T, src string) map[string]map[string]string {
	t.Helper()
	f, err := Parse("t.cfg", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	secs, _, err := f.Sections(DefaultCondEnv())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]string{}
	for n, opts := range secs {
		m := map[string]string{}
		for _, o := range opts {
			m[o.Key] = o.Value
		}
		out[n] = m
	}
	return out
}

func TestParseValues(t *testing.T) {
	src := "# comment\n; other comment\n[s]\n" +
		"a = first\n  second\n\n   third  \n" + // value on the line: lines stripped, blanks dropped
		"b =\n    x\n      y\n\n    # data, not a comment\n    z\n" + // block: dedented, blanks kept
		"c = v # not a comment\n" +
		"d +=  more\n" +
		"e-= less\n" +
		"=> dep1 dep2\n" +
		"empty =\n" +
		"tab =\n\tt1\n\tt2\n" +
		"[s]\na = again\n" // same section twice merges, same key: last wins
	got := sections(t, src)["s"]
	want := map[string]string{
		"a":                   "again",
		"b":                   "x\n  y\n\n# data, not a comment\nz",
		"c":                   "v # not a comment",
		"d +":                 "more",
		"e-":                  "less",
		"<part-dependencies>": "dep1 dep2",
		"empty":               "",
		"tab":                 "t1\nt2",
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s = %q, want %q", k, got[k], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("options %v", got)
	}
}

func TestParseHeaders(t *testing.T) {
	got := sections(t, "[a.b/c] # comment\nx = 1\n[py:python2]\ny = 1\n[py3 : python3 and linux]\nz = 1\n[hash:'a\\x3bb' != '' and 'x\\x23' == 'x\\x23']\nh = 1\n")
	if got["a.b/c"]["x"] != "1" {
		t.Errorf("section with dots and slash: %v", got)
	}
	if _, ok := got["py"]; ok {
		t.Errorf("[py:python2] kept on Python 3: %v", got)
	}
	if got["py3"]["z"] != "1" || got["hash"]["h"] != "1" {
		t.Errorf("conditional sections: %v", got)
	}
}

func TestParseErrors(t *testing.T) {
	_, err := Parse("bad.cfg", []byte("[s]\nok = 1\nthis is not an option\n[t]\n  [u\n"))
	var list ErrorList
	if !errors.As(err, &list) || len(list) != 2 {
		t.Fatalf("want two errors (all errors of a file at once), got %v", err)
	}
	if !strings.HasPrefix(err.Error(), "bad.cfg:3:1: ") {
		t.Errorf("error %q lacks file:line:col", err)
	}
	_, err = Parse("nohead.cfg", []byte("\nx = 1\n"))
	if err == nil || !strings.HasPrefix(err.Error(), "nohead.cfg:2:1: ") {
		t.Errorf("missing header: %v", err)
	}
}

func TestDedent(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"  a\n    b", "a\n  b"},
		{"\ta\n\t\tb", "a\n\tb"},
		{"  a\n \tb", " a\n\tb"},
		{"  a\n   \n  b", "a\n\nb"},
	} {
		if got := dedent(c.in); got != c.want {
			t.Errorf("dedent(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// FuzzParse: the parser never panics, and what it accepts re-parses to
// the same sections when written back in canonical form.
func FuzzParse(f *testing.F) {
	f.Add([]byte("[s]\na = 1\n  2\nb =\n  x\n    y\n"))
	f.Add([]byte("[s:python3]\na += b\n=> c\n# c\n; d\n"))
	f.Add([]byte("[buildout]\nextends = a.cfg b.cfg\nparts = x\n[x]\n<= y\nv = ${:a} $${b:c}\n"))
	if corpus, ok := testcorpus.Find("slapos"); ok {
		dir, _ := filepath.Glob(filepath.Join(corpus, "component", "*", "buildout.cfg"))
		for _, p := range dir[:min(5, len(dir))] {
			if b, err := os.ReadFile(p); err == nil {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		file, err := Parse("fuzz.cfg", src)
		if err != nil {
			var list ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("error is not a non-empty ErrorList: %v", err)
			}
			return
		}
		var b strings.Builder
		for _, blk := range file.Blocks {
			if blk.Condition != "" {
				return // conditions may contain text that does not round-trip
			}
			b.WriteString("[" + blk.Name + "]\n")
			for _, o := range blk.Options {
				b.WriteString(o.Key + "=\n") // "eggs +" must stay next to "="
				for _, l := range strings.Split(o.Value, "\n") {
					b.WriteString("  " + l + "\n")
				}
			}
		}
		again, err := Parse("again.cfg", []byte(b.String()))
		if err != nil {
			t.Fatalf("canonical form does not parse: %v\n%s", err, b.String())
		}
		if len(again.Blocks) != len(file.Blocks) {
			t.Fatalf("blocks %d != %d", len(again.Blocks), len(file.Blocks))
		}
		for i, blk := range file.Blocks {
			for j, o := range blk.Options {
				o2 := again.Blocks[i].Options[j]
				if o2.Key != o.Key || strings.TrimSpace(o2.Value) != strings.TrimSpace(o.Value) {
					t.Fatalf("option %q=%q re-parsed as %q=%q", o.Key, o.Value, o2.Key, o2.Value)
				}
			}
		}
	})
}
