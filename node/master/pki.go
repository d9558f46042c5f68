package master

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"strings"
	"time"
)

// The master is its own certificate authority, as the SlapOS Master is:
// it issues a certificate to each node (computer scope), to each
// partition hosting an instance (partition scope, handed to the node by
// getComputerPartitionCertificate) and to its operators (admin scope, the
// "person" certificate of SlapOS's client), and it may serve HTTPS with a
// certificate of its own making.
//
// A client certificate is recognised by the SHA-256 of its DER encoding,
// looked up in the certificate table: only certificates this master issued
// and did not revoke match, so the TLS layer only has to prove that the
// client holds the key (tls.RequestClientCert), and revoking one takes
// effect on the next call. The CA's key stays in the database, which only
// the master's user can read (master.go, privateDatabaseFiles).

// certificateLifetime is how long an issued certificate is valid; revoking
// is how one ends earlier.
const (
	certificateLifetime = 5 * 365 * 24 * time.Hour
	caLifetime          = 20 * 365 * 24 * time.Hour
)

// Certificate is an issued certificate, as listed by Certificates.
type Certificate struct {
	Serial    string    `json:"serial"`
	Scope     string    `json:"scope"`
	Computer  string    `json:"computer,omitempty"`
	Partition string    `json:"partition,omitempty"`
	NotAfter  time.Time `json:"not_after"`
	Revoked   string    `json:"revoked,omitempty"`
}

func fingerprint(der []byte) string {
	h := sha256.Sum256(der)
	return hex.EncodeToString(h[:])
}

func encodePEM(typ string, der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

func newKey() (*ecdsa.PrivateKey, string, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, "", err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, "", err
	}
	return k, encodePEM("PRIVATE KEY", der), nil
}

func serialNumber() *big.Int {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	b[0] &= 0x7f // positive
	return new(big.Int).SetBytes(b)
}

// caOf returns the master's CA, making it on first use (in tx, so that two
// first uses cannot make two).
func (m *Master) caOf(tx *txn) (*x509.Certificate, crypto.Signer, error) {
	var certPEM, keyPEM string
	err := tx.QueryRow(`SELECT c.value, k.value FROM meta c, meta k WHERE c.name='ca_certificate' AND k.name='ca_key'`).Scan(&certPEM, &keyPEM)
	if errors.Is(err, sql.ErrNoRows) {
		key, kp, err := newKey()
		if err != nil {
			return nil, nil, err
		}
		now := m.opts.Now()
		tmpl := &x509.Certificate{
			SerialNumber: serialNumber(),
			Subject:      pkix.Name{Organization: []string{"slapnode"}, CommonName: "slapnode master CA " + m.runID[:8]},
			NotBefore:    now.Add(-time.Hour), NotAfter: now.Add(caLifetime),
			IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true,
			KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			return nil, nil, err
		}
		certPEM, keyPEM = encodePEM("CERTIFICATE", der), kp
		if _, err := tx.execUnseen(`INSERT INTO meta (name, value) VALUES ('ca_certificate', ?), ('ca_key', ?)`, certPEM, keyPEM); err != nil {
			return nil, nil, err
		}
	} else if err != nil {
		return nil, nil, err
	}
	cb, _ := pem.Decode([]byte(certPEM))
	kb, _ := pem.Decode([]byte(keyPEM))
	if cb == nil || kb == nil {
		return nil, nil, errors.New("the stored CA is damaged")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("the stored CA certificate: %w", err)
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("the stored CA key: %w", err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, nil, errors.New("the stored CA key cannot sign")
	}
	return cert, signer, nil
}

// CACertificate returns the master's CA certificate (PEM), making the CA
// on first use: nodes verify an HTTPS master made with ServerCertificate
// against it (slapos.cfg's master_ca_file).
func (m *Master) CACertificate(ctx context.Context) (string, error) {
	var out string
	err := m.tx(ctx, func(tx *txn) error {
		ca, _, err := m.caOf(tx)
		if err == nil {
			out = encodePEM("CERTIFICATE", ca.Raw)
		}
		return err
	})
	return out, err
}

// issue signs a new client certificate for scope and records it; the key
// is kept only when keep is set (partition certificates, which the node
// fetches again on every pass, as from a SlapOS Master).
func (m *Master) issue(tx *txn, scope, computer, partition string, keep bool) (certPEM, keyPEM string, err error) {
	if err := checkScope(scope, computer, partition); err != nil || scope == ScopeRegister {
		return "", "", fmt.Errorf("certificate: scope %q with computer %q and partition %q: want admin, computer COMPUTER, or partition COMPUTER PARTITION", scope, computer, partition)
	}
	ca, caKey, err := m.caOf(tx)
	if err != nil {
		return "", "", err
	}
	key, kp, err := newKey()
	if err != nil {
		return "", "", err
	}
	cn := computer
	switch scope {
	case ScopeAdmin:
		cn = "admin"
	case ScopePartition:
		cn = computer + " " + partition
	}
	now := m.opts.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serialNumber(),
		Subject:      pkix.Name{Organization: []string{"slapnode"}, OrganizationalUnit: []string{scope}, CommonName: cn},
		NotBefore:    now.Add(-time.Hour), NotAfter: now.Add(certificateLifetime),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return "", "", err
	}
	certPEM = encodePEM("CERTIFICATE", der)
	stored := ""
	if keep {
		stored = kp
	}
	if _, err := tx.execUnseen(`INSERT INTO certificate (fingerprint, serial, scope, computer_reference, partition_reference, certificate, key, not_after, created)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, fingerprint(der), tmpl.SerialNumber.Text(16), scope, computer, partition, certPEM, stored,
		tmpl.NotAfter.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339)); err != nil {
		return "", "", err
	}
	return certPEM, kp, nil
}

// IssueCertificate makes a client certificate for scope (ScopeAdmin;
// ScopeComputer with computer; ScopePartition with computer and partition)
// and returns it with its key, both PEM. The key is not kept: it cannot
// be shown again.
func (m *Master) IssueCertificate(ctx context.Context, scope, computer, partition string) (certPEM, keyPEM string, err error) {
	err = m.tx(ctx, func(tx *txn) error {
		certPEM, keyPEM, err = m.issue(tx, scope, computer, partition, false)
		return err
	})
	return certPEM, keyPEM, err
}

// RevokeCertificates revokes every certificate of scope for computer (and
// partition) and returns how many were still valid.
func (m *Master) RevokeCertificates(ctx context.Context, scope, computer, partition string) (int64, error) {
	var n int64
	err := m.tx(ctx, func(tx *txn) (err error) {
		n, err = m.revoke(tx, scope, computer, partition)
		return err
	})
	return n, err
}

func (m *Master) revoke(tx *txn, scope, computer, partition string) (int64, error) {
	res, err := tx.execUnseen(`UPDATE certificate SET revoked=?, key='' WHERE revoked='' AND scope=? AND computer_reference=? AND partition_reference=?`,
		m.opts.Now().UTC().Format(time.RFC3339), scope, computer, partition)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// RevokeCertificate revokes one certificate by its serial number (hex, as
// Certificates lists it).
func (m *Master) RevokeCertificate(ctx context.Context, serial string) (bool, error) {
	var n int64
	err := m.tx(ctx, func(tx *txn) error {
		res, err := tx.execUnseen(`UPDATE certificate SET revoked=?, key='' WHERE revoked='' AND serial=?`,
			m.opts.Now().UTC().Format(time.RFC3339), strings.ToLower(strings.TrimPrefix(serial, "0x")))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n > 0, err
}

// Certificates lists the issued certificates, newest first.
func (m *Master) Certificates(ctx context.Context) ([]Certificate, error) {
	rows, err := m.db.QueryContext(ctx, `SELECT serial, scope, computer_reference, partition_reference, not_after, revoked FROM certificate ORDER BY rowid DESC`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Certificate
	for rows.Next() {
		var c Certificate
		var na string
		if err := rows.Scan(&c.Serial, &c.Scope, &c.Computer, &c.Partition, &na, &c.Revoked); err != nil {
			return nil, err
		}
		c.NotAfter, _ = time.Parse(time.RFC3339, na)
		out = append(out, c)
	}
	return out, rows.Err()
}

// lookupCertificate maps a client certificate to who it was issued to, or
// nil when this master did not issue it, or revoked it, or it expired.
func (m *Master) lookupCertificate(ctx context.Context, c *x509.Certificate) (*principal, error) {
	p := &principal{via: "certificate"}
	var notAfter string
	err := m.db.QueryRowContext(ctx, `SELECT scope, computer_reference, partition_reference, not_after FROM certificate WHERE fingerprint=? AND revoked=''`,
		fingerprint(c.Raw)).Scan(&p.scope, &p.computer, &p.partition, &notAfter)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if t, err := time.Parse(time.RFC3339, notAfter); err != nil || !m.opts.Now().Before(t) {
		return nil, nil
	}
	return p, nil
}

// partitionCertificate returns the certificate of the instance partition
// hosts, issuing it on first demand; it is revoked when the partition is
// freed, so the next instance there gets another one.
func (m *Master) partitionCertificate(tx *txn, computer, partition string) (certPEM, keyPEM string, err error) {
	err = tx.QueryRow(`SELECT certificate, key FROM certificate WHERE scope='partition' AND computer_reference=? AND partition_reference=?
		AND revoked='' AND key!='' AND not_after>? ORDER BY rowid DESC LIMIT 1`, computer, partition,
		m.opts.Now().Add(24*time.Hour).UTC().Format(time.RFC3339)).Scan(&certPEM, &keyPEM)
	if errors.Is(err, sql.ErrNoRows) {
		return m.issue(tx, ScopePartition, computer, partition, true)
	}
	return certPEM, keyPEM, err
}

// ServerCertificate makes a certificate for the master itself, signed by
// its CA, valid for hosts (names or addresses) and this machine's loopback
// names: `slapnode master --tls` serves HTTPS with it, and nodes trust the
// CA (CACertificate) instead of a public one.
func (m *Master) ServerCertificate(ctx context.Context, hosts []string) (tls.Certificate, error) {
	var out tls.Certificate
	err := m.tx(ctx, func(tx *txn) error {
		ca, caKey, err := m.caOf(tx)
		if err != nil {
			return err
		}
		key, _, err := newKey()
		if err != nil {
			return err
		}
		now := m.opts.Now()
		tmpl := &x509.Certificate{
			SerialNumber: serialNumber(),
			Subject:      pkix.Name{Organization: []string{"slapnode"}, CommonName: "slapnode master"},
			NotBefore:    now.Add(-time.Hour), NotAfter: now.Add(certificateLifetime),
			KeyUsage:    x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}
		seen := map[string]bool{}
		for _, h := range append([]string{"localhost", "127.0.0.1", "::1"}, hosts...) {
			if h == "" || seen[h] {
				continue
			}
			seen[h] = true
			if ip := net.ParseIP(h); ip != nil {
				if !ip.IsUnspecified() {
					tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
				}
			} else {
				tmpl.DNSNames = append(tmpl.DNSNames, h)
			}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			return err
		}
		leaf, err := x509.ParseCertificate(der)
		if err != nil {
			return err
		}
		out = tls.Certificate{Certificate: [][]byte{der, ca.Raw}, PrivateKey: key, Leaf: leaf}
		return nil
	})
	return out, err
}

// registerComputer is SlapOS's Person_requestComputer, what `slapos node
// register --token` (and `slapnode node register`) calls: a register token
// in X-Access-Token (consumed), or an admin, gets a new computer COMP-N
// titled as asked, with its certificate and key. The certificate is
// preceded by its subject line, as the SlapOS Master sends it, since the
// SlapOS client reads the computer id from the text ("COMP-…/email").
func (m *Master) registerComputer(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	fail := func(err error) {
		var se *statusError
		if errors.As(err, &se) {
			htmlError(w, se.status, se.msg)
			return
		}
		htmlError(w, http.StatusInternalServerError, "The master could not register the computer: "+err.Error())
	}
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET, POST")
		htmlError(w, http.StatusMethodNotAllowed, "The method is not allowed for the requested URL.")
		return
	}
	if err := r.ParseForm(); err != nil {
		fail(errorf(http.StatusBadRequest, "unreadable form: %v", err))
		return
	}
	title := strings.TrimSpace(r.Form.Get("title"))
	if title == "" {
		fail(errorf(http.StatusBadRequest, "give the node's title (form field \"title\")"))
		return
	}
	p := who(r)
	if p == nil || (p.scope != ScopeRegister && p.scope != ScopeAdmin) {
		fail(forbidden(p, "register a computer (use a registration token: slapnode master token --register)"))
		return
	}
	var id, certPEM, keyPEM string
	err := m.tx(r.Context(), func(tx *txn) error {
		if p.scope == ScopeRegister {
			res, err := tx.execUnseen(`DELETE FROM credential WHERE token_hash=? AND scope='register'`, hashToken(r.Header.Get("X-Access-Token")))
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n != 1 {
				return errorf(http.StatusForbidden, "this registration token was used already")
			}
		}
		var err error
		if id, err = nextComputerID(tx); err != nil {
			return err
		}
		if _, err := tx.Exec(`INSERT INTO computer (reference) VALUES (?)`, id); err != nil {
			return err
		}
		if _, err := tx.Exec(`INSERT INTO registration (computer_reference, title, registered) VALUES (?, ?, ?)`,
			id, title, m.opts.Now().UTC().Format(time.RFC3339)); err != nil {
			return err
		}
		certPEM, keyPEM, err = m.issue(tx, ScopeComputer, id, "", false)
		return err
	})
	if err != nil {
		fail(err)
		return
	}
	body, _ := json.Marshal(map[string]string{
		"certificate": fmt.Sprintf("subject=/O=slapnode/CN=%s/emailAddress=%s@slapnode\n%s", id, id, certPEM),
		"key":         keyPEM,
	})
	w.Header().Set("Content-Type", "application/json")
	w.Write(body)
}

// nextComputerID hands out COMP-1, COMP-2… skipping ids in use.
func nextComputerID(tx *txn) (string, error) {
	n := 0
	var v string
	switch err := tx.QueryRow(`SELECT value FROM meta WHERE name='next_computer'`).Scan(&v); {
	case errors.Is(err, sql.ErrNoRows):
		n = 1
	case err != nil:
		return "", err
	default:
		fmt.Sscan(v, &n)
	}
	for ; ; n++ {
		id := fmt.Sprintf("COMP-%d", n)
		ok, err := computerExists(tx, id)
		if err != nil {
			return "", err
		}
		if !ok {
			_, err := tx.execUnseen(`INSERT INTO meta (name, value) VALUES ('next_computer', ?) ON CONFLICT (name) DO UPDATE SET value=excluded.value`, fmt.Sprint(n+1))
			return id, err
		}
	}
}

// generateComputerCertificate is the SlapOS Master's call of that name
// (slap.py's Computer.generateCertificate): a new certificate for the
// node, with its key, as a marshalled {"certificate", "key"} dictionary.
// As there, a node has one valid certificate at a time: while one is
// valid the call fails with a 404 saying so (the SlapOS Master turns its
// ValueError("Certificate still active.") into NotFound), and
// revokeComputerCertificate comes first. The node itself or the master's
// operator may call it. The key travels in the answer, so plain HTTP gets
// a 404 as from slapproxy, which has no such call.
func (m *Master) generateComputerCertificate(r *http.Request) (string, error) {
	c, err := field(r, "computer_id")
	if err != nil {
		return "", err
	}
	if err := authorizeComputer(r, c); err != nil {
		return "", err
	}
	if r.TLS == nil {
		return "", errorf(http.StatusNotFound, "generateComputerCertificate is served over HTTPS only (the answer holds the node's private key): start the master with --tls, or make the certificate with 'slapnode master certificate --computer %s'", c)
	}
	var certPEM, keyPEM string
	err = m.tx(r.Context(), func(tx *txn) error {
		if ok, err := computerExists(tx, c); err != nil || !ok {
			if err == nil {
				err = errorf(http.StatusNotFound, "unknown computer %q", c)
			}
			return err
		}
		var n int
		if err := tx.QueryRow(`SELECT COUNT(*) FROM certificate WHERE scope='computer' AND computer_reference=? AND revoked='' AND not_after>?`,
			c, m.opts.Now().UTC().Format(time.RFC3339)).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return errorf(http.StatusNotFound, "Certificate still active: computer %s has a valid certificate; revoke it first (revokeComputerCertificate, or 'slapnode master certificate --revoke --computer %s')", c, c)
		}
		certPEM, keyPEM, err = m.issue(tx, ScopeComputer, c, "", false)
		return err
	})
	if err != nil {
		return "", err
	}
	return dumps(map[string]any{"certificate": certPEM, "key": keyPEM})
}

// revokeComputerCertificate is the SlapOS Master's call of that name
// (slap.py's Computer.revokeCertificate): every valid certificate of the
// node is revoked, its next call with one is refused. With none to revoke
// it fails with a 404 ("No certificate"), as the SlapOS Master does.
func (m *Master) revokeComputerCertificate(r *http.Request) (string, error) {
	c, err := field(r, "computer_id")
	if err != nil {
		return "", err
	}
	if err := authorizeComputer(r, c); err != nil {
		return "", err
	}
	var n int64
	err = m.tx(r.Context(), func(tx *txn) (err error) {
		n, err = m.revoke(tx, ScopeComputer, c, "")
		return err
	})
	if err != nil {
		return "", err
	}
	if n == 0 {
		return "", errorf(http.StatusNotFound, "No certificate: computer %s has no valid certificate to revoke", c)
	}
	return "", nil
}
