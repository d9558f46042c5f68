package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/slapnode/slapnode/node/daemon"
	"github.com/slapnode/slapnode/node/master"
)

// serverCommands run until stopped and print a log, not a result: they
// have no --json (their log format is the daemon's business).
var serverCommands = map[string]bool{"node run": true, "master": true, "cache serve": true}

// TestEveryCommandHasJSON: every command that prints a result takes
// --json, and docs/json.md documents its shape.
func TestEveryCommandHasJSON(t *testing.T) {
	docs := jsonDocs(t)
	for name := range commands {
		if serverCommands[name] {
			continue
		}
		args := append(strings.Fields(name), "--json", "--help")
		if code, out, errs := runCLI(t, "", args...); code != exitOK || !strings.HasPrefix(out, "Usage:") {
			t.Errorf("%s has no --json flag: exit %d %s", name, code, errs)
		}
		if docs[name] == nil {
			t.Errorf("docs/json.md does not document the output of %s --json", name)
		}
	}
	for name := range docs {
		if commands[name] == nil && name != "error" {
			t.Errorf("docs/json.md documents %q, which is not a command", name)
		}
	}
}

// jsonDocs reads the example document of every command from docs/json.md:
// a heading "### `slapnode COMMAND …`" followed by a ```json block.
func jsonDocs(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile("../../docs/json.md")
	if err != nil {
		t.Fatal(err)
	}
	heading := regexp.MustCompile("^#{2,4} `slapnode ([a-z ]+)")
	out := map[string]any{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	name, inBlock := "", false
	var block strings.Builder
	for sc.Scan() {
		line := sc.Text()
		switch {
		case inBlock && line == "```":
			inBlock = false
			var v any
			if err := json.Unmarshal([]byte(block.String()), &v); err != nil {
				t.Fatalf("docs/json.md, %s: the example is not JSON: %v\n%s", name, err, block.String())
			}
			out[name] = v
			name = ""
		case inBlock:
			block.WriteString(line + "\n")
		case line == "```json" && name != "":
			inBlock = true
			block.Reset()
		case strings.HasPrefix(line, "#"):
			name = ""
			if strings.Contains(line, "error document") {
				name = "error"
			} else if m := heading.FindStringSubmatch(line); m != nil {
				words := strings.Fields(m[1])
				if c, _ := lookup(words); c != nil {
					name = c.name
				}
			}
		}
	}
	return out
}

var snakeCase = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// checkShape checks got against the documented example want, and the
// conventions: snake_case keys, no null, no zero time, outside user data.
// An example object whose keys are all "<…>" is user data (any keys);
// "<any>" matches any value.
func checkShape(path string, want, got any) []string {
	if s, ok := want.(string); ok && s == "<any>" {
		return nil
	}
	switch g := got.(type) {
	case nil:
		return []string{path + ": null (lists are [], absent values are left out)"}
	case string:
		if strings.HasPrefix(g, "0001-01-01") {
			return []string{path + ": zero time " + g}
		}
		if _, ok := want.(string); !ok {
			return []string{fmt.Sprintf("%s: a string, documented as %T", path, want)}
		}
	case float64:
		if _, ok := want.(float64); !ok {
			return []string{fmt.Sprintf("%s: a number, documented as %T", path, want)}
		}
	case bool:
		if _, ok := want.(bool); !ok {
			return []string{fmt.Sprintf("%s: a boolean, documented as %T", path, want)}
		}
	case []any:
		w, ok := want.([]any)
		if !ok {
			return []string{fmt.Sprintf("%s: a list, documented as %T", path, want)}
		}
		if len(g) > 0 && len(w) == 0 {
			return []string{path + ": the documented example list is empty"}
		}
		var errs []string
		for i, e := range g {
			errs = append(errs, checkShape(fmt.Sprintf("%s/%d", path, i), w[0], e)...)
		}
		return errs
	case map[string]any:
		w, ok := want.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: an object, documented as %T", path, want)}
		}
		if userMap(w) {
			for _, v := range w {
				var errs []string
				for k, e := range g {
					errs = append(errs, checkShape(path+"/"+k, v, e)...)
				}
				return errs
			}
		}
		var errs []string
		keys := make([]string, 0, len(g))
		for k := range g {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if !snakeCase.MatchString(k) {
				errs = append(errs, fmt.Sprintf("%s: key %q is not snake_case", path, k))
			}
			wv, ok := w[k]
			if !ok {
				errs = append(errs, fmt.Sprintf("%s: key %q is not documented", path, k))
				continue
			}
			errs = append(errs, checkShape(path+"/"+k, wv, g[k])...)
		}
		return errs
	}
	return nil
}

// userMap: an example object standing for user data (parameters,
// connection parameters), written {"<name>": value}.
func userMap(m map[string]any) bool {
	if len(m) == 0 {
		return false
	}
	for k := range m {
		if !strings.HasPrefix(k, "<") {
			return false
		}
	}
	return true
}

func TestCheckShapeCatchesConventions(t *testing.T) {
	want := map[string]any{"format_version": "1.0", "items": []any{map[string]any{"name": "x", "since": "t"}}, "connection": map[string]any{"<key>": "<any>"}}
	for _, tc := range []struct {
		doc  string
		want string
	}{
		{`{"format_version":"1.0","items":null}`, "/items: null"},
		{`{"format_version":"1.0","items":[{"Name":"x"}]}`, `key "Name" is not snake_case`},
		{`{"format_version":"1.0","items":[{"name":"x","since":"0001-01-01T00:00:00Z"}]}`, "zero time"},
		{`{"format_version":"1.0","Counts":{}}`, `key "Counts" is not snake_case`},
		{`{"format_version":"1.0","items":[{"name":1}]}`, "a number, documented as string"},
	} {
		var got any
		json.Unmarshal([]byte(tc.doc), &got)
		if errs := checkShape("", want, got); !strings.Contains(strings.Join(errs, "\n"), tc.want) {
			t.Errorf("%s: %v, want %q", tc.doc, errs, tc.want)
		}
	}
	var got any
	json.Unmarshal([]byte(`{"format_version":"1.0","items":[],"connection":{"Any-Key":null}}`), &got)
	if errs := checkShape("", want, got); len(errs) != 0 {
		t.Errorf("user data checked as shape: %v", errs)
	}
}

// jsonRun runs a command in process and checks its JSON document against
// docs/json.md: the shape of the command (or, on failure, of the error
// document) and the conventions.
type jsonRun struct {
	t    *testing.T
	docs map[string]any
	seen map[string]bool
}

func (j *jsonRun) check(wantCode int, args ...string) map[string]any {
	t := j.t
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, strings.NewReader(""), &out, &errb)
	if code != wantCode {
		t.Errorf("%s: exit %d, want %d\nstdout %s\nstderr %s", strings.Join(args, " "), code, wantCode, out.String(), errb.String())
	}
	c, _ := lookup(args)
	name := c.name
	if strings.HasPrefix(out.String(), "{\"format_version\":") && strings.Count(out.String(), "\n") > 1 {
		// JSON Lines (logs): every line is a document.
		var last map[string]any
		for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			last = j.compare(name, args, line)
		}
		return last
	}
	if code != exitOK && wantCode != exitOK {
		var doc map[string]any
		json.Unmarshal(out.Bytes(), &doc)
		if _, isErr := doc["error"]; isErr {
			name = "error"
		}
	}
	return j.compare(name, args, out.String())
}

// checkUnknown runs a command line that names no command.
func (j *jsonRun) checkUnknown(args ...string) {
	j.t.Helper()
	var out, errb bytes.Buffer
	if code := run(args, strings.NewReader(""), &out, &errb); code != exitUsage {
		j.t.Errorf("%v: exit %d", args, code)
	}
	j.compare("error", args, out.String())
}

func (j *jsonRun) compare(name string, args []string, text string) map[string]any {
	t := j.t
	t.Helper()
	var got map[string]any
	if err := json.Unmarshal([]byte(text), &got); err != nil {
		t.Errorf("%s: stdout is not one JSON object: %v\n%s", strings.Join(args, " "), err, text)
		return nil
	}
	if dump := os.Getenv("SLAPNODE_JSON_DUMP"); dump != "" {
		os.WriteFile(filepath.Join(dump, strings.ReplaceAll(name, " ", "_")+".json"), []byte(text), 0o644)
	}
	if got["format_version"] != jsonFormatVersion {
		t.Errorf("%s: format_version %v", strings.Join(args, " "), got["format_version"])
	}
	want := j.docs[name]
	if want == nil {
		t.Errorf("%s: no documented shape in docs/json.md", name)
		return got
	}
	j.seen[name] = true
	for _, e := range checkShape("", want, got) {
		t.Errorf("%s: %s", strings.Join(args, " "), e)
	}
	return got
}

// TestJSONDocuments runs every command that prints with --json, on a real
// node (helloweb applied, its daemon in this process), a master and a
// binary cache, and checks each document against docs/json.md.
func TestJSONDocuments(t *testing.T) {
	requireCookbook(t)
	j := &jsonRun{t: t, docs: jsonDocs(t), seen: map[string]bool{}}
	root, tmp := t.TempDir(), t.TempDir()
	profilePath := "../../examples/helloweb/software.hcl"
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
	l.Close()

	j.check(exitOK, "version", "--json")
	// Errors are documents too, on stdout.
	j.check(exitFailure, "status", "--json", "--root", root)
	j.check(exitUsage, "apply", "--json", "--nope")
	j.checkUnknown("aply", "--json")
	j.check(exitFailure, "apply", filepath.Join(tmp, "missing.hcl"), "--json", "--root", root)
	j.check(exitOK, "plan", profilePath, "--json", "--root", root, "--param", "port:="+port)

	// The node daemon serves from this process, as 'node run' would.
	served := make(chan error, 1)
	ready := make(chan struct{})
	go func() {
		served <- daemon.Serve(context.Background(), root, daemon.Config{Logger: slog.New(slog.NewTextHandler(t.Output(), nil)), Ready: func() { close(ready) }})
	}()
	select {
	case <-ready:
	case err := <-served:
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			runCLI(t, "", "node", "stop", "--root", root)
		}
	})
	doc := j.check(exitOK, "apply", profilePath, "--json", "--root", root, "--param", "port:="+port)
	if inst, _ := doc["instance"].(map[string]any); inst == nil || inst["connection"].(map[string]any)["url"] == nil {
		t.Fatalf("apply --json: no connection parameters in %v", doc)
	}
	j.check(exitOK, "plan", profilePath, "--json", "--root", root, "--param", "port:="+port)
	j.check(exitOK, "status", "helloweb", "--json", "--root", root)
	j.check(exitOK, "restart", "helloweb", "--json", "--root", root)
	j.check(exitOK, "stop", "helloweb", "web", "--json", "--root", root)
	j.check(exitOK, "start", "helloweb", "--json", "--root", root)
	j.check(exitOK, "logs", "helloweb", "--json", "--root", root)
	j.check(exitOK, "promise", "run", "helloweb", "--json", "--root", root)
	j.check(exitOK, "output", "helloweb", "--json", "--root", root)
	j.check(exitFailure, "output", "hellowbe", "--json", "--root", root)

	// Caches.
	keys := filepath.Join(tmp, "builder")
	j.check(exitOK, "cache", "keygen", "--out", keys, "--json")
	store := filepath.Join(tmp, "store")
	os.WriteFile(filepath.Join(root, "cache.hcl"), []byte(`binary_cache {
  url          = "`+store+`"
  signing_key  = "`+keys+`.key"
  trusted_keys = ["`+keys+`.pub"]
}
`), 0o644)
	j.check(exitOK, "cache", "push", profilePath, "--json", "--root", root)
	j.check(exitOK, "cache", "ls", "--release", profilePath, "--json", "--root", root)
	j.check(exitOK, "cache", "ls", "--json", "--root", root)
	j.check(exitOK, "cache", "gc", "--dry-run", "--max-age", "1ns", "--json", "--root", root)
	// Into the machine cache, where the applies above compiled the cookbook.
	j.check(exitOK, "cache", "compile", "--json")

	// A master, the client commands and a converge pass.
	url, _ := testMaster(t)
	m := "--master=" + url
	sw := writeSoftware(t, "xml")
	j.check(exitOK, "supply", sw, master.DefaultComputer, "--json", m)
	j.check(exitOK, "request", "web", sw, "--param", "port=8080", "--json", m)
	j.check(exitFailure, "request", "web", sw, "--param", "port=http", "--json", m)
	j.check(exitOK, "list", "--json", m)
	j.check(exitOK, "info", "web", "--json", m)
	j.check(exitOK, "destroy", "web", "--json", "-auto-approve", m)
	j.check(exitOK, "remove", sw, master.DefaultComputer, "--json", m)
	j.check(exitOffline, "list", "--json", "--master", "http://127.0.0.1:1")
	j.check(exitOK, "node", "converge", "--master", url, "--node-id", "other", "--partitions", "1", "--json", "--root", root)
	j.check(exitOK, "master", "token", "--admin", "--json", "--db", filepath.Join(tmp, "m.db"))
	j.check(exitOK, "master", "certificate", "--computer", "COMP-1", "--out", filepath.Join(tmp, "comp1"), "--json", "--db", filepath.Join(tmp, "m.db"))
	j.check(exitOK, "master", "certificate", "--list", "--json", "--db", filepath.Join(tmp, "m.db"))
	j.check(exitOK, "master", "certificate", "--ca", "--json", "--db", filepath.Join(tmp, "m.db"))
	j.check(exitOK, "node", "register", "node-7", "--token", "T", "--master-url", "https://127.0.0.1:1", "--cfg", filepath.Join(tmp, "reg", "slapos.cfg"), "--dry-run", "--json")

	j.check(exitOK, "node", "stop", "--json", "--root", root)
	stopped = true
	select {
	case err := <-served:
		if err != nil {
			t.Error(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("daemon still running after node stop")
	}
	j.check(exitOK, "node", "format", "--dry-run", "--rootless", "--json", "--root", filepath.Join(tmp, "fmt"))
	j.check(exitOK, "node", "unformat", "--dry-run", "--json", "--root", filepath.Join(tmp, "fmt"))

	// Profiles, parameters, conversion.
	j.check(exitFailure, "release", "check", profilePath, "--json", "--root", root)
	schemaPath := filepath.Join(tmp, "in.json")
	os.WriteFile(schemaPath, []byte(`{"type": "object", "properties": {"port": {"type": "integer", "default": 8080, "maximum": 100}}}`), 0o644)
	j.check(exitOK, "validate", "--schema", schemaPath, "--param", "port:=80", "--json")
	j.check(exitOK, "validate", profilePath, "--json", "--root", root)
	fmtDir := filepath.Join(tmp, "fmt-profile")
	os.MkdirAll(fmtDir, 0o755)
	os.WriteFile(filepath.Join(fmtDir, "software.hcl"), []byte("software \"x\" {\n  version=\"1\"\n}\n"), 0o644)
	j.check(exitFailure, "fmt", "-check", "-diff", fmtDir, "--json")
	j.check(exitOK, "fmt", fmtDir, "--json")
	j.check(exitFailure, "validate", "--schema", schemaPath, "--param", "port:=800", "--json")
	j.check(exitOK, "schema", "show", schemaPath, "--json")
	j.check(exitOK, "schema", "export", profilePath, "--out", filepath.Join(tmp, "export.json"), "--json")
	cfg := filepath.Join(tmp, "conv", "software.cfg")
	os.MkdirAll(filepath.Dir(cfg), 0o755)
	os.WriteFile(cfg, []byte("[buildout]\nparts = d\n\n[d]\nrecipe = some.egg:thing\npath = ${buildout:directory}/d\n"), 0o644)
	j.check(exitOK, "convert", cfg, "--json")
	j.check(exitOK, "convert", "--resolve", cfg, "--json")
	j.check(exitOK, "test", profilePath, "--json")

	for name := range j.docs {
		if !j.seen[name] {
			t.Errorf("the documented shape of %s was not checked by this test", name)
		}
	}
}
