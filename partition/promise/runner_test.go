package promise

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// guestSpec is a promise of testdata/guest.c, loaded from a file as the
// runner does for a profile's own module.
func guestSpec(t *testing.T, name, check string, opts any) Spec {
	t.Helper()
	path := filepath.Join(t.TempDir(), "guest.wasm")
	if err := os.WriteFile(path, guestWasm, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(guestWasm)
	s := spec(name, "guest:"+check, opts)
	s.Module = ModuleRef{Name: "guest", Source: path, SHA256: hex.EncodeToString(sum[:])}
	return s
}

func TestHangingPromiseIsKilledAtItsTimeout(t *testing.T) {
	needWasm(t, true)
	r := &Runner{Host: host(t)}
	p := newPartition(t, "slappart0")
	hang := guestSpec(t, "hang", "hang", map[string]any{})
	hang.Timeout = Duration(time.Second)
	pidFile := filepath.Join(p.Path, "child.pid")
	sleeper := spec("sleeper", "promises:check_command", map[string]any{"command": []string{"/bin/sh", "-c", "sleep 600 & echo $! > " + pidFile + "; sleep 600"}})
	sleeper.Timeout = Duration(time.Second)
	// A built-in check blocked in a host call (a server that never answers,
	// the check's own HTTP timeout being 10 s).
	release := make(chan struct{})
	mute := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { <-release }))
	defer mute.Close()
	defer close(release)
	stuck := spec("stuck", "cookbook:check_url_available", map[string]any{"url": mute.URL})
	stuck.Timeout = Duration(time.Second)
	res := runSpecs(t, r, p, hang, sleeper, stuck)
	for _, name := range []string{"hang", "sleeper", "stuck"} {
		got := res[name]
		if got.OK || !got.TimedOut || got.Message != "Error: Promise timed out after 1 seconds" {
			t.Errorf("%s: %+v, want a failure \"Error: Promise timed out after 1 seconds\"", name, got)
		}
	}
	// The promise's background child was killed with it. SIGKILL reaches
	// the process group at once, but a loaded machine may schedule the
	// child's death a moment later: it must be gone (or a zombie) within
	// a few seconds, whereas an unkilled one sleeps for ten minutes.
	pid, _ := os.ReadFile(pidFile)
	var stat []byte
	for end := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var err error
		stat, err = os.ReadFile("/proc/" + strings.TrimSpace(string(pid)) + "/stat")
		if len(pid) > 0 && (err != nil || strings.Contains(string(stat), ") Z ")) || time.Now().After(end) {
			break
		}
	}
	if len(pid) == 0 || len(stat) > 0 && !strings.Contains(string(stat), ") Z ") {
		t.Errorf("the child %q of a timed out check_command still runs: %s", pid, stat)
	}
	b, err := os.ReadFile(resultPath(p.Path, "hang"))
	if err != nil || !strings.Contains(string(b), `"failed": true, "date": `) || !strings.Contains(string(b), `"message": "Error: Promise timed out after 1 seconds"}}`) {
		t.Fatalf("result file of a timed out promise: %s %v", b, err)
	}
	// A timed-out promise leaves no sense in its log (SlapOS kills it
	// before it can log).
	if _, err := os.Stat(logPath(p.Path, "hang")); !os.IsNotExist(err) {
		t.Errorf("timed out promise wrote a log: %v", err)
	}
}

func TestHostilePromiseCannotReachUngrantedHosts(t *testing.T) {
	needWasm(t, true)
	r := &Runner{Host: host(t)}
	p := newPartition(t, "slappart0")
	var hits atomic.Int32
	secret, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer secret.Close()
	go func() {
		for {
			c, err := secret.Accept()
			if err != nil {
				return
			}
			hits.Add(1)
			c.Close()
		}
	}()
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { hits.Add(1) }))
	defer web.Close()
	granted, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer granted.Close()
	sp := secret.Addr().(*net.TCPAddr).Port
	gp := granted.Addr().(*net.TCPAddr).Port
	target := map[string]any{"host": "127.0.0.1", "port": sp}
	res := runSpecs(t, r, p,
		// Its own grant is 127.0.0.1:<granted port>; it probes another port.
		guestSpec(t, "probe", "probe", map[string]any{"host": "127.0.0.1", "port": gp, "target": target}),
		// A url option grants that URL's host and port only.
		guestSpec(t, "fetch", "fetch", map[string]any{"url": fmt.Sprintf("http://127.0.0.1:%d/", gp), "target_url": web.URL + "/"}),
		// The control: the same guest reaches what its options grant.
		guestSpec(t, "allowed", "probe", map[string]any{"host": "127.0.0.1", "port": sp, "target": target}),
	)
	for _, name := range []string{"probe", "fetch"} {
		if got := res[name]; got.OK || !strings.Contains(got.Message, "not granted") {
			t.Errorf("%s reached an ungranted destination or failed otherwise: %+v", name, got)
		}
	}
	if got := res["allowed"]; !got.OK {
		t.Fatalf("the guest cannot probe its granted destination, the test proves nothing: %+v", got)
	}
	// Only the allowed probe connected.
	if n := hits.Load(); n > 1 {
		t.Errorf("%d connections reached the ungranted servers", n-1)
	}
}

func TestTestVersusAnomalyWithFailureAmount(t *testing.T) {
	r := &Runner{}
	p := newPartition(t, "slappart0")
	code := filepath.Join(p.Path, "code")
	script(t, p.Path, "bin/check", `read c < `+code+`; echo "exit $c"; exit $c`)
	s := spec("flaky", "promises:check_command", map[string]any{"command": "bin/check"})
	s.FailureAmount = 3
	run := func(exit int, anomaly bool) Result {
		t.Helper()
		os.WriteFile(code, []byte(strconv.Itoa(exit)), 0o644)
		res, err := r.RunPartition(context.Background(), p, RunOptions{Force: true, Anomaly: anomaly, Specs: []Spec{s}})
		if err != nil || len(res) != 1 {
			t.Fatalf("%v %v", res, err)
		}
		return res[0]
	}
	steps := []struct {
		exit    int
		anomaly bool
		ok      bool
		why     string
	}{
		{0, true, true, "all good"},
		{1, false, false, "test: the latest sense failed"},
		{1, true, true, "anomaly: 2 failures in a row, fewer than failure_amount 3"},
		{1, true, false, "anomaly: 3 failures in a row"},
		{0, true, true, "anomaly: the latest sense passed"},
		{1, true, true, "anomaly: a single failure again"},
	}
	for i, st := range steps {
		got := run(st.exit, st.anomaly)
		if got.OK != st.ok || got.Message != "exit "+strconv.Itoa(st.exit) {
			t.Fatalf("step %d (%s): %+v", i, st.why, got)
		}
		wantType := map[bool]string{false: TestResult, true: AnomalyResult}[st.anomaly]
		if got.Type != wantType || got.CanBang != (st.anomaly && !st.ok) {
			t.Fatalf("step %d: type %q can bang %v", i, got.Type, got.CanBang)
		}
		var saved savedResult
		b, _ := os.ReadFile(resultPath(p.Path, "flaky"))
		if err := json.Unmarshal(b, &saved); err != nil || saved.Result.Type != wantType || saved.Result.Failed == st.ok || saved.Title != "flaky" {
			t.Fatalf("step %d: result file %s %v", i, b, err)
		}
	}
}

func TestModesPeriodicityAndSettle(t *testing.T) {
	r := &Runner{}
	p := newPartition(t, "slappart0")
	count := filepath.Join(p.Path, "count")
	// Fails twice, then passes: a service that needs a moment.
	script(t, p.Path, "bin/slow", `n=$(cat `+count+` 2>/dev/null || echo 0); n=$((n+1)); echo $n > `+count+`; [ $n -ge 3 ] && echo ready || { echo "not yet ($n)"; exit 1; }`)
	slow := spec("slow", "promises:check_command", map[string]any{"command": "bin/slow"})
	noTest := spec("no-test", "promises:check_command", map[string]any{"command": "/bin/false"})
	noTest.Test = false
	neither := spec("neither", "promises:check_command", map[string]any{"command": "/bin/true"})
	neither.Test, neither.Anomaly = false, false
	specs := []Spec{slow, noTest, neither}
	if err := SaveSpecs(p.Partition, specs); err != nil {
		t.Fatal(err)
	}
	res, err := r.RunPartition(context.Background(), p, RunOptions{Settle: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 || !res[0].OK || res[0].Message != "ready" {
		t.Fatalf("settle did not retry until ready: %+v", res)
	}
	if !res[1].Skipped || !res[1].OK {
		t.Errorf("test = false runs in test mode: %+v", res[1])
	}
	if res[2].OK || res[2].Message != msgBothDisabled {
		t.Errorf("test and anomaly disabled: %+v", res[2])
	}
	// Not due (every 2 min): the saved result is reused, nothing runs.
	res, err = r.RunPartition(context.Background(), p, RunOptions{Only: []string{"slow"}})
	if err != nil || len(res) != 1 || !res[0].Cached || !res[0].OK || res[0].Message != "ready" {
		t.Fatalf("periodicity: %+v %v", res, err)
	}
	if b, _ := os.ReadFile(count); strings.TrimSpace(string(b)) != "3" {
		t.Errorf("a promise that was not due ran (count %s)", b)
	}
	if _, err := readCache(p.Path, cacheRel("slow")); err != nil {
		t.Errorf("no periodicity cache: %v", err)
	}
	// Forced: it runs.
	res, _ = r.RunPartition(context.Background(), p, RunOptions{Only: []string{"slow"}, Force: true})
	if len(res) != 1 || res[0].Cached {
		t.Fatalf("forced run was cached: %+v", res)
	}
}

func TestLegacyPromises(t *testing.T) {
	r := &Runner{}
	p := newPartition(t, "slappart0")
	script(t, p.Path, "etc/promise/check-db", `echo "db down"; exit 1`)
	os.WriteFile(filepath.Join(p.Path, "etc/promise/README"), []byte("not executable"), 0o644)
	res, err := r.RunPartition(context.Background(), p, RunOptions{Force: true, Anomaly: true})
	if err != nil || len(res) != 1 {
		t.Fatalf("%+v %v", res, err)
	}
	got := res[0]
	if got.Name != "check-db" || !got.Legacy || got.CanBang {
		t.Fatalf("legacy promise: %+v", got)
	}
	// Test mode: the last run failed.
	res, _ = r.RunPartition(context.Background(), p, RunOptions{Force: true})
	if res[0].OK || res[0].Message != "db down" {
		t.Fatalf("legacy promise in test mode: %+v", res[0])
	}
	var saved savedResult
	b, _ := os.ReadFile(resultPath(p.Path, "check-db"))
	if err := json.Unmarshal(b, &saved); err != nil || saved.Name != "check-db" || saved.Path != filepath.Join(p.Path, "etc/promise/check-db") {
		t.Fatalf("legacy result file: %s %v", b, err)
	}
}

func TestRunAcrossPartitions(t *testing.T) {
	r := &Runner{Workers: 3}
	var parts []PartitionRef
	for i := range 4 {
		p := newPartition(t, fmt.Sprintf("slappart%d", i))
		var specs []Spec
		for j := range 5 {
			specs = append(specs, spec(fmt.Sprintf("p%d", j), "promises:check_command", map[string]any{"command": []string{"/bin/sh", "-c", fmt.Sprintf("echo %d-%d", i, j)}}))
		}
		if err := SaveSpecs(p.Partition, specs); err != nil {
			t.Fatal(err)
		}
		parts = append(parts, p)
	}
	broken := newPartition(t, "slappart9")
	os.MkdirAll(filepath.Dir(SpecsPath(broken.Partition)), 0o755)
	os.WriteFile(SpecsPath(broken.Partition), []byte("nope"), 0o644)
	res, err := r.Run(context.Background(), append(parts, broken), RunOptions{Force: true})
	if err == nil || !strings.Contains(err.Error(), "slappart9") {
		t.Errorf("a damaged promises file is not reported: %v", err)
	}
	if len(res) != 20 {
		t.Fatalf("%d results, want 20", len(res))
	}
	for k, x := range res {
		i, j := k/5, k%5
		if x.Partition != fmt.Sprintf("slappart%d", i) || x.Name != fmt.Sprintf("p%d", j) || !x.OK || x.Message != fmt.Sprintf("%d-%d", i, j) {
			t.Fatalf("result %d: %+v", k, x)
		}
	}
}
