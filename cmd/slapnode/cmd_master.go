package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"path/filepath"

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
  --tls-cert FILE     serve HTTPS with this certificate (PEM) …
  --tls-key FILE      … and this key
  --auth              require a credential on every call (slapnode master token)

A master listening beyond loopback (--listen 0.0.0.0:PORT, a public address)
must use TLS and --auth: it refuses to start otherwise, since SLAP carries
every instance's parameters and secrets.

Examples:
  slapnode master
  slapnode master --listen 127.0.0.1:9000 --db /srv/master.db
  slapnode master token --computer COMP-1          # a node's credential
  slapnode master --listen 0.0.0.0:8770 --tls-cert cert.pem --tls-key key.pem --auth
`,
		run: runMaster,
	})
	register(&command{
		name:    "master token",
		summary: "make (or revoke) a credential for an authenticating master",
		usage: `Usage: slapnode master token (--admin | --computer ID [--partition P]) [--revoke] [--db FILE] [--root DIR] [--json]

Makes a credential for a master run with --auth, and prints it once (only
its hash is stored). Give it to the client as --token or $SLAPNODE_MASTER_TOKEN.

  --admin             may do anything: supply, request, list, info, remove
  --computer ID       a node's credential: reads and reports for computer ID
                      and its partitions only
  --partition P       with --computer: one partition's credential; it may only
                      publish its own connection parameters, bang itself and
                      request its children
  --revoke            remove every credential of that scope instead

Examples:
  slapnode master token --admin
  slapnode master token --computer COMP-1
  slapnode master token --computer COMP-1 --partition slappart3
  slapnode master token --computer COMP-1 --revoke
`,
		run: runMasterToken,
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
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return withCode(exitUsage, fmt.Errorf("unexpected argument %q (see 'slapnode help master')", pos[0]))
	}
	if (*cert == "") != (*key == "") {
		return withCode(exitUsage, errors.New("give both --tls-cert and --tls-key, or neither"))
	}
	var tlsConfig *tls.Config
	if *cert != "" {
		pair, err := tls.LoadX509KeyPair(*cert, *key)
		if err != nil {
			return fmt.Errorf("TLS certificate: %w", err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	}
	if err := master.CheckListen(*listen, tlsConfig != nil, *auth); err != nil {
		return withCode(exitUsage, err)
	}
	path := masterDB(*root, *db)
	m, err := master.Open(path, master.Options{DefaultComputer: *computer, RequireAuth: *auth})
	if err != nil {
		return err
	}
	defer m.Close()
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
	}
	fmt.Fprintln(env.stdout, ")")
	ctx, cancel := signalContext()
	defer cancel()
	return m.Serve(ctx, ln, tlsConfig)
}

func runMasterToken(env *cliEnv, args []string) error {
	fs := newFlags("master token")
	db := fs.String("db", "", "database file")
	root := rootFlag(fs)
	admin := fs.Bool("admin", false, "admin credential")
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
	case *admin && *computer == "" && *part == "":
		scope = master.ScopeAdmin
	case !*admin && *computer != "" && *part != "":
		scope = master.ScopePartition
	case !*admin && *computer != "":
	default:
		return withCode(exitUsage, errors.New("give --admin, or --computer ID with an optional --partition P"))
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

// jsonToken is master token --json.
type jsonToken struct {
	Scope     string `json:"scope"` // admin, computer or partition
	Computer  string `json:"computer,omitempty"`
	Partition string `json:"partition,omitempty"`
	// Token is the new credential (left out by --revoke).
	Token   string `json:"token,omitempty"`
	Revoked int64  `json:"revoked"`
}
