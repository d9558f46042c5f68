package master

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"
)

// Credential scopes. An admin may do anything (supply, request as a user,
// the JSON API); a computer credential is a node's: it may read and report
// for its own computer and partitions; a partition credential may only act
// for that one partition: publish its own connection parameters, bang
// itself, request its children.
const (
	ScopeAdmin     = "admin"
	ScopeComputer  = "computer"
	ScopePartition = "partition"
)

// principal is who a request authenticated as.
type principal struct {
	scope, computer, partition string
}

type principalKey struct{}

// authenticate requires a valid bearer token on every request.
func (m *Master) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || tok == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="slapnode master"`)
			htmlError(w, http.StatusUnauthorized, "this master requires a credential: send Authorization: Bearer TOKEN (make one with slapnode master token)")
			return
		}
		p, err := m.lookupToken(r.Context(), tok)
		if err != nil {
			htmlError(w, http.StatusInternalServerError, "The master could not check the credential.")
			return
		}
		if p == nil {
			htmlError(w, http.StatusUnauthorized, "unknown or revoked credential")
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}

func hashToken(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:])
}

func (m *Master) lookupToken(ctx context.Context, tok string) (*principal, error) {
	p := &principal{}
	err := m.db.QueryRowContext(ctx, `SELECT scope, computer_reference, partition_reference FROM credential WHERE token_hash=?`, hashToken(tok)).
		Scan(&p.scope, &p.computer, &p.partition)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return p, err
}

func randomToken(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return hex.EncodeToString(b)
}

// CreateCredential makes a new token for scope (ScopeAdmin; ScopeComputer
// with computer; ScopePartition with computer and partition) and returns
// it. Only its hash is stored: the token cannot be shown again.
func (m *Master) CreateCredential(ctx context.Context, scope, computer, partition string) (string, error) {
	switch {
	case scope == ScopeAdmin && computer == "" && partition == "":
	case scope == ScopeComputer && computer != "" && partition == "":
	case scope == ScopePartition && computer != "" && partition != "":
	default:
		return "", fmt.Errorf("credential: scope %q with computer %q and partition %q: want admin, computer COMPUTER, or partition COMPUTER PARTITION", scope, computer, partition)
	}
	tok := randomToken(24)
	err := m.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO credential (token_hash, scope, computer_reference, partition_reference, created) VALUES (?, ?, ?, ?, ?)`,
			hashToken(tok), scope, computer, partition, m.opts.Now().UTC().Format(time.RFC3339))
		return err
	})
	return tok, err
}

// RevokeCredentials removes every credential of scope for computer (and
// partition), and returns how many there were.
func (m *Master) RevokeCredentials(ctx context.Context, scope, computer, partition string) (int64, error) {
	var n int64
	err := m.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.Exec(`DELETE FROM credential WHERE scope=? AND computer_reference=? AND partition_reference=?`, scope, computer, partition)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

func who(r *http.Request) *principal {
	p, _ := r.Context().Value(principalKey{}).(*principal)
	return p
}

// authenticated tells whether the request carried a credential (the master
// requires them).
func authenticated(r *http.Request) bool { return who(r) != nil }

func forbidden(p *principal, what string) error {
	as := p.scope
	if p.computer != "" {
		as += " " + p.computer
	}
	if p.partition != "" {
		as += " " + p.partition
	}
	return errorf(http.StatusForbidden, "a %s credential may not %s", as, what)
}

func authorizeAdmin(r *http.Request) error {
	p := who(r)
	if p == nil || p.scope == ScopeAdmin {
		return nil
	}
	return forbidden(p, "do this (admin only)")
}

func authorizeComputer(r *http.Request, computer string) error {
	p := who(r)
	if p == nil || p.scope == ScopeAdmin || (p.scope == ScopeComputer && p.computer == computer) {
		return nil
	}
	return forbidden(p, "act for computer "+computer)
}

func authorizePartition(r *http.Request, computer, partition string) error {
	p := who(r)
	if p == nil || p.scope == ScopeAdmin || (p.scope == ScopeComputer && p.computer == computer) ||
		(p.scope == ScopePartition && p.computer == computer && p.partition == partition) {
		return nil
	}
	return forbidden(p, "act for partition "+partition+" of "+computer)
}

// IsLoopback tells whether a listen address (HOST:PORT) only accepts
// connections from this machine.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ErrInsecureListen is returned by CheckListen.
var ErrInsecureListen = errors.New("a master listening beyond loopback needs TLS and authentication")

// CheckListen refuses a non-loopback listener without both TLS and
// authentication: SLAP over plain HTTP carries every instance's secrets.
func CheckListen(addr string, tls, auth bool) error {
	if IsLoopback(addr) || (tls && auth) {
		return nil
	}
	return fmt.Errorf("listen %s: %w (give --tls-cert and --tls-key, and --auth with credentials from slapnode master token)", addr, ErrInsecureListen)
}
