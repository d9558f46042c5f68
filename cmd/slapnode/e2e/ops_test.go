package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// opsProfile is a release without any module: one service that exits 1 at
// its first run then stays up, so that the daemon logs an exit and a
// restart.
func opsProfile(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"software.hcl": "software \"opsdemo\" { version = \"1\" }\ninstance \"default\" { profile = \"instance.hcl\" }\n",
		"instance.hcl": `service "flaky" {
  command = ["/bin/sh", "-c", "[ -e flaky.ran ] && exec sleep 1000; touch flaky.ran; echo first run fails; exit 1"]
}
`,
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "software.hcl")
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(60 * time.Second) // a guard against a hang, not a timing check
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestDaemonStartedByApplyLogsAndServesMetrics: the daemon that apply
// starts in the background serves the metrics node.hcl configures, and its
// log (var/log/daemon.log) is slog text with levels and timestamps, in
// which a service's exit is logged with its exit code and the restart
// decision — no Go map dumps.
func TestDaemonStartedByApplyLogsAndServesMetrics(t *testing.T) {
	root := t.TempDir()
	stopNode(t, root)
	port := freePort(t)
	hcl := fmt.Sprintf("daemon {\n  metrics_address = \"127.0.0.1:%d\"\n}\n", port)
	if err := os.WriteFile(filepath.Join(root, "node.hcl"), []byte(hcl), 0o644); err != nil {
		t.Fatal(err)
	}
	r := run(t, root, "apply", "--settle", "0", opsProfile(t)) // the service fails its first run on purpose
	if r.code != 0 {
		t.Fatalf("apply exited %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	logPath := filepath.Join(root, "var", "log", "daemon.log")
	var log string
	waitUntil(t, "the flaky service's exit and restart in the daemon log", func() bool {
		b, _ := os.ReadFile(logPath)
		log = string(b)
		return strings.Contains(log, `msg="service exited"`) && strings.Count(log, `msg="service started"`) >= 2
	})
	exit := regexp.MustCompile(`(?m)^time=\S+ level=WARN msg="service exited" component=supervisor partition=slappart0 service=flaky pid=\d+ exit_code=1 ran=\S+ next="restarting in 1s \(failure 1 of at most 10\)"$`)
	if !exit.MatchString(log) || strings.Contains(log, "map[") {
		t.Errorf("daemon.log:\n%s", log)
	}
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		t.Fatalf("the daemon started by apply serves no metrics: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`slapnode_service_up{partition="slappart0",service="flaky",state="RUNNING"} 1`,
		`slapnode_service_restarts_total{partition="slappart0",service="flaky"} 1`,
		`slapnode_build_info{goversion="go`,
		"process_start_time_seconds ",
		"slapnode_builds_total{result=\"ok\"} ",
	} {
		if !strings.Contains(string(body), "\n"+want) {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
}

// startNodeRun runs 'slapnode node run' with stderr on a file of its own
// and waits until it serves; it returns the file.
func startNodeRun(t *testing.T, root string, env []string, args ...string) string {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), "stderr")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(slapnode, append([]string{"node", "run", "--root", root}, args...)...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = os.Environ()
	for _, e := range env {
		cmd.Env = append(cmd.Env, strings.ReplaceAll(e, "DEV:INO", fmt.Sprintf("%d:%d", st.Dev, st.Ino)))
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(90 * time.Second):
			cmd.Process.Kill()
		}
	})
	waitUntil(t, "the daemon to serve", func() bool {
		b, _ := os.ReadFile(logPath)
		return strings.Contains(string(b), "serving node root")
	})
	return logPath
}

// TestDaemonLogFormats: under journald (stderr is the stream
// JOURNAL_STREAM names) the daemon's lines carry their syslog priority and
// no timestamp of their own; --log-format json gives one JSON object per
// line.
func TestDaemonLogFormats(t *testing.T) {
	t.Run("journald", func(t *testing.T) {
		path := startNodeRun(t, t.TempDir(), []string{"JOURNAL_STREAM=DEV:INO"})
		b, _ := os.ReadFile(path)
		first := strings.SplitN(string(b), "\n", 2)[0]
		if !strings.HasPrefix(first, `<6>level=INFO msg="serving node root" root=`) || strings.Contains(string(b), "time=") {
			t.Errorf("journald lines:\n%s", b)
		}
	})
	t.Run("not journald", func(t *testing.T) {
		// JOURNAL_STREAM inherited but stderr redirected elsewhere: a file,
		// so text with timestamps.
		path := startNodeRun(t, t.TempDir(), []string{"JOURNAL_STREAM=1:2"})
		b, _ := os.ReadFile(path)
		if !regexp.MustCompile(`^time=\S+ level=INFO msg="serving node root"`).Match(b) {
			t.Errorf("text lines:\n%s", b)
		}
	})
	t.Run("json", func(t *testing.T) {
		path := startNodeRun(t, t.TempDir(), nil, "--log-format", "json", "--log-level", "debug")
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		n := 0
		for sc.Scan() {
			var rec map[string]any
			if err := json.Unmarshal(sc.Bytes(), &rec); err != nil || rec["level"] == nil || rec["time"] == nil || rec["msg"] == nil {
				t.Errorf("not a JSON record: %q (%v)", sc.Text(), err)
			}
			n++
		}
		if n == 0 {
			t.Error("no record")
		}
	})
	t.Run("bad format", func(t *testing.T) {
		r := run(t, t.TempDir(), "node", "run", "--log-format", "xml")
		if r.code != 64 || !strings.Contains(r.stderr, "--log-format \"xml\"") {
			t.Errorf("exit %d: %s", r.code, r.stderr)
		}
	})
}
