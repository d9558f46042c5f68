package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/slapnode/slapnode/node/format"
)

// freePort returns a TCP port nothing listens on now.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
}

// copyExample copies an example into a temporary directory, applying
// edits (old → new) to its files.
func copyExample(t *testing.T, name string, edits map[string][2]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	if err := os.CopyFS(dir, os.DirFS(filepath.Join("..", "..", "examples", name))); err != nil {
		t.Fatal(err)
	}
	for file, e := range edits {
		p := filepath.Join(dir, file)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), e[0]) {
			t.Fatalf("%s has no %q", file, e[0])
		}
		if err := os.WriteFile(p, []byte(strings.Replace(string(b), e[0], e[1], 1)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

var urlLine = regexp.MustCompile(`url = (http://\S+)`)

// TestPlanTellsTheTruth: what plan says is what apply then does (issue 19:
// plan --param port:=8491 said "0 to install, 0 to reinstall, 0 to
// uninstall, 2 unchanged", then apply restarted the service and the URL
// changed; plan --state destroyed printed nothing; plan showed option
// names only and exited 0 whatever it found).
func TestPlanTellsTheTruth(t *testing.T) {
	requireCookbook(t)
	t.Setenv(format.LoopbackEnv, t.TempDir())
	root := t.TempDir()
	serveDaemon(t, root)
	profile := "../../examples/helloweb/software.hcl"
	p1, p2 := freePort(t), freePort(t)
	code, out, errs := runCLI(t, "", "apply", profile, "--root", root, "--param", "port:="+p1)
	if code != exitOK {
		t.Fatalf("apply: %d\n%s\n%s", code, out, errs)
	}
	url1 := urlLine.FindStringSubmatch(out)[1]

	// README's demo shows this plan: it is what plan prints (but for the
	// node's loopback block and the ports).
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	const demo = "$ slapnode plan examples/helloweb/software.hcl --param port:=8491 --param greeting=Bonjour\n"
	_, block, ok := strings.Cut(string(readme), demo)
	block, _, _ = strings.Cut(block, "```")
	if !ok || block == "" {
		t.Fatalf("README has no demo of %q", demo)
	}
	host := strings.TrimSuffix(strings.TrimPrefix(url1, "http://"), ":"+p1+"/")
	want := strings.NewReplacer("127.93.0.1", host, "8480", p1, "8491", p2).Replace(block)
	if _, out, _ := runCLI(t, "", "plan", profile, "--root", root, "--param", "port:="+p2, "--param", "greeting=Bonjour"); out != want {
		t.Errorf("README's plan demo is not what plan prints:\n%s\nplan prints:\n%s", want, out)
	}

	// Nothing to change: exit 0 even with -detailed-exitcode.
	code, out, errs = runCLI(t, "", "plan", profile, "--root", root, "--param", "port:="+p1, "-detailed-exitcode")
	if code != exitOK || !strings.Contains(out, "no changes") {
		t.Errorf("plan of the applied instance: %d\n%s\n%s", code, out, errs)
	}

	// A new port: the service restarts, the promise and the URL change.
	code, out, errs = runCLI(t, "", "plan", profile, "--root", root, "--param", "port:="+p2, "-detailed-exitcode")
	url2 := strings.Replace(url1, ":"+p1+"/", ":"+p2+"/", 1)
	for _, want := range []string{
		"~ service web: restart", fmt.Sprintf(`command[4]: %q → %q`, p1, p2),
		"~ promise web-answers: change", fmt.Sprintf(`options.url: %q → %q`, url1, url2),
		fmt.Sprintf(`~ connection url: %q → %q`, url1, url2),
		"services: 0 to start, 1 to restart, 0 to stop",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("plan --param port:=%s lacks %q:\n%s\n%s", p2, want, out, errs)
		}
	}
	if code != exitChanges {
		t.Errorf("plan -detailed-exitcode with changes exited %d, want %d", code, exitChanges)
	}
	code, out, errs = runCLI(t, "", "apply", profile, "--root", root, "--param", "port:="+p2)
	if code != exitOK || !strings.Contains(out, "restarted web") || !strings.Contains(out, "url = "+url2) {
		t.Fatalf("apply did not do what plan said: %d\n%s\n%s", code, out, errs)
	}

	// A new greeting: the page part is reinstalled, old → new shown; the
	// service is not restarted (its command names the same file).
	code, out, _ = runCLI(t, "", "plan", profile, "--root", root, "--param", "port:="+p2, "--param", "greeting=Bonjour")
	if code != exitOK || !strings.Contains(out, `~ page (cookbook:template)`) ||
		!strings.Contains(out, `context.greeting: "Hello from slapnode" → "Bonjour"`) || strings.Contains(out, "service web") {
		t.Errorf("plan of a new greeting: %d\n%s", code, out)
	}

	// Destroying: plan says so; apply asks, and refuses without a terminal.
	code, out, _ = runCLI(t, "", "plan", profile, "--root", root, "--state", "destroyed", "-detailed-exitcode")
	if code != exitChanges || !strings.Contains(out, "- destroy: its services stop, slappart0 is emptied") ||
		!strings.Contains(out, "- service web: stop") || !strings.Contains(out, "~ connection url: \""+url2+"\" → (none)") {
		t.Errorf("plan --state destroyed: %d\n%s", code, out)
	}
	code, _, errs = runCLI(t, "", "apply", profile, "--root", root, "--state", "destroyed")
	if code != exitFailure || !strings.Contains(errs, "pass -auto-approve") {
		t.Errorf("destroy without a terminal nor -auto-approve: %d\n%s", code, errs)
	}
	if _, err := http.Get(url2); err != nil {
		t.Fatalf("the refused destroy stopped the server: %v", err)
	}

	// A saved plan is applied as it is, and refused once stale.
	saved := filepath.Join(t.TempDir(), "greeting.plan")
	if code, _, errs := runCLI(t, "", "plan", profile, "--root", root, "--param", "port:="+p2, "--param", "greeting=Hi", "-out", saved); code != exitOK {
		t.Fatalf("plan -out: %d %s", code, errs)
	}
	if st, err := os.Stat(saved); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("saved plan: %v %v (it holds the parameters: 0600)", st, err)
	}
	if code, _, errs := runCLI(t, "", "apply", profile, "--root", root, "--param", "port:="+p2, "--param", "greeting=Hey"); code != exitOK {
		t.Fatalf("apply: %d %s", code, errs)
	}
	code, _, errs = runCLI(t, "", "apply", saved)
	if code != exitFailure || !strings.Contains(errs, "is stale: ") || !strings.Contains(errs, "instance parts") {
		t.Errorf("stale plan applied: %d\n%s", code, errs)
	}
	runCLI(t, "", "plan", profile, "--root", root, "--param", "port:="+p2, "--param", "greeting=Hi", "-out", saved)
	code, out, errs = runCLI(t, "", "apply", saved)
	if code != exitOK || !strings.Contains(out, "1 reinstalled") {
		t.Errorf("fresh saved plan: %d\n%s\n%s", code, out, errs)
	}
	if code, _, errs := runCLI(t, "", "apply", saved, "--param", "greeting=x"); code != exitUsage {
		t.Errorf("a saved plan with --param: %d %s", code, errs)
	}
}

// TestApplyFailsWhenAServiceDoesNotStayUp (issue 19: a service that exits 1
// forever gave "services: started broken…" and exit 0).
func TestApplyFailsWhenAServiceDoesNotStayUp(t *testing.T) {
	t.Setenv(format.LoopbackEnv, t.TempDir())
	root, dir := t.TempDir(), t.TempDir()
	serveDaemon(t, root)
	os.WriteFile(filepath.Join(dir, "software.hcl"), []byte("software \"broken\" {\n  version = \"1\"\n}\n\ninstance \"default\" {\n  profile = \"instance.hcl\"\n}\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "instance.hcl"), []byte(`service "broken" {
  command = ["/bin/sh", "-c", "echo cannot start; exit 1"]
}

service "fine" {
  command = ["/bin/sleep", "1000"]
}
`), 0o644)
	code, out, errs := runCLI(t, "", "apply", filepath.Join(dir, "software.hcl"), "--root", root, "--settle", "2s")
	if code != exitFailure || !strings.Contains(errs, "service did not stay up: service broken exited within 2s of its start") ||
		!strings.Contains(errs, "exit status 1") || strings.Contains(errs, "service fine") || !strings.Contains(out, "services: started broken, fine") {
		t.Errorf("apply of a broken service: %d\n%s\n%s", code, out, errs)
	}
}

// TestPromiseOnAnAddressItsPartitionDoesNotOwn (issue 19: two node roots
// shared 127.1.0.x; the second root's promise checked the first root's
// server and said ok while its own service could not bind).
func TestPromiseOnAnAddressItsPartitionDoesNotOwn(t *testing.T) {
	requireCookbook(t)
	t.Setenv(format.LoopbackEnv, t.TempDir())
	root := t.TempDir()
	serveDaemon(t, root)
	profile := "../../examples/helloweb/software.hcl"
	port := freePort(t)
	// The partition's address is known once the node chose its block.
	if code, _, errs := runCLI(t, "", "plan", profile, "--root", root, "--param", "port:="+port); code != exitOK {
		t.Fatalf("plan: %s", errs)
	}
	addr := format.LoopbackAddr(format.RecordedLoopback(root), 0) + ":" + port
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "another root's server") })}
	go srv.Serve(l)
	defer srv.Close()
	code, out, errs := runCLI(t, "", "apply", profile, "--root", root, "--param", "port:="+port, "--settle", "0", "--wait", "2s")
	if code != exitPromiseFailed || !strings.Contains(out, "promise web-answers: FAILED (passed, but not for slappart0: it checked "+addr+", ") {
		t.Errorf("a promise answered by another program: %d\n%s\n%s", code, out, errs)
	}
}

// TestProfileMistakesAtPlan: every mistake of the profiles is found at
// plan, all at once, across files, with file:line:col and the line, and
// nothing is installed (issue 19: a typo in a cookbook option passed plan
// and failed at apply after other parts were installed, never named; type
// errors in service and promise attributes appeared at apply only, one as
// "json: cannot unmarshal string into Go value of type []interface {}").
func TestProfileMistakesAtPlan(t *testing.T) {
	requireCookbook(t)
	t.Setenv(format.LoopbackEnv, t.TempDir())
	root := t.TempDir() // no daemon: apply must fail before it starts one
	dir := copyExample(t, "helloweb", map[string][2]string{
		"instance.hcl": {`  output = "${part.dirs.etc}/index.html"`, `  outptu = "${part.dirs.etc}/index.html"`},
		"software.hcl": {`  version     = "1.0.0"`, "  version     = \"1.0.0\"\n  versoin     = \"x\""},
	})
	b, _ := os.ReadFile(filepath.Join(dir, "instance.hcl"))
	src := strings.Replace(string(b), `  command = [`, `  command = "${software.path}/server"`+"\n  comand = [", 1)
	src = strings.Replace(src, `  url   = local.url`, "  url   = local.url\n  timeout = 5\n  evry = \"1m\"", 1)
	os.WriteFile(filepath.Join(dir, "instance.hcl"), []byte(src), 0o644)

	for _, cmd := range [][]string{
		{"plan", filepath.Join(dir, "software.hcl"), "--root", root},
		{"apply", filepath.Join(dir, "software.hcl"), "--root", root},
		{"validate", filepath.Join(dir, "software.hcl"), "--root", root},
	} {
		code, _, errs := runCLI(t, "", cmd...)
		for _, want := range []string{
			`instance.hcl:14:3: error: Unknown option`, `takes no option "outptu". Did you mean "output"?`, "  outptu = ",
			`instance.hcl:24:13: error: Invalid value for command`, `A list of strings, e.g. ["program", "arg"], is required, not string.`,
			`instance.hcl:25:3: error: Unsupported argument`, `A service block does not take "comand". Did you mean "command"?`,
			`instance.hcl:31:13: error: Invalid value for timeout`, `"5" is not a positive duration`,
			`takes no option "evry". Did you mean "every"?`,
			`software.hcl:8:3: error: Unsupported argument`, `Did you mean "version"?`,
		} {
			if !strings.Contains(errs, want) {
				t.Errorf("%s: the errors lack %q:\n%s", cmd[0], want, errs)
			}
		}
		if code != exitFailure || strings.Contains(errs, "json: cannot unmarshal") {
			t.Errorf("%s: exit %d\n%s", cmd[0], code, errs)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(root, "software")); len(ents) != 0 {
		t.Errorf("something was installed: %v", ents)
	}
	if _, err := os.Stat(filepath.Join(root, "var", "run", "slapnode.sock")); err == nil {
		t.Error("apply started a daemon for a profile full of mistakes")
	}

	// A helper value is declared in extra, and other parts read it.
	ok := copyExample(t, "helloweb", map[string][2]string{
		"instance.hcl": {`  output = "${part.dirs.etc}/index.html"`, "  output = \"${part.dirs.etc}/${self.page}\"\n  extra  = { page = \"index.html\" }"},
	})
	if code, out, errs := runCLI(t, "", "validate", ok, "--root", root); code != exitOK || !strings.Contains(out, "valid") {
		t.Errorf("extra: %d %s %s", code, out, errs)
	}
}

// TestFmt: slapnode fmt writes the canonical layout, -check and -diff
// change nothing.
func TestFmt(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "software.hcl")
	os.WriteFile(p, []byte("software \"x\" {\nversion=\"1\"\n  description = \"d\"\n}\n"), 0o644)
	code, out, _ := runCLI(t, "", "fmt", "-check", "-diff", dir)
	if code != exitFailure || !strings.Contains(out, "-version=\"1\"") || !strings.Contains(out, "+  version     = \"1\"") {
		t.Errorf("fmt -check -diff: %d\n%s", code, out)
	}
	if b, _ := os.ReadFile(p); !strings.Contains(string(b), "version=\"1\"") {
		t.Error("-check changed the file")
	}
	if code, out, _ := runCLI(t, "", "fmt", dir); code != exitOK || !strings.Contains(out, p) {
		t.Errorf("fmt: %d %s", code, out)
	}
	if code, _, _ := runCLI(t, "", "fmt", "-check", p); code != exitOK {
		t.Error("not formatted after fmt")
	}
	os.WriteFile(p, []byte("software \"x\" {\n  version = \n}\n"), 0o644)
	if code, _, errs := runCLI(t, "", "fmt", p); code != exitFailure || !strings.Contains(errs, "software.hcl:2:13: error") {
		t.Errorf("fmt of a broken file: %d %s", code, errs)
	}
}

// TestRootlessRootsGetTheirOwnAddresses (issue 19: two rootless-formatted
// roots both got 127.1.0.x).
func TestRootlessRootsGetTheirOwnAddresses(t *testing.T) {
	t.Setenv(format.LoopbackEnv, t.TempDir())
	seen := map[string]string{}
	for _, name := range []string{"a", "b", "c"} {
		root := filepath.Join(t.TempDir(), name)
		if code, out, errs := runCLI(t, "", "node", "format", "--rootless", "--root", root); code != exitOK {
			t.Fatalf("format %s: %d %s %s", name, code, out, errs)
		}
		st, err := format.LoadState(root)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range st.Partitions() {
			if other, dup := seen[p.IPv4]; dup {
				t.Errorf("%s of root %s has %s, as %s", p.ID, name, p.IPv4, other)
			}
			seen[p.IPv4] = name + "/" + p.ID
		}
	}
}

// TestApplySaysWhatItWaitsFor: a step of apply longer than a second is
// named, here the settle time of its services (issue 19: long steps were
// silent); without a terminal it is named once, with no redrawing.
func TestApplySaysWhatItWaitsFor(t *testing.T) {
	t.Setenv(format.LoopbackEnv, t.TempDir())
	root, dir := t.TempDir(), t.TempDir()
	serveDaemon(t, root)
	os.WriteFile(filepath.Join(dir, "software.hcl"), []byte("software \"s\" {\n  version = \"1\"\n}\n\ninstance \"default\" {\n  profile = \"instance.hcl\"\n}\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "instance.hcl"), []byte("service \"sleep\" {\n  command = [\"/bin/sleep\", \"1000\"]\n}\n"), 0o644)
	code, out, errs := runCLI(t, "", "apply", filepath.Join(dir, "software.hcl"), "--root", root, "--settle", "1500ms")
	const step = "checking that the services of slappart0 stay up (1.5s)…\n"
	if code != exitOK || strings.Count(out+errs, step) != 1 || strings.Contains(out+errs, "\r") {
		t.Errorf("apply --settle 1500ms: %d\n%s\n%s", code, out, errs)
	}
	quiet := t.TempDir()
	serveDaemon(t, quiet)
	code, out, errs = runCLI(t, "", "-q", "apply", filepath.Join(dir, "software.hcl"), "--root", quiet, "--settle", "1500ms")
	if code != exitOK || strings.Contains(out+errs, "stay up") || !strings.Contains(out, "services: started sleep") {
		t.Errorf("-q apply: %d\n%s\n%s", code, out, errs)
	}
}
