package local

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/slapnode/slapnode/node/master"
	"github.com/slapnode/slapnode/node/slap"
)

// The release of the steady-state benchmarks: instances of two idle
// services (cmd/slapbench's steady.go runs the same as processes).
const steadySoftware = `software "steady" {
  version = "1.0.0"
}

module "cookbook" {
  source = "builtin:cookbook"
}

instance "default" {
  profile = "instance.hcl"
}
`

const steadyInstance = `part "etc" {
  recipe = "cookbook:mkdirectory"
  etc    = "${partition.path}/etc"
}

service "worker" {
  command = ["sleep", "1000000"]
}

service "helper" {
  command = ["sleep", "1000000"]
}

publish {
  url = "http://${partition.ipv4}:8080/"
}
`

// BenchmarkConvergeUnchanged is one pass of a node whose 100 partitions
// are all deployed and unchanged on the master: what `slapnode node run
// --master` does every interval, in the daemon, for as long as nothing
// changes. Each pass must find the 100 partitions up to date.
func BenchmarkConvergeUnchanged(b *testing.B) {
	const partitions = 100
	n := openNode(b)
	svc, _ := inProcessServices(b, n.Root)
	m, err := master.Open(filepath.Join(b.TempDir(), "master.db"), master.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close() })
	srv := httptest.NewServer(m.Handler())
	b.Cleanup(srv.Close)
	client, err := slap.NewClient(srv.URL)
	if err != nil {
		b.Fatal(err)
	}
	release := b.TempDir()
	sw := filepath.Join(release, "software.hcl")
	if err := os.WriteFile(sw, []byte(steadySoftware), 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(release, "instance.hcl"), []byte(steadyInstance), 0o644); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	o := ConvergeOptions{Master: client, ComputerID: "STEADY", Partitions: partitions, Services: svc, UsageEvery: time.Hour}
	if err := n.Register(ctx, o); err != nil {
		b.Fatal(err)
	}
	if err := client.Supply(ctx, sw, "STEADY", slap.StateAvailable); err != nil {
		b.Fatal(err)
	}
	for i := 0; i < partitions; i++ {
		if _, err := client.Request(ctx, slap.Request{SoftwareURL: sw, Reference: fmt.Sprintf("steady-%d", i),
			Parameters: map[string]any{"n": fmt.Sprint(i)}, Filter: map[string]any{"computer_guid": "STEADY"}}); err != nil {
			b.Fatal(err)
		}
	}
	rep, err := n.ConvergeOnce(ctx, o)
	if err != nil || len(rep.Processed) != partitions {
		b.Fatalf("first pass: %v %+v", err, rep)
	}
	b.ReportAllocs()
	for b.Loop() {
		rep, err := n.ConvergeOnce(ctx, o)
		if err != nil || len(rep.Skipped) != partitions || len(rep.Processed) != 0 {
			b.Fatalf("unchanged pass: %v %+v", err, rep)
		}
	}
}
