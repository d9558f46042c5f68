package main

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/slapnode/slapnode/node/config"
	"github.com/slapnode/slapnode/node/slap"
)

func init() {
	register(&command{
		name:    "node register",
		summary: "register this node with a master (token), writing slapos.cfg and the node's certificate",
		usage: `Usage: slapnode node register NODE_NAME --token TOKEN --master-url URL [--master-ca FILE]
                              [--partition-number N] [--interface-name IF] [--ipv4-local-network NET]
                              [--software-root DIR] [--instance-root DIR] [--create-tap] [--cfg FILE] [--dry-run] [--json]

Registers a new node titled NODE_NAME with the master, as 'slapos node
register' does: the master (slapnode's, or a SlapOS Master) trades the
one-time TOKEN for the node's id (COMP-…) and X.509 certificate, and this
command writes, in the directory of --cfg (default
$SLAPOS_CONFIGURATION, else /etc/opt/slapos/slapos.cfg):

  ssl/key, ssl/certificate   the node's key and certificate (0600)
  ssl/partition_pki/         where each partition's certificate will go
  ssl/master-ca.crt          the master's CA, when --master-ca is given
  slapos.cfg                 [slapos] and [slapformat], for 'slapnode node run
                             --cfg' (and SlapOS's own node commands)

Files a previous registration left are kept as NAME.old. Make the token on
slapnode's master with 'slapnode master token --register'.

Flags:
  --token TOKEN           the registration token (SlapOS: "computer security token")
  --master-url URL        the master (SLAP endpoints); slapnode's: https://HOST:8770
  --master-url-web URL    where to register, when not the master itself (SlapOS Master's web site)
  --master-ca FILE        CA certificate to verify the master with (slapnode's master:
                          the ca.crt beside its database); default: the system's roots
  --partition-number N    partitions of the node (default 10)
  --interface-name IF     [slapformat] interface_name (default lo)
  --ipv4-local-network N  [slapformat] ipv4_local_network (default 10.0.0.0/16)
  --software-root DIR     [slapos] software_root (default /opt/slapgrid)
  --instance-root DIR     [slapos] instance_root (default /srv/slapgrid)
  --create-tap, -t        [slapformat] create_tap = true
  --cfg FILE              where slapos.cfg goes (its directory receives ssl/)
  --dry-run, -n           say what would be done, register nothing

SlapOS's --login/--password are not offered: slapnode's master registers
nodes with tokens only.

Examples:
  sudo slapnode node register node-7 --token 3f9c… --master-url https://master.example.net:8770 --master-ca ca.crt
  sudo slapnode node run --cfg /etc/opt/slapos/slapos.cfg --root /srv/slapnode
`,
		run: runNodeRegister,
	})
}

func runNodeRegister(env *cliEnv, args []string) error {
	fs := newFlags("node register")
	token := fs.String("token", "", "registration token")
	masterURL := fs.String("master-url", "", "master URL")
	webURL := fs.String("master-url-web", "", "registration URL")
	ca := fs.String("master-ca", "", "CA of the master")
	parts := fs.Int("partition-number", 10, "partitions")
	iface := fs.String("interface-name", "lo", "interface")
	ipv4 := fs.String("ipv4-local-network", "10.0.0.0/16", "IPv4 network")
	swRoot := fs.String("software-root", "/opt/slapgrid", "software root")
	instRoot := fs.String("instance-root", "/srv/slapgrid", "instance root")
	var tap, dry bool
	fs.BoolVar(&tap, "create-tap", false, "create taps")
	fs.BoolVar(&tap, "t", false, "create taps")
	fs.BoolVar(&dry, "dry-run", false, "register nothing")
	fs.BoolVar(&dry, "n", false, "register nothing")
	cfgDefault := os.Getenv(config.SlapOSConfigEnv)
	if cfgDefault == "" {
		cfgDefault = config.DefaultSlapOSConfig
	}
	cfgPath := fs.String("cfg", cfgDefault, "slapos.cfg to write")
	asJSON := fs.Bool("json", false, "JSON output")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return withCode(exitUsage, errors.New("give the node's name, e.g. slapnode node register node-7 --token TOKEN --master-url URL"))
	}
	name := strings.TrimSpace(pos[0])
	switch {
	case *token == "":
		return withCode(exitUsage, errors.New("give --token TOKEN (on slapnode's master: slapnode master token --register)"))
	case *masterURL == "":
		return withCode(exitUsage, errors.New("give --master-url URL"))
	case *parts < 1 || *parts > config.MaxPartitions:
		return withCode(exitUsage, fmt.Errorf("--partition-number %d: give 1 to %d", *parts, config.MaxPartitions))
	case filepath.Base(*cfgPath) == "" || strings.HasSuffix(*cfgPath, "/"):
		return withCode(exitUsage, fmt.Errorf("--cfg %s: give the path of slapos.cfg", *cfgPath))
	}
	if _, err := slap.NewClient(*masterURL); err != nil {
		return withCode(exitUsage, err)
	}
	web := *webURL
	if web == "" {
		web = *masterURL
	}
	var caPEM []byte
	if *ca != "" {
		if caPEM, err = os.ReadFile(*ca); err != nil {
			return withCode(exitUsage, fmt.Errorf("--master-ca: %w", err))
		}
	}
	dir, err := filepath.Abs(filepath.Dir(*cfgPath))
	if err != nil {
		return err
	}
	reg := &config.SlapOSRegistration{Dir: dir, MasterURL: *masterURL, MasterCA: string(caPEM),
		SoftwareRoot: *swRoot, InstanceRoot: *instRoot, PartitionAmount: *parts,
		InterfaceName: *iface, IPv4LocalNetwork: *ipv4, CreateTap: tap}
	if filepath.Base(*cfgPath) != "slapos.cfg" {
		return withCode(exitUsage, fmt.Errorf("--cfg %s: the file must be named slapos.cfg, as SlapOS's node commands expect", *cfgPath))
	}
	if dry {
		cfg, key, cert, caFile, repo := reg.Paths()
		if *asJSON {
			files := []string{key, cert, repo}
			if caFile != "" {
				files = append(files, caFile)
			}
			return env.writeJSON(jsonRegister{Name: name, DryRun: true, Configuration: cfg, Files: append(files, cfg)})
		}
		fmt.Fprintf(env.stdout, "would register %q with %s, then write %s, %s, %s", name, web, key, cert, repo)
		if caFile != "" {
			fmt.Fprintf(env.stdout, ", %s", caFile)
		}
		fmt.Fprintf(env.stdout, " and %s\n", cfg)
		return nil
	}
	var h *http.Client
	if *ca != "" {
		if h, err = (slap.TLSFiles{CAFile: *ca}).HTTPClient(); err != nil {
			return withCode(exitUsage, err)
		}
	} else {
		h = &http.Client{Timeout: 60 * time.Second}
	}
	ctx, cancel := signalContext()
	defer cancel()
	r, err := slap.RegisterNode(ctx, h, web, name, *token)
	var he *slap.HTTPError
	if errors.As(err, &he) && (he.Status == http.StatusForbidden || he.Status == http.StatusUnauthorized) {
		return withCode(exitFailure, fmt.Errorf("%w\n(check the token, or make a new one: slapnode master token --register)", err))
	}
	if err != nil {
		return withCode(exitFailure, err)
	}
	reg.ComputerID, reg.Certificate, reg.Key = r.ComputerID, r.Certificate, r.Key
	if err := config.WriteSlapOS(reg); err != nil {
		return fmt.Errorf("node registered as %s, but writing its configuration failed: %w", r.ComputerID, err)
	}
	cfg, key, cert, caFile, repo := reg.Paths()
	if *asJSON {
		files := []string{key, cert, repo}
		if caFile != "" {
			files = append(files, caFile)
		}
		return env.writeJSON(jsonRegister{Name: name, ComputerID: r.ComputerID, Configuration: cfg, Files: append(files, cfg)})
	}
	fmt.Fprintf(env.stdout, "node %q registered as %s; configuration written to %s\n", name, r.ComputerID, cfg)
	fmt.Fprintf(env.stdout, "start it: slapnode node run --cfg %s\n", cfg)
	return nil
}

// jsonRegister is node register --json.
type jsonRegister struct {
	Name       string `json:"name"`
	ComputerID string `json:"computer_id,omitempty"` // left out by --dry-run
	DryRun     bool   `json:"dry_run"`
	// Configuration is the slapos.cfg written (or that would be).
	Configuration string   `json:"configuration"`
	Files         []string `json:"files"`
}
