package promise

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slapnode/slapnode/internal/nofollow"
	"github.com/slapnode/slapnode/partition"
)

// The reference example of docs/…/slapos-core-inventory.md §3.4, byte for byte.
func TestStatusFileMatchesSlapOS(t *testing.T) {
	date := time.Date(2026, 8, 20, 12, 11, 12, 0, time.FixedZone("CEST", 2*3600))
	got := string(statusFile("check-apache-port", "check-apache-port.py", "/srv/slapgrid/slappart3/etc/plugin/check-apache-port.py",
		0.15, TestResult, true, date, "Error: Promise timed out after 20 seconds"))
	want := `{"title": "check-apache-port", "name": "check-apache-port.py", "path": "/srv/slapgrid/slappart3/etc/plugin/check-apache-port.py", "execution-time": 0.15, "result": {"type": "Test Result", "failed": true, "date": "2026-08-20T10:11:12+0000", "message": "Error: Promise timed out after 20 seconds"}}`
	if got != want {
		t.Fatalf("status file\n got %s\nwant %s", got, want)
	}
}

func TestPythonJSONEncoding(t *testing.T) {
	cases := map[string]string{
		"é <&> \"q\" \\ \n\t": `"\u00e9 <&> \"q\" \\ \n\t"`,
		"\x01":                `"\u0001"`,
		"😀":                   `"\ud83d\ude00"`,
	}
	for in, want := range cases {
		if got := pyString(in); got != want {
			t.Errorf("pyString(%q) = %s, want %s", in, got, want)
		}
		var back string
		if err := json.Unmarshal([]byte(pyString(in)), &back); err != nil || back != in {
			t.Errorf("pyString(%q) does not decode back: %q %v", in, back, err)
		}
	}
	for f, want := range map[float64]string{1: "1.0", 0.15: "0.15", 20.05: "20.05", 0: "0.0"} {
		if got := pyFloat(f); got != want {
			t.Errorf("pyFloat(%v) = %s, want %s", f, got, want)
		}
	}
}

func TestLogFormatAndHistory(t *testing.T) {
	part := t.TempDir()
	path := filepath.Join(part, "log", "p.log")
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.Local)
	if err := appendLog(part, "log/p.log", t0, true, "fine", -1, -1); err != nil {
		t.Fatal(err)
	}
	if err := appendLog(part, "log/p.log", t0.Add(time.Minute), false, "broken\nsecond line", -1, -1); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "2026-01-02 03:04:05 - INFO - ") || !strings.HasSuffix(lines[0], " - fine") ||
		!strings.HasPrefix(lines[1], "2026-01-02 03:05:05 - ERROR - ") {
		t.Fatalf("log is not in GenericPromise's format:\n%s", b)
	}
	for _, l := range lines {
		if logLine.FindStringSubmatch(l) == nil {
			t.Errorf("SlapOS's regular expression does not parse %q", l)
		}
	}
	hist, err := readHistory(part, "log/p.log", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 2 || !hist[0].failed || hist[1].failed || strings.Join(hist[0].messages, "\n") != "broken\nsecond line" {
		t.Fatalf("history = %+v", hist)
	}
}

func tx(failed bool, minutesAgo int, now time.Time) transaction {
	return transaction{date: now.Add(-time.Duration(minutesAgo) * time.Minute), failed: failed, messages: []string{map[bool]string{true: "bad", false: "good"}[failed]}}
}

func TestDecideTestAndAnomaly(t *testing.T) {
	now := time.Now()
	// newest first
	hist := []transaction{tx(true, 0, now), tx(true, 2, now), tx(false, 4, now), tx(true, 6, now)}
	cases := []struct {
		name                   string
		count, amount, minutes int
		ok                     bool
	}{
		{"test: latest failed", 1, 1, 0, false},
		{"anomaly failure_amount 2: two in a row", 2, 2, 0, false},
		{"anomaly failure_amount 3: a success in between", 3, 3, 0, true},
		{"anomaly failure_amount 2 within 1 minute: only one sense recent", 2, 2, 1, true},
	}
	for _, c := range cases {
		ok, msg := decide(hist, c.count, c.amount, c.minutes, now)
		if ok != c.ok || msg != "bad" {
			t.Errorf("%s: ok=%v %q, want ok=%v \"bad\"", c.name, ok, msg, c.ok)
		}
	}
	if ok, msg := decide(nil, 1, 1, 0, now); !ok || msg != msgNoResult {
		t.Errorf("no history: %v %q", ok, msg)
	}
	if ok, msg := decide([]transaction{tx(false, 0, now), tx(true, 1, now)}, 2, 1, 0, now); !ok || msg != "good" {
		t.Errorf("latest succeeded: %v %q", ok, msg)
	}
}

func TestSpecsRoundTripAndLatestMinute(t *testing.T) {
	dir := partition.Partition{ID: "slappart0", StateDir: filepath.Join(t.TempDir(), "state")}
	if specs, err := LoadSpecs(dir); err != nil || specs != nil {
		t.Fatalf("no file: %v %v", specs, err)
	}
	in := []Spec{{Name: "web", Check: "cookbook:check_url_available", Module: ModuleRef{Name: "cookbook", Source: "builtin:cookbook"},
		Options: json.RawMessage(`{"url":"http://x/"}`), Every: Duration(time.Minute), Timeout: Duration(5 * time.Second), Test: true, FailureAmount: 2}}
	if err := SaveSpecs(dir, in); err != nil {
		t.Fatal(err)
	}
	out, err := LoadSpecs(dir)
	if err != nil {
		t.Fatal(err)
	}
	var opts bytes.Buffer
	if len(out) == 1 {
		json.Compact(&opts, out[0].Options)
	}
	if len(out) != 1 || out[0].Name != "web" || time.Duration(out[0].Every) != time.Minute || opts.String() != `{"url":"http://x/"}` || out[0].Anomaly || out[0].FailureAmount != 2 {
		t.Fatalf("round trip: %+v", out)
	}
	os.WriteFile(SpecsPath(dir), []byte("{"), 0o644)
	if _, err := LoadSpecs(dir); err == nil || !strings.Contains(err.Error(), "apply the instance again") {
		t.Fatalf("damaged file: %v", err)
	}
	rest, n := takeLatestMinute(json.RawMessage(`{"url":"u","latest_minute":"10"}`))
	if n != 10 || string(rest) != `{"url":"u"}` {
		t.Fatalf("takeLatestMinute: %s %d", rest, n)
	}
}

func TestTransactionIDsDiffer(t *testing.T) {
	part := t.TempDir()
	d, err := nofollow.Open(part)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	now := time.Now()
	for i := 0; i < 2000; i++ {
		last := lastTransactionID(d, "p.log")
		if err := appendLog(part, "p.log", now, true, "ok", -1, -1); err != nil {
			t.Fatal(err)
		}
		if got := lastTransactionID(d, "p.log"); got == "" || got == last {
			t.Fatalf("sense %d reused transaction id %q", i, got)
		}
	}
}
