// Package master is slapnode's SLAP master: the server nodes and requesters
// talk to, with its state in SQLite (pure Go, no cgo).
//
// It serves the legacy SLAP endpoints exactly as SlapOS's slapproxy does —
// same allocation semantics, same answers byte for byte — so that SlapOS's
// own slapgrid and `slapos request` work against it, and a JSON API beside
// them for slapnode's CLI (docs/api.md). Beyond slapproxy, it can require
// TLS and per-node credentials (Auth), answers bad requests with a 4xx and a
// message instead of a 500, and commits every change in one SQLite
// transaction, so that the database survives a kill at any moment.
package master

import (
	"context"
	"crypto/tls"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	_ "modernc.org/sqlite" // registers the pure-Go "sqlite" driver
)

// DefaultComputer is the computer id a request without a computer_guid
// filter goes to, unless Options.DefaultComputer says otherwise; it is the
// id slapnode's embedded node registers under.
const DefaultComputer = "slapnode"

// Options configure a Master.
type Options struct {
	// DefaultComputer is slapproxy's configured computer_id: the computer
	// of requests that name none, and the one computer that exists (empty)
	// before any node registered.
	DefaultComputer string
	// SoftwareProducts maps a product reference to its software release
	// URLs (getSoftwareReleaseListFromSoftwareProduct).
	SoftwareProducts map[string][]string
	// RequireAuth makes every call need a credential: a bearer token made
	// by CreateCredential or a client certificate made by IssueCertificate
	// (see auth.go); required on non-loopback listeners. Without it, the
	// master's own user and root on this machine need none.
	RequireAuth bool
	// AdvertiseHATEOAS makes getHateoasUrl answer the URL of the master's
	// /hateoas/, as a SlapOS Master does, so that `slapos service list`
	// finds it without master_rest_url; off, it is a 404, as slapproxy's.
	AdvertiseHATEOAS bool
	// Now returns the current time; tests use it to control timestamps.
	Now func() time.Time
	// Logger receives the server's records (requests that failed inside
	// the master, panics, TLS handshake errors); nil discards them.
	Logger *slog.Logger
}

// Master is an open master database with its HTTP handler.
type Master struct {
	db   *sql.DB
	opts Options
	// mu serialises the calls, which run on conn with the statements
	// prepared there (store.go): SQLite has one writer anyway, and taking
	// turns here avoids SQLITE_BUSY retries entirely. It also guards
	// lastTS and cache.
	mu    sync.Mutex
	conn  *sql.Conn
	stmts map[string]*sql.Stmt
	cache answerCache
	// versionChecked is when PRAGMA data_version was last asked,
	// versionEvery how often it is (store.go).
	versionChecked time.Time
	versionEvery   time.Duration
	lastTS         float64 // the last timestamp handed out, to keep them strictly increasing
	runID          string
}

const schemaVersion = "1"

var schemaSQL = []string{
	`CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)`,
	`CREATE TABLE IF NOT EXISTS usage (
		computer TEXT NOT NULL,
		partition TEXT NOT NULL,
		resource TEXT NOT NULL,
		quantity REAL NOT NULL,
		unit TEXT NOT NULL DEFAULT '',
		date TEXT NOT NULL DEFAULT '',
		PRIMARY KEY (computer, partition, resource))`,
	`CREATE TABLE IF NOT EXISTS computer (
		reference TEXT PRIMARY KEY,
		address TEXT NOT NULL DEFAULT '',
		netmask TEXT NOT NULL DEFAULT '')`,
	`CREATE TABLE IF NOT EXISTS software (
		url TEXT NOT NULL,
		computer_reference TEXT NOT NULL,
		requested_state TEXT NOT NULL DEFAULT 'available',
		reported_state TEXT NOT NULL DEFAULT '',
		error_log TEXT NOT NULL DEFAULT '',
		PRIMARY KEY (url, computer_reference))`,
	`CREATE TABLE IF NOT EXISTS partition (
		reference TEXT NOT NULL,
		computer_reference TEXT NOT NULL,
		slap_state TEXT NOT NULL DEFAULT 'free',
		software_release TEXT,
		xml TEXT,
		connection_xml TEXT,
		slave_instance_list TEXT,
		software_type TEXT,
		partition_reference TEXT,
		requested_by TEXT NOT NULL DEFAULT '',
		requested_state TEXT NOT NULL DEFAULT 'started',
		timestamp REAL,
		reported_state TEXT NOT NULL DEFAULT '',
		error_log TEXT NOT NULL DEFAULT '',
		PRIMARY KEY (reference, computer_reference))`,
	`CREATE INDEX IF NOT EXISTS partition_title ON partition (partition_reference, requested_by)`,
	`CREATE TABLE IF NOT EXISTS slave (
		reference TEXT NOT NULL,
		computer_reference TEXT NOT NULL,
		connection_xml TEXT,
		hosted_by TEXT,
		asked_by TEXT)`,
	`CREATE INDEX IF NOT EXISTS slave_reference ON slave (reference)`,
	`CREATE TABLE IF NOT EXISTS partition_network (
		partition_reference TEXT NOT NULL,
		computer_reference TEXT NOT NULL,
		reference TEXT NOT NULL,
		address TEXT NOT NULL,
		netmask TEXT NOT NULL)`,
	`CREATE INDEX IF NOT EXISTS partition_network_partition ON partition_network (computer_reference, partition_reference)`,
	`CREATE TABLE IF NOT EXISTS certificate (
		fingerprint TEXT PRIMARY KEY,
		serial TEXT NOT NULL,
		scope TEXT NOT NULL,
		computer_reference TEXT NOT NULL DEFAULT '',
		partition_reference TEXT NOT NULL DEFAULT '',
		certificate TEXT NOT NULL,
		key TEXT NOT NULL DEFAULT '',
		not_after TEXT NOT NULL,
		created TEXT NOT NULL,
		revoked TEXT NOT NULL DEFAULT '')`,
	`CREATE INDEX IF NOT EXISTS certificate_owner ON certificate (scope, computer_reference, partition_reference)`,
	`CREATE TABLE IF NOT EXISTS registration (
		computer_reference TEXT PRIMARY KEY,
		title TEXT NOT NULL,
		registered TEXT NOT NULL)`,
	`CREATE TABLE IF NOT EXISTS credential (
		token_hash TEXT PRIMARY KEY,
		scope TEXT NOT NULL,
		computer_reference TEXT NOT NULL DEFAULT '',
		partition_reference TEXT NOT NULL DEFAULT '',
		created TEXT NOT NULL)`,
}

// Open opens (creating if needed) the master database at path.
func Open(path string, opts Options) (*Master, error) {
	if opts.DefaultComputer == "" {
		opts.DefaultComputer = DefaultComputer
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("master database %s: %w", path, err)
		}
	}
	if err := privateDatabaseFiles(path); err != nil {
		return nil, fmt.Errorf("master database %s: %w", path, err)
	}
	// WAL: a commit is one append to the log, and a process killed at any
	// point leaves the database at its last commit. synchronous=NORMAL is
	// durable against a killed process; only a power cut may lose the
	// last commits (never corrupt the file).
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=busy_timeout(10000)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("master database %s: %w", path, err)
	}
	// One connection for the calls, which take turns on it (store.go), one
	// for credential lookups and tools.
	db.SetMaxOpenConns(2)
	m := &Master{db: db, opts: opts, stmts: map[string]*sql.Stmt{}, versionEvery: dataVersionEvery}
	if err := m.init(); err != nil {
		db.Close()
		return nil, fmt.Errorf("master database %s: %w", path, err)
	}
	if m.conn, err = db.Conn(context.Background()); err != nil {
		db.Close()
		return nil, fmt.Errorf("master database %s: %w", path, err)
	}
	return m, nil
}

// privateDatabaseFiles makes the database, and the WAL and shared-memory
// files SQLite keeps beside it, readable by the master's user only: they
// hold every instance's parameters and the credentials' hashes, whatever
// directory --db names. The database is created 0600 before SQLite opens
// it (SQLite gives its -wal and -shm files the database file's mode), and
// files left more open by an older slapnode are tightened.
func privateDatabaseFiles(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := tighten(f); err != nil {
		return err
	}
	for _, suffix := range []string{"-wal", "-shm", "-journal"} {
		g, err := os.OpenFile(path+suffix, os.O_RDWR|syscall.O_NOFOLLOW, 0)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		err = tighten(g)
		g.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func tighten(f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", f.Name())
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return f.Chmod(fi.Mode().Perm() &^ 0o077)
	}
	return nil
}

func (m *Master) init() error {
	ctx := context.Background()
	tx, err := m.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, s := range schemaSQL {
		if _, err := tx.Exec(s); err != nil {
			return fmt.Errorf("creating the schema: %w", err)
		}
	}
	var v string
	switch err := tx.QueryRow(`SELECT value FROM meta WHERE name='schema_version'`).Scan(&v); {
	case errors.Is(err, sql.ErrNoRows):
		if _, err := tx.Exec(`INSERT INTO meta (name, value) VALUES ('schema_version', ?)`, schemaVersion); err != nil {
			return err
		}
	case err != nil:
		return err
	case v != schemaVersion:
		return fmt.Errorf("schema version %s, this slapnode knows %s: use the slapnode that created it", v, schemaVersion)
	}
	if err := tx.QueryRow(`SELECT value FROM meta WHERE name='run_id'`).Scan(&m.runID); errors.Is(err, sql.ErrNoRows) {
		m.runID = randomToken(16)
		if _, err := tx.Exec(`INSERT INTO meta (name, value) VALUES ('run_id', ?)`, m.runID); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	var last sql.NullFloat64
	if err := tx.QueryRow(`SELECT MAX(timestamp) FROM partition`).Scan(&last); err != nil {
		return err
	}
	m.lastTS = last.Float64
	return tx.Commit()
}

// Close closes the database.
func (m *Master) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range m.stmts {
		s.Close()
	}
	m.conn.Close()
	return m.db.Close()
}

// DB exposes the database for tools and tests (read it, do not change it
// behind the master's back).
func (m *Master) DB() *sql.DB { return m.db }

// DefaultComputer is the computer of requests that name none.
func (m *Master) DefaultComputer() string { return m.opts.DefaultComputer }

// timestamp returns str(time.time())'s value for a change: strictly
// greater than any handed out before, so that two changes never share a
// timestamp (a node compares them to know whether to reprocess).
func (m *Master) timestamp() float64 {
	t := m.opts.Now()
	ts := float64(t.UnixNano()) / 1e9
	if ts <= m.lastTS {
		// A microsecond, not an ulp, so that the two stay distinct once
		// printed with Python's repr.
		ts = m.lastTS + 1e-6
	}
	m.lastTS = ts
	return ts
}

// Handler serves the SLAP endpoints and the JSON API.
func (m *Master) Handler() http.Handler {
	mux := http.NewServeMux()
	m.routeSLAP(mux)
	m.routeHATEOAS(mux)
	m.routeAPI(mux)
	return withLogger(m.logger(), recoverer(m.authenticate(mux)))
}

func (m *Master) logger() *slog.Logger {
	if m.opts.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return m.opts.Logger
}

type loggerKey struct{}

// withLogger gives the handlers below it the master's logger through the
// request's context (SLAP handlers are plain functions of the request).
func withLogger(l *slog.Logger, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), loggerKey{}, l)))
	})
}

// requestLogger is the logger withLogger put in r's context.
func requestLogger(r *http.Request) *slog.Logger {
	if l, ok := r.Context().Value(loggerKey{}).(*slog.Logger); ok {
		return l
	}
	return slog.New(slog.DiscardHandler)
}

// Serve serves the master on ln until ctx is cancelled, over TLS when
// tlsConfig is not nil. It refuses a non-loopback listener unless TLS and
// authentication are both on (CheckListen).
func (m *Master) Serve(ctx context.Context, ln net.Listener, tlsConfig *tls.Config) error {
	if err := CheckListen(ln.Addr().String(), tlsConfig != nil, m.opts.RequireAuth); err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           m.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       2 * time.Minute,
		WriteTimeout:      2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		TLSConfig:         tlsConfig,
		ErrorLog:          slog.NewLogLogger(m.logger().Handler(), slog.LevelWarn),
		ConnContext:       withConnPeer,
	}
	if tlsConfig != nil {
		if tlsConfig.ClientAuth == tls.NoClientCert {
			// Ask for a client certificate; whether it is one this master
			// issued is decided per request (pki.go), with a message.
			tlsConfig = tlsConfig.Clone()
			tlsConfig.ClientAuth = tls.RequestClientCert
		}
		srv.TLSConfig = tlsConfig
		ln = tls.NewListener(ln, tlsConfig)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		shut, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(shut)
		<-done
		return nil
	}
}

// recoverer turns a panic into a 500 without a traceback on the wire (the
// message goes to the server's log through net/http's logger instead).
func recoverer(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				htmlError(w, http.StatusInternalServerError, "The server encountered an internal error and was unable to complete your request. Either the server is overloaded or there is an error in the application.")
				requestLogger(r).Error("panic serving a request", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v))
			}
		}()
		h.ServeHTTP(w, r)
	})
}
