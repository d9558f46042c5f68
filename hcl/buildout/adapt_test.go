package buildout

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestAdaptTemplates(t *testing.T) {
	src := `[plain]
recipe = slapos.recipe.template
output = ${buildout:directory}/x.conf
inline =
  port = ${:port} home = $${buildout:directory}
port = 8080

[jinja]
recipe = slapos.recipe.template:jinja2
url = ${:_profile_base_location_}/instance.cfg.in
md5sum = 0123456789abcdef0123456789abcdef
rendered = ${buildout:directory}/instance.cfg
extra-context =
  raw extra ${plain:port}
context =
  key port plain:port
  raw bin ${buildout:bin-directory}/x
  raw r  two  words
  section plain plain
  jsonkey cfg slap-configuration:configuration.json
  import json_module json
  ${:extra-context}
import-list =
  file caucase caucase-lib:target
  file own :lib
  rawfile common ${:_profile_base_location_}/common.jinja2
lib = /x/lib.in

[build]
recipe = slapos.recipe.build
install = import os

[mine]
recipe = slapos.recipe.template
inline = left as it is
`
	r, err := ConvertFile("software.cfg", []byte(src), ConvertOptions{RecipeMap: map[string]string{}})
	if err != nil {
		t.Fatal(err)
	}
	// hclwrite aligns the = signs: compare with single spaces.
	squash := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	got := squash(string(r.HCL))
	for _, want := range []string{
		`inline = "port = ${self.port} home = $${buildout:directory}"`, // $$ -> $ for plain templates
		`engine = "none"`,
		`path   = "${block.dir}/instance.cfg.in"`,
		`output = "${software.path}/instance.cfg"`,
		`"port"  = part.plain.port`,
		`"bin"   = "${software.path}/bin/x"`,
		`section-vars = { "plain" = part.plain }`,
		`"cfg"   = jsondecode(part.slap-configuration.configuration__2ejson)`,
		`"extra" = part.plain.port`,
		`"r" = "two  words"`,
		`modules = { "json_module" = "json" }`,
		"file caucase ${part.caucase-lib.target}\nfile own ${self.lib}\nrawfile common ${block.dir}/common.jinja2",
	} {
		if !strings.Contains(got, squash(want)) {
			t.Errorf("output lacks %q:\n%s", want, r.HCL)
		}
	}
	if strings.Contains(got, " context =") {
		t.Errorf("context left in the output:\n%s", got)
	}
	// rendered, the old name of output, stays for the sections reading it.
	if !strings.Contains(got, `output = "${software.path}/instance.cfg" rendered = "${software.path}/instance.cfg"`) {
		t.Errorf("rendered not given as output and kept:\n%s", got)
	}
	checkShape(t, "software.hcl", r.HCL)
	kinds := map[string]int{}
	for _, w := range r.Warnings {
		kinds[w.Kind]++
	}
	if kinds[WarnTemplateContext] != 0 || kinds[WarnPythonCode] != 0 {
		t.Errorf("warnings: %v", r.Warnings)
	}

	// A user's --recipe-map target keeps buildout's option names.
	r, err = ConvertFile("software.cfg", []byte("[t]\nrecipe = slapos.recipe.template:jinja2\ncontext = key a b:c\n"), ConvertOptions{RecipeMap: map[string]string{"slapos.recipe.template:jinja2": "mine:tpl"}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(r.HCL), `context = "key a b:c"`) {
		t.Errorf("mapped by the user, yet adapted:\n%s", r.HCL)
	}
}

// A plain slapos.recipe.template file: its ${section:option} are read at
// conversion time, so the parts they name become dependencies (openssh in
// software/ssh is referenced only from its template).
func TestAdaptTemplateFile(t *testing.T) {
	dir := t.TempDir()
	tpl := "[buildout]\nparts = x\n[sshd]\nbin = ${openssh:location}/sbin/sshd\nport = ${:port}\nhome = $${buildout:directory}\nbad = ${nocolon}\n"
	if err := os.WriteFile(filepath.Join(dir, "instance.cfg.in"), []byte(tpl), 0o644); err != nil {
		t.Fatal(err)
	}
	src := `[openssh]
recipe = slapos.recipe.cmmi
url = https://example.org/openssh.tar.gz

[template]
recipe = slapos.recipe.template
url = ${:_profile_base_location_}/instance.cfg.in
output = ${buildout:directory}/instance.cfg
port = 22

[remote]
recipe = slapos.recipe.template
url = https://example.org/x.in
output = x
`
	profile := filepath.Join(dir, "software.cfg")
	r, err := ConvertFile(profile, []byte(src), ConvertOptions{})
	if err != nil {
		t.Fatal(err)
	}
	squash := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	got := squash(string(r.HCL))
	for _, want := range []string{
		`engine = "buildout"`,
		`"openssh" = { "location" = part.openssh.location }`,
		`"" = { "port" = self.port }`,
		`path = "${block.dir}/instance.cfg.in"`,
	} {
		if !strings.Contains(got, squash(want)) {
			t.Errorf("output lacks %q:\n%s", want, r.HCL)
		}
	}
	var bad, remote bool
	for _, w := range r.Warnings {
		if w.Kind == WarnBadReference && w.Pos.File == filepath.Join(dir, "instance.cfg.in") && w.Pos.Line == 7 {
			bad = true
		}
		if w.Kind == WarnTemplateFile && strings.Contains(w.Msg, "[remote]") {
			remote = true
		}
	}
	if !bad || !remote {
		t.Errorf("want a bad-reference warning at instance.cfg.in:7 and a template-file warning for [remote]: %v", r.Warnings)
	}
	checkShape(t, "software.hcl", r.HCL)
}

// SlapOS's template-base macros name the file by the part's own option
// (url = ${:_profile_base_location_}/${:filename}, buildout.hash.cfg giving
// filename): the file is still read at conversion time, and its
// references become the part's sections.
func TestAdaptTemplateFileByFilename(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "instance.cfg.in"), []byte("[x]\nbin = ${memo:location}/bin\neggs = ${buildout:eggs-directory}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	src := `[memo]
recipe = slapos.recipe.cmmi
url = https://example.org/memo.tar.gz

[template-base]
recipe = slapos.recipe.template
url = ${:_profile_base_location_}/${:filename}

[template]
<= template-base
filename = instance.cfg.in
output = ${buildout:directory}/template.cfg
`
	profile := filepath.Join(dir, "software.cfg")
	if err := os.WriteFile(profile, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := ConvertClosure(profile, LoadOptions{}, ConvertOptions{})
	if err != nil {
		t.Fatal(err)
	}
	squash := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	got := squash(string(r.HCL))
	for _, want := range []string{`engine = "buildout"`, `"memo" = { "location" = part.memo.location }`, `"eggs-directory" =`} {
		if !strings.Contains(got, squash(want)) {
			t.Errorf("output lacks %q:\n%s", want, r.HCL)
		}
	}
	for _, w := range r.Warnings {
		if w.Kind == WarnTemplateFile {
			t.Errorf("the template named by ${:filename} was not read, or the macro warned about: %v", w)
		}
	}
}

// Keys slapgrid and buildout set in [buildout] that no file of the release
// sets are engine values in a flattened conversion too (the in-memory
// path of apply): shared-part-list, where the release's parts are, and a
// buildout default.
func TestEngineKeysFlattened(t *testing.T) {
	dir := t.TempDir()
	profile := filepath.Join(dir, "software.cfg")
	src := "[buildout]\nparts = info\n\n[info]\nrecipe = slapos.recipe.template\noutput = ${buildout:directory}/info\ninline =\n  shared ${buildout:shared-part-list}\n  offline ${buildout:offline}\n"
	if err := os.WriteFile(profile, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := ConvertClosure(profile, LoadOptions{}, ConvertOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := string(r.HCL)
	if strings.Contains(got, "part.buildout") || !strings.Contains(got, "shared ${software.path}/parts") || !strings.Contains(got, "offline false") {
		t.Errorf("engine keys not resolved:\n%s", got)
	}
	checkShape(t, "software.hcl", r.HCL)
}

// TestTemplateFileHostile: a plain template's file is read at conversion
// (to find its ${section:option}), by root during `slapnode apply
// software.cfg`. A release naming a FIFO, or a file larger than a profile
// may be, must get a warning, not hang or exhaust the process (through
// "..", /dev/zero: the previous code read it until the OOM killer came,
// which this test does not replay).
func TestTemplateFileHostile(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo.in"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := `[buildout]
parts = fifo big

[fifo]
recipe = slapos.recipe.template
url = ${:_profile_base_location_}/fifo.in
output = ${buildout:directory}/a

[big]
recipe = slapos.recipe.template
url = ${:_profile_base_location_}/big.in
output = ${buildout:directory}/b
`
	if err := os.WriteFile(filepath.Join(dir, "big.in"), bytes.Repeat([]byte("x\n"), MaxFileSize), 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan []Warning, 1)
	go func() {
		r, err := ConvertFile(filepath.Join(dir, "software.cfg"), []byte(src), ConvertOptions{})
		if err != nil {
			t.Error(err)
			done <- nil
			return
		}
		done <- r.Warnings
	}()
	select {
	case ws := <-done:
		n := 0
		for _, w := range ws {
			if w.Kind == WarnTemplateFile && (strings.Contains(w.Msg, "[fifo]") || strings.Contains(w.Msg, "[big]")) {
				n++
			}
		}
		if n != 2 {
			t.Errorf("want a template-file warning for [fifo] and [big]: %v", ws)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("converting a release whose template is a FIFO hung")
	}
}
