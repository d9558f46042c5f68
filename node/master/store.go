package master

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"strings"
	"time"
)

// How a call reaches the database (measured in docs/benchmarks.md#master):
//
//   - Calls take turns on one connection of their own (Master.conn), under
//     Master.mu. A call is one transaction, begun with BEGIN IMMEDIATE and
//     ended with COMMIT or ROLLBACK as prepared statements on that
//     connection: database/sql's Tx would prepare every statement again in
//     each transaction, and SQLite spends longer parsing a statement than
//     running one of these.
//   - Every statement is prepared once, the first time a call uses it, and
//     kept for the master's lifetime (the set of statements is fixed by the
//     code: a few dozen).
//   - Statements run with a context that is never cancelled (the driver
//     would start a goroutine per statement to watch it); a call whose
//     client went away is rolled back before its commit instead.
//   - Answers computed from the database alone (a computer's document, a
//     partition's, an unchanged re-request) are kept until the next change
//     (answerCache).
//
// The pool (Master.db) keeps one more connection for what does not take
// turns: looking up a credential, listing certificates, and tools.

// txn is one call's transaction.
type txn struct {
	m   *Master
	ctx context.Context // never cancelled, see above
	// changed: the call wrote something an answer may show, which
	// invalidates the cached answers when it commits.
	changed bool
}

// Exec runs a statement that changes what answers show.
func (t *txn) Exec(query string, args ...any) (sql.Result, error) {
	t.changed = true
	return t.exec(query, args...)
}

// execUnseen runs a statement that only changes what no cached answer
// shows (reported states, error logs, usage): the cache stays valid. See
// answerCache for what the answers contain.
func (t *txn) execUnseen(query string, args ...any) (sql.Result, error) {
	return t.exec(query, args...)
}

func (t *txn) exec(query string, args ...any) (sql.Result, error) {
	s, err := t.m.stmt(query)
	if err != nil {
		return nil, err
	}
	return s.ExecContext(t.ctx, args...)
}

func (t *txn) Query(query string, args ...any) (*sql.Rows, error) {
	s, err := t.m.stmt(query)
	if err != nil {
		return nil, err
	}
	return s.QueryContext(t.ctx, args...)
}

func (t *txn) QueryRow(query string, args ...any) *sql.Row {
	s, err := t.m.stmt(query)
	if err != nil {
		// A *sql.Row can only carry an error from a statement; this one
		// could not be prepared, so run it unprepared to get its error.
		return t.m.conn.QueryRowContext(t.ctx, query, args...)
	}
	return s.QueryRowContext(t.ctx, args...)
}

// stmt returns query prepared on the calls' connection. Called with m.mu
// held.
func (m *Master) stmt(query string) (*sql.Stmt, error) {
	if s, ok := m.stmts[query]; ok {
		return s, nil
	}
	s, err := m.conn.PrepareContext(context.Background(), query)
	if err != nil {
		return nil, err
	}
	m.stmts[query] = s
	return s, nil
}

// tx runs f in one transaction: all of a call's changes are committed
// together or not at all, and nothing is committed for a call whose client
// is gone.
func (m *Master) tx(ctx context.Context, f func(tx *txn) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, err := m.txLocked(ctx, f)
	return err
}

// txLocked is tx with m.mu held; changed tells whether the committed call
// changed what answers show.
func (m *Master) txLocked(ctx context.Context, f func(tx *txn) error) (changed bool, err error) {
	saved := m.lastTS
	t := &txn{m: m, ctx: context.WithoutCancel(ctx)}
	if err := m.control(`BEGIN IMMEDIATE`); err != nil {
		return false, fmt.Errorf("master database: %w", err)
	}
	err = f(t)
	if err == nil {
		err = ctx.Err()
	}
	if err == nil {
		if err = m.control(`COMMIT`); err != nil {
			err = fmt.Errorf("master database: commit: %w", err)
		}
	}
	if err != nil {
		// After a failed COMMIT the transaction may still be open (SQLite
		// leaves it so when the commit could not take its locks).
		m.rollback()
		m.lastTS = saved
		return false, err
	}
	if t.changed {
		m.cache.invalidate()
	}
	return t.changed, nil
}

func (m *Master) control(query string) error {
	s, err := m.stmt(query)
	if err != nil {
		return err
	}
	_, err = s.ExecContext(context.Background())
	return err
}

// rollback ends the open transaction, if any.
func (m *Master) rollback() {
	if err := m.control(`ROLLBACK`); err != nil && !strings.Contains(err.Error(), "no transaction is active") {
		// The connection is in an unknown state: drop it, so that the
		// next call starts on a fresh one (Open's settings apply again).
		m.resetConn()
	}
}

// answerCache keeps the answers the master computes from the database
// alone, from one change to the next: a computer's document
// (getFullComputerInformation, what every node polls), a partition's
// (registerComputerPartition), and the answer to a requestComputerPartition
// that changed nothing (a requester polling for its connection parameters,
// every instance re-requesting its children on each run). It is emptied by
// every committed call that changed what they show (txn.Exec) and when
// another connection changed the database (PRAGMA data_version, asked at
// most every dataVersionEvery: a `slapnode master token` run beside the
// master, say). Reported states, error logs, usage figures, credentials
// and certificates are in none of these answers: writing them
// (txn.execUnseen) keeps the cache. TestAnswerCacheMatchesDatabase checks,
// after each call of a whole scenario, that every cached answer is the one
// the database gives.
//
// An answer is stored after its call's authorisation was checked, and
// served only after the next call's was checked in turn: the cache changes
// nothing about who may read what. It is only used with Master.mu held.
type answerCache struct {
	answers map[string]cachedAnswer
	size    int
	// version is the database's data_version the answers were computed
	// at: another connection's commit changes it.
	version int64
}

// maxCached bounds the bytes the cache holds: the document of a computer
// of 1000 partitions is about 2.4 MB.
const maxCached = 8 << 20

// cachedAnswer is an answer, and for a request the requester the form
// named: a request found by its raw body is authorised with them, as the
// parsed form would have been.
type cachedAnswer struct {
	body                []byte
	computer, partition string
}

func (a cachedAnswer) size() int { return len(a.body) + len(a.computer) + len(a.partition) }

func (c *answerCache) put(key string, a cachedAnswer) {
	n := len(key) + a.size()
	if n > maxCached/4 {
		return // an answer, or a request, this large is not worth keeping
	}
	if c.size+n > maxCached {
		c.answers, c.size = nil, 0
	}
	if c.answers == nil {
		c.answers = map[string]cachedAnswer{}
	}
	if old, ok := c.answers[key]; ok {
		c.size -= len(key) + old.size()
	}
	c.answers[key] = a
	c.size += n
}

func (c *answerCache) invalidate() {
	c.answers, c.size = nil, 0
}

// cached returns the answer stored under key if the database has not
// changed since it was computed, else computes it with compute in one
// transaction, and keeps it when that transaction changed nothing.
func (m *Master) cached(ctx context.Context, key string, compute func(tx *txn) ([]byte, error)) ([]byte, error) {
	a, err := m.cachedFull(ctx, key, func(tx *txn) (cachedAnswer, error) {
		b, err := compute(tx)
		return cachedAnswer{body: b}, err
	})
	return a.body, err
}

func (m *Master) cachedFull(ctx context.Context, key string, compute func(tx *txn) (cachedAnswer, error)) (cachedAnswer, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.checkDataVersion(); err != nil {
		return cachedAnswer{}, fmt.Errorf("master database: %w", err)
	}
	if a, ok := m.cache.answers[key]; ok {
		return a, nil
	}
	var out cachedAnswer
	changed, err := m.txLocked(ctx, func(tx *txn) error {
		var err error
		out, err = compute(tx)
		return err
	})
	if err != nil {
		return cachedAnswer{}, err
	}
	if !changed {
		m.cache.put(key, out)
	}
	return out, nil
}

// lookup returns the answer stored under key, if the database has not
// changed since it was computed.
func (m *Master) lookup(key string) (cachedAnswer, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.checkDataVersion(); err != nil {
		return cachedAnswer{}, false, fmt.Errorf("master database: %w", err)
	}
	a, ok := m.cache.answers[key]
	return a, ok, nil
}

// dataVersionEvery is how often a cached call asks SQLite whether another
// connection committed: the only other writers are `slapnode master token`
// and `certificate` run beside the master, and what they write is in no
// cached answer; the check is for anything else (a hand edit), which is
// then seen within this delay. Asking on every call cost more than the rest
// of a cached call together.
const dataVersionEvery = time.Second

// checkDataVersion empties the cache when another connection committed
// since the last check, asking at most every m.versionEvery. Called with
// m.mu held.
func (m *Master) checkDataVersion() error {
	now := time.Now()
	if now.Sub(m.versionChecked) < m.versionEvery {
		return nil
	}
	m.versionChecked = now
	s, err := m.stmt(`PRAGMA data_version`)
	if err != nil {
		return err
	}
	var v int64
	if err := s.QueryRowContext(context.Background()).Scan(&v); err != nil {
		return err
	}
	if v != m.cache.version {
		m.cache.invalidate()
		m.cache.version = v
	}
	return nil
}

// resetConn replaces the calls' connection after an error that left it in
// an unknown state. Called with m.mu held.
func (m *Master) resetConn() {
	for _, s := range m.stmts {
		s.Close()
	}
	m.stmts = map[string]*sql.Stmt{}
	m.cache.invalidate()
	// Tell database/sql to close it rather than keep it in the pool.
	m.conn.Raw(func(any) error { return driver.ErrBadConn })
	m.conn.Close()
	c, err := m.db.Conn(context.Background())
	if err != nil {
		// Only when the database is closed: every later call fails
		// with sql.ErrConnDone, which says so.
		return
	}
	m.conn = c
}
