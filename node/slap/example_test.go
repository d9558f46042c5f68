package slap_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/slapnode/slapnode/node/master"
	"github.com/slapnode/slapnode/node/slap"
)

// A node registers its partitions, a user requests an instance, and the
// node reads what to do, publishes the connection parameters and reports.
func Example() {
	dir, _ := os.MkdirTemp("", "slap-example")
	defer os.RemoveAll(dir)
	m, err := master.Open(filepath.Join(dir, "master.db"), master.Options{DefaultComputer: "COMP-1"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	ctx := context.Background()
	c, _ := slap.NewClient(srv.URL)

	// The node registers (slapos node format).
	c.LoadComputerConfiguration(ctx, &slap.ComputerConfiguration{Reference: "COMP-1", Partitions: []slap.PartitionConfiguration{
		{Reference: "slappart0", TapName: "tap0", Addresses: []slap.Address{{Addr: "10.0.0.2", Netmask: "255.255.255.0"}}},
	}})
	// A user supplies and requests.
	c.Supply(ctx, "https://example.invalid/web/software.cfg", "COMP-1", slap.StateAvailable)
	c.Request(ctx, slap.Request{SoftwareURL: "https://example.invalid/web/software.cfg", Reference: "web", Parameters: map[string]any{"port": 8080}})

	// The node's converge loop.
	comp, _ := c.FullComputerInformation(ctx, "COMP-1")
	for _, sr := range comp.SoftwareReleases {
		fmt.Println("install", sr.URL, sr.RequestedState)
		c.AvailableSoftwareRelease(ctx, sr.URL, comp.ID)
	}
	for _, p := range comp.Partitions {
		if p.SoftwareRelease == nil {
			continue
		}
		fmt.Println(p.PartitionID, p.InstanceTitle(), p.RequestedState, p.SoftwareType(), p.InstanceParameters(), p.IPList())
		c.SetConnectionParameters(ctx, comp.ID, p.PartitionID, "", map[string]any{"url": "http://10.0.0.2:8080/"})
		c.Started(ctx, comp.ID, p.PartitionID)
	}

	// The user reads the connection parameters.
	inst, _ := c.Request(ctx, slap.Request{SoftwareURL: "https://example.invalid/web/software.cfg", Reference: "web", Parameters: map[string]any{"port": 8080}})
	fmt.Println(inst.ConnectionDict["url"])
	// Output:
	// install https://example.invalid/web/software.cfg available
	// slappart0 web started default map[port:8080] [[tap0 10.0.0.2]]
	// http://10.0.0.2:8080/
}
