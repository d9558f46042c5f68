package master

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/slapnode/slapnode/node/slap"
)

// benchMaster is a master with a formatted computer of 100 partitions, 20
// of them busy, served on loopback.
func benchMaster(b *testing.B) *slap.Client {
	m := openTest(b, Options{DefaultComputer: comp})
	c, _ := startMaster(b, m)
	ctx := context.Background()
	if err := c.LoadComputerConfiguration(ctx, formatConfig(100)); err != nil {
		b.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		if _, err := c.Request(ctx, slap.Request{SoftwareURL: sr, Reference: fmt.Sprintf("inst%d", i), Parameters: map[string]any{"i": i}}); err != nil {
			b.Fatal(err)
		}
	}
	return c
}

func perSecond(b *testing.B, start time.Time) {
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}

// BenchmarkRequest: a requester re-requesting an existing instance
// (slapos request polling for its connection parameters), over loopback
// HTTP, one client at a time and 8 at once.
func BenchmarkRequest(b *testing.B) {
	c := benchMaster(b)
	req := slap.Request{SoftwareURL: sr, Reference: "inst3", Parameters: map[string]any{"i": 3}}
	b.Run("serial", func(b *testing.B) {
		start := time.Now()
		for i := 0; i < b.N; i++ {
			if _, err := c.Request(context.Background(), req); err != nil {
				b.Fatal(err)
			}
		}
		perSecond(b, start)
	})
	b.Run("parallel8", func(b *testing.B) {
		b.SetParallelism(4) // 4 × GOMAXPROCS(2) = 8 clients
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := c.Request(context.Background(), req); err != nil {
					b.Error(err)
					return
				}
			}
		})
		perSecond(b, start)
	})
}

// BenchmarkRequestChange: every request changes a parameter, so each one
// commits a write (new timestamp).
func BenchmarkRequestChange(b *testing.B) {
	c := benchMaster(b)
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if _, err := c.Request(context.Background(), slap.Request{SoftwareURL: sr, Reference: "inst5", Parameters: map[string]any{"i": i}}); err != nil {
			b.Fatal(err)
		}
	}
	perSecond(b, start)
}

// BenchmarkFullComputerInformation: a node polling its 100 partitions.
func BenchmarkFullComputerInformation(b *testing.B) {
	c := benchMaster(b)
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if _, err := c.FullComputerInformation(context.Background(), comp); err != nil {
			b.Fatal(err)
		}
	}
	perSecond(b, start)
}

// BenchmarkMarshalComputer: encoding the answer alone.
func BenchmarkMarshalComputer(b *testing.B) {
	c := benchMaster(b)
	info, err := c.FullComputerInformation(context.Background(), comp)
	if err != nil {
		b.Fatal(err)
	}
	o := info.Object()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := slap.Marshal(o); err != nil {
			b.Fatal(err)
		}
	}
}
