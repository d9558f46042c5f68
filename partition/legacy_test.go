package partition

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/slapnode/slapnode/hcl/buildout"
)

// A buildout release in the SlapOS style: software.cfg renders
// instance.cfg (jinja2) and downloads the template of the default type,
// which each partition renders with its parameters; two software types
// behind a switch-softwaretype, slapconfiguration.jsonschema with defaults,
// a request, and publish.serialised with -extends.
const legacySoftware = `[buildout]
parts = instance-profile

[instance-profile]
recipe = slapos.recipe.template:jinja2
url = ${:_profile_base_location_}/instance.cfg.in
output = ${buildout:directory}/instance.cfg
context =
  key template_default template-default:target
  key other_profile other-profile:output

[template-default]
recipe = slapos.recipe.build:download
url = ${:_profile_base_location_}/instance-default.cfg.in
md5sum = @MD5@

[other-profile]
recipe = slapos.recipe.template:jinja2
url = ${:_profile_base_location_}/instance-other.cfg.in
output = ${buildout:directory}/instance-other.cfg
`

const legacyInstance = `[buildout]
parts = switch-softwaretype

[slap-configuration]
recipe = slapos.cookbook:slapconfiguration.jsonschema
computer = ${slap-connection:computer-id}
partition = ${slap-connection:partition-id}
jsonschema = ${slap-connection:software-release-url}.json
set-default = main
configuration.from-section = yes

[switch-softwaretype]
recipe = slapos.cookbook:switch-softwaretype
default = instance-default:rendered
other = instance-other:output

# The old option names, and a path relative to the buildout directory
# (the partition), which switch-softwaretype reads as it is.
[instance-default]
recipe = slapos.recipe.template:jinja2
template = {{ template_default }}
rendered = instance-default.cfg
context =
  key slapparameter_dict slap-configuration:configuration
  key partition slap-configuration:slap-computer-partition-id

[instance-other]
output = {{ other_profile }}
`

const legacyDefault = `[buildout]
parts = publish

[directory]
recipe = slapos.cookbook:mkdirectory
etc = ${buildout:directory}/etc
service = ${:etc}/service

[server]
recipe = slapos.cookbook:wrapper
command-line = /bin/sleep {{ slapparameter_dict['seconds'] }}
wrapper-path = ${directory:service}/server

[front]
recipe = slapos.cookbook:request
name = front
software-url = ${slap-connection:software-release-url}
software-type = other
config-seconds = 7
return = url

[publish]
recipe = slapos.cookbook:publish.serialised
seconds = {{ slapparameter_dict['seconds'] }}
partition = {{ partition }}
server = ${server:wrapper-path}
front = ${front:connection-url}
ipv4 = ${slap-configuration:ipv4-random}
-extends = publish-more

[publish-more]
colour = ${slap-configuration:configuration.colour}
from-section = ${slap-configuration:configuration.from-section}
type = ${slap-configuration:slap-software-type}
`

const legacyOther = `[buildout]
parts = publish

[publish]
recipe = slapos.cookbook:publish
greeting = Hello from ${slap-configuration:slap-software-type} in ${slap-connection:partition-id}
`

const legacyDescriptor = `{
  "name": "legacy-test",
  "serialisation": "json-in-xml",
  "software-type": {
    "default": {"title": "Default", "request": "default-input.json", "index": 0},
    "other": {"title": "Other", "request": "other-input.json", "index": 1}
  }
}`

const legacyDefaultSchema = `{
  "$schema": "http://json-schema.org/draft-07/schema#",
  "type": "object",
  "properties": {
    "seconds": {"type": "integer", "default": 30},
    "colour": {"type": "string", "default": "blue"}
  }
}`

// writeLegacyRelease writes the release above into dir.
func writeLegacyRelease(t *testing.T, dir string) string {
	t.Helper()
	files := map[string]string{
		"instance.cfg.in": legacyInstance, "instance-default.cfg.in": legacyDefault,
		"instance-other.cfg.in": legacyOther, "software.cfg.json": legacyDescriptor,
		"default-input.json": legacyDefaultSchema, "other-input.json": `{"type": "object"}`,
	}
	for n, c := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sum := md5.Sum([]byte(legacyDefault))
	sw := filepath.Join(dir, "software.cfg")
	if err := os.WriteFile(sw, []byte(strings.Replace(legacySoftware, "@MD5@", hex.EncodeToString(sum[:]), 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	return sw
}

// recordingRequester answers child requests with fixed connection
// parameters and records them (the node's requesters are tested in
// node/local and the end-to-end tests).
type recordingRequester struct {
	got  []ChildRequest
	conn map[string]any
}

func (r *recordingRequester) Request(_ context.Context, _ string, cr ChildRequest) (map[string]any, error) {
	r.got = append(r.got, cr)
	return r.conn, nil
}

func TestLegacyRelease(t *testing.T) {
	e := newEngine(t)
	ctx := context.Background()
	sw := writeLegacyRelease(t, t.TempDir())
	s, err := e.LoadSoftware(sw)
	if err != nil {
		t.Fatal(err)
	}
	if s.Legacy == nil || len(s.Types) != 2 || s.Types["default"].Serialisation != "json-in-xml" {
		t.Fatalf("legacy release: %+v, types %v", s.Legacy, s.Types)
	}
	if err := e.InstallSoftware(ctx, s, false, false); err != nil {
		t.Fatal(err)
	}
	if s.LegacyInstanceProfile() != filepath.Join(s.Path, "instance.cfg") {
		t.Fatalf("instance profile: %q", s.LegacyInstanceProfile())
	}
	req := &recordingRequester{conn: map[string]any{"url": "http://front.example/"}}
	part := Partition{ID: "slappart0", Path: filepath.Join(e.Root, "instance", "slappart0"), User: "me", IPv4: "127.9.0.1", IPv6: "::1"}
	instantiate := func(typ string, params map[string]any) *Instance {
		t.Helper()
		inst, err := e.Instantiate(ctx, &InstanceRequest{Software: s, Type: typ, Params: params, Partition: part, Requester: req, Title: "test"}, false)
		if err != nil {
			t.Fatal(err)
		}
		return inst
	}
	inst := instantiate("default", map[string]any{"seconds": 45})
	conn := unwrapSerialised(inst.Connection)
	want := map[string]any{"seconds": "45", "partition": "slappart0", "server": filepath.Join(part.Path, "etc/service/server"),
		"front": "http://front.example/", "ipv4": "127.9.0.1", "colour": "blue", "from-section": "yes", "type": "default"}
	for k, v := range want {
		if conn[k] != v {
			t.Errorf("published %s = %#v, want %#v (all: %v)", k, conn[k], v, conn)
		}
	}
	if _, serialised := inst.Connection["_"]; !serialised || len(inst.Connection) != 1 {
		t.Errorf("publish.serialised sends one JSON document under _: %v", inst.Connection)
	}
	if len(req.got) != 1 || req.got[0].Name != "front" || req.got[0].SoftwareType != "other" || req.got[0].Software != sw ||
		req.got[0].Parameters["seconds"] != "7" {
		t.Errorf("requests: %+v", req.got)
	}
	if len(inst.Services) != 1 || inst.Services[0].Name != "server" || !inst.Services[0].Watch || inst.Services[0].Digest == "" {
		t.Fatalf("services: %+v", inst.Services)
	}
	digest := inst.Services[0].Digest

	// Applying again changes nothing.
	again := instantiate("default", map[string]any{"seconds": 45})
	for _, a := range again.Report.Actions {
		if a.Kind != Unchanged {
			t.Errorf("second apply: %+v", a)
		}
	}
	if again.Services[0].Digest != digest {
		t.Error("the wrapper changed on a second apply")
	}

	// A parameter change reinstalls what depends on it: the wrapper (whose
	// digest restarts the service), not the directories.
	changed := instantiate("default", map[string]any{"seconds": 50})
	acts := actions(changed.Report)
	if acts["switch-softwaretype/server"] != Reinstall || acts["switch-softwaretype/directory"] != Unchanged {
		t.Errorf("after a parameter change: %v", acts)
	}
	if changed.Services[0].Digest == digest {
		t.Error("the wrapper's digest did not change with its command")
	}

	// The other software type, in another partition.
	other := part
	other.ID, other.Path = "slappart1", filepath.Join(e.Root, "instance", "slappart1")
	oi, err := e.Instantiate(ctx, &InstanceRequest{Software: s, Type: "other", Partition: other, Requester: req}, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := oi.Connection["greeting"]; got != "Hello from other in slappart1" {
		t.Errorf("other type published %v", oi.Connection)
	}

	// A type the descriptor does not know is refused with the known ones.
	if _, err := s.InstanceType("nope"); err == nil || !strings.Contains(err.Error(), "default, other") {
		t.Errorf("unknown type: %v", err)
	}
	// Parameters are checked against the type's schema before anything.
	if _, err := e.Instantiate(ctx, &InstanceRequest{Software: s, Type: "default", Params: map[string]any{"seconds": "many"}, Partition: part}, false); err == nil || !strings.Contains(err.Error(), "/seconds") {
		t.Errorf("bad parameter: %v", err)
	}
}

// Without a software.cfg.json any software type may be asked: the
// instance profile's switch-softwaretype says whether it knows it.
func TestLegacySwitchUnmappedType(t *testing.T) {
	e := newEngine(t)
	ctx := context.Background()
	dir := t.TempDir()
	sw := writeLegacyRelease(t, dir)
	os.Remove(filepath.Join(dir, "software.cfg.json"))
	// Without the descriptor the jsonschema variant cannot work: plain
	// slapconfiguration instead.
	b, _ := os.ReadFile(filepath.Join(dir, "instance.cfg.in"))
	os.WriteFile(filepath.Join(dir, "instance.cfg.in"), []byte(strings.Replace(string(b), "slapconfiguration.jsonschema", "slapconfiguration", 1)), 0o644)
	s, err := e.LoadSoftware(sw)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.InstallSoftware(ctx, s, false, false); err != nil {
		t.Fatal(err)
	}
	part := Partition{ID: "slappart0", Path: filepath.Join(e.Root, "instance", "slappart0"), IPv4: "127.9.0.1"}
	_, err = e.Instantiate(ctx, &InstanceRequest{Software: s, Type: "mystery", Partition: part}, false)
	if err == nil || !strings.Contains(err.Error(), "this software type (mystery) isn't mapped") || !strings.Contains(err.Error(), "default, other") {
		t.Fatalf("unmapped type: %v", err)
	}
	// Plain slapconfiguration with the xml serialisation: every parameter
	// a string, as configuration.KEY options.
	inst, err := e.Instantiate(ctx, &InstanceRequest{Software: s, Type: "other", Params: map[string]any{"n": 3}, Partition: part}, false)
	if err != nil {
		t.Fatal(err)
	}
	if inst.Connection["greeting"] != "Hello from other in slappart0" {
		t.Errorf("connection: %v", inst.Connection)
	}
}

// plan says what apply would do, nested profiles included, and changes
// nothing.
func TestLegacyPlan(t *testing.T) {
	e := newEngine(t)
	ctx := context.Background()
	sw := writeLegacyRelease(t, t.TempDir())
	s, err := e.LoadSoftware(sw)
	if err != nil {
		t.Fatal(err)
	}
	part := Partition{ID: "slappart0", Path: filepath.Join(e.Root, "instance", "slappart0"), IPv4: "127.9.0.1"}
	inst, err := e.Instantiate(ctx, &InstanceRequest{Software: s, Type: "default", Partition: part}, true)
	if err != nil || len(inst.Report.Actions) != 1 || !strings.Contains(inst.Report.Actions[0].Reason, "rendered when the software is installed") {
		t.Fatalf("plan before install: %+v %v", inst, err)
	}
	if err := e.InstallSoftware(ctx, s, false, false); err != nil {
		t.Fatal(err)
	}
	req := &recordingRequester{conn: map[string]any{"url": "u"}}
	if _, err := e.Instantiate(ctx, &InstanceRequest{Software: s, Type: "default", Partition: part, Requester: req}, false); err != nil {
		t.Fatal(err)
	}
	inst, err = e.Instantiate(ctx, &InstanceRequest{Software: s, Type: "default", Partition: part, Requester: req}, true)
	if err != nil {
		t.Fatal(err)
	}
	acts := actions(inst.Report)
	if acts["switch-softwaretype/directory"] != Unchanged || acts["switch-softwaretype/server"] != Unchanged || len(acts) < 3 {
		t.Errorf("plan of the applied instance: %v", acts)
	}
	inst, err = e.Instantiate(ctx, &InstanceRequest{Software: s, Type: "default", Params: map[string]any{"seconds": 3}, Partition: part, Requester: req}, true)
	if err != nil {
		t.Fatal(err)
	}
	acts = actions(inst.Report)
	// The nested profile is rendered from the new parameters: known after apply.
	if acts["instance-default"] != Reinstall || acts["switch-softwaretype"] != Install {
		t.Errorf("plan: %v", acts)
	}
	b, _ := os.ReadFile(filepath.Join(part.Path, "etc", "service", "server"))
	if !strings.Contains(string(b), "sleep 30") {
		t.Errorf("plan changed the wrapper: %s", b)
	}
}

func TestWireParameters(t *testing.T) {
	p := map[string]any{"n": 3.0, "s": "x", "o": map[string]any{"a": true}}
	j := wireParameters(p, "json-in-xml")
	var back map[string]any
	if err := json.Unmarshal([]byte(j["_"].(string)), &back); err != nil || back["s"] != "x" || len(j) != 1 {
		t.Errorf("json-in-xml: %v", j)
	}
	x := wireParameters(p, "xml")
	if x["n"] != "3" || x["s"] != "x" || x["o"] != `{"a":true}` {
		t.Errorf("xml: %v", x)
	}
}

// A partition's profiles are read with its user's rights: a profile the
// partition controls cannot make the node read (and an error quote) a
// file the partition user could not read.
func TestLegacyProfilesReadAsPartitionUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to read as another user")
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	secret := filepath.Join(dir, "secret.cfg")
	os.WriteFile(secret, []byte("SECRET-LINE\n"), 0o600)
	nobody := &syscall.Credential{Uid: 65534, Gid: 65534}
	if _, err := readAs(nobody, secret); !errors.Is(err, fs.ErrPermission) {
		t.Fatalf("read as nobody: %v", err)
	}
	prof := filepath.Join(dir, "instance.cfg")
	os.WriteFile(prof, []byte("[buildout]\nextends = secret.cfg\n"), 0o644)
	_, err := buildout.Load(prof, buildout.LoadOptions{ReadFile: func(p string) ([]byte, error) { return readAs(nobody, p) }})
	if err == nil || strings.Contains(err.Error(), "SECRET") || !errors.Is(err, fs.ErrPermission) {
		t.Fatalf("extends of a root-only file: %v", err)
	}
	if b, err := readAs(nil, secret); err != nil || string(b) != "SECRET-LINE\n" {
		t.Fatalf("read as the node: %q %v", b, err)
	}
}

// An instance profile converted by `slapnode convert` is applied as the
// node applies one it converts in memory: slapgrid's tail and
// slapconfiguration computed by the node, publish read after the apply.
func TestConvertedInstanceProfile(t *testing.T) {
	e := newEngine(t)
	ctx := context.Background()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "instance.cfg")
	os.WriteFile(cfg, []byte(`[buildout]
parts = publish

[slap-configuration]
recipe = slapos.cookbook:slapconfiguration
computer = ${slap-connection:computer-id}
configuration.greeting = Hello

[directory]
recipe = slapos.cookbook:mkdirectory
etc = ${buildout:directory}/etc

[publish]
recipe = slapos.cookbook:publish
greeting = ${slap-configuration:configuration.greeting} ${slap-configuration:configuration.name}
partition = ${slap-connection:partition-id}
etc = ${directory:etc}
state = ${slap-connection:requested-state}
ipv4 = ${slap-configuration:ipv4-random}
`), 0o644)
	rel, err := buildout.ConvertRelease([]string{cfg}, buildout.ConvertOptions{Kind: "instance"})
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "instance.hcl"), rel.Results[0].HCL, 0o644)
	os.WriteFile(filepath.Join(dir, "software.hcl"), []byte("software \"converted\" {\n  version = \"1\"\n}\ninstance \"default\" {\n  profile = \"instance.hcl\"\n}\n"), 0o644)
	s, err := e.LoadSoftware(filepath.Join(dir, "software.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.InstallSoftware(ctx, s, false, false); err != nil {
		t.Fatal(err)
	}
	part := Partition{ID: "slappart0", Path: filepath.Join(e.Root, "instance", "slappart0"), IPv4: "127.9.0.1"}
	inst, err := e.Instantiate(ctx, &InstanceRequest{Software: s, Params: map[string]any{"name": "World"}, Partition: part, State: "started"}, false)
	if err != nil {
		t.Fatalf("%v\n%s", err, rel.Results[0].HCL)
	}
	want := map[string]any{"greeting": "Hello World", "partition": "slappart0", "etc": filepath.Join(part.Path, "etc"), "state": "started", "ipv4": "127.9.0.1"}
	for k, v := range want {
		if inst.Connection[k] != v {
			t.Errorf("published %s = %#v, want %#v (all: %v)", k, inst.Connection[k], v, inst.Connection)
		}
	}
	if st, err := os.Stat(filepath.Join(part.Path, "etc")); err != nil || !st.IsDir() {
		t.Errorf("mkdirectory did not run: %v", err)
	}
}

// A node formatted with a software_root installs its releases there (the
// md5 of their URL, as slapgrid names them).
func TestSoftwareRoot(t *testing.T) {
	e := newEngine(t)
	e.SoftwareRoot = filepath.Join(t.TempDir(), "opt", "slapgrid")
	sw := writeLegacyRelease(t, t.TempDir())
	s, err := e.LoadSoftware(sw)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(e.SoftwareRoot, SoftwareName(sw)); s.Path != want {
		t.Fatalf("software directory %s, want %s", s.Path, want)
	}
	if err := e.InstallSoftware(context.Background(), s, false, false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(e.SoftwareRoot, SoftwareName(sw), "instance.cfg")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(SoftwareDir(e.Root, sw)); !os.IsNotExist(err) {
		t.Errorf("installed under the node root too: %v", err)
	}
}
