package daemon

import (
	"context"
	"errors"
	"net/http"
	"runtime"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/slapnode/slapnode/node/supervisor"
	"github.com/slapnode/slapnode/partition/promise"
	"github.com/slapnode/slapnode/partition/service"
)

// Metrics is what the daemon exports for Prometheus at /metrics: the
// process (Go runtime, CPU, memory, descriptors, start time), the build
// (slapnode_build_info), the supervisor's services, converge passes and
// the master's reachability, software builds, and whatever collectors are
// added (the promise scheduler's results). docs/services.md lists every
// family. It is safe for concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	passes       *prometheus.CounterVec
	passDuration prometheus.Histogram
	lastSuccess  prometheus.Gauge
	partErrors   prometheus.Gauge
	masterUp     prometheus.Gauge
	lastContact  prometheus.Gauge
	builds       *prometheus.CounterVec
	buildTime    prometheus.Histogram
	services     *supervisorServices
	promises     *promise.Metrics
	masterOnce   sync.Once
}

// NewMetrics returns the daemon's metrics for a slapnode of the given
// version (its build information; revision may be "").
func NewMetrics(version, revision string) *Metrics {
	reg := prometheus.NewPedanticRegistry()
	f := func(c prometheus.Collector) { reg.MustRegister(c) }
	m := &Metrics{
		reg: reg,
		passes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "slapnode_converge_passes_total",
			Help: "Converge passes against the master, by result: ok, failed (a partition or release failed), offline (the master did not answer)."},
			[]string{"result"}),
		passDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "slapnode_converge_duration_seconds",
			Help:    "Duration of converge passes (builds and partition processing included).",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800}}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{Name: "slapnode_converge_last_success_timestamp_seconds",
			Help: "When the last converge pass that failed nothing ended (Unix time); 0 before the first."}),
		partErrors: prometheus.NewGauge(prometheus.GaugeOpts{Name: "slapnode_converge_partition_errors",
			Help: "Partitions and releases that failed in the last converge pass."}),
		masterUp: prometheus.NewGauge(prometheus.GaugeOpts{Name: "slapnode_master_up",
			Help: "1 if the master answered at the last converge pass, 0 if it did not."}),
		lastContact: prometheus.NewGauge(prometheus.GaugeOpts{Name: "slapnode_master_last_contact_timestamp_seconds",
			Help: "When the master last answered (Unix time); 0 before it ever did."}),
		builds: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "slapnode_builds_total",
			Help: "Software release builds (installs that had work to do), by result: ok, failed."},
			[]string{"result"}),
		buildTime: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "slapnode_build_duration_seconds",
			Help:    "Duration of software release builds.",
			Buckets: []float64{1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200}}),
		services: &supervisorServices{},
	}
	m.promises = &promise.Metrics{Services: m.services}
	f(collectors.NewGoCollector())
	f(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "slapnode_build_info",
		Help:        "Always 1; the labels say which slapnode runs, built by which Go.",
		ConstLabels: prometheus.Labels{"version": version, "revision": revision, "goversion": runtime.Version()}},
		func() float64 { return 1 }))
	started := float64(time.Now().UnixMilli()) / 1000
	f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "slapnode_daemon_start_time_seconds",
		Help: "When the node daemon started (Unix time)."}, func() float64 { return started }))
	for _, c := range []prometheus.Collector{m.passes, m.passDuration, m.builds, m.buildTime, m.promises} {
		f(c)
	}
	// Both results exist from the start, so that rate() sees the first one.
	m.builds.WithLabelValues("ok")
	m.builds.WithLabelValues("failed")
	return m
}

// Register adds a collector.
func (m *Metrics) Register(c prometheus.Collector) error { return m.reg.Register(c) }

// Promises is where the promise scheduler records its results
// (promise.Scheduler.OnResults); the services' up and restarts are
// exported with them.
func (m *Metrics) Promises() *promise.Metrics { return m.promises }

// Handler serves the metrics: OpenMetrics text to clients that ask for it
// (Prometheus does), Prometheus text 0.0.4 to the others.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{EnableOpenMetrics: true})
}

// ObservePass records a converge pass: its result ("ok", "failed": some
// partition or release failed, "offline": the master did not answer; see
// node/local's PassOK…), its duration, and how many partitions or releases
// failed. A pass that is not offline saw the master answer.
func (m *Metrics) ObservePass(result string, d time.Duration, failures int) {
	if m == nil {
		return
	}
	m.master()
	m.passes.WithLabelValues(result).Inc()
	m.passDuration.Observe(d.Seconds())
	now := float64(time.Now().UnixMilli()) / 1000
	if result == "offline" {
		m.masterUp.Set(0)
		return
	}
	m.masterUp.Set(1)
	m.lastContact.Set(now)
	m.partErrors.Set(float64(failures))
	if result == "ok" {
		m.lastSuccess.Set(now)
	}
}

// MasterReachable records the master's answer (or silence) outside a pass:
// the registration that precedes the first one.
func (m *Metrics) MasterReachable(up bool) {
	if m == nil {
		return
	}
	m.master()
	if up {
		m.masterUp.Set(1)
		m.lastContact.Set(float64(time.Now().UnixMilli()) / 1000)
	} else {
		m.masterUp.Set(0)
	}
}

// master registers the master's families: they appear once the node talks
// to a master, so that a masterless node does not export a master "down".
func (m *Metrics) master() {
	m.masterOnce.Do(func() { m.reg.MustRegister(m.lastSuccess, m.partErrors, m.masterUp, m.lastContact) })
}

// ObserveBuild records a software release build.
func (m *Metrics) ObserveBuild(d time.Duration, err error) {
	if m == nil {
		return
	}
	result := "ok"
	if err != nil {
		result = "failed"
	}
	m.builds.WithLabelValues(result).Inc()
	m.buildTime.Observe(d.Seconds())
}

// supervisorServices gives the promise metrics the supervisor's statuses
// in-process, without a round trip through the control socket.
type supervisorServices struct {
	mu  sync.Mutex
	sup *supervisor.Supervisor // set once the daemon serves
}

func (s *supervisorServices) set(sup *supervisor.Supervisor) {
	s.mu.Lock()
	s.sup = sup
	s.mu.Unlock()
}

func (s *supervisorServices) Status(context.Context) ([]service.Status, error) {
	s.mu.Lock()
	sup := s.sup
	s.mu.Unlock()
	if sup == nil {
		return nil, errors.New("the supervisor is not started yet")
	}
	return sup.Status(), nil
}
