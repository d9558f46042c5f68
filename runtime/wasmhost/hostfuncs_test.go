package wasmhost

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// hostCall runs the reactor's "host" recipe: it sends request to host
// function fn and returns the decoded response.
func hostCall(t *testing.T, s *Session, m *Module, fn string, request any) map[string]any {
	t.Helper()
	r := call(t, s, m, "host", map[string]any{"fn": fn, "request": request})
	if r.Error != "" {
		t.Fatalf("%s: %s", fn, r.Error)
	}
	resp, ok := r.Outputs["response"].(map[string]any)
	if !ok {
		t.Fatalf("%s: no response in %v", fn, r.Outputs)
	}
	return resp
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestDownload(t *testing.T) {
	h, _ := newHost(t)
	content := []byte("the tarball contents\n")
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/file", "/md5file":
			hits.Add(1)
			time.Sleep(100 * time.Millisecond) // let concurrent callers pile up
			w.Write(content)
		case "/redirect":
			http.Redirect(w, r, "http://localhost:1/elsewhere", http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	m := load(t, h, "ctest", "reactor", allGrants)
	profile := t.TempDir()
	must(t, os.WriteFile(filepath.Join(profile, "local.txt"), content, 0o644))
	s := newSession(t, h, SessionConfig{ProfileDir: profile})
	good := sum(content)
	want := filepath.Join(h.cfg.DownloadDir, "sha256", good[:2], good)

	// Concurrent downloads of one file from several sessions: one transfer.
	var wg sync.WaitGroup
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := h.NewSession(SessionConfig{})
			defer s.Close(context.Background())
			resp := hostCall(t, s, m, "download", map[string]any{"url": srv.URL + "/file", "sha256": good})
			if resp["path"] != want || resp["size"] != float64(len(content)) || resp["sha256"] != good {
				t.Errorf("download: %v", resp)
			}
		}()
	}
	wg.Wait()
	if b, err := os.ReadFile(want); err != nil || string(b) != string(content) {
		t.Fatalf("cache file: %q %v", b, err)
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("%d transfers for one file, want 1", n)
	}
	if ents, _ := os.ReadDir(filepath.Join(h.cfg.DownloadDir, "tmp")); len(ents) != 0 {
		t.Errorf("temporary files left: %v", ents)
	}

	bad := strings.Repeat("0", 64)
	resp := hostCall(t, s, m, "download", map[string]any{"url": srv.URL + "/md5file", "sha256": bad})
	if e, _ := resp["error"].(string); !strings.Contains(e, "expected sha256 "+bad) || !strings.Contains(e, "got sha256 "+good) {
		t.Errorf("wrong checksum: %v", resp)
	}
	md := md5.Sum(content)
	resp = hostCall(t, s, m, "download", map[string]any{"url": srv.URL + "/md5file", "md5": hex.EncodeToString(md[:])})
	if resp["path"] != want {
		t.Errorf("md5 download: %v", resp)
	}
	hits.Store(0)
	hostCall(t, s, m, "download", map[string]any{"url": srv.URL + "/md5file", "md5": hex.EncodeToString(md[:])})
	if hits.Load() != 0 {
		t.Error("md5 download not served from the cache")
	}
	// A corrupted cache entry is detected and fetched again.
	os.Chmod(want, 0o644)
	must(t, os.WriteFile(want, []byte("bit rot"), 0o644))
	resp = hostCall(t, s, m, "download", map[string]any{"url": srv.URL + "/file", "sha256": good})
	if b, _ := os.ReadFile(want); resp["path"] != want || string(b) != string(content) || hits.Load() != 1 {
		t.Errorf("corrupted entry: %v, content %q, %d transfers", resp, b, hits.Load())
	}
	resp = hostCall(t, s, m, "download", map[string]any{"url": "local.txt", "sha256": good})
	if resp["path"] != want {
		t.Errorf("profile file: %v", resp)
	}
	for _, tc := range []struct {
		req  map[string]any
		want string
	}{
		{map[string]any{"url": srv.URL + "/file"}, "a checksum is required"},
		{map[string]any{"url": "file:///etc/passwd", "sha256": good}, "outside the profile directory"},
		{map[string]any{"url": "../x", "sha256": good}, "outside the profile directory"},
		{map[string]any{"url": "http://localhost:1/x", "sha256": good}, "http://localhost:1 is not granted to module \"ctest\""},
		{map[string]any{"url": srv.URL + "/missing", "sha256": bad}, "404 Not Found"},
		{map[string]any{"url": srv.URL + "/redirect", "sha256": bad}, "redirect: http://localhost:1 is not granted"},
		{map[string]any{"url": "ftp://x/y", "sha256": good}, "only http, https and file URLs"},
	} {
		resp := hostCall(t, s, m, "download", tc.req)
		if e, _ := resp["error"].(string); !strings.Contains(e, tc.want) {
			t.Errorf("%v: %v, want %q", tc.req, resp, tc.want)
		}
	}
}

func TestExec(t *testing.T) {
	h, rec := newHost(t)
	m := load(t, h, "ctest", "reactor", allGrants)
	home := t.TempDir()
	var hooked, started atomic.Int32
	s := newSession(t, h, SessionConfig{
		Mounts:      []Mount{{HostPath: home}},
		ExecHook:    func(*exec.Cmd) error { hooked.Add(1); return nil },
		ExecStarted: func(int) error { started.Add(1); return nil },
	})
	resp := hostCall(t, s, m, "exec", map[string]any{"argv": []string{"echo", "hello", "world"}})
	if resp["exit_code"] != 0.0 || resp["output"] != "hello world\n" || resp["error"] != "" {
		t.Fatalf("echo: %v", resp)
	}
	if !rec.has("hello world") {
		t.Error("command output was not streamed to the log")
	}
	resp = hostCall(t, s, m, "exec", map[string]any{
		"argv": []string{"sh", "-c", `echo "$PATH|$HOME|$LANG|$CFLAGS|$SECRET|$(pwd)"; exit 3`},
		"env":  map[string]string{"CFLAGS": "-O2"},
	})
	wantOut := fmt.Sprintf("/usr/local/bin:/usr/bin:/bin|%s|C.UTF-8|-O2||%s\n", home, home)
	if resp["exit_code"] != 3.0 || resp["output"] != wantOut {
		t.Fatalf("sh: %v, want output %q", resp, wantOut)
	}
	start := time.Now()
	resp = hostCall(t, s, m, "exec", map[string]any{"argv": []string{"sh", "-c", "sleep 30 & sleep 30"}, "timeout_ms": 300})
	if e, _ := resp["error"].(string); !strings.Contains(e, "timed out after 300ms") || time.Since(start) > 10*time.Second {
		t.Fatalf("timeout: %v after %s", resp, time.Since(start))
	}
	for _, tc := range []struct {
		req  map[string]any
		want string
	}{
		{map[string]any{"argv": []string{"ls"}}, `exec of "ls" is not granted to module "ctest": add it to allow_exec`},
		{map[string]any{"argv": []string{"/bin/echo"}}, `exec of "/bin/echo" is not granted`},
		{map[string]any{"argv": []string{}}, "argv is empty"},
		{map[string]any{"argv": []string{"echo"}, "dir": "/etc"}, `dir "/etc" is not inside a directory granted`},
	} {
		resp := hostCall(t, s, m, "exec", tc.req)
		if e, _ := resp["error"].(string); !strings.Contains(e, tc.want) {
			t.Errorf("%v: %v, want %q", tc.req, resp, tc.want)
		}
	}
	if hooked.Load() != 3 || started.Load() != 3 {
		t.Errorf("hooks ran %d/%d times, want 3", hooked.Load(), started.Load())
	}
	refusing := newSession(t, h, SessionConfig{ExecHook: func(*exec.Cmd) error { return errors.New("no cgroup") }})
	resp = hostCall(t, refusing, m, "exec", map[string]any{"argv": []string{"echo"}})
	if e, _ := resp["error"].(string); !strings.Contains(e, "refused by the node: no cgroup") {
		t.Errorf("hook refusal: %v", resp)
	}
	if os.Getuid() == 0 {
		nobody := newSession(t, h, SessionConfig{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}, Home: "/"})
		resp = hostCall(t, nobody, m, "exec", map[string]any{"argv": []string{"sh", "-c", "id -u; id -g"}})
		if resp["output"] != "65534\n65534\n" {
			t.Errorf("credential: %v", resp)
		}
	}
	// A command missing from the host PATH dirs.
	h2, err := New(context.Background(), Config{PathDirs: []string{t.TempDir()}})
	must(t, err)
	defer h2.Close(context.Background())
	m2, err := h2.Load(context.Background(), "ctest", module(t, "reactor"), allGrants)
	must(t, err)
	resp = hostCall(t, h2.NewSession(SessionConfig{}), m2, "exec", map[string]any{"argv": []string{"echo"}})
	if e, _ := resp["error"].(string); !strings.Contains(e, `command "echo" not found in`) {
		t.Errorf("lookup: %v", resp)
	}
}

func TestNetwork(t *testing.T) {
	h, _ := newHost(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	closedPort := closed.Addr().(*net.TCPAddr).Port
	closed.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "pong")
	}))
	defer srv.Close()

	g := allGrants
	g.Net = []string{fmt.Sprintf("tcp://127.0.0.1:%d", port), fmt.Sprintf("tcp://[::1]:%d", closedPort), "tcp://127.0.0.1:" + fmt.Sprint(closedPort), srv.URL}
	m := load(t, h, "ctest", "reactor", g)
	s := newSession(t, h, SessionConfig{})
	if resp := hostCall(t, s, m, "tcp_probe", map[string]any{"host": "127.0.0.1", "port": port}); resp["ok"] != true {
		t.Errorf("probe: %v", resp)
	}
	resp := hostCall(t, s, m, "tcp_probe", map[string]any{"host": "127.0.0.1", "port": closedPort})
	if resp["ok"] != false || resp["error"] != "connection refused" {
		t.Errorf("closed port: %v", resp)
	}
	resp = hostCall(t, s, m, "tcp_probe", map[string]any{"host": "127.0.0.2", "port": port})
	if e, _ := resp["error"].(string); resp["ok"] != false || !strings.Contains(e, "tcp://127.0.0.2:") || !strings.Contains(e, "not granted") {
		t.Errorf("ungranted probe: %v", resp)
	}
	resp = hostCall(t, s, m, "http_get", map[string]any{"url": srv.URL + "/ping"})
	if resp["status"] != 200.0 || resp["body"] != "pong" || resp["error"] != "" {
		t.Errorf("http_get: %v", resp)
	}
	resp = hostCall(t, s, m, "http_get", map[string]any{"url": fmt.Sprintf("http://127.0.0.1:%d/", closedPort)})
	if e, _ := resp["error"].(string); !strings.Contains(e, "not granted") {
		t.Errorf("ungranted http_get: %v", resp)
	}

	// A promise's own host/port options are its grants; they are not a
	// recipe's.
	trusted := load(t, h, "cookbook", "reactor", Grants{Trusted: true})
	in, _ := json.Marshal(map[string]any{"promise": "probe", "name": "listening",
		"options": map[string]any{"host": "127.0.0.1", "port": port}})
	out, err := s.Call(context.Background(), trusted, "promise_check", in)
	must(t, err)
	var pr struct {
		OK      bool   `json:"ok"`
		Message string `json:"message"`
	}
	must(t, json.Unmarshal(out, &pr))
	if !pr.OK {
		t.Errorf("promise: %+v", pr)
	}
	resp = hostCall(t, s, trusted, "tcp_probe", map[string]any{"host": "127.0.0.1", "port": port})
	if resp["ok"] != false {
		t.Errorf("a recipe of an ungranted trusted module probed: %v", resp)
	}
}

func TestNetPatterns(t *testing.T) {
	for _, tc := range []struct {
		pattern, scheme, host, port string
		want                        bool
	}{
		{"tcp://127.0.0.1:8080", "tcp", "127.0.0.1", "8080", true},
		{"tcp://127.0.0.1:8080", "tcp", "127.0.0.1", "8081", false},
		{"tcp://127.0.0.1:8080", "http", "127.0.0.1", "8080", false},
		{"http://[::1]:*", "http", "::1", "1234", true},
		{"http://[::1]:*", "http", "0:0::1", "80", true},
		{"https://*.example.org", "https", "a.b.example.org", "443", true},
		{"https://*.example.org", "https", "example.org", "443", false},
		{"https://*.example.org", "https", "evilexample.org", "443", false},
		{"https://*.example.org", "https", "a.example.org", "8443", false},
		{"http://Example.ORG", "http", "example.org", "80", true},
		{"*://10.0.0.1:5432", "tcp", "10.0.0.1", "5432", true},
		{"tcp://*:22", "tcp", "anything", "22", true},
	} {
		p, err := parseNetPattern(tc.pattern)
		if err != nil {
			t.Fatalf("%s: %v", tc.pattern, err)
		}
		if got := p.match(tc.scheme, tc.host, tc.port); got != tc.want {
			t.Errorf("%s matches %s://%s:%s = %v", tc.pattern, tc.scheme, tc.host, tc.port, got)
		}
	}
	for _, bad := range []string{"127.0.0.1:80", "tcp://127.0.0.1", "ftp://x:1", "http://x/path", "http://a*b.org", "tcp://::1:80", "tcp://x:0", "tcp://x:99999", "http://:80"} {
		if _, err := parseNetPattern(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
