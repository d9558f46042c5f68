package promise

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slapnode/slapnode/partition"
)

// An instance profile's promise blocks, evaluated by the engine, saved with
// SaveSpecs and run by the runner from the saved file: the path apply, the
// CLI and the daemon take.
func TestPromisesFromAnInstanceProfile(t *testing.T) {
	needWasm(t, false)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "software.hcl"), []byte(`
software "checked" { version = "1" }
instance "default" { profile = "instance.hcl" }
`), 0o644)
	os.WriteFile(filepath.Join(dir, "instance.hcl"), []byte(fmt.Sprintf(`
promise "listening" {
  check          = "cookbook:check_port_listening"
  host           = "127.0.0.1"
  port           = %d
  every          = "5m"
  failure_amount = 2
  latest_minute  = 30
}
promise "disk" {
  check    = "promises:check_free_disk_space"
  min_free = "1KiB"
  anomaly  = false
}
promise "command" {
  check   = "promises:check_command"
  command = ["sh", "-c", "echo from $HOME"]
  timeout = "5s"
}
`, l.Addr().(*net.TCPAddr).Port)), 0o644)
	e := &partition.Engine{Root: t.TempDir(), NodeID: "test", Host: host(t)}
	sw, err := e.LoadSoftware(filepath.Join(dir, "software.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.InstallSoftware(context.Background(), sw, false, false); err != nil {
		t.Fatal(err)
	}
	p := newPartition(t, "slappart0")
	inst, err := e.Instantiate(context.Background(), &partition.InstanceRequest{Software: sw, Partition: p.Partition}, false)
	if err != nil {
		t.Fatal(err)
	}
	specs := FromPartition(inst.Promises)
	if len(specs) != 3 || specs[0].LatestMinute != 30 || strings.Contains(string(specs[0].Options), "latest_minute") ||
		specs[0].FailureAmount != 2 || specs[1].Anomaly || specs[0].Module.Source != "builtin:cookbook" {
		t.Fatalf("specs: %+v", specs)
	}
	// Right after apply, with the engine's live modules.
	r := &Runner{Host: host(t)}
	res, err := r.RunPartition(context.Background(), p, RunOptions{Force: true, Specs: specs})
	if err != nil || len(res) != 3 || !res[0].OK || !res[1].OK || !res[2].OK || res[2].Message != "from "+p.Path {
		t.Fatalf("with live modules: %+v %v", res, err)
	}
	// Later, from the saved file, by a runner that loads the module itself.
	if err := SaveSpecs(p.Partition, specs); err != nil {
		t.Fatal(err)
	}
	p.SoftwarePath, p.SoftwareURL = sw.Path, sw.URL
	res, err = (&Runner{Host: host(t)}).RunPartition(context.Background(), p, RunOptions{Force: true, Anomaly: true})
	if err != nil || len(res) != 3 || !res[0].OK || res[0].Type != AnomalyResult || !res[1].Skipped || !res[2].OK {
		t.Fatalf("from promises.json: %+v %v", res, err)
	}

	// Options are validated against the check's schema at apply, host
	// checks included.
	os.WriteFile(filepath.Join(dir, "instance.hcl"), []byte(`
promise "bad" {
  check = "promises:check_service_running"
}
`), 0o644)
	sw, err = e.LoadSoftware(filepath.Join(dir, "software.hcl"))
	if err == nil {
		_, err = e.Instantiate(context.Background(), &partition.InstanceRequest{Software: sw, Partition: p.Partition}, false)
	}
	if err == nil || !strings.Contains(err.Error(), "/service: is required") {
		t.Fatalf("a host check without its required option was accepted: %v", err)
	}
}
