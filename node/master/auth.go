package master

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

// Credential scopes. An admin may do anything (supply, request as a user,
// the JSON API); a computer credential is a node's: it may read and report
// for its own computer and partitions; a partition credential may only act
// for that one partition: publish its own connection parameters, bang
// itself, request its children. A register credential (a "computer
// security token" in SlapOS's words) may only register one new node
// (Person_requestComputer), once.
const (
	ScopeAdmin     = "admin"
	ScopeComputer  = "computer"
	ScopePartition = "partition"
	ScopeRegister  = "register"
)

// principal is who a request authenticated as, and how (for messages).
type principal struct {
	scope, computer, partition string
	via                        string
}

type principalKey struct{}

// Who may call, in order:
//
//  1. a client certificate this master issued and did not revoke (TLS);
//  2. a bearer token (Authorization: Bearer TOKEN), or a register token in
//     X-Access-Token, as `slapos node register` sends it;
//  3. without --auth, the master's own user and root on this machine: a
//     call made in-process, or over loopback TCP from a socket the kernel
//     says they own (peer.go). They are the master's operator (admin).
//
// Everybody else — another local user, a partition's user, a remote
// client without a credential — gets a 401 saying what to present.
func (m *Master) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := m.identify(r)
		if err == nil && p == nil {
			err = errorf(http.StatusUnauthorized, "%s", m.anonymousMessage(r))
		}
		if err != nil {
			status, msg := http.StatusInternalServerError, "The master could not check the credential."
			var se *statusError
			if errors.As(err, &se) {
				status, msg = se.status, se.msg
			} else {
				requestLogger(r).Error("cannot check the credential", "method", r.Method, "path", r.URL.Path, "err", err)
			}
			if status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="slapnode master"`)
			}
			if strings.HasPrefix(r.URL.Path, "/api/") {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(status)
				json.NewEncoder(w).Encode(map[string]string{"error": msg})
				return
			}
			htmlError(w, status, msg)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}

// identify returns who r comes from: nil (and no error) for nobody.
func (m *Master) identify(r *http.Request) (*principal, error) {
	ctx := r.Context()
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		leaf := r.TLS.PeerCertificates[0]
		p, err := m.lookupCertificate(ctx, leaf)
		if err != nil || p != nil {
			return p, err
		}
		return nil, errorf(http.StatusUnauthorized, "the client certificate %q (serial %s) was not issued by this master, has expired or was revoked: get one with 'slapnode master certificate' or 'slapnode node register'", leaf.Subject.CommonName, leaf.SerialNumber.Text(16))
	}
	if h := r.Header.Get("Authorization"); h != "" {
		tok, ok := strings.CutPrefix(h, "Bearer ")
		if !ok || tok == "" {
			return nil, errorf(http.StatusUnauthorized, "unsupported Authorization header: send Authorization: Bearer TOKEN (make one with slapnode master token)")
		}
		p, err := m.lookupToken(ctx, tok)
		if err != nil || p != nil {
			return p, err
		}
		return nil, errorf(http.StatusUnauthorized, "unknown or revoked credential")
	}
	if tok := r.Header.Get("X-Access-Token"); tok != "" {
		p, err := m.lookupToken(ctx, tok)
		if err != nil || p != nil {
			return p, err
		}
		return nil, errorf(http.StatusForbidden, "unknown, used or revoked registration token: make one with 'slapnode master token --register'")
	}
	if m.opts.RequireAuth {
		return nil, nil
	}
	if _, ok := ctx.Value(http.LocalAddrContextKey).(net.Addr); !ok {
		// Not from a network connection: the program serving the master
		// called its handler itself.
		return &principal{scope: ScopeAdmin, via: "in-process call"}, nil
	}
	uid, err := requestPeerUID(r)
	if err != nil {
		return nil, nil
	}
	if uid == uint32(os.Geteuid()) || uid == 0 {
		return &principal{scope: ScopeAdmin, via: fmt.Sprintf("local user %d", uid)}, nil
	}
	return nil, nil
}

// anonymousMessage says why a call without a credential is refused, and
// what to do.
func (m *Master) anonymousMessage(r *http.Request) string {
	if m.opts.RequireAuth {
		return "this master requires a credential: send Authorization: Bearer TOKEN (make one with slapnode master token) or present a client certificate (slapnode master certificate)"
	}
	who := "a remote client"
	if uid, err := requestPeerUID(r); err == nil {
		who = fmt.Sprintf("local user %d", uid)
	}
	return fmt.Sprintf("%s has no credential for this master: without one, only the master's own user (uid %d) and root on this machine may call it; give a token (slapnode master token, then --token) or a client certificate (slapnode master certificate)", who, os.Geteuid())
}

func hashToken(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:])
}

func (m *Master) lookupToken(ctx context.Context, tok string) (*principal, error) {
	p := &principal{via: "token"}
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

// checkScope validates a scope and what it names.
func checkScope(scope, computer, partition string) error {
	switch {
	case scope == ScopeAdmin && computer == "" && partition == "":
	case scope == ScopeRegister && computer == "" && partition == "":
	case scope == ScopeComputer && computer != "" && partition == "":
	case scope == ScopePartition && computer != "" && partition != "":
	default:
		return fmt.Errorf("credential: scope %q with computer %q and partition %q: want admin, register, computer COMPUTER, or partition COMPUTER PARTITION", scope, computer, partition)
	}
	return nil
}

// CreateCredential makes a new token for scope (ScopeAdmin or
// ScopeRegister; ScopeComputer with computer; ScopePartition with computer
// and partition) and returns it. Only its hash is stored: the token cannot
// be shown again. A register token is consumed by the registration it
// allows.
func (m *Master) CreateCredential(ctx context.Context, scope, computer, partition string) (string, error) {
	if err := checkScope(scope, computer, partition); err != nil {
		return "", err
	}
	tok := randomToken(24)
	err := m.tx(ctx, func(tx *txn) error {
		_, err := tx.execUnseen(`INSERT INTO credential (token_hash, scope, computer_reference, partition_reference, created) VALUES (?, ?, ?, ?, ?)`,
			hashToken(tok), scope, computer, partition, m.opts.Now().UTC().Format(time.RFC3339))
		return err
	})
	return tok, err
}

// RevokeCredentials removes every token of scope for computer (and
// partition), and returns how many there were. Certificates are revoked
// with RevokeCertificates.
func (m *Master) RevokeCredentials(ctx context.Context, scope, computer, partition string) (int64, error) {
	var n int64
	err := m.tx(ctx, func(tx *txn) error {
		res, err := tx.execUnseen(`DELETE FROM credential WHERE scope=? AND computer_reference=? AND partition_reference=?`, scope, computer, partition)
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

// scoped tells whether the request acts for a node or a partition rather
// than as the master's operator: then a shared instance's connection
// parameters may only be published by the partition hosting it.
func scoped(r *http.Request) bool {
	p := who(r)
	return p == nil || p.scope != ScopeAdmin
}

func forbidden(p *principal, what string) error {
	if p == nil {
		return errorf(http.StatusUnauthorized, "this call needs a credential")
	}
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
	if p != nil && p.scope == ScopeAdmin {
		return nil
	}
	return forbidden(p, "do this (admin only)")
}

func authorizeComputer(r *http.Request, computer string) error {
	p := who(r)
	if p != nil && (p.scope == ScopeAdmin || (p.scope == ScopeComputer && p.computer == computer)) {
		return nil
	}
	return forbidden(p, "act for computer "+computer)
}

func authorizePartition(r *http.Request, computer, partition string) error {
	p := who(r)
	if p != nil && (p.scope == ScopeAdmin || (p.scope == ScopeComputer && p.computer == computer) ||
		(p.scope == ScopePartition && p.computer == computer && p.partition == partition)) {
		return nil
	}
	return forbidden(p, "act for partition "+partition+" of "+computer)
}

// authorizeRead lets any authenticated caller but a register token read
// what is not about one computer (product lists, the run id…).
func authorizeRead(r *http.Request) error {
	p := who(r)
	if p != nil && p.scope != ScopeRegister {
		return nil
	}
	return forbidden(p, "read this")
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
