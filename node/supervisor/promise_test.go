package supervisor_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slapnode/slapnode/node/supervisor"
	"github.com/slapnode/slapnode/partition"
	"github.com/slapnode/slapnode/partition/promise"
	"github.com/slapnode/slapnode/partition/service"
)

// services adapts an in-process supervisor to what promises read.
type services struct{ s *supervisor.Supervisor }

func (s services) Status(context.Context) ([]service.Status, error) { return s.s.Status(), nil }

// TestServiceRunningPromise runs check_service_running against services the
// supervisor really runs and stops.
func TestServiceRunningPromise(t *testing.T) {
	sup, err := supervisor.New(supervisor.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sup.Shutdown(context.Background())
	dir := filepath.Join(t.TempDir(), "slappart0")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	p := promise.PartitionRef{Partition: partition.Partition{ID: "slappart0", Path: dir, User: "test", IPv4: "127.0.0.1", IPv6: "::1"}}
	if _, err := sup.Apply("slappart0", []supervisor.ServiceSpec{{Name: "sleeper", Command: []string{"/bin/sleep", "600"}, Dir: dir, Watch: true, StopGrace: time.Second}}); err != nil {
		t.Fatal(err)
	}
	check := func(name string) promise.Spec {
		opts, _ := json.Marshal(map[string]any{"service": name})
		return promise.Spec{Name: "up", Check: "promises:check_service_running", Module: promise.ModuleRef{Name: "cookbook", Source: "builtin:cookbook"}, Options: opts, Test: true, Anomaly: true}
	}
	r := &promise.Runner{Services: services{sup}}
	// The supervisor starts the service asynchronously: settle until RUNNING.
	res, err := r.RunPartition(context.Background(), p, promise.RunOptions{Force: true, Settle: time.Minute, Specs: []promise.Spec{check("sleeper")}})
	if err != nil || len(res) != 1 || !res[0].OK || !strings.Contains(res[0].Message, "is RUNNING") {
		t.Fatalf("running service: %+v %v", res, err)
	}
	if err := sup.Stop(context.Background(), "slappart0", "sleeper"); err != nil {
		t.Fatal(err)
	}
	res, err = r.RunPartition(context.Background(), p, promise.RunOptions{Force: true, Specs: []promise.Spec{check("sleeper")}})
	if err != nil || len(res) != 1 || res[0].OK || !strings.Contains(res[0].Message, "sleeper of slappart0 is STOPPED") {
		t.Fatalf("stopped service: %+v %v", res, err)
	}
}
