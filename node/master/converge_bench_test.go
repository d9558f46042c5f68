package master

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/slapnode/slapnode/node/slap"
)

// BenchmarkConverge100Nodes10Partitions measures the master's side of a
// fleet converging: 100 simulated nodes (SLAP clients doing what slapnode's
// converge loop does over loopback HTTP) with 10 partitions each; 1000
// instances are requested, then every node, concurrently, fetches its full
// computer information, reports each partition started and publishes its
// connection parameters, until the requester sees all 1000 connected. The
// nodes' own work (installing, starting services) is not included.
func BenchmarkConverge100Nodes10Partitions(b *testing.B) {
	const nodes, parts = 100, 10
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		m := openTest(b, Options{})
		c, _ := startMaster(b, m)
		for n := 0; n < nodes; n++ {
			cfg := &slap.ComputerConfiguration{Reference: fmt.Sprintf("NODE-%d", n), Address: "10.0.0.1", Netmask: "255.0.0.0"}
			for p := 0; p < parts; p++ {
				cfg.Partitions = append(cfg.Partitions, slap.PartitionConfiguration{
					Reference: fmt.Sprintf("slappart%d", p),
					Addresses: []slap.Address{{Addr: fmt.Sprintf("10.%d.%d.1", n, p), Netmask: "255.255.255.255"}},
				})
			}
			if err := c.LoadComputerConfiguration(ctx, cfg); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		start := time.Now()
		for n := 0; n < nodes; n++ {
			node := fmt.Sprintf("NODE-%d", n)
			if err := c.Supply(ctx, sr, node, slap.StateAvailable); err != nil {
				b.Fatal(err)
			}
			for p := 0; p < parts; p++ {
				r := slap.Request{SoftwareURL: sr, Reference: fmt.Sprintf("i-%d-%d", n, p), Filter: map[string]any{"computer_guid": node}}
				if _, err := c.Request(ctx, r); err != nil {
					b.Fatal(err)
				}
			}
		}
		var wg sync.WaitGroup
		errs := make(chan error, nodes)
		for n := 0; n < nodes; n++ {
			wg.Add(1)
			go func(node string) {
				defer wg.Done()
				comp, err := c.FullComputerInformation(ctx, node)
				if err != nil {
					errs <- err
					return
				}
				for _, sr := range comp.SoftwareReleases {
					c.BuildingSoftwareRelease(ctx, sr.URL, node)
					c.AvailableSoftwareRelease(ctx, sr.URL, node)
				}
				for _, p := range comp.Partitions {
					if p.SoftwareRelease == nil || p.SoftwareRelease.URL == "" {
						continue
					}
					if err := c.SetConnectionParameters(ctx, node, p.PartitionID, "", map[string]any{"url": "http://" + node + "/" + p.PartitionID}); err != nil {
						errs <- err
						return
					}
					if err := c.Started(ctx, node, p.PartitionID); err != nil {
						errs <- err
						return
					}
				}
			}(fmt.Sprintf("NODE-%d", n))
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
		// The requester sees every instance connected.
		for n := 0; n < nodes; n++ {
			for p := 0; p < parts; p++ {
				inst, err := c.Request(ctx, slap.Request{SoftwareURL: sr, Reference: fmt.Sprintf("i-%d-%d", n, p)})
				if err != nil || inst.ConnectionDict["url"] == nil {
					b.Fatalf("i-%d-%d not connected: %v %v", n, p, err, inst)
				}
			}
		}
		b.ReportMetric(time.Since(start).Seconds(), "s/converge")
		m.Close()
	}
}
