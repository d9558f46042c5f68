package instance

import (
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	recipe "github.com/slapnode/slapnode/recipes-wasm/sdk/go"
	"github.com/slapnode/slapnode/recipes-wasm/sdk/go/recipetest"
)

func TestMain(m *testing.M) {
	Register(recipe.Default())
	os.Exit(m.Run())
}

// The conversions slapos.cookbook's own tests expect of cron.d.
func TestSystemdToCron(t *testing.T) {
	for spec, want := range map[string]string{
		"daily":                "0 0 * * *",
		"Sat,Mon-Thu,Sun":      "0 0 * * 0,1-4,6",
		"mon,sun *-* 2,1:23":   "23 2,1 * * 0,1",
		"Wed, 17:48":           "48 17 * * 3",
		"Wed-Sat,Tue 10-* 1:2": "2 1 * 10 2,3-6",
		"*-*-7 0:0:0":          "0 0 7 * *",
		"10-15":                "0 0 15 10 *",
		"monday *-12-* 17:00":  "00 17 * 12 1",
		"12,14,13,12:20,10,30": "20,10,30 12,14,13,12 * * *",
		"*-1/2-1,3 *:30":       "30 * 1,3 1-11/2 *",
		"03-05 08:05":          "05 08 05 03 *",
		"08:05:00":             "05 08 * * *",
		"Sat,Sun 12-* 08:05":   "05 08 * 12 0,6",
		"*:25/20":              "25-45/20 * * * *",
	} {
		got, err := SystemdToCron(spec)
		if err != nil || got != want {
			t.Errorf("SystemdToCron(%q) = %q, %v; want %q", spec, got, err, want)
		}
	}
	for _, bad := range []string{"test", "", "7", "121212:1:2", "Wed *-1", "08:05:40", "2003-03-05",
		"0-1", "13-1", "8/5-1", "1-0", "1-32", "1-14/18", "24:0", "8/16:0", "0:60", "0:15/45", "a b c d"} {
		if got, err := SystemdToCron(bad); err == nil {
			t.Errorf("SystemdToCron(%q) = %q, want an error", bad, got)
		}
	}
}

func TestCronEntry(t *testing.T) {
	e := recipetest.New(t)
	out := e.MustInstall("c", "cron-entry", map[string]any{"name": "backup", "time": "Sat,Sun 08:05", "command": "/bin/backup --all", "cron-entries": "etc/cron.d"})
	path := e.Path("etc", "cron.d", "backup")
	if out.Installed[0] != path || e.ReadFile(path) != "05 08 * * 0,6 /bin/backup --all\n" {
		t.Fatalf("%+v: %q", out, e.ReadFile(path))
	}
	e.MustInstall("f", "cron-entry", map[string]any{"name": "x", "frequency": "*/5 * * * *", "time": "ignored", "command": "true", "cron-entries": "etc/cron.d"})
	if e.ReadFile(e.Path("etc", "cron.d", "x")) != "*/5 * * * * true\n" {
		t.Fatal("frequency not used as is")
	}
	e.MustFail("bad", "cron-entry", map[string]any{"name": "x", "time": "2003-03-05", "command": "true", "cron-entries": "d"}, "Invalid systemd calendar spec")
}

func TestFreePort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	busy := l.Addr().(*net.TCPAddr).Port
	e := recipetest.New(t)
	out := e.MustInstall("p", "free-port", map[string]any{"ip": "127.0.0.1", "minimum": int64(busy), "maximum": strconv.Itoa(busy + 10)})
	if out.Outputs["port"] == strconv.Itoa(busy) || out.Outputs["port"] == "0" {
		t.Fatalf("port %v (busy %d)", out.Outputs["port"], busy)
	}
	first := out.Outputs["port"]
	// Kept across applies, even once something listens there.
	l2, err := net.Listen("tcp", "127.0.0.1:"+first.(string))
	if err == nil {
		defer l2.Close()
	}
	if out := e.Update("p", "free-port", map[string]any{"ip": "127.0.0.1", "minimum": int64(busy), "maximum": int64(busy + 10)}); out.Outputs["port"] != first {
		t.Fatalf("port changed: %v", out.Outputs)
	}
	if out := e.MustInstall("eq", "free-port", map[string]any{"ip": "127.0.0.1", "minimum": "8080", "maximum": "8080"}); out.Outputs["port"] != "8080" {
		t.Fatal(out.Outputs)
	}
	if out := e.MustInstall("noip", "free-port", map[string]any{"ip": "not-an-ip"}); out.Outputs["port"] != "0" {
		t.Fatal(out.Outputs)
	}
	if out := e.MustInstall("full", "free-port", map[string]any{"ip": "127.0.0.1", "minimum": int64(busy), "maximum": int64(busy + 1)}); out.Outputs["port"] != "0" {
		t.Fatal(out.Outputs)
	}
}

func TestUserinfo(t *testing.T) {
	for _, c := range []string{"id", "getent"} {
		if _, err := exec.LookPath(c); err != nil {
			t.Skip(c + " is not installed")
		}
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	e := recipetest.New(t)
	out := e.MustInstall("u", "userinfo", map[string]any{})
	if out.Outputs["pw-uid"] != u.Uid || out.Outputs["pw-gid"] != u.Gid || out.Outputs["pw-name"] != u.Username || out.Outputs["pw-dir"] != u.HomeDir || out.Outputs["gr-gid"] != u.Gid || out.Outputs["pw-shell"] == "" {
		t.Fatalf("userinfo %v, current user %+v", out.Outputs, u)
	}
	e.Host.AllowExec = []string{"sh"}
	e.MustFail("denied", "userinfo", map[string]any{}, `allow_exec = ["id", "getent"]`)
}

func TestPromisePluginAndPortCheck(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is not installed")
	}
	e := recipetest.New(t)
	lib := e.Path("lib")
	e.WriteFile(filepath.Join(lib, "myplugin.py"), "class Check:\n  def __init__(self, config):\n    self.config = config\nRunPromise = None\n")
	out := e.MustInstall("pp", "promise-plugin", map[string]any{
		"module": "myplugin", "class": "Check", "output": "etc/plugin/check.py", "python-path": []any{lib},
		"config-url": "http://[::1]:8080/'x'", "config-http__2ecode": "401", "eggs": "slapos.toolbox",
	})
	plugin := e.Path("etc", "plugin", "check.py")
	if out.Outputs["output"] != plugin {
		t.Fatal(out.Outputs)
	}
	got, err := exec.Command("python3", "-c", "exec(open('"+plugin+"').read()); print(RunPromise.__name__, sorted(extra_config_dict.items()))").CombinedOutput()
	if err != nil || string(got) != "Check [('http.code', '401'), ('url', \"http://[::1]:8080/'x'\")]\n" {
		t.Fatalf("plugin: %q, %v\n%s", got, err, e.ReadFile(plugin))
	}
	e.WriteFile(e.Path("promise.py"), "RunPromise = 'from a file'\n")
	e.MustInstall("pf", "promise-plugin", map[string]any{"file": e.Path("promise.py"), "output": "etc/plugin/f.py"})
	got, err = exec.Command("python3", "-c", "exec(open('"+e.Path("etc", "plugin", "f.py")+"').read()); print(RunPromise)").CombinedOutput()
	if err != nil || string(got) != "from a file\n" {
		t.Fatalf("file plugin: %q, %v", got, err)
	}
	e.MustFail("both", "promise-plugin", map[string]any{"module": "a", "file": "b", "output": "o"}, "not both")
	e.MustFail("badmod", "promise-plugin", map[string]any{"module": "a.b-c", "output": "o"}, "not a valid module name")

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	e.MustInstall("pc", "port-check", map[string]any{"path": "etc/promise/listening", "hostname": "127.0.0.1", "port": int64(port)})
	check := e.Path("etc", "promise", "listening")
	if out, err := exec.Command(check).CombinedOutput(); err != nil {
		t.Fatalf("listening port reported down: %v %s", err, out)
	}
	l.Close()
	cmd := exec.Command(check)
	msg, _ := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 127 || !strings.Contains(string(msg), "isn't listening") {
		t.Fatalf("closed port: exit %d, %q", cmd.ProcessState.ExitCode(), msg)
	}
}

func TestURLAndParamChecks(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed")
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/private":
			w.WriteHeader(401)
		case "/gone":
			w.WriteHeader(404)
		}
	}))
	defer srv.Close()
	e := recipetest.New(t)
	run := func(path string) (int, string) {
		cmd := exec.Command(e.Path(path))
		out, _ := cmd.CombinedOutput()
		return cmd.ProcessState.ExitCode(), string(out)
	}
	e.MustInstall("ok", "url-check", map[string]any{"path": "p/ok", "url": srv.URL + "/"})
	e.MustInstall("gone", "url-check", map[string]any{"path": "p/gone", "url": srv.URL + "/gone"})
	e.MustInstall("priv", "url-check", map[string]any{"path": "p/priv", "url": srv.URL + "/private", "check-secure": "1"})
	e.MustInstall("code", "url-check", map[string]any{"path": "p/code", "url": srv.URL + "/gone", "http_code": int64(404)})
	e.MustInstall("down", "url-check", map[string]any{"path": "p/down", "url": "http://127.0.0.1:1/"})
	for path, want := range map[string]int{"p/ok": 0, "p/gone": 2, "p/priv": 0, "p/code": 0, "p/down": 1} {
		if code, out := run(path); code != want {
			t.Errorf("%s: exit %d, want %d (%s)", path, code, want, out)
		}
	}
	e.MustFail("bad", "url-check", map[string]any{"path": "p/bad", "url": "x", "http_code": "2xx"}, "must be a number")

	for name, c := range map[string]struct {
		opts map[string]any
		exit int
	}{
		"v6":      {map[string]any{"value": "fd00::1", "expected-type": "ipv6"}, 0},
		"not6":    {map[string]any{"value": "10.0.0.1", "expected-type": "ipv6"}, 127},
		"v4":      {map[string]any{"value": "10.0.0.1", "expected-type": "ipv4"}, 0},
		"not4":    {map[string]any{"value": "fd00::1", "expected-type": "ipv4"}, 127},
		"eq":      {map[string]any{"value": "a", "expected-value": "a"}, 0},
		"ne":      {map[string]any{"value": "a", "expected-value": "b"}, 127},
		"not":     {map[string]any{"value": "a", "expected-not-value": "a"}, 127},
		"nothing": {map[string]any{"value": "a"}, 0},
	} {
		c.opts["path"] = "pc/" + name
		e.MustInstall(name, "param-check", c.opts)
		if code, out := run("pc/" + name); code != c.exit {
			t.Errorf("param-check %s: exit %d, want %d (%s)", name, code, c.exit, out)
		}
	}
}
