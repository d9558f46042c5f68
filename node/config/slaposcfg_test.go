package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A slapos.cfg as `slapos node register` writes it (keys of SlapOS's
// example configuration, values of a test node).
const slaposCfg = `[slapos]
# the node's id on the master
computer_id = COMP-42
master_url = https://master.example.net/
key_file = ssl/computer.key
cert_file =  ssl/computer.crt
certificate_repository_path = ssl/partition_pki
software_root = /opt/slapgrid
instance_root = /srv/slapgrid
shared_part_list =
  /opt/slapgrid/shared
Maximum_Periodicity = 86400

[slapformat]
interface_name = lo
partition_amount = 12
ipv4_local_network = 10.0.0.0/16
log_file = /opt/slapos/log/slapos-node-format.log

[networkcache]
download-binary-cache-url = http://cache.example.net
signature-certificate-list =
  -----BEGIN CERTIFICATE-----
  MIIB
  -----END CERTIFICATE-----

[manager:devperm]
allowed-disk-for-vm = /dev/sdb
`

func TestParseSlapOS(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "slapos.cfg")
	c, err := ParseSlapOS(path, []byte(slaposCfg))
	if err != nil {
		t.Fatal(err)
	}
	if c.ComputerID != "COMP-42" || c.MasterURL != "https://master.example.net/" || c.PartitionAmount != 12 {
		t.Errorf("got %+v", c)
	}
	if c.KeyFile != filepath.Join(dir, "ssl/computer.key") || c.CertFile != filepath.Join(dir, "ssl/computer.crt") ||
		c.CertificateRepositoryPath != filepath.Join(dir, "ssl/partition_pki") {
		t.Errorf("paths relative to the file: %q %q %q", c.KeyFile, c.CertFile, c.CertificateRepositoryPath)
	}
	if c.InstanceRoot != "/srv/slapgrid" || c.SoftwareRoot != "/opt/slapgrid" {
		t.Errorf("roots %q %q", c.InstanceRoot, c.SoftwareRoot)
	}
	ignored := map[string]string{}
	for _, s := range c.Ignored {
		ignored[s.Section+" "+s.Key] = s.String()
	}
	for _, k := range []string{"slapos shared_part_list", "slapos maximum_periodicity", "slapformat log_file",
		"networkcache download-binary-cache-url", "networkcache signature-certificate-list", "manager:devperm allowed-disk-for-vm"} {
		s, ok := ignored[k]
		if !ok {
			t.Errorf("%s not reported as ignored (ignored: %v)", k, ignored)
			continue
		}
		if !strings.Contains(s, "slapos.cfg:") || !strings.Contains(s, ": ") {
			t.Errorf("%s: %q does not say where and why", k, s)
		}
	}
	if len(c.Honoured)+len(c.Ignored) != 16 {
		t.Errorf("%d honoured + %d ignored settings, want every one of the 16", len(c.Honoured), len(c.Ignored))
	}
}

func TestParseSlapOSErrors(t *testing.T) {
	for name, c := range map[string]struct{ src, want string }{
		"no master":       {"[slapos]\ncomputer_id = C\n", "needs master_url"},
		"cert no key":     {"[slapos]\ncomputer_id = C\nmaster_url = https://m/\ncert_file = /c\ncertificate_repository_path = /p\n", "key_file and cert_file"},
		"cert no repo":    {"[slapos]\ncomputer_id = C\nmaster_url = https://m/\ncert_file = /c\nkey_file = /k\n", "certificate_repository_path"},
		"bad url":         {"[slapos]\ncomputer_id = C\nmaster_url = ftp://m/\n", "slapos.cfg:3:1: [slapos] master_url"},
		"bad amount":      {"[slapos]\ncomputer_id = C\nmaster_url = http://m/\n[slapformat]\npartition_amount = many\n", "slapos.cfg:5:1: [slapformat] partition_amount"},
		"colon":           {"[slapos]\ncomputer_id: C\n", "slapos.cfg:2:1"},
		"interpolation":   {"[slapos]\ncomputer_id = C\nmaster_url = http://m/\nkey_file = %(nothing)s\n", "%(nothing)s names no option"},
		"before sections": {"computer_id = C\n", "before any [section]"},
	} {
		_, err := ParseSlapOS("slapos.cfg", []byte(c.src))
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want ErrInvalid with %q", name, err, c.want)
		}
	}
	c, err := ParseSlapOS("slapos.cfg", []byte("[DEFAULT]\nbase = /etc/opt/slapos\n[slapos]\ncomputer_id = C\nmaster_url = http://m/\ncertificate_repository_path = %(base)s/ssl/100%%\n"))
	if err != nil || c.CertificateRepositoryPath != "/etc/opt/slapos/ssl/100%" {
		t.Errorf("interpolation: %v %+v", err, c)
	}
}

func TestLoadSlapOSChecksFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "slapos.cfg")
	os.WriteFile(path, []byte(slaposCfg), 0o644)
	_, err := LoadSlapOS(path)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "key_file") || !strings.Contains(err.Error(), "certificate_repository_path") {
		t.Fatalf("missing files: %v", err)
	}
	os.MkdirAll(filepath.Join(dir, "ssl/partition_pki"), 0o700)
	os.WriteFile(filepath.Join(dir, "ssl/computer.key"), nil, 0o600)
	os.WriteFile(filepath.Join(dir, "ssl/computer.crt"), nil, 0o600)
	if _, err := LoadSlapOS(path); err != nil {
		t.Fatal(err)
	}
}

// TestWriteSlapOS: what node register writes reads back as the node it
// registered, with the files where slapos.cfg says and a previous
// registration kept aside.
func TestWriteSlapOS(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "slapos")
	r := &SlapOSRegistration{Dir: dir, ComputerID: "COMP-3", MasterURL: "https://m.example:8770",
		Certificate: "CERT", Key: "KEY", MasterCA: "CA", SoftwareRoot: "/opt/slapgrid", InstanceRoot: "/srv/slapgrid",
		PartitionAmount: 4, InterfaceName: "lo", IPv4LocalNetwork: "10.0.0.0/16"}
	for i := 0; i < 2; i++ {
		if err := WriteSlapOS(r); err != nil {
			t.Fatal(err)
		}
	}
	c, err := LoadSlapOS(filepath.Join(dir, "slapos.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	if c.ComputerID != "COMP-3" || c.MasterURL != "https://m.example:8770" || c.PartitionAmount != 4 ||
		c.KeyFile != filepath.Join(dir, "ssl/key") || c.CertFile != filepath.Join(dir, "ssl/certificate") ||
		c.MasterCAFile != filepath.Join(dir, "ssl/master-ca.crt") || c.CertificateRepositoryPath != filepath.Join(dir, "ssl/partition_pki") {
		t.Errorf("read back: %+v", c)
	}
	if fi, _ := os.Stat(c.KeyFile); fi.Mode().Perm() != 0o600 {
		t.Errorf("key mode %v", fi.Mode())
	}
	if _, err := os.Stat(filepath.Join(dir, "ssl/key.old")); err != nil {
		t.Errorf("the first registration's key was not kept: %v", err)
	}
}

// TestSlapOSFormatConfig: node format --cfg takes what SlapOS's slapos node
// format reads from slapos.cfg, over node.hcl's settings, and says where a
// bad value is.
func TestSlapOSFormatConfig(t *testing.T) {
	root := t.TempDir()
	base, err := Parse(root, "node.hcl", []byte("cgroup {\n  memory_max = \"1G\"\n}\nnetwork {\n  namespace = \"slnt\"\n}\n"))
	if err != nil {
		t.Fatal(err)
	}
	src := "[slapos]\ncomputer_id = COMP-7\nmaster_url = https://m.example/\ninstance_root = /srv/slapgrid\nsoftware_root = /opt/slapgrid/\n" +
		"[slapformat]\npartition_amount = 3\npartition_base_name = part\nuser_base_name = puser\nsoftware_user = soft\n" +
		"interface_name = br7\nipv4_local_network = 10.7.0.0/16\ncreate_tap = False\nipv6_prefixshift = 8\nalter_user = false\n"
	sc, err := ParseSlapOS(filepath.Join(root, "slapos.cfg"), []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	c, err := sc.FormatConfig(base)
	if err != nil {
		t.Fatal(err)
	}
	n := c.Network
	if c.NodeID != "COMP-7" || c.InstanceRoot != "/srv/slapgrid" || c.SoftwareRoot != "/opt/slapgrid" || c.PartitionCount != 3 ||
		c.PartitionBase != "part" || c.UserBase != "puser" || c.SoftwareUser != "soft" || c.Users ||
		!n.Enabled || n.Bridge != "br7" || n.IPv6Interface != "br7" || n.IPv4Network.String() != "10.7.0.0/16" || n.CreateTap || n.IPv6PrefixShift != 8 {
		t.Errorf("format configuration from slapos.cfg: %+v", c)
	}
	if n.Namespace != "slnt" || c.Limits.MemoryMax == 0 || c.Limits.MemoryMax != base.Limits.MemoryMax {
		t.Errorf("node.hcl's settings were lost: %+v", c)
	}
	if base.PartitionCount != DefaultPartitionCount || base.Network.Enabled {
		t.Error("FormatConfig changed its base")
	}
	// interface_name = lo (SlapOS's example) and alter_network = false
	// leave the network alone: loopback addresses.
	for _, extra := range []string{"interface_name = lo\n", "interface_name = br0\nalter_network = False\n"} {
		sc, _ := ParseSlapOS("slapos.cfg", []byte("[slapos]\ncomputer_id = C\nmaster_url = http://m/\n[slapformat]\n"+extra))
		if c, err := sc.FormatConfig(Default(root)); err != nil || c.Network.Enabled {
			t.Errorf("%q: %v %+v", extra, err, c)
		}
	}
	sc, _ = ParseSlapOS("slapos.cfg", []byte("[slapos]\ncomputer_id = C\nmaster_url = http://m/\n[slapformat]\ncreate_tap = yes\nipv4_local_network = fe80::/64\nuser_base_name = Bad User\n"))
	_, err = sc.FormatConfig(Default(root))
	for _, want := range []string{"slapos.cfg:5:1: [slapformat] create_tap", "slapos.cfg:6:1: [slapformat] ipv4_local_network", "slapos.cfg:7:1: [slapformat] user_base_name"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("errors lack %q: %v", want, err)
		}
	}
}

// FuzzParseSlapOS: any slapos.cfg text is parsed or refused with an error
// (never a panic), interpolation included, and a parsed one maps onto
// node.hcl's settings or is refused the same way.
func FuzzParseSlapOS(f *testing.F) {
	f.Add([]byte(slaposCfg))
	f.Add([]byte("[slapos]\ncomputer_id = %(x)s\nx = %(computer_id)s\nmaster_url = http://m\n"))
	f.Add([]byte("[slapformat]\npartition_amount = -1\ninterface_name = lo\n[slapos]\ncomputer_id=C\nmaster_url=u\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		c, err := ParseSlapOS("/etc/opt/slapos/slapos.cfg", src)
		if err != nil {
			return
		}
		if _, err := c.FormatConfig(Default("/srv/slapnode")); err != nil && !strings.Contains(err.Error(), "slapos.cfg") {
			t.Errorf("an error that does not name the file: %v", err)
		}
	})
}

// Values naming each other many times grow exponentially with the depth:
// the file is refused at once, with a reason, instead of taking minutes.
func TestParseSlapOSInterpolationBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("[slapos]\ncomputer_id = C\nmaster_url = http://m\n")
	for i := 0; i < 10; i++ {
		fmt.Fprintf(&b, "v%d = %s\n", i, strings.Repeat(fmt.Sprintf("%%(v%d)s", i+1), 20))
	}
	b.WriteString("v10 = x\n")
	_, err := ParseSlapOS("slapos.cfg", []byte(b.String()))
	if err == nil || !strings.Contains(err.Error(), "interpolation") {
		t.Fatalf("20^10 references: %v", err)
	}
}
