package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

// The slapos-memo fixture (cmd/slapnode/testdata/slapos-memo) is written as
// current SlapOS releases are (software/fluentd, software/llamacpp), in the
// ways slapos-hello and slapos-stack are not: the software profile extends
// a component (cmmi with configure-options, environment, make-options,
// pre-configure/post-install, shared = true, a url built from
// ${:_buildout_section_name_}) and buildout.hash.cfg, appends to parts
// (+=), downloads its files through <= macros naming ${:filename}
// (slapos.recipe.build:download, filenames with a directory), and renders
// the instance profile with plain slapos.recipe.template; the partition
// renders the profile of its software type with jinja2 (import-list,
// {% from ... import ... with context %}, macros with kwargs, {% do %},
// extra-context, key/raw/section). slapconfiguration.jsonschema with a
// json-in-xml software.cfg.json and set-default; RootSoftwareInstance;
// free_port; a wrapper with environment and hash-files (a parameter that
// changes only the configuration file restarts only that service);
// promise plugins check_socket_listening (TCP and unix socket),
// check_url_available, check_command_execute, check_file_state and a
// custom GenericPromise plugin; slapos.recipe.build init code reading a
// whole ${slap-configuration:configuration} dict and install code;
// userinfo, generate.password, cron.d, publish.serialised with -extends.
const slaposMemo = "cmd/slapnode/testdata/slapos-memo/software.cfg"

var (
	memoURLRe   = regexp.MustCompile(`(?m)^  memo-url = (http://\S+)`)
	healthURLRe = regexp.MustCompile(`(?m)^  health-url = (http://\S+)`)
)

func checkSlaposMemo(t *testing.T, cred *syscall.Credential, root, profile, port, healthPort string) {
	t.Helper()
	apply := legacyApply(t, cred, root, profile, "--param", "port="+port, "--param", "health-port="+healthPort)
	r := apply()
	saysAll(t, "first apply", r.stdout, "+ memo (cookbook:cmmi)", "switch-softwaretype: software type default runs",
		"promise memo-listening: ok", "promise memo-socket: ok", "promise health-listening: ok",
		"promise version-written: ok", "promise check-memo-title: ok", "services: started health, memo",
		"title = Nothing to remember", "title-count = 3", "titles = Nothing to remember, first, second", "part-count = 2")
	memo, health := memoURLRe.FindStringSubmatch(r.stdout), healthURLRe.FindStringSubmatch(r.stdout)
	if memo == nil || health == nil {
		t.Fatalf("connection parameters not published:\n%s", r.stdout)
	}
	if body := get(t, memo[1]); body != "Nothing to remember\n" {
		t.Fatalf("memo answers %q", body)
	}
	if body := get(t, memo[1]+"version"); body != "memo 0.3 (memo fixture)\n" {
		t.Fatalf("memo's version (configure-options, make-options) is %q", body)
	}
	if body := get(t, health[1]); body != "OK\n" {
		t.Fatalf("health answers %q", body)
	}
	out := runAs(t, cred, root, "output")
	if out.code != 0 || !strings.Contains(out.stdout, memo[1]) {
		t.Errorf("slapnode output (%d):\n%s%s", out.code, out.stdout, out.stderr)
	}
	pr := runAs(t, cred, root, "promise", "run")
	for _, p := range []string{"memo-listening", "memo-socket", "health-listening", "version-written", "check-memo-title"} {
		if !regexp.MustCompile(p + `\s+ok`).MatchString(pr.stdout) {
			t.Errorf("promise run: %s not ok (%d):\n%s%s", p, pr.code, pr.stdout, pr.stderr)
		}
	}

	r = apply()
	saysAll(t, "second apply is not a no-op", r.stdout, "software: already installed", "instance: 0 installed, 0 reinstalled, 0 uninstalled", "services: unchanged health, memo")

	// The title changes only memo's configuration file: its wrapper hashes
	// it (hash-files), so memo restarts and health does not.
	r = apply("--param", "title=Groceries")
	saysAll(t, "after title=Groceries", r.stdout, "services: restarted memo; unchanged health", "promise check-memo-title: ok", "title = Groceries")
	if body := get(t, memo[1]); body != "Groceries\n" {
		t.Fatalf("memo answers %q after the change", body)
	}

	// The other software type, in a partition of its own.
	r = runAs(t, cred, root, "apply", profile, "--name", "archive", "--type", "archive", "--param", "title=Kept")
	if r.code != 0 || !strings.Contains(r.stdout, "promise archive-written: ok") || !strings.Contains(r.stdout, "frequency = 0 3 * * *") {
		t.Fatalf("archive type (%d):\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	part := filepath.Join(root, "instance", "slappart1")
	if b, err := os.ReadFile(filepath.Join(part, "etc", "cron.d", "archive-title")); err != nil || string(b) != "0 3 * * * "+filepath.Join(part, "etc", "run", "archive-title")+"\n" {
		t.Errorf("cron entry: %q %v", b, err)
	}
	if b, err := os.ReadFile(filepath.Join(part, "srv", "archive", "title.txt")); err != nil || string(b) != "Kept\n" {
		t.Errorf("archive: %q %v", b, err)
	}
}

func TestSlaposMemoRootless(t *testing.T) {
	requireBuiltins(t)
	cred, root, profile := legacyRootless(t, "../testdata/slapos-memo", "software.cfg", slaposMemo)
	checkSlaposMemo(t, cred, root, profile, "18530", "18531")
}

// On a formatted node: the services run as the partitions' users.
func TestSlaposMemoFormattedNode(t *testing.T) {
	requireBuiltins(t)
	root := legacyFormatted(t, "memo", "slntestmm")
	checkSlaposMemo(t, nil, root, slaposMemo, "18532", "18533")
	checkServiceUser(t, root, "memo", "slntestmm0")
}
