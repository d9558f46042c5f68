package promise

import (
	"context"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics exports promise results and service restarts for Prometheus: it
// is a prometheus.Collector, registered with the node daemon's registry
// (which serves it as OpenMetrics text, or Prometheus text 0.0.4 to
// clients that do not ask for OpenMetrics), and an http.Handler of its own.
// Feed it with Observe (Scheduler.OnResults).
type Metrics struct {
	// Services, when set, adds the supervisor's services: up and restarts.
	Services Services

	mu      sync.Mutex
	results map[string]map[string]Result // partition → promise → last result
}

var (
	descPromiseOK = prometheus.NewDesc("slapnode_promise_ok",
		"1 if the promise's last result succeeded, 0 if it failed.", []string{"partition", "promise", "type"}, nil)
	descPromiseDuration = prometheus.NewDesc("slapnode_promise_duration_seconds",
		"Duration of the promise's last sense.", []string{"partition", "promise"}, nil)
	descPromiseTimedOut = prometheus.NewDesc("slapnode_promise_timed_out",
		"1 if the promise's last run was killed at its timeout.", []string{"partition", "promise"}, nil)
	descPromiseLastRun = prometheus.NewDesc("slapnode_promise_last_run_timestamp_seconds",
		"When the promise last ran (Unix time).", []string{"partition", "promise"}, nil)
	descSupervisorUp = prometheus.NewDesc("slapnode_supervisor_up",
		"1 if the supervisor answered for this scrape.", nil, nil)
	descServiceUp = prometheus.NewDesc("slapnode_service_up",
		"1 if the service is RUNNING (or SCHEDULED, for a job).", []string{"partition", "service", "state"}, nil)
	descServiceRestarts = prometheus.NewDesc("slapnode_service_restarts_total",
		"Restarts of the service by the supervisor since it was started.", []string{"partition", "service"}, nil)
)

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

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPromiseOK, descPromiseDuration, descPromiseTimedOut, descPromiseLastRun} {
		ch <- d
	}
	if m.Services != nil {
		ch <- descSupervisorUp
		ch <- descServiceUp
		ch <- descServiceRestarts
	}
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
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
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, r := range rs {
		gauge(descPromiseOK, b2f(r.OK), r.Partition, r.Name, r.Type)
		gauge(descPromiseDuration, r.Duration.Seconds(), r.Partition, r.Name)
		gauge(descPromiseTimedOut, b2f(r.TimedOut), r.Partition, r.Name)
		gauge(descPromiseLastRun, float64(r.Date.UnixMilli())/1000, r.Partition, r.Name)
	}
	if m.Services == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	services, err := m.Services.Status(ctx)
	cancel()
	// Promise metrics stay available when the supervisor does not answer.
	gauge(descSupervisorUp, b2f(err == nil))
	for _, s := range services {
		gauge(descServiceUp, b2f(s.Up()), s.Partition, s.Name, s.State)
	}
	for _, s := range services {
		ch <- prometheus.MustNewConstMetric(descServiceRestarts, prometheus.CounterValue, float64(s.Restarts), s.Partition, s.Name)
	}
}

// ServeHTTP writes the metrics alone (the node daemon serves them with its
// own, see node/daemon).
func (m *Metrics) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(m)
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: true}).ServeHTTP(w, req)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
