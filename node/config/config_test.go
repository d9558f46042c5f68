package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const full = `node_id       = "node-7"
master_url    = "https://master.example.org"
instance_root = "srv/instance"
software_root = "/opt/slapnode/software"
software_user = "slapsoft"
users         = true

partitions {
  count          = 20
  base_name      = "slappart"
  user_base_name = "slapuser"
}

network {
  enabled            = true
  namespace          = "slapnode-test"
  bridge             = "slapbr0"
  ipv6_prefix        = "2001:db8:1::/48"
  ipv6_prefix_shift  = 16
  ipv4_local_network = "10.9.0.0/16"
  create_tap         = true
  tap_base_name      = "slaptap"
}

cgroup {
  parent     = "slapnode/partitions"
  cpu_weight = 100
  cpu_quota  = "150%"
  memory_max = "1GiB"
  pids_max   = 512
}

partition "slappart3" {
  memory_max = "4GiB"
  cpu_weight = 400
}

daemon {
  metrics_address = "127.0.0.1:9780"
  log_format      = "json"
  log_level       = "debug"
}
`

func TestParseFull(t *testing.T) {
	c, err := Parse("/root/node", "/etc/slapnode/node.hcl", []byte(full))
	if err != nil {
		t.Fatal(err)
	}
	if c.NodeID != "node-7" || c.MasterURL != "https://master.example.org" || c.PartitionCount != 20 {
		t.Errorf("config = %+v", c)
	}
	if c.InstanceRoot != "/etc/slapnode/srv/instance" || c.SoftwareRoot != "/opt/slapnode/software" {
		t.Errorf("roots %s %s (relative paths are relative to the file)", c.InstanceRoot, c.SoftwareRoot)
	}
	n := c.Network
	if !n.Enabled || n.Namespace != "slapnode-test" || n.IPv6Prefix.String() != "2001:db8:1::/48" || n.IPv4Network.String() != "10.9.0.0/16" {
		t.Errorf("network = %+v", n)
	}
	if c.Limits != (Limits{CPUWeight: 100, CPUQuotaPercent: 150, MemoryMax: 1 << 30, PidsMax: 512}) {
		t.Errorf("limits = %+v", c.Limits)
	}
	if got := c.LimitsOf("slappart3"); got != (Limits{CPUWeight: 400, CPUQuotaPercent: 150, MemoryMax: 4 << 30, PidsMax: 512}) {
		t.Errorf("slappart3 limits = %+v", got)
	}
	if got := c.LimitsOf("slappart2"); got != c.Limits {
		t.Errorf("slappart2 limits = %+v", got)
	}
	if c.Daemon != (Daemon{MetricsAddress: "127.0.0.1:9780", LogFormat: "json", LogLevel: "debug"}) {
		t.Errorf("daemon = %+v", c.Daemon)
	}
	if c.CgroupParent != "slapnode/partitions" {
		t.Errorf("cgroup parent %q", c.CgroupParent)
	}
	if d := strings.Join(c.Describe(), "\n"); !strings.Contains(d, "limits of slappart3 = cpu_weight=400 cpu_quota=150% memory_max=4.0 GiB pids_max=512") {
		t.Errorf("Describe:\n%s", d)
	}
}

func TestDefaults(t *testing.T) {
	root := t.TempDir()
	c, err := Load(root, "")
	if err != nil {
		t.Fatal(err)
	}
	if c.File != "" || c.PartitionCount != DefaultPartitionCount || c.Network.Enabled || !c.Users || !c.Cgroups ||
		c.InstanceRoot != filepath.Join(root, "instance") || c.Network.Bridge != "slapbr0" || c.Limits.PidsMax != DefaultPidsMax {
		t.Errorf("defaults = %+v", c)
	}
	if _, err := Load(root, filepath.Join(root, "missing.hcl")); err == nil {
		t.Error("an explicit missing file is not an error")
	}
	os.WriteFile(filepath.Join(root, FileName), []byte("partitions {\n  count = 3\n}\n"), 0o644)
	c, err = Load(root, "")
	if err != nil || c.PartitionCount != 3 || c.File != filepath.Join(root, FileName) {
		t.Errorf("node.hcl in the root: %+v %v", c, err)
	}
}

// Every error names the file, line and column of the setting at fault.
func TestErrorsHavePositions(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"cgroup {\n  memory_max = \"lots\"\n}\n", "node.hcl:2,16-22: Invalid setting; memory_max"},
		{"cgroup {\n  memory_max = \"12\"\n}\n", "below 1MiB"},
		{"cgroup {\n  cpu_quota = \"150\"\n}\n", "node.hcl:2,15-20"},
		{"cgroup {\n  cpu_weight = 0\n}\n", "node.hcl:2,16-17"},
		{"network {\n  ipv6_prefix = \"10.0.0.0/8\"\n}\n", "is not an IPv6 network"},
		{"network {\n  ipv4_local_network = \"10.0.0.0/31\"\n}\n", "too small"},
		{"network {\n  ipv6_prefix = \"fd00::/64\"\n  ipv6_interface = \"eth0\"\n}\n", "not both"},
		{"partitions {\n  count = 2\n}\npartition \"slappart5\" {\n  pids_max = 3\n}\n", "node.hcl:4,1-22: Unknown partition; partition \"slappart5\" is beyond partitions.count = 2"},
		{"partition \"web\" {\n}\n", "not a partition id"},
		{"partition \"slappart1\" {\n}\npartition \"slappart1\" {\n}\n", "configured twice"},
		{"partitions {\n  count = -1\n}\n", "node.hcl:2,11-13"},
		{"partitions {\n  user_base_name = \"Bad User\"\n}\n", "user_base_name"},
		{"master_url = \"master\"\n", "must be a URL"},
		{"nodeid = \"x\"\n", "node.hcl:1,1-7: Unsupported argument"},
		{"node_id = 3 +\n", "node.hcl:1"},
		{"daemon {\n  metrics_address = \"9780\"\n}\n", "node.hcl:2,21-27: Invalid setting; metrics_address must be host:port"},
		{"daemon {\n  log_format = \"xml\"\n}\n", "log_format = \"xml\": give one of auto, text, plain, journal, json"},
		{"daemon {\n  log_level = \"verbose\"\n}\n", "give one of debug, info, warn, error"},
		{"daemon {\n  metrics = \"x\"\n}\n", "Unsupported argument"},
		{"network {\n  enabled = true\n  tap_base_name = \"slaptapverylong\"\n}\n", "node.hcl:3,19-36: Invalid setting; tap names slaptapverylong0…slaptapverylong9 are longer than the kernel's 15 characters"},
	} {
		_, err := Parse("/r", "node.hcl", []byte(tc.src))
		if err == nil {
			t.Errorf("%q: no error", tc.src)
			continue
		}
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q:\n got %v\nwant …%s…", tc.src, err, tc.want)
		}
	}
}

func TestParseSizeAndPercent(t *testing.T) {
	for in, want := range map[string]uint64{"64MiB": 64 << 20, "1GiB": 1 << 30, "1GB": 1e9, "2097152": 2 << 20} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for in, want := range map[string]uint64{"50%": 50, "250%": 250, " 12.6% ": 13} {
		if got, err := ParsePercent(in); err != nil || got != want {
			t.Errorf("ParsePercent(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"50", "0%", "-5%", "NaN%", "x%"} {
		if _, err := ParsePercent(bad); err == nil {
			t.Errorf("ParsePercent(%q) accepted", bad)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(full))
	f.Add([]byte("partitions {\n count = 3\n}\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		c, err := Parse("/r", "node.hcl", src)
		if err == nil && (c.PartitionCount < 0 || c.PartitionCount > MaxPartitions) {
			t.Errorf("accepted partition count %d", c.PartitionCount)
		}
	})
}
