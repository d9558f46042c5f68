package promises

import (
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
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

func expect(t *testing.T, out recipe.CheckOutput, ok bool, msg string) {
	t.Helper()
	if out.OK != ok || !strings.Contains(out.Message, msg) {
		t.Fatalf("check = %v %q, want %v and a message containing %q", out.OK, out.Message, ok, msg)
	}
}

func TestPortListening(t *testing.T) {
	e := recipetest.New(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	expect(t, e.Check("check_port_listening", map[string]any{"host": "127.0.0.1", "port": port}), true, "accepts connections")
	l.Close()
	expect(t, e.Check("check_port_listening", map[string]any{"host": "127.0.0.1", "port": strconv.Itoa(port), "timeout": "1s"}), false, "does not accept connections")
	expect(t, e.Check("check_port_listening", map[string]any{"host": "::1", "port": 0}), false, "not between 1 and 65535")
	expect(t, e.Check("check_port_listening", map[string]any{"port": 1}), false, `option "host" is required`)
}

func TestURLAvailable(t *testing.T) {
	e := recipetest.New(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte("<h1>Hello slapnode</h1>"))
	}))
	defer srv.Close()
	expect(t, e.Check("check_url_available", map[string]any{"url": srv.URL}), true, "answered 200")
	expect(t, e.Check("check_url_available", map[string]any{"url": srv.URL, "content": "Hello"}), true, "answered 200")
	expect(t, e.Check("check_url_available", map[string]any{"url": srv.URL, "content": "Bye"}), false, `does not contain "Bye"`)
	expect(t, e.Check("check_url_available", map[string]any{"url": srv.URL + "/missing"}), false, "answered 404, expected 200")
	expect(t, e.Check("check_url_available", map[string]any{"url": srv.URL + "/missing", "http_code": "404"}), true, "answered 404")
	srv.Close()
	expect(t, e.Check("check_url_available", map[string]any{"url": srv.URL, "timeout": 1}), false, "GET "+srv.URL)

	tls := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer tls.Close()
	expect(t, e.Check("check_url_available", map[string]any{"url": tls.URL}), false, "certificate")
	expect(t, e.Check("check_url_available", map[string]any{"url": tls.URL, "verify": "false"}), true, "answered 200")
}

func TestFileState(t *testing.T) {
	e := recipetest.New(t)
	e.WriteFile(e.Path("full"), "status: ok\n")
	e.WriteFile(e.Path("empty"), "")
	cases := []struct {
		opts map[string]any
		ok   bool
		msg  string
	}{
		{map[string]any{"path": "full"}, true, "exists"},
		{map[string]any{"path": "nope"}, false, "does not exist"},
		{map[string]any{"path": "nope", "state": "absent"}, true, "is absent"},
		{map[string]any{"path": "full", "state": "absent"}, false, "exists"},
		{map[string]any{"path": "empty", "state": "empty"}, true, "is empty"},
		{map[string]any{"path": "full", "state": "empty"}, false, "is not empty"},
		{map[string]any{"path": "full", "state": "not-empty"}, true, "is not empty"},
		{map[string]any{"path": "full", "state": "contains", "content": "ok"}, true, `contains "ok"`},
		{map[string]any{"path": "full", "state": "contains", "content": "fail"}, false, `does not contain "fail"`},
		{map[string]any{"path": "full", "state": "not-contains", "content": "fail"}, true, `does not contain`},
		{map[string]any{"path": "full", "state": "contains"}, false, "needs the content option"},
		{map[string]any{"path": "full", "state": "weird"}, false, `state "weird"`},
	}
	for _, c := range cases {
		expect(t, e.Check("check_file_state", c.opts), c.ok, c.msg)
	}
}

func TestUnknownPromise(t *testing.T) {
	expect(t, recipetest.New(t).Check("check_nothing", nil), false, `has no promise "check_nothing"`)
}

func TestHostChecksDeclared(t *testing.T) {
	e := recipetest.New(t)
	for _, name := range []string{"check_command", "check_service_running", "check_free_disk_space"} {
		if !slices.Contains(recipe.Default().PromiseNames(), name) {
			t.Errorf("%s is not described: profiles naming it would be refused at apply", name)
		}
		expect(t, e.Check(name, map[string]any{"command": "x", "service": "x"}), false, "run by the node's promise runner")
	}
}
