package promise

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/slapnode/slapnode/partition/service"
)

// Metrics exports promise results and service restarts for Prometheus, as
// OpenMetrics text (or Prometheus text 0.0.4 to clients that do not ask for
// OpenMetrics). Feed it with Observe (Scheduler.OnResults).
type Metrics struct {
	// Services, when set, adds the supervisor's services: up and restarts.
	Services Services

	mu      sync.Mutex
	results map[string]map[string]Result // partition → promise → last result
}

// Observe records results; the results of a partition replace all its
// previous ones (a promise removed from the profile disappears).
func (m *Metrics) Observe(results []Result) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.results == nil {
		m.results = map[string]map[string]Result{}
	}
	fresh := map[string]map[string]Result{}
	for _, r := range results {
		if fresh[r.Partition] == nil {
			fresh[r.Partition] = map[string]Result{}
		}
		if r.Skipped {
			continue
		}
		fresh[r.Partition][r.Name] = r
	}
	for p, rs := range fresh {
		m.results[p] = rs
	}
}

// ServeHTTP writes the metrics.
func (m *Metrics) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	om := strings.Contains(req.Header.Get("Accept"), "application/openmetrics-text")
	if om {
		w.Header().Set("Content-Type", "application/openmetrics-text; version=1.0.0; charset=utf-8")
	} else {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	}
	var services []service.Status
	var svcErr error
	if m.Services != nil {
		ctx, cancel := context.WithTimeout(req.Context(), 5*time.Second)
		services, svcErr = m.Services.Status(ctx)
		cancel()
	}
	m.write(w, services, svcErr, om)
}

// write renders the metric families.
func (m *Metrics) write(w io.Writer, services []service.Status, svcErr error, om bool) {
	m.mu.Lock()
	var rs []Result
	for _, byName := range m.results {
		for _, r := range byName {
			rs = append(rs, r)
		}
	}
	m.mu.Unlock()
	sort.Slice(rs, func(i, j int) bool {
		if rs[i].Partition != rs[j].Partition {
			return rs[i].Partition < rs[j].Partition
		}
		return rs[i].Name < rs[j].Name
	})
	family := func(name, typ, help string) {
		fmt.Fprintf(w, "# TYPE %s %s\n# HELP %s %s\n", name, typ, name, help)
	}
	family("slapnode_promise_ok", "gauge", "1 if the promise's last result succeeded, 0 if it failed.")
	for _, r := range rs {
		fmt.Fprintf(w, "slapnode_promise_ok{partition=%s,promise=%s,type=%s} %d\n", label(r.Partition), label(r.Name), label(r.Type), b2i(r.OK))
	}
	family("slapnode_promise_duration_seconds", "gauge", "Duration of the promise's last sense.")
	for _, r := range rs {
		fmt.Fprintf(w, "slapnode_promise_duration_seconds{partition=%s,promise=%s} %g\n", label(r.Partition), label(r.Name), r.Duration.Seconds())
	}
	family("slapnode_promise_timed_out", "gauge", "1 if the promise's last run was killed at its timeout.")
	for _, r := range rs {
		fmt.Fprintf(w, "slapnode_promise_timed_out{partition=%s,promise=%s} %d\n", label(r.Partition), label(r.Name), b2i(r.TimedOut))
	}
	family("slapnode_promise_last_run_timestamp_seconds", "gauge", "When the promise last ran (Unix time).")
	for _, r := range rs {
		fmt.Fprintf(w, "slapnode_promise_last_run_timestamp_seconds{partition=%s,promise=%s} %.3f\n", label(r.Partition), label(r.Name), float64(r.Date.UnixMilli())/1000)
	}
	if m.Services != nil {
		// Promise metrics stay available when the supervisor does not answer.
		family("slapnode_supervisor_up", "gauge", "1 if the supervisor answered for this scrape.")
		fmt.Fprintf(w, "slapnode_supervisor_up %d\n", b2i(svcErr == nil))
		family("slapnode_service_up", "gauge", "1 if the service is RUNNING (or SCHEDULED, for a job).")
		for _, s := range services {
			up := s.Up()
			fmt.Fprintf(w, "slapnode_service_up{partition=%s,service=%s,state=%s} %d\n", label(s.Partition), label(s.Name), label(s.State), b2i(up))
		}
		// OpenMetrics names the counter family without its _total suffix;
		// Prometheus text 0.0.4 names it with.
		name := "slapnode_service_restarts_total"
		if om {
			name = "slapnode_service_restarts"
		}
		family(name, "counter", "Restarts of the service by the supervisor since it was started.")
		for _, s := range services {
			fmt.Fprintf(w, "slapnode_service_restarts_total{partition=%s,service=%s} %d\n", label(s.Partition), label(s.Name), s.Restarts)
		}
	}
	if om {
		fmt.Fprintln(w, "# EOF")
	}
}

// label quotes a label value (backslash, quote and newline escaped).
func label(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s) + `"`
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
