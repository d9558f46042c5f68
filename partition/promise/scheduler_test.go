package promise

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slapnode/slapnode/partition/service"
)

type bang struct{ partition, promise, message string }

func TestSchedulerBangsOncePerDeployment(t *testing.T) {
	p := newPartition(t, "slappart3")
	script(t, p.Path, "bin/down", `echo "backend down"; exit 1`)
	failing := spec("backend", "promises:check_command", map[string]any{"command": "bin/down"})
	failing.Every = Duration(time.Nanosecond) // due at every run
	quiet := spec("quiet", "promises:check_command", map[string]any{"command": "bin/down"})
	quiet.Anomaly = false // test only: never bangs
	if err := SaveSpecs(p.Partition, []Spec{quiet, failing}); err != nil {
		t.Fatal(err)
	}
	script(t, p.Path, "etc/promise/legacy", "exit 1") // legacy promises never bang
	var bangs []bang
	var seen [][]Result
	s := &Scheduler{Runner: &Runner{},
		Partitions: func(context.Context) ([]PartitionRef, error) { return []PartitionRef{p}, nil },
		Bang:       func(part, name, msg string) { bangs = append(bangs, bang{part, name, msg}) },
		OnResults:  func(r []Result) { seen = append(seen, r) },
		Interval:   time.Hour,
	}
	ctx := context.Background()
	for range 3 {
		next, err := s.RunOnce(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// The failing promise is due at once; the scheduler waits at least 1s.
		if next.After(time.Now().Add(time.Minute)) {
			t.Errorf("next run at %v, though a promise is due every nanosecond", next)
		}
	}
	if len(bangs) != 1 || bangs[0] != (bang{"slappart3", "backend", "Promise backend is failing"}) {
		t.Fatalf("bangs after 3 runs of one deployment: %+v", bangs)
	}
	if len(seen) != 3 || len(seen[0]) != 3 {
		t.Fatalf("results given to OnResults: %+v", seen)
	}
	// A new deployment (apply rewrote the promises): it may bang again.
	failing.Timeout = Duration(10 * time.Second)
	if err := SaveSpecs(p.Partition, []Spec{quiet, failing}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if len(bangs) != 2 {
		t.Fatalf("no bang after a new deployment: %+v", bangs)
	}
	if _, err := os.Stat(filepath.Join(p.StateDir, "promise-bang.json")); err != nil {
		t.Errorf("bang not recorded: %v", err)
	}
	// Saving the same promises is not a new deployment.
	if err := SaveSpecs(p.Partition, []Spec{quiet, failing}); err != nil {
		t.Fatal(err)
	}
	s.RunOnce(ctx)
	if len(bangs) != 2 {
		t.Fatalf("unchanged promises banged again: %+v", bangs)
	}
	// ResetBang: a caller's own notion of a new deployment.
	if err := ResetBang(p.Partition); err != nil {
		t.Fatal(err)
	}
	s.RunOnce(ctx)
	if len(bangs) != 3 {
		t.Fatalf("no bang after ResetBang: %+v", bangs)
	}
}

func TestSchedulerStartStop(t *testing.T) {
	p := newPartition(t, "slappart0")
	ok := spec("ok", "promises:check_command", map[string]any{"command": "/bin/true"})
	if err := SaveSpecs(p.Partition, []Spec{ok}); err != nil {
		t.Fatal(err)
	}
	ran := make(chan []Result, 1)
	s := &Scheduler{Runner: &Runner{},
		Partitions: func(context.Context) ([]PartitionRef, error) { return []PartitionRef{p}, nil },
		OnResults: func(r []Result) {
			select {
			case ran <- r:
			default:
			}
		},
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err == nil {
		t.Error("started twice")
	}
	r := <-ran
	s.Stop()
	if len(r) != 1 || !r[0].OK || r[0].Type != AnomalyResult {
		t.Fatalf("scheduled run: %+v", r)
	}
}

type fakeServices []service.Status

func (f fakeServices) Status(context.Context) ([]service.Status, error) { return f, nil }

func TestMetrics(t *testing.T) {
	m := &Metrics{Services: fakeServices{{Partition: "slappart0", Name: "web", State: "RUNNING", Restarts: 2}}}
	m.Observe([]Result{
		{Partition: "slappart0", Name: "port", Type: TestResult, OK: true, Duration: 1500 * time.Millisecond, Date: time.Unix(1700000000, 0)},
		{Partition: "slappart0", Name: `we"ird`, Type: AnomalyResult, OK: false, TimedOut: true, Date: time.Unix(1700000000, 0)},
		{Partition: "slappart0", Name: "skipped", Skipped: true},
	})
	req := httptest.NewRequest("GET", "/metrics", nil)
	req.Header.Set("Accept", "application/openmetrics-text; version=1.0.0")
	w := httptest.NewRecorder()
	m.ServeHTTP(w, req)
	body := w.Body.String()
	for _, line := range []string{
		`slapnode_promise_ok{partition="slappart0",promise="port",type="Test Result"} 1.0`,
		`slapnode_promise_ok{partition="slappart0",promise="we\"ird",type="Anomaly Result"} 0.0`,
		`slapnode_promise_duration_seconds{partition="slappart0",promise="port"} 1.5`,
		`slapnode_promise_timed_out{partition="slappart0",promise="we\"ird"} 1.0`,
		`slapnode_promise_last_run_timestamp_seconds{partition="slappart0",promise="port"} 1.7e+09`,
		`slapnode_service_up{partition="slappart0",service="web",state="RUNNING"} 1.0`,
		"# TYPE slapnode_service_restarts counter",
		`slapnode_service_restarts_total{partition="slappart0",service="web"} 2.0`,
	} {
		if !strings.Contains(body, line+"\n") {
			t.Errorf("missing %s in\n%s", line, body)
		}
	}
	if !strings.HasSuffix(body, "# EOF\n") || strings.Contains(body, "skipped") || !strings.HasPrefix(w.Header().Get("Content-Type"), "application/openmetrics-text") {
		t.Errorf("OpenMetrics exposition:\n%s", body)
	}
	// A partition's new results replace its old ones.
	m.Observe([]Result{{Partition: "slappart0", Name: "port", OK: true}})
	w = httptest.NewRecorder()
	m.ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	if body := w.Body.String(); strings.Contains(body, "ird") || strings.Contains(body, "# EOF") ||
		!strings.Contains(body, "# TYPE slapnode_service_restarts_total counter") {
		t.Errorf("Prometheus text after a new observation:\n%s", body)
	}
}
