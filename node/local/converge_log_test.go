package local

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slapnode/slapnode/node/slap"
)

// recorder is a ConvergeObserver and a log sink for the converge loop.
type recorder struct {
	mu      sync.Mutex
	passes  []string
	fails   []int
	reached []bool
	log     bytes.Buffer
}

func (r *recorder) ObservePass(result string, _ time.Duration, failures int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.passes = append(r.passes, result)
	r.fails = append(r.fails, failures)
}
func (r *recorder) ObserveBuild(time.Duration, error) {}
func (r *recorder) MasterReachable(up bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reached = append(r.reached, up)
}
func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.log.Write(p)
}
func (r *recorder) snapshot() ([]string, []int, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.passes...), append([]int(nil), r.fails...), r.log.String()
}

// TestConvergeLoopLogsAndObserves: each failure of a pass is its own
// record (the release, the partition, the cause) rather than a Go map
// dumped on one line, the observer (the daemon's metrics) hears every pass
// with its result, and an unreachable master is a warning, not an error.
func TestConvergeLoopLogsAndObserves(t *testing.T) {
	n := openNode(t)
	svc, _ := inProcessServices(t, n.Root)
	srv, client := testMaster(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	missing := filepath.Join(t.TempDir(), "missing", "software.hcl")
	if err := client.Supply(ctx, missing, "COMP-1", slap.StateAvailable); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	o := ConvergeOptions{Master: client, ComputerID: "COMP-1", Partitions: 1, Services: svc, Observer: rec}
	if err := n.Register(ctx, o); err != nil {
		t.Fatal(err)
	}
	req := slap.Request{SoftwareURL: missing, Reference: "web", Filter: map[string]any{"computer_guid": "COMP-1"}}
	if _, err := client.Request(ctx, req); err != nil && !strings.Contains(err.Error(), "408") {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- n.Converge(ctx, o, 20*time.Millisecond, slog.New(slog.NewJSONHandler(rec, nil))) }()
	end := time.Now().Add(2 * time.Minute) // a guard against a hang
	for {
		if passes, _, _ := rec.snapshot(); len(passes) >= 2 {
			break
		}
		if time.Now().After(end) {
			t.Fatal("no two passes")
		}
		time.Sleep(20 * time.Millisecond)
	}
	srv.Close() // the master goes away
	for {
		if passes, _, _ := rec.snapshot(); passes[len(passes)-1] == PassOffline {
			break
		}
		if time.Now().After(end) {
			t.Fatal("no offline pass")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
	passes, fails, log := rec.snapshot()
	if passes[0] != PassFailed || fails[0] != 2 {
		t.Errorf("passes %v with failures %v: want the first failed, with two failures (the release, the partition)", passes, fails)
	}
	if len(rec.reached) == 0 || !rec.reached[0] {
		t.Errorf("master reachability at registration: %v", rec.reached)
	}
	if strings.Contains(log, "map[") {
		t.Errorf("a Go map in the log:\n%s", log)
	}
	type record struct{ Level, Msg, URL, Master, Partition, Err string }
	var got []record
	for _, l := range strings.Split(strings.TrimSpace(log), "\n") {
		var r record
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("not JSON: %q", l)
		}
		got = append(got, r)
	}
	want := []struct{ level, msg, detail string }{
		{"INFO", "registered with the master", ""},
		{"ERROR", "software release failed", missing},
		{"ERROR", "partition failed", "slappart0"},
		{"WARN", "converge pass", ""},
		{"WARN", "master unreachable; services keep running", "master unreachable"},
	}
	for _, w := range want {
		found := false
		for _, r := range got {
			if r.Level == w.level && r.Msg == w.msg && strings.TrimSuffix(r.Master, "/") == srv.URL && strings.Contains(r.URL+r.Partition+r.Err, w.detail) {
				found = true
			}
		}
		if !found {
			t.Errorf("no %s %q record in\n%s", w.level, w.msg, log)
		}
	}
}
