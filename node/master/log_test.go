package master

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// TestFailuresAreLogged: a request that fails inside the master (here, its
// database closed under it) answers a 500 and leaves a structured record
// in the master's logger, with method, path and cause; nothing is printed
// to stderr behind the logger's back.
func TestFailuresAreLogged(t *testing.T) {
	var buf lockedBuffer
	m, err := Open(filepath.Join(t.TempDir(), "master.db"), Options{Logger: slog.New(slog.NewJSONHandler(&buf, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	m.Close()
	resp, err := http.Get(srv.URL + "/getFullComputerInformation?computer_id=COMP-0")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("status %d, want 500", resp.StatusCode)
	}
	buf.mu.Lock()
	out := buf.b.String()
	buf.mu.Unlock()
	var rec struct{ Level, Msg, Method, Path, Err string }
	if err := json.Unmarshal([]byte(strings.SplitN(out, "\n", 2)[0]), &rec); err != nil {
		t.Fatalf("no JSON record: %q", out)
	}
	if rec.Level != "ERROR" || rec.Method != "GET" || rec.Path != "/getFullComputerInformation" || !strings.Contains(rec.Err, "closed") {
		t.Errorf("record %+v from %q", rec, out)
	}
}
