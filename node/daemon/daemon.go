// Package daemon is the node daemon: it holds the node's supervisor and
// serves a control API (JSON over HTTP) on a unix socket under the node
// root, so that `slapnode apply`, `status`, `start`, `stop`… act on
// services that outlive the command that started them.
//
// Layout under the node root:
//
//	var/run/slapnode.sock   control socket, mode 0600 (root or the rootless user)
//	var/run/daemon.pid      pid of the running daemon
//	var/run/daemon.lock     flock held by the running daemon: one per node root
//	var/log/daemon.log      output of a daemon started in the background
//	var/lib/supervisor/     desired services of every partition (see supervisor)
//
// Under systemd (Type=notify, node/slapnode.service) the daemon says READY=1
// once the socket serves and the services are restored, pings the watchdog
// while its supervisor and socket answer, and says STOPPING=1 when it stops
// (systemd.go). It logs through the *slog.Logger it is given, and exports
// Prometheus metrics (metrics.go) on the control socket and, when asked, on
// a TCP address.
package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/slapnode/slapnode/node/supervisor"
)

// SocketPath is the control socket of the daemon of a node root.
func SocketPath(root string) string { return filepath.Join(root, "var", "run", "slapnode.sock") }

// PidPath is the daemon's pidfile.
func PidPath(root string) string { return filepath.Join(root, "var", "run", "daemon.pid") }

// LockPath is the file the running daemon holds an exclusive flock on.
func LockPath(root string) string { return filepath.Join(root, "var", "run", "daemon.lock") }

// LogPath receives the output of a daemon started by Ensure.
func LogPath(root string) string { return filepath.Join(root, "var", "log", "daemon.log") }

// StateDir is where the supervisor persists the desired services.
func StateDir(root string) string { return filepath.Join(root, "var", "lib", "supervisor") }

var (
	// ErrRunning is returned by Serve when a daemon already runs on the root.
	ErrRunning = errors.New("a slapnode daemon is already running")
	// ErrNotRunning is returned by Dial when no daemon answers.
	ErrNotRunning = errors.New("no slapnode daemon is running")
)

// Config configures Serve. Zero values take defaults.
type Config struct {
	// Supervisor options; StateDir defaults to StateDir(root). Its Logger
	// defaults to Logger.
	Supervisor supervisor.Options
	// Logger receives the daemon's records; default: text on stderr.
	Logger *slog.Logger
	// Metrics are served at GET /v1/metrics on the control socket and, with
	// MetricsAddr, at http://MetricsAddr/metrics; default: NewMetrics with
	// an unknown version.
	Metrics *Metrics
	// MetricsAddr, when set, is the TCP address (host:port; port 0 picks
	// one, see Info.Metrics) that serves the metrics. Serve fails at start
	// when it cannot listen there.
	MetricsAddr string
	// Ready, if set, is called once the socket accepts connections, before
	// systemd is told READY=1.
	Ready func()
	// ShutdownTimeout bounds the graceful stop of every service when the
	// daemon stops; default 5 minutes (each service has its own grace,
	// 60s by default, and they stop in parallel).
	ShutdownTimeout time.Duration
}

// Serve runs the daemon of the node root until ctx is cancelled or a client
// asks for Shutdown, then stops every service gracefully (their desired
// state stays recorded, so the next daemon restores them) and returns.
// At start it restores the services of every partition as recorded. It
// returns an error wrapping ErrRunning if a daemon already runs on root.
func Serve(ctx context.Context, root string, cfg Config) error {
	root, err := filepath.Abs(root)
	if err != nil {
		return fmt.Errorf("node root: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics("unknown", "")
	}
	logger := cfg.Logger
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 5 * time.Minute
	}
	for _, d := range []string{filepath.Dir(SocketPath(root)), filepath.Dir(LogPath(root))} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("preparing node root %s: %w", root, err)
		}
	}
	// The directory holding the socket is the real guard: the socket's own
	// mode is only set after it exists.
	if err := os.Chmod(filepath.Dir(SocketPath(root)), 0o700); err != nil {
		return fmt.Errorf("preparing node root %s: %w", root, err)
	}
	lock, err := acquireLock(root)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := os.WriteFile(PidPath(root), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return fmt.Errorf("writing pidfile: %w", err)
	}
	defer os.Remove(PidPath(root))

	sock := SocketPath(root)
	// Stale: we hold the lock, so no daemon is serving it.
	if err := os.Remove(sock); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing stale socket %s: %w", sock, err)
	}
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", sock, err)
	}
	defer os.Remove(sock)
	if err := os.Chmod(sock, 0o600); err != nil {
		ln.Close()
		return fmt.Errorf("securing socket %s: %w", sock, err)
	}

	// The metrics address is bound before anything starts, so that a
	// taken port fails the start with a message rather than later.
	var metricsLn net.Listener
	if cfg.MetricsAddr != "" {
		if metricsLn, err = net.Listen("tcp", cfg.MetricsAddr); err != nil {
			ln.Close()
			return fmt.Errorf("metrics address %s (daemon.metrics_address in node.hcl, or --metrics): %w", cfg.MetricsAddr, err)
		}
		defer metricsLn.Close()
	}

	opts := cfg.Supervisor
	if opts.StateDir == "" {
		opts.StateDir = StateDir(root)
	}
	if opts.Logger == nil {
		opts.Logger = logger
	}
	sup, err := supervisor.New(opts)
	if err != nil {
		ln.Close()
		return err
	}
	cfg.Metrics.services.set(sup)
	if err := sup.Restore(ctx); err != nil {
		// Keep serving what could be restored; the log names the rest.
		logger.Error("restoring partitions", "err", err)
	}

	stop := make(chan struct{}, 1)
	h := &handler{sup: sup, root: root, started: time.Now(), stop: stop, shutdownTimeout: cfg.ShutdownTimeout, metrics: cfg.Metrics}
	srv := &http.Server{Handler: h.mux(), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	var metricsSrv *http.Server
	if metricsLn != nil {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", cfg.Metrics.Handler())
		metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		h.metricsAddr = metricsLn.Addr().String()
		go metricsSrv.Serve(metricsLn)
	}
	attrs := []any{"root", root, "socket", sock, "pid", os.Getpid()}
	if h.metricsAddr != "" {
		attrs = append(attrs, "metrics", "http://"+h.metricsAddr+"/metrics")
	}
	logger.Info("serving node root", attrs...)
	if cfg.Ready != nil {
		cfg.Ready()
	}
	sd := newSystemd(logger)
	sd.ready(sup)
	wdDone := sd.watchdog(ctx, func() error { return h.healthy(sock) })

	var serveErr error
	select {
	case <-ctx.Done():
		logger.Info("stopping", "cause", context.Cause(ctx).Error())
	case <-stop:
		logger.Info("stopping on request")
	case serveErr = <-served:
	}
	sd.stopping()
	wdDone()
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	// Services first, while the socket still answers status requests.
	if err := sup.Shutdown(sctx); err != nil {
		logger.Error("stopping services", "err", err)
	}
	_ = srv.Shutdown(sctx)
	if metricsSrv != nil {
		_ = metricsSrv.Shutdown(sctx)
	}
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return fmt.Errorf("serving %s: %w", sock, serveErr)
	}
	logger.Info("stopped")
	return nil
}

// acquireLock takes the exclusive flock that makes a daemon the only one of
// its root. The kernel drops it when the process dies, even by SIGKILL, so
// a stale pidfile never blocks a new daemon.
func acquireLock(root string) (*os.File, error) {
	f, err := os.OpenFile(LockPath(root), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening daemon lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, runningError(root)
		}
		return nil, fmt.Errorf("locking %s: %w", LockPath(root), err)
	}
	return f, nil
}

func runningError(root string) error {
	pid := "unknown pid"
	if b, err := os.ReadFile(PidPath(root)); err == nil {
		pid = "pid " + strings.TrimSpace(string(b))
	}
	return fmt.Errorf("%w for node root %s (%s, socket %s); stop it with 'slapnode node stop --root %s'", ErrRunning, root, pid, SocketPath(root), root)
}

// lockHeld reports whether a daemon holds the root's lock.
func lockHeld(root string) bool {
	f, err := os.Open(LockPath(root))
	if err != nil {
		return false
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err != nil {
		return errors.Is(err, syscall.EWOULDBLOCK)
	}
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return false
}

// Info describes a running daemon.
type Info struct {
	Pid     int
	Root    string
	Started time.Time
	// Metrics is the TCP address serving /metrics, "" when none.
	Metrics string `json:",omitempty"`
}

// Request bodies of the API.
type (
	applyRequest struct {
		Partition string
		Specs     []supervisor.ServiceSpec
		Requested string `json:",omitempty"` // default started
	}
	targetRequest struct {
		Partition, Service string
	}
	buildRequest struct {
		URL     string
		Seconds float64
		Error   string `json:",omitempty"`
	}
	apiError struct {
		Error string
		Kind  string // not_found, invalid, closed, internal: mapped back to sentinel errors
	}
)

type handler struct {
	sup             *supervisor.Supervisor
	root            string
	started         time.Time
	stop            chan struct{}
	shutdownTimeout time.Duration
	metrics         *Metrics
	metricsAddr     string
}

// healthy is the watchdog's check: the supervisor answers (its lock is
// not stuck) and so does the control socket, end to end.
func (h *handler) healthy(sock string) error {
	done := make(chan struct{})
	go func() {
		h.sup.Status()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		return errors.New("the supervisor does not answer")
	}
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}}}
	defer c.CloseIdleConnections()
	resp, err := c.Get("http://slapnode/v1/info")
	if err != nil {
		return fmt.Errorf("the control socket does not answer: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the control socket answers %s", resp.Status)
	}
	return nil
}

func (h *handler) mux() *http.ServeMux {
	m := http.NewServeMux()
	m.HandleFunc("GET /v1/info", func(w http.ResponseWriter, r *http.Request) {
		reply(w, Info{Pid: os.Getpid(), Root: h.root, Started: h.started, Metrics: h.metricsAddr}, nil)
	})
	m.Handle("GET /v1/metrics", h.metrics.Handler())
	m.HandleFunc("POST /v1/builds", func(w http.ResponseWriter, r *http.Request) {
		// A build done by a command (apply) rather than by the daemon.
		var req buildRequest
		if !decode(w, r, &req) {
			return
		}
		var err error
		if req.Error != "" {
			err = errors.New(req.Error)
		}
		h.metrics.ObserveBuild(time.Duration(req.Seconds*float64(time.Second)), err)
		reply(w, struct{}{}, nil)
	})
	m.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		reply(w, h.sup.Status(), nil)
	})
	m.HandleFunc("GET /v1/logs", func(w http.ResponseWriter, r *http.Request) {
		paths, err := h.sup.LogPaths(r.URL.Query().Get("partition"), r.URL.Query().Get("service"))
		reply(w, paths, err)
	})
	m.HandleFunc("POST /v1/apply", func(w http.ResponseWriter, r *http.Request) {
		var req applyRequest
		if !decode(w, r, &req) {
			return
		}
		if req.Requested == "" {
			req.Requested = supervisor.PartitionStarted
		}
		ch, err := h.sup.ApplyState(req.Partition, req.Specs, req.Requested)
		reply(w, ch, err)
	})
	target := func(op func(ctx context.Context, t targetRequest) error) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			var req targetRequest
			if !decode(w, r, &req) {
				return
			}
			reply(w, struct{}{}, op(r.Context(), req))
		}
	}
	m.HandleFunc("POST /v1/start", target(func(ctx context.Context, t targetRequest) error {
		return h.sup.Start(ctx, t.Partition, t.Service)
	}))
	m.HandleFunc("POST /v1/stop", target(func(ctx context.Context, t targetRequest) error {
		return h.sup.Stop(ctx, t.Partition, t.Service)
	}))
	m.HandleFunc("POST /v1/restart", target(func(ctx context.Context, t targetRequest) error {
		return h.sup.Restart(ctx, t.Partition, t.Service)
	}))
	m.HandleFunc("POST /v1/stop-partition", target(func(ctx context.Context, t targetRequest) error {
		return h.sup.StopPartition(ctx, t.Partition)
	}))
	m.HandleFunc("POST /v1/remove", target(func(ctx context.Context, t targetRequest) error {
		return h.sup.Remove(ctx, t.Partition)
	}))
	m.HandleFunc("POST /v1/shutdown", func(w http.ResponseWriter, r *http.Request) {
		// Stop the services before answering, so the client knows they
		// are gone when the call returns; the daemon exits right after.
		ctx, cancel := context.WithTimeout(context.Background(), h.shutdownTimeout)
		defer cancel()
		err := h.sup.Shutdown(ctx)
		reply(w, struct{}{}, err)
		select {
		case h.stop <- struct{}{}:
		default:
		}
	})
	return m
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		reply(w, nil, fmt.Errorf("%w: request body: %v", errBadRequest, err))
		return false
	}
	return true
}

var errBadRequest = errors.New("bad request")

func reply(w http.ResponseWriter, v any, err error) {
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		status, kind := http.StatusInternalServerError, "internal"
		switch {
		case errors.Is(err, supervisor.ErrNotFound):
			status, kind = http.StatusNotFound, "not_found"
		case errors.Is(err, supervisor.ErrSpec), errors.Is(err, errBadRequest):
			status, kind = http.StatusBadRequest, "invalid"
		case errors.Is(err, supervisor.ErrClosed):
			status, kind = http.StatusServiceUnavailable, "closed"
		}
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(apiError{Error: err.Error(), Kind: kind})
		return
	}
	_ = json.NewEncoder(w).Encode(v)
}
