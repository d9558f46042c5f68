package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"text/tabwriter"

	"github.com/slapnode/slapnode/internal/atomicfile"
	"github.com/slapnode/slapnode/internal/memtrim"
	"github.com/slapnode/slapnode/node/master"
)

// defaultMasterListen is where the embedded master listens, and so where
// the client commands look for it by default.
const defaultMasterListen = "127.0.0.1:8770"

func init() {
	register(&command{
		name:    "master",
		summary: "run the SLAP master (embedded SQLite; slapproxy-compatible)",
		usage: `Usage: slapnode master [--listen 127.0.0.1:PORT] [--db FILE] [--root DIR] [flags]

Runs the master nodes and requesters talk to, in the foreground (Ctrl-C
stops it). It serves SlapOS's SLAP protocol exactly as slapproxy does, so
SlapOS's own slapgrid and 'slapos request' work against it, and a JSON API
for slapnode's client commands (docs/api.md). Its state is one SQLite
database; every change is one transaction, so killing the master at any
moment loses nothing that was answered.

Flags:
  --listen ADDR       address to listen on (default ` + defaultMasterListen + `)
  --db FILE           database (default ROOT/master/master.db)
  --root DIR          node root (default $SLAPNODE_ROOT, $XDG_STATE_HOME/slapnode or ~/.local/state/slapnode)
  --computer-id ID    the computer of requests that name none (default "` + master.DefaultComputer + `")
  --tls               serve HTTPS with a certificate from the master's own CA
                      (nodes trust DIR/ca.crt, written beside the database)
  --tls-name NAME     with --tls, a host name or address clients reach the
                      master by (repeatable; the listen address and this
                      machine's host name are included)
  --tls-cert FILE     serve HTTPS with this certificate (PEM) …
  --tls-key FILE      … and this key
  --auth              require a credential on every call
  --advertise-hateoas answer getHateoasUrl with DIR/hateoas/, as a SlapOS Master
                      does (default: on over HTTPS; over HTTP it is a 404, as
                      slapproxy's, and clients set master_rest_url)
  --log-format F      auto (default), text, plain, journal or json (docs/services.md §Logs)
  --log-level L       debug, info (default), warn or error

Who may call. Over HTTPS the master asks for a client certificate: one it
issued (slapnode master certificate, slapnode node register, and each
partition's, handed to its node) says who the caller is. A bearer token
(slapnode master token) does too. Without --auth, the master's own user and
root on this machine need neither: the kernel tells the master which user
owns a loopback connection. Any other local user — a partition's user among
them — is refused until it presents a credential, and a partition's
credential only acts for that partition.

A master listening beyond loopback (--listen 0.0.0.0:PORT, a public address)
must use TLS and --auth: it refuses to start otherwise, since SLAP carries
every instance's parameters and secrets.

Examples:
  slapnode master
  slapnode master --listen 127.0.0.1:9000 --db /srv/master.db
  slapnode master token --computer COMP-1          # a node's credential
  slapnode master --listen 0.0.0.0:8770 --tls --tls-name master.example.net --auth
  slapnode master --listen 0.0.0.0:8770 --tls-cert cert.pem --tls-key key.pem --auth
`,
		run: runMaster,
	})
	register(&command{
		name:    "master token",
		summary: "make (or revoke) a credential for an authenticating master",
		usage: `Usage: slapnode master token (--admin | --register | --computer ID [--partition P]) [--revoke] [--db FILE] [--root DIR] [--json]

Makes a credential for the master, and prints it once (only its hash is
stored). Give it to the client as --token or $SLAPNODE_MASTER_TOKEN.

  --admin             may do anything: supply, request, list, info, destroy
  --register          registers one new node, once: give it to
                      'slapnode node register --token' (or 'slapos node register')
  --computer ID       a node's credential: reads and reports for computer ID
                      and its partitions only
  --partition P       with --computer: one partition's credential; it may only
                      publish its own connection parameters, bang itself and
                      request its children
  --revoke            remove every token of that scope instead

Examples:
  slapnode master token --admin
  slapnode master token --register
  slapnode master token --computer COMP-1
  slapnode master token --computer COMP-1 --partition slappart3
  slapnode master token --computer COMP-1 --revoke
`,
		run: runMasterToken,
	})
	register(&command{
		name:    "master certificate",
		summary: "issue (list, or revoke) client certificates of the master's CA",
		usage: `Usage: slapnode master certificate (--admin | --computer ID [--partition P]) --out PREFIX [--db FILE] [--root DIR] [--json]
       slapnode master certificate (--admin | --computer ID [--partition P]) --revoke
       slapnode master certificate --revoke-serial SERIAL
       slapnode master certificate --list [--json]
       slapnode master certificate --ca [--out FILE]

The master is its own certificate authority. It issues:
  --admin            an operator's certificate (SlapOS's "person" certificate:
                     the slapos client's cert_file/key_file): may do anything
  --computer ID      a node's certificate (slapos.cfg's cert_file/key_file);
                     'slapnode node register' gets one with a token instead
  --partition P      with --computer: one partition's (the node fetches these
                     itself, one per instance, revoked when it is destroyed)
and writes PREFIX.crt and PREFIX.key (mode 0600; the key is not kept). A
certificate is known by its fingerprint, so revoking takes effect at once.

  --revoke           revoke every certificate of that scope
  --revoke-serial S  revoke one certificate (serials from --list)
  --list             every certificate issued, with its state
  --ca               print (or write to --out) the CA certificate nodes
                     verify the master with (slapos.cfg master_ca_file)

Examples:
  slapnode master certificate --admin --out ~/.slapos/admin
  slapnode master certificate --computer COMP-1 --out /etc/opt/slapos/ssl/computer
  slapnode master certificate --computer COMP-1 --revoke
  slapnode master certificate --ca --out /etc/opt/slapos/ssl/master-ca.crt
`,
		run: runMasterCertificate,
	})
}

func masterDB(root, db string) string {
	if db != "" {
		return db
	}
	return filepath.Join(root, "master", "master.db")
}

func runMaster(env *cliEnv, args []string) error {
	fs := newFlags("master")
	listen := fs.String("listen", defaultMasterListen, "listen address")
	db := fs.String("db", "", "database file")
	root := rootFlag(fs)
	computer := fs.String("computer-id", master.DefaultComputer, "default computer")
	cert := fs.String("tls-cert", "", "TLS certificate")
	key := fs.String("tls-key", "", "TLS key")
	auth := fs.Bool("auth", false, "require credentials")
	ownTLS := fs.Bool("tls", false, "HTTPS with the master's own CA")
	var tlsNames stringList
	fs.Var(&tlsNames, "tls-name", "host name of the master (with --tls)")
	advertise := fs.String("advertise-hateoas", "", "answer getHateoasUrl (true/false)")
	var lf logFlags
	lf.define(fs)
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	logger, err := lf.logger(env)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return withCode(exitUsage, fmt.Errorf("unexpected argument %q (see 'slapnode help master')", pos[0]))
	}
	if (*cert == "") != (*key == "") {
		return withCode(exitUsage, errors.New("give both --tls-cert and --tls-key, or neither"))
	}
	if *ownTLS && *cert != "" {
		return withCode(exitUsage, errors.New("give --tls (a certificate of the master's own CA) or --tls-cert/--tls-key, not both"))
	}
	if len(tlsNames) > 0 && !*ownTLS {
		return withCode(exitUsage, errors.New("--tls-name goes with --tls"))
	}
	var tlsConfig *tls.Config
	if *cert != "" {
		pair, err := tls.LoadX509KeyPair(*cert, *key)
		if err != nil {
			return fmt.Errorf("TLS certificate: %w", err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	}
	if err := master.CheckListen(*listen, tlsConfig != nil || *ownTLS, *auth); err != nil {
		return withCode(exitUsage, err)
	}
	adv := *ownTLS || tlsConfig != nil
	if *advertise != "" {
		if adv, err = strconv.ParseBool(*advertise); err != nil {
			return withCode(exitUsage, fmt.Errorf("--advertise-hateoas %q: give true or false", *advertise))
		}
	}
	path := masterDB(*root, *db)
	m, err := master.Open(path, master.Options{DefaultComputer: *computer, RequireAuth: *auth, AdvertiseHATEOAS: adv, Logger: logger})
	if err != nil {
		return err
	}
	defer m.Close()
	// Nodes verify an HTTPS master against its CA: written beside the
	// database, public.
	caPEM, err := m.CACertificate(context.Background())
	if err != nil {
		return err
	}
	caFile := filepath.Join(filepath.Dir(path), "ca.crt")
	if err := atomicfile.Write(caFile, []byte(caPEM), 0o644); err != nil {
		return err
	}
	if *ownTLS {
		host, _, _ := net.SplitHostPort(*listen)
		names := append([]string{host}, tlsNames...)
		if h, err := os.Hostname(); err == nil {
			names = append(names, h)
		}
		pair, err := m.ServerCertificate(context.Background(), names)
		if err != nil {
			return err
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w (is another master running? give --listen)", *listen, err)
	}
	scheme := "http"
	if tlsConfig != nil {
		scheme = "https"
	}
	fmt.Fprintf(env.stdout, "master listening on %s://%s (database %s, default computer %s", scheme, ln.Addr(), path, *computer)
	if *auth {
		fmt.Fprint(env.stdout, ", credentials required")
	} else {
		fmt.Fprintf(env.stdout, ", no credential needed from uid %d and root on this machine", os.Geteuid())
	}
	fmt.Fprintln(env.stdout, ")")
	if tlsConfig != nil {
		fmt.Fprintf(env.stdout, "client certificates of its CA accepted; CA certificate: %s\n", caFile)
	}
	ctx, cancel := signalContext()
	defer cancel()
	// The pages of code that only the other commands' initialisers
	// touched are 5–9 MiB of a serving master's 30 (docs/benchmarks.md,
	// Master): hand them back. Best effort: nothing changes where the
	// kernel does not allow it.
	memtrim.ReleaseCode()
	return m.Serve(ctx, ln, tlsConfig)
}

func runMasterToken(env *cliEnv, args []string) error {
	fs := newFlags("master token")
	db := fs.String("db", "", "database file")
	root := rootFlag(fs)
	admin := fs.Bool("admin", false, "admin credential")
	reg := fs.Bool("register", false, "one-time registration token")
	computer := fs.String("computer", "", "computer id")
	part := fs.String("partition", "", "partition id")
	revoke := fs.Bool("revoke", false, "revoke instead")
	asJSON := fs.Bool("json", false, "JSON output")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return withCode(exitUsage, fmt.Errorf("unexpected argument %q (see 'slapnode help master token')", pos[0]))
	}
	scope := master.ScopeComputer
	switch {
	case *reg && !*admin && *computer == "" && *part == "":
		scope = master.ScopeRegister
	case *admin && !*reg && *computer == "" && *part == "":
		scope = master.ScopeAdmin
	case !*admin && !*reg && *computer != "" && *part != "":
		scope = master.ScopePartition
	case !*admin && !*reg && *computer != "":
	default:
		return withCode(exitUsage, errors.New("give --admin, --register, or --computer ID with an optional --partition P"))
	}
	m, err := master.Open(masterDB(*root, *db), master.Options{})
	if err != nil {
		return err
	}
	defer m.Close()
	if *revoke {
		n, err := m.RevokeCredentials(context.Background(), scope, *computer, *part)
		if err != nil {
			return err
		}
		if *asJSON {
			return env.writeJSON(jsonToken{Scope: string(scope), Computer: *computer, Partition: *part, Revoked: n})
		}
		fmt.Fprintf(env.stdout, "revoked %d credential(s)\n", n)
		return nil
	}
	tok, err := m.CreateCredential(context.Background(), scope, *computer, *part)
	if err != nil {
		return err
	}
	if *asJSON {
		return env.writeJSON(jsonToken{Scope: string(scope), Computer: *computer, Partition: *part, Token: tok})
	}
	fmt.Fprintln(env.stdout, tok)
	return nil
}

func runMasterCertificate(env *cliEnv, args []string) error {
	fs := newFlags("master certificate")
	db := fs.String("db", "", "database file")
	root := rootFlag(fs)
	admin := fs.Bool("admin", false, "an operator's certificate")
	computer := fs.String("computer", "", "computer id")
	part := fs.String("partition", "", "partition id")
	out := fs.String("out", "", "output prefix")
	revoke := fs.Bool("revoke", false, "revoke that scope's certificates")
	serial := fs.String("revoke-serial", "", "revoke one certificate")
	list := fs.Bool("list", false, "list certificates")
	ca := fs.Bool("ca", false, "the CA certificate")
	asJSON := fs.Bool("json", false, "JSON output")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return withCode(exitUsage, fmt.Errorf("unexpected argument %q (see 'slapnode help master certificate')", pos[0]))
	}
	m, err := master.Open(masterDB(*root, *db), master.Options{})
	if err != nil {
		return err
	}
	defer m.Close()
	ctx := context.Background()
	switch {
	case *ca:
		pem, err := m.CACertificate(ctx)
		if err != nil {
			return err
		}
		if *out == "" {
			if *asJSON {
				return env.writeJSON(jsonCertificate{CA: pem})
			}
			fmt.Fprint(env.stdout, pem)
			return nil
		}
		if err := atomicfile.Write(*out, []byte(pem), 0o644); err != nil {
			return err
		}
		if *asJSON {
			return env.writeJSON(jsonCertificate{Files: []string{*out}})
		}
		fmt.Fprintf(env.stdout, "wrote %s\n", *out)
		return nil
	case *list:
		l, err := m.Certificates(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			if l == nil {
				l = []master.Certificate{}
			}
			return env.writeJSON(jsonCertificate{Certificates: &l})
		}
		tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SERIAL\tSCOPE\tCOMPUTER\tPARTITION\tNOT AFTER\tREVOKED")
		for _, c := range l {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.Serial, c.Scope, dash(c.Computer), dash(c.Partition), c.NotAfter.Format("2006-01-02"), dash(c.Revoked))
		}
		return tw.Flush()
	case *serial != "":
		ok, err := m.RevokeCertificate(ctx, *serial)
		if err != nil {
			return err
		}
		if !ok {
			return withCode(exitFailure, fmt.Errorf("no valid certificate with serial %s (see --list)", *serial))
		}
		if *asJSON {
			return env.writeJSON(jsonCertificate{Revoked: 1})
		}
		fmt.Fprintf(env.stdout, "revoked certificate %s\n", *serial)
		return nil
	}
	scope := master.ScopeComputer
	switch {
	case *admin && *computer == "" && *part == "":
		scope = master.ScopeAdmin
	case !*admin && *computer != "" && *part != "":
		scope = master.ScopePartition
	case !*admin && *computer != "":
	default:
		return withCode(exitUsage, errors.New("give --admin, or --computer ID with an optional --partition P (or --list, --ca, --revoke-serial)"))
	}
	if *revoke {
		n, err := m.RevokeCertificates(ctx, scope, *computer, *part)
		if err != nil {
			return err
		}
		if *asJSON {
			return env.writeJSON(jsonCertificate{Revoked: int64(n)})
		}
		fmt.Fprintf(env.stdout, "revoked %d certificate(s)\n", n)
		return nil
	}
	if *out == "" {
		return withCode(exitUsage, errors.New("give --out PREFIX: the certificate and key are written to PREFIX.crt and PREFIX.key"))
	}
	cert, key, err := m.IssueCertificate(ctx, scope, *computer, *part)
	if err != nil {
		return err
	}
	if err := writeCertificatePair(*out, cert, key); err != nil {
		return err
	}
	if *asJSON {
		return env.writeJSON(jsonCertificate{Scope: scope, Computer: *computer, Partition: *part, Files: []string{*out + ".crt", *out + ".key"}})
	}
	fmt.Fprintf(env.stdout, "wrote %s.crt and %s.key\n", *out, *out)
	return nil
}

// jsonCertificate is master certificate --json: what it did, by mode —
// the CA (its PEM, or the file written), the list, a revocation count, or
// the certificate and key files issued.
type jsonCertificate struct {
	CA           string                `json:"ca,omitempty"`
	Certificates *[]master.Certificate `json:"certificates,omitempty"` // --list; [] when none
	Revoked      int64                 `json:"revoked,omitempty"`
	Scope        string                `json:"scope,omitempty"`
	Computer     string                `json:"computer,omitempty"`
	Partition    string                `json:"partition,omitempty"`
	Files        []string              `json:"files,omitempty"`
}

// writeCertificatePair writes PREFIX.crt and PREFIX.key, readable by their
// owner only; an existing file is not overwritten.
func writeCertificatePair(prefix, cert, key string) error {
	if dir := filepath.Dir(prefix); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
	}
	for _, f := range []struct{ path, content string }{{prefix + ".crt", cert}, {prefix + ".key", key}} {
		if _, err := os.Lstat(f.path); err == nil {
			return fmt.Errorf("%s exists: remove it first, or choose another --out", f.path)
		}
	}
	for _, f := range []struct{ path, content string }{{prefix + ".crt", cert}, {prefix + ".key", key}} {
		if err := atomicfile.Write(f.path, []byte(f.content), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// jsonToken is master token --json.
type jsonToken struct {
	Scope     string `json:"scope"` // admin, computer or partition
	Computer  string `json:"computer,omitempty"`
	Partition string `json:"partition,omitempty"`
	// Token is the new credential (left out by --revoke).
	Token   string `json:"token,omitempty"`
	Revoked int64  `json:"revoked"`
}
