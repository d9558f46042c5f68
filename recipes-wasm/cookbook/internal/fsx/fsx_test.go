package fsx

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	recipe "github.com/slapnode/slapnode/recipes-wasm/sdk/go"
)

func TestShellSplitQuote(t *testing.T) {
	cases := map[string][]string{
		`a b  c`:                   {"a", "b", "c"},
		`'a b' "c \"d\"" e\ f`:     {"a b", `c "d"`, "e f"},
		`--opt='x y' "$HOME"`:      {"--opt=x y", "$HOME"},
		"multi\nline\\\ncontinued": {"multi", "linecontinued"},
		``:                         nil,
	}
	for in, want := range cases {
		got, err := ShellSplit(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("ShellSplit(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ShellSplit(`'open`); err == nil {
		t.Error("unterminated quote accepted")
	}
	for _, s := range []string{"plain", "with space", "it's", "", "$x"} {
		got, err := ShellSplit(ShellQuote(s))
		if err != nil || len(got) != 1 || got[0] != s {
			t.Errorf("ShellQuote(%q) = %s does not split back: %q %v", s, ShellQuote(s), got, err)
		}
	}
}

func TestDurationEnv(t *testing.T) {
	opts := recipe.Options{"a": int64(3), "b": "1.5", "c": "2m", "d": "soon"}
	for k, want := range map[string]time.Duration{"a": 3 * time.Second, "b": 1500 * time.Millisecond, "c": 2 * time.Minute, "z": time.Hour} {
		if got, err := Duration(opts, k, time.Hour); err != nil || got != want {
			t.Errorf("Duration(%s) = %v, %v; want %v", k, got, err, want)
		}
	}
	if _, err := Duration(opts, "d", 0); err == nil {
		t.Error("Duration accepted \"soon\"")
	}
	env, err := Env(recipe.Options{"e": "A=1\n  B = x=y \n\n"}, "e")
	if err != nil || !reflect.DeepEqual(env, map[string]string{"A": "1", "B": "x=y"}) {
		t.Errorf("Env lines = %v, %v", env, err)
	}
	if _, err := Env(recipe.Options{"e": "novalue"}, "e"); err == nil {
		t.Error("Env accepted a line without =")
	}
}

func TestWriteFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "a", "b", "f")
	if err := WriteFile(recipe.Context{}, p, []byte("x"), 0o640); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil || st.Mode().Perm() != 0o640 {
		t.Fatalf("stat %v %v", st, err)
	}
	entries, _ := os.ReadDir(filepath.Dir(p))
	if len(entries) != 1 {
		t.Fatalf("temporary file left behind: %v", entries)
	}
}

// FuzzShellQuote checks that quoting any words and splitting the result
// gives the words back, and that ShellSplit never panics.
func FuzzShellQuote(f *testing.F) {
	f.Add("a b", "it's", `"q" \ $x`)
	f.Fuzz(func(t *testing.T, a, b, c string) {
		words := []string{a, b, c}
		line := ShellQuote(a) + " " + ShellQuote(b) + " " + ShellQuote(c)
		got, err := ShellSplit(line)
		if err != nil || !reflect.DeepEqual(got, words) {
			t.Fatalf("ShellSplit(%q) = %q, %v; want %q", line, got, err, words)
		}
		ShellSplit(a)
	})
}

func TestUnmangle(t *testing.T) {
	for in, want := range map[string]string{
		"plain": "plain", "__2dextends": "-extends", "configuration__2ejson": "configuration.json",
		"a__5f5fb": "a__b", "__33proxy": "3proxy", "x__zz": "x__zz", "___2e": "_.",
	} {
		if got := Unmangle(in); got != want {
			t.Errorf("Unmangle(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzClean: a path clean accepts is one filepath.Clean leaves as it is.
func FuzzClean(f *testing.F) {
	for _, seed := range []string{"/", "/a", "/a/b", "/a/", "/a//b", "/a/./b", "/a/../b", "/.", "/..", "/.a/b..", "//", "/a/b/.", "/a/b/..", "/é/x"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if !filepath.IsAbs(p) {
			return
		}
		if clean(p) && filepath.Clean(p) != p {
			t.Fatalf("clean(%q), but filepath.Clean makes it %q", p, filepath.Clean(p))
		}
		ctx := recipe.Context{}
		if got, want := Resolve(ctx, p), filepath.Clean(p); got != want {
			t.Fatalf("Resolve(%q) = %q, want %q", p, got, want)
		}
	})
}
