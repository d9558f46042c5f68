package config

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/slapnode/slapnode/hcl/buildout"
)

// SlapOS's own node configuration, slapos.cfg, read so that slapnode can
// take the place of slapgrid on a SlapOS node (`slapnode node run --cfg`).
// It is a Python configparser file; its line grammar is the one zc.buildout
// also uses, so package buildout's parser reads it with positions. Every
// key is either honoured or reported as ignored with the reason
// (SlapOSConfig.Ignored): nothing is dropped silently.

// SlapOSConfigEnv names slapos.cfg, as for SlapOS's `slapos node` commands.
const SlapOSConfigEnv = "SLAPOS_CONFIGURATION"

// DefaultSlapOSConfig is where `slapos node register` writes slapos.cfg.
const DefaultSlapOSConfig = "/etc/opt/slapos/slapos.cfg"

// SlapOSConfig is what slapnode takes from a slapos.cfg.
type SlapOSConfig struct {
	File string
	// ComputerID is the node's id on the master ([slapos] computer_id).
	ComputerID string
	MasterURL  string
	// KeyFile and CertFile are the node's certificate (HTTPS with client
	// certificates); MasterCAFile verifies the master's certificate.
	KeyFile, CertFile, MasterCAFile string
	// CertificateRepositoryPath is where each partition's certificate is
	// written, as <partition>.crt and <partition>.key.
	CertificateRepositoryPath string
	// SoftwareRoot and InstanceRoot are where SlapOS keeps releases and
	// partitions; the node checks them against its own layout.
	SoftwareRoot, InstanceRoot string
	// PartitionAmount is [slapformat] partition_amount (0 when unset).
	PartitionAmount int
	// Format lists the other [slapformat] settings SlapOS's `slapos node
	// format` reads and `slapnode node format --cfg` honours (FormatConfig);
	// ComputerID, MasterURL, the roots and PartitionAmount count as well.
	Format []Setting
	// Honoured lists the settings slapnode uses; Ignored the others, each
	// with why.
	Honoured []Setting
	Ignored  []Setting
}

// Setting is one key of slapos.cfg.
type Setting struct {
	Section, Key, Value string
	Pos                 string // file:line:col
	Why                 string // for an ignored key
}

func (s Setting) String() string {
	if s.Why == "" {
		return fmt.Sprintf("%s: [%s] %s", s.Pos, s.Section, s.Key)
	}
	return fmt.Sprintf("%s: [%s] %s: %s", s.Pos, s.Section, s.Key, s.Why)
}

// Why slapnode leaves SlapOS settings aside, by section and key ("" is any
// key of the section).
var slaposIgnored = map[string]map[string]string{
	"slapos": {
		"master_rest_url":                      "used by the slapos client (service and computer commands), not by a node",
		"buildout":                             "slapnode builds without zc.buildout",
		"shared_part_list":                     "slapnode's releases share nothing through buildout's shared parts",
		"build_time_part_list":                 "slapnode's releases share nothing through buildout's shared parts",
		"maximum_periodicity":                  "slapnode reprocesses a partition when its timestamp or state changes, and its promises run on their own periodicity",
		"promise_timeout":                      "a promise's timeout is set in its profile",
		"partition_timeout":                    "a part's timeout is set in its profile",
		"partition-timeout":                    "a part's timeout is set in its profile",
		"software_min_free_space":              "not checked by slapnode",
		"instance_min_free_space":              "not checked by slapnode",
		"instance_storage_home":                "slapnode has no external storage",
		"ipv4_global_network":                  "slapnode's partitions get their addresses from node format (node.hcl)",
		"forbid_supervisord_automatic_launch":  "slapnode has its own supervisor",
		"supervisord_socket":                   "slapnode has its own supervisor",
		"supervisord_configuration_path":       "slapnode has its own supervisor",
		"manager_list":                         "SlapOS's Python managers do not run in slapnode",
		"power_user_list":                      "SlapOS's Python managers do not run in slapnode",
		"root_check":                           "slapnode runs rootless without root, and formatted with it",
		"pidfile_software":                     "one slapnode daemon runs per node root (its lock)",
		"pidfile_instance":                     "one slapnode daemon runs per node root (its lock)",
		"pidfile_report":                       "one slapnode daemon runs per node root (its lock)",
		"maximal_delay":                        "slapnode converges every --interval",
		"signature_private_key_file":           "slapnode's binary cache signs with ed25519 keys (cache.hcl)",
		"upload_to_binary_cache_url_blacklist": "slapnode's binary cache is configured in cache.hcl",
	},
	"slapformat": {
		"":                         "not a setting 'slapnode node format --cfg' reads (docs/node.md §2)",
		"computer_xml":             "slapnode keeps what format set up in ROOT/node-state.json",
		"computer_json":            "slapnode keeps what format set up in ROOT/node-state.json",
		"log_file":                 "slapnode node format prints what it does; the daemon logs to its standard error (journald)",
		"tap_ipv6":                 "a tap always gets an IPv6 range when taps are created",
		"tap_gateway_interface":    "slapnode's taps hang off its bridge, routed by the node",
		"create_tun":               "slapnode creates no tun devices",
		"tun_ipv6":                 "slapnode creates no tun devices",
		"partition_has_ipv6_range": "every partition gets its routed IPv6 range when the network is set up",
		"instance_storage_home":    "slapnode has no external storage",
		"partition_amount":         "",
	},
	"networkcache": {"": "slapnode's binary cache is ROOT/cache.hcl, with ed25519-signed entries; SlapOS's shacache and shadir with X.509 signatures are not read"},
	"firewall":     {"": "slapnode does not drive firewalld"},
	"collect":      {"": "slapnode reports usage from the partitions' cgroups itself"},
	"slapconsole":  {"": "used by the slapos client, not by a node"},
	"slapproxy":    {"": "slapnode's master is 'slapnode master'"},
}

// slaposHonoured are the [slapos] keys slapnode uses.
var slaposHonoured = map[string]bool{
	"computer_id": true, "master_url": true, "key_file": true, "cert_file": true, "master_ca_file": true,
	"certificate_repository_path": true, "software_root": true, "instance_root": true,
}

// slapformatHonoured are the [slapformat] keys of SlapOS's FormatConfig
// that slapnode node format --cfg maps onto node.hcl's settings.
var slapformatHonoured = map[string]bool{
	"partition_base_name": true, "user_base_name": true, "software_user": true, "alter_user": true,
	"alter_network": true, "interface_name": true, "ipv6_interface": true, "ipv4_local_network": true,
	"ipv6_prefixshift": true, "create_tap": true, "tap_base_name": true,
}

// LoadSlapOS reads a slapos.cfg and checks it as slapgrid does: computer_id
// and master_url are required, a certificate needs its key and a
// certificate_repository_path, and every file it names must exist.
func LoadSlapOS(path string) (*SlapOSConfig, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the SlapOS configuration: %w", err)
	}
	c, err := ParseSlapOS(path, src)
	if err != nil {
		return nil, err
	}
	return c, c.checkFiles()
}

// ParseSlapOS parses the content of a slapos.cfg read from filename.
// Relative paths are taken from the file's directory.
func ParseSlapOS(filename string, src []byte) (*SlapOSConfig, error) {
	f, err := buildout.Parse(filename, src)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	c := &SlapOSConfig{File: filename}
	// configparser: a later section or key of the same name wins; keys
	// are case-insensitive ([DEFAULT] applies to every section).
	type entry struct {
		value string
		pos   buildout.Pos
	}
	sections := map[string]map[string]entry{}
	var order []string
	for _, b := range f.Blocks {
		name := b.Name
		if b.Condition != "" {
			name += ":" + b.Condition
		}
		if sections[name] == nil {
			sections[name] = map[string]entry{}
			order = append(order, name)
		}
		for _, o := range b.Options {
			sections[name][strings.ToLower(o.Key)] = entry{o.Value, o.Pos}
		}
	}
	defaults := sections["DEFAULT"]
	get := func(section, key string) (string, error) {
		e, ok := sections[section][key]
		if !ok {
			e = defaults[key]
		}
		v, err := interpolate(e.value, func(k string) (string, bool) {
			if x, ok := sections[section][k]; ok {
				return x.value, true
			}
			x, ok := defaults[k]
			return x.value, ok
		})
		if err != nil {
			return "", fmt.Errorf("%w: %s: [%s] %s: %v", ErrInvalid, e.pos, section, key, err)
		}
		return v, nil
	}
	dir := filepath.Dir(filename)
	var errs []string
	for _, sec := range order {
		if sec == "DEFAULT" {
			continue
		}
		keys := make([]string, 0, len(sections[sec]))
		for k := range sections[sec] {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool { return sections[sec][keys[i]].pos.Line < sections[sec][keys[j]].pos.Line })
		for _, k := range keys {
			e := sections[sec][k]
			v, err := get(sec, k)
			if err != nil {
				errs = append(errs, err.Error())
				continue
			}
			s := Setting{Section: sec, Key: k, Value: v, Pos: e.pos.String()}
			switch {
			case sec == "slapos" && slaposHonoured[k]:
				if err := c.setSlapOS(k, v, dir); err != nil {
					errs = append(errs, fmt.Sprintf("%s: [slapos] %s: %v", e.pos, k, err))
					continue
				}
				c.Honoured = append(c.Honoured, s)
			case sec == "slapformat" && slapformatHonoured[k]:
				c.Format = append(c.Format, s)
				c.Honoured = append(c.Honoured, s)
			case sec == "slapformat" && k == "partition_amount":
				n, err := strconv.Atoi(strings.TrimSpace(v))
				if err != nil || n < 1 || n > MaxPartitions {
					errs = append(errs, fmt.Sprintf("%s: [slapformat] partition_amount %q: give a number of partitions from 1 to %d", e.pos, v, MaxPartitions))
					continue
				}
				c.PartitionAmount = n
				c.Honoured = append(c.Honoured, s)
			default:
				s.Why = ignoredWhy(sec, k)
				c.Ignored = append(c.Ignored, s)
			}
		}
	}
	if len(errs) == 0 {
		var missing []string
		if c.ComputerID == "" {
			missing = append(missing, "computer_id")
		}
		if c.MasterURL == "" {
			missing = append(missing, "master_url")
		}
		if (c.KeyFile != "" || c.CertFile != "") && c.CertificateRepositoryPath == "" {
			missing = append(missing, "certificate_repository_path (needed with a certificate, as for slapgrid)")
		}
		if (c.KeyFile == "") != (c.CertFile == "") {
			missing = append(missing, "key_file and cert_file (one without the other)")
		}
		if len(missing) > 0 {
			errs = append(errs, fmt.Sprintf("%s: [slapos] needs %s (slapnode node register writes them)", filename, strings.Join(missing, ", ")))
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w:\n%s", ErrInvalid, strings.Join(errs, "\n"))
	}
	return c, nil
}

func ignoredWhy(section, key string) string {
	if sec, ok := slaposIgnored[section]; ok {
		if why, ok := sec[key]; ok && why != "" {
			return why
		}
		if why := sec[""]; why != "" {
			return why
		}
	}
	if strings.HasPrefix(section, "manager:") {
		return "SlapOS's Python managers do not run in slapnode"
	}
	if strings.HasPrefix(section, "multimaster/") {
		return "a slapproxy setting"
	}
	if section == "slapos" {
		return "not a setting slapgrid documents, nor one slapnode uses"
	}
	return "slapnode reads [slapos] and [slapformat] partition_amount only"
}

func (c *SlapOSConfig) setSlapOS(key, v, dir string) error {
	v = strings.TrimSpace(v)
	path := func() string {
		if v == "" || filepath.IsAbs(v) {
			return v
		}
		if strings.HasPrefix(v, "~/") {
			if h, err := os.UserHomeDir(); err == nil {
				return filepath.Join(h, v[2:])
			}
		}
		return filepath.Join(dir, v)
	}
	switch key {
	case "computer_id":
		if !computerIDRe.MatchString(v) {
			return fmt.Errorf("%q is not a computer id (letters, digits, '-', '_', '.')", v)
		}
		c.ComputerID = v
	case "master_url":
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%q: want http(s)://HOST[:PORT][/PATH]", v)
		}
		c.MasterURL = v
	case "key_file":
		c.KeyFile = path()
	case "cert_file":
		c.CertFile = path()
	case "master_ca_file":
		c.MasterCAFile = path()
	case "certificate_repository_path":
		c.CertificateRepositoryPath = path()
	case "software_root":
		c.SoftwareRoot = path()
	case "instance_root":
		c.InstanceRoot = path()
	}
	return nil
}

var computerIDRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

// checkFiles is slapgrid's check_missing_files.
func (c *SlapOSConfig) checkFiles() error {
	var errs []string
	for _, f := range []struct{ key, path string }{{"key_file", c.KeyFile}, {"cert_file", c.CertFile}, {"master_ca_file", c.MasterCAFile}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			errs = append(errs, fmt.Sprintf("%s: [slapos] %s: %v", c.File, f.key, err))
		}
	}
	if d := c.CertificateRepositoryPath; d != "" {
		if fi, err := os.Stat(d); err != nil || !fi.IsDir() {
			errs = append(errs, fmt.Sprintf("%s: [slapos] certificate_repository_path %s is not a directory (create it, mode 0711 or 0700, owned by root)", c.File, d))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w:\n%s", ErrInvalid, strings.Join(errs, "\n"))
	}
	return nil
}

// interpolate applies configparser's BasicInterpolation: %(name)s is the
// value of name (in the same section or [DEFAULT]), %% is %. Values that
// name each other several times grow exponentially with the depth (10, as
// configparser's): the references followed and the value's length are
// bounded, so a hostile file is refused instead of taking minutes.
func interpolate(v string, lookup func(string) (string, bool)) (string, error) {
	budget := maxInterpolations
	return interpolateDepth(v, lookup, 0, &budget)
}

const (
	maxInterpolations     = 10000   // references followed for one value
	maxInterpolatedLength = 1 << 20 // bytes of one value once interpolated
)

func interpolateDepth(v string, lookup func(string) (string, bool), depth int, budget *int) (string, error) {
	if !strings.Contains(v, "%") {
		return v, nil
	}
	if depth > 10 {
		return "", errors.New("interpolation deeper than 10 levels (a loop?)")
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] != '%' {
			b.WriteByte(v[i])
			continue
		}
		switch {
		case strings.HasPrefix(v[i:], "%%"):
			b.WriteByte('%')
			i++
		case strings.HasPrefix(v[i:], "%("):
			end := strings.Index(v[i:], ")s")
			if end < 0 {
				return "", fmt.Errorf("bad interpolation %q: write %%(name)s, or %%%% for a %%", v[i:])
			}
			name := strings.ToLower(v[i+2 : i+end])
			x, ok := lookup(name)
			if !ok {
				return "", fmt.Errorf("%%(%s)s names no option", name)
			}
			if *budget--; *budget < 0 {
				return "", fmt.Errorf("interpolation follows more than %d references (values naming each other many times)", maxInterpolations)
			}
			x, err := interpolateDepth(x, lookup, depth+1, budget)
			if err != nil {
				return "", err
			}
			if b.Len()+len(x) > maxInterpolatedLength {
				return "", fmt.Errorf("interpolation makes a value longer than %d MiB", maxInterpolatedLength>>20)
			}
			b.WriteString(x)
			i += end + 1
		default:
			return "", fmt.Errorf("a lone %% in %q: write %%%% for a %%", v)
		}
	}
	return b.String(), nil
}

// SlapOSRegistration is what `slapnode node register` writes, as `slapos
// node register` does: the node's certificate under DIR/ssl, an empty
// partition certificate repository, and DIR/slapos.cfg.
type SlapOSRegistration struct {
	Dir                   string // /etc/opt/slapos
	ComputerID, MasterURL string
	Certificate, Key      string // PEM
	MasterCA              string // PEM of the master's CA, "" to verify with the system's roots
	SoftwareRoot          string
	InstanceRoot          string
	PartitionAmount       int
	InterfaceName         string
	IPv4LocalNetwork      string
	CreateTap             bool
}

// Paths of a registration's files.
func (r *SlapOSRegistration) Paths() (cfg, key, cert, ca, repo string) {
	ssl := filepath.Join(r.Dir, "ssl")
	if r.MasterCA != "" {
		ca = filepath.Join(ssl, "master-ca.crt")
	}
	return filepath.Join(r.Dir, "slapos.cfg"), filepath.Join(ssl, "key"), filepath.Join(ssl, "certificate"), ca, filepath.Join(ssl, "partition_pki")
}

// Render is the slapos.cfg of the registration.
func (r *SlapOSRegistration) Render() string {
	_, key, cert, ca, repo := r.Paths()
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by slapnode node register: SlapOS's node configuration, read by\n")
	fmt.Fprintf(&b, "# slapnode node format --cfg and node run --cfg (and by SlapOS's own slapos node\n# commands).\n")
	fmt.Fprintf(&b, "[slapos]\ncomputer_id = %s\nmaster_url = %s\nkey_file = %s\ncert_file = %s\n", r.ComputerID, r.MasterURL, key, cert)
	if ca != "" {
		fmt.Fprintf(&b, "# slapnode verifies the master with this CA; SlapOS's slapgrid refuses the key\n# (it never verifies the master): remove it before running slapgrid.\nmaster_ca_file = %s\n", ca)
	}
	fmt.Fprintf(&b, "certificate_repository_path = %s\nsoftware_root = %s\ninstance_root = %s\n\n", repo, r.SoftwareRoot, r.InstanceRoot)
	fmt.Fprintf(&b, "[slapformat]\ninterface_name = %s\ncreate_tap = %t\npartition_amount = %d\n", r.InterfaceName, r.CreateTap, r.PartitionAmount)
	fmt.Fprintf(&b, "partition_base_name = slappart\nuser_base_name = slapuser\ntap_base_name = slaptap\nipv4_local_network = %s\n", r.IPv4LocalNetwork)
	return b.String()
}

// WriteSlapOS writes the registration: directories 0711, key and
// certificate 0600, slapos.cfg 0644. Files a previous registration left
// are kept as NAME.old (then NAME.old.1, …), never overwritten.
func WriteSlapOS(r *SlapOSRegistration) error {
	cfgPath, key, cert, ca, repo := r.Paths()
	for _, d := range []string{r.Dir, filepath.Join(r.Dir, "ssl"), repo} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return err
		}
	}
	files := []struct {
		path, content string
		mode          os.FileMode
	}{{key, r.Key, 0o600}, {cert, r.Certificate, 0o600}, {cfgPath, r.Render(), 0o644}}
	if ca != "" {
		files = append(files, struct {
			path, content string
			mode          os.FileMode
		}{ca, r.MasterCA, 0o644})
	}
	for _, f := range files {
		if err := keepOld(f.path); err != nil {
			return err
		}
		if err := writeNew(f.path, f.content, f.mode); err != nil {
			return err
		}
	}
	return nil
}

func keepOld(path string) error {
	if _, err := os.Lstat(path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	old := path + ".old"
	for i := 1; ; i++ {
		if _, err := os.Lstat(old); errors.Is(err, os.ErrNotExist) {
			break
		}
		old = fmt.Sprintf("%s.old.%d", path, i)
	}
	return os.Rename(path, old)
}

// writeNew creates path (which must not exist) with content, then syncs.
func writeNew(path, content string, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(content); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// FormatConfig is base (node.hcl, or the defaults) with what SlapOS's
// `slapos node format` reads from slapos.cfg: [slapos] computer_id,
// master_url, instance_root and software_root, and [slapformat]
// partition_amount, partition_base_name, user_base_name, software_user,
// alter_user, alter_network, interface_name, ipv6_interface,
// ipv4_local_network, ipv6_prefixshift, create_tap and tap_base_name.
//
// interface_name is the interface SlapOS puts partition addresses on:
// "lo" (SlapOS's example configuration) gives each partition a loopback
// address, as node.hcl without a network block does; another name is the
// bridge slapnode sets up (network.bridge) and, unless ipv6_interface
// names another, the interface whose IPv6 prefix the partitions' addresses
// come from, as in SlapOS. alter_network = false keeps the network as it
// is; SlapOS's default is true. Each bad value is reported with its
// file:line:col; the result passes the same checks as node.hcl.
func (c *SlapOSConfig) FormatConfig(base *Config) (*Config, error) {
	out := *base
	out.Overrides = base.Overrides
	out.NodeID, out.MasterURL = c.ComputerID, c.MasterURL
	if c.InstanceRoot != "" {
		out.InstanceRoot = filepath.Clean(c.InstanceRoot)
	}
	if c.SoftwareRoot != "" {
		out.SoftwareRoot = filepath.Clean(c.SoftwareRoot)
	}
	if c.PartitionAmount > 0 {
		out.PartitionCount = c.PartitionAmount
	}
	var errs []string
	bad := func(s Setting, format string, args ...any) {
		errs = append(errs, fmt.Sprintf("%s: [%s] %s: %s", s.Pos, s.Section, s.Key, fmt.Sprintf(format, args...)))
	}
	boolean := func(s Setting) (bool, bool) {
		switch strings.ToLower(strings.TrimSpace(s.Value)) {
		case "true":
			return true, true
		case "false":
			return false, true
		}
		bad(s, "%q: give True or False, as slapos node format requires", s.Value)
		return false, false
	}
	name := func(s Setting, dst *string, re *regexp.Regexp, what string) {
		v := strings.TrimSpace(s.Value)
		if !re.MatchString(v) {
			bad(s, "%q is not a valid %s", v, what)
			return
		}
		*dst = v
	}
	alterNetwork, iface, ipv6Iface := true, "", ""
	var ifaceSetting Setting
	for _, s := range c.Format {
		switch s.Key {
		case "partition_base_name":
			name(s, &out.PartitionBase, nameRE, "partition base name")
		case "user_base_name":
			name(s, &out.UserBase, userRE, "user name prefix")
		case "software_user":
			name(s, &out.SoftwareUser, userRE, "user name")
		case "alter_user":
			if v, ok := boolean(s); ok {
				out.Users = v
			}
		case "alter_network":
			if v, ok := boolean(s); ok {
				alterNetwork = v
			}
		case "interface_name":
			name(s, &iface, ifnameRE, "interface name")
			ifaceSetting = s
		case "ipv6_interface":
			name(s, &ipv6Iface, ifnameRE, "interface name")
		case "ipv4_local_network":
			p, err := netip.ParsePrefix(strings.TrimSpace(s.Value))
			switch {
			case err != nil || !p.Addr().Is4():
				bad(s, "%q: give an IPv4 network like 10.0.0.0/16", s.Value)
			case p.Bits() > 30:
				bad(s, "%s is too small (at most /30)", p)
			default:
				out.Network.IPv4Network = p.Masked()
			}
		case "ipv6_prefixshift":
			n, err := strconv.Atoi(strings.TrimSpace(s.Value))
			if err != nil || n < 2 || n > 32 {
				bad(s, "%q: give a number from 2 to 32", s.Value)
				continue
			}
			out.Network.IPv6PrefixShift = n
		case "create_tap":
			if v, ok := boolean(s); ok {
				out.Network.CreateTap = v
			}
		case "tap_base_name":
			name(s, &out.Network.TapBase, ifnameRE, "interface name prefix")
		}
	}
	switch {
	case !alterNetwork || iface == "lo":
		out.Network.Enabled = false
	case iface != "":
		out.Network.Enabled = true
		out.Network.Bridge = iface
		if ipv6Iface == "" {
			ipv6Iface = iface
		}
		out.Network.IPv6Prefix = netip.Prefix{}
		out.Network.IPv6Interface = ipv6Iface
		if out.Network.CreateTap {
			if l := len(out.Network.TapBase) + len(strconv.Itoa(max(out.PartitionCount-1, 0))); l > 15 {
				bad(ifaceSetting, "tap names %s0…%s%d would be longer than the kernel's 15 characters; shorten tap_base_name", out.Network.TapBase, out.Network.TapBase, out.PartitionCount-1)
			}
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w:\n%s", ErrInvalid, strings.Join(errs, "\n"))
	}
	return &out, nil
}
