package daemon

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slapnode/slapnode/node/supervisor"
	"github.com/slapnode/slapnode/partition/promise"
)

// TestSystemdNotify: under systemd (a real NOTIFY_SOCKET datagram socket,
// as systemd makes for a Type=notify unit) the daemon says READY=1 only
// once its socket serves and the recorded services are restored, pings the
// watchdog at half of WATCHDOG_USEC, and says STOPPING=1 when it stops.
func TestSystemdNotify(t *testing.T) {
	root, dir := t.TempDir(), t.TempDir()
	// A first daemon records a started service; the second restores it.
	c, wait := serveInProcess(t, root)
	if _, err := c.Apply(context.Background(), "p1", []supervisor.ServiceSpec{sleeper(dir, "a")}); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := c.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := wait(); err != nil {
		t.Fatal(err)
	}

	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	t.Setenv("WATCHDOG_USEC", "200000") // 200ms: pings every 100ms
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))

	messages := make(chan string, 100)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				close(messages)
				return
			}
			messages <- string(buf[:n])
		}
	}()
	next := func(what string) string {
		t.Helper()
		select {
		case m := <-messages:
			return m
		case <-time.After(deadline):
			t.Fatalf("no %s from the daemon", what)
			return ""
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var serveErr error
	served := make(chan struct{})
	go func() {
		serveErr = Serve(ctx, root, Config{Logger: testLogger(t)})
		close(served)
	}()
	t.Cleanup(func() {
		cancel()
		<-served
	})

	ready := next("READY=1")
	if !strings.HasPrefix(ready, "READY=1\n") || !strings.Contains(ready, "STATUS=serving 1 services") {
		t.Fatalf("first notification %q, want READY=1 with a status", ready)
	}
	// When systemd hears READY=1, the socket answers and the service runs.
	c2, err := Dial(root)
	if err != nil {
		t.Fatalf("READY=1 sent before the socket serves: %v", err)
	}
	defer c2.Close()
	st, err := c2.Status(context.Background())
	if err != nil || len(st) != 1 || st[0].Name != "a" || st[0].State == supervisor.StateStopped {
		t.Fatalf("READY=1 sent before the services were restored: %+v %v", st, err)
	}
	pings := 0
	start := time.Now()
	for pings < 3 {
		if m := next("WATCHDOG=1"); m == "WATCHDOG=1" {
			pings++
		} else {
			t.Fatalf("unexpected notification %q", m)
		}
	}
	// Three pings at 100ms intervals (the first at once): about 200ms.
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("3 watchdog pings took %s, want about 200ms", el)
	}
	cancel()
	<-served
	if serveErr != nil {
		t.Fatal(serveErr)
	}
	var stopping bool
	for m := range drain(messages) {
		if strings.HasPrefix(m, "STOPPING=1") {
			stopping = true
		}
	}
	if !stopping {
		t.Error("no STOPPING=1 when the daemon stopped")
	}
}

// drain returns what is queued in ch without waiting for more.
func drain(ch chan string) map[string]bool {
	out := map[string]bool{}
	for {
		select {
		case m, ok := <-ch:
			if !ok {
				return out
			}
			out[m] = true
		case <-time.After(200 * time.Millisecond):
			return out
		}
	}
}

// TestEnsureDoesNotLendNotifySocket: a daemon that Ensure starts from a
// command run by a systemd unit does not inherit the unit's notify socket
// (it is not the unit's main process).
func TestEnsureDoesNotLendNotifySocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	t.Setenv("SLAPNODE_DAEMON_TEST_HELPER", "1")
	root := t.TempDir()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	c, err := Ensure(root, exe)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Shutdown(context.Background())
	conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	buf := make([]byte, 4096)
	if n, err := conn.Read(buf); err == nil {
		t.Errorf("the background daemon notified the caller's systemd unit: %q", buf[:n])
	}
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Accept", "application/openmetrics-text; version=1.0.0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/openmetrics-text") {
		t.Fatalf("GET %s: %s %s\n%s", url, resp.Status, resp.Header.Get("Content-Type"), b)
	}
	return string(b)
}

func wantLines(t *testing.T, body string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains(body, "\n"+l) {
			t.Errorf("no line starting %q in\n%s", l, body)
		}
	}
}

// TestMetricsOnDaemon: the daemon serves its metrics on a TCP address:
// build and process information, the supervisor's services, promise
// results, builds (its own and those a command reports), and converge
// passes with the master's reachability once a master is in play.
func TestMetricsOnDaemon(t *testing.T) {
	root, dir := t.TempDir(), t.TempDir()
	m := NewMetrics("1.2.3", "abc123")
	c, _ := serveWith(t, root, Config{Metrics: m, MetricsAddr: "127.0.0.1:0"})
	ctx := context.Background()
	info, err := c.Info(ctx)
	if err != nil || info.Metrics == "" {
		t.Fatalf("Info: %+v %v", info, err)
	}
	if _, err := c.Apply(ctx, "p1", []supervisor.ServiceSpec{sleeper(dir, "web")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "web running", func() bool {
		st, _ := c.Status(ctx)
		return len(st) == 1 && st[0].State == supervisor.StateRunning
	})
	m.Promises().Observe([]promise.Result{{Partition: "p1", Name: "port", Type: promise.TestResult, OK: true, Duration: time.Second, Date: time.Now()}})
	if err := c.RecordBuild(ctx, "https://example.invalid/software.hcl", 90*time.Second, nil); err != nil {
		t.Fatal(err)
	}
	m.ObserveBuild(2*time.Second, errors.New("boom"))
	url := "http://" + info.Metrics + "/metrics"
	body := scrape(t, url)
	wantLines(t, body,
		`slapnode_build_info{goversion="go`,
		`process_start_time_seconds `,
		`go_goroutines `,
		`slapnode_daemon_start_time_seconds `,
		`slapnode_service_up{partition="p1",service="web",state="RUNNING"} 1.0`,
		`slapnode_service_restarts_total{partition="p1",service="web"} 0.0`,
		`slapnode_supervisor_up 1.0`,
		`slapnode_promise_ok{partition="p1",promise="port",type="Test Result"} 1.0`,
		`slapnode_builds_total{result="ok"} 1.0`,
		`slapnode_builds_total{result="failed"} 1.0`,
		`slapnode_build_duration_seconds_bucket{le="120.0"} 2`,
		`slapnode_build_duration_seconds_count 2`,
		"# EOF",
	)
	if !strings.Contains(body, `revision="abc123",version="1.2.3"} 1`) {
		t.Errorf("build info without version and revision:\n%s", body)
	}
	// Masterless: no master to be down.
	if strings.Contains(body, "slapnode_master_up") || strings.Contains(body, "slapnode_converge_passes") {
		t.Errorf("master families on a masterless node:\n%s", body)
	}
	m.ObservePass("ok", 1500*time.Millisecond, 0)
	m.ObservePass("failed", 3*time.Second, 2)
	m.ObservePass("offline", 10*time.Millisecond, 0)
	body = scrape(t, url)
	wantLines(t, body,
		`slapnode_converge_passes_total{result="ok"} 1.0`,
		`slapnode_converge_passes_total{result="failed"} 1.0`,
		`slapnode_converge_passes_total{result="offline"} 1.0`,
		`slapnode_converge_duration_seconds_count 3`,
		`slapnode_converge_partition_errors 2.0`,
		`slapnode_master_up 0.0`,
		`slapnode_converge_last_success_timestamp_seconds `,
		`slapnode_master_last_contact_timestamp_seconds `,
	)
	// The control socket serves the same families.
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", SocketPath(root))
	}}}
	resp, err := hc.Get("http://slapnode/v1/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), "slapnode_converge_passes_total") {
		t.Errorf("/v1/metrics:\n%s", b)
	}
}

// TestMetricsAddressTaken: a metrics address the daemon cannot listen on
// fails its start with a message that says where it is configured.
func TestMetricsAddressTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	err = Serve(context.Background(), t.TempDir(), Config{Logger: testLogger(t), MetricsAddr: ln.Addr().String()})
	if err == nil || !strings.Contains(err.Error(), "metrics_address") || !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("Serve with a taken metrics address: %v", err)
	}
}
