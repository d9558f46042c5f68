package promise

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// benchNode lays out 200 promises over 20 partitions, half TCP
// (check_port_listening), half HTTP (check_url_available), against 10 local
// listeners and 10 local web servers. legacy makes them SlapOS-style: each
// promise a process (python3, as SlapOS's promises are Python) doing the
// same check.
func benchNode(b *testing.B, legacy bool) []PartitionRef {
	b.Helper()
	var ports, urls []string
	for range 10 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { l.Close() })
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		ports = append(ports, strconv.Itoa(l.Addr().(*net.TCPAddr).Port))
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
		b.Cleanup(srv.Close)
		urls = append(urls, srv.URL+"/")
	}
	var parts []PartitionRef
	for i := range 20 {
		dir := b.TempDir()
		p := PartitionRef{}
		p.ID, p.Path, p.StateDir = fmt.Sprintf("slappart%d", i), dir, filepath.Join(dir, "..", "state")
		var specs []Spec
		for j := range 10 {
			n := i*10 + j
			var s Spec
			switch {
			case legacy && j%2 == 0:
				s = spec(fmt.Sprintf("tcp%d", j), "promises:check_command", map[string]any{"command": []string{"python3", "-c",
					"import socket; socket.create_connection(('127.0.0.1', " + ports[n%10] + "), 2).close()"}})
			case legacy:
				s = spec(fmt.Sprintf("http%d", j), "promises:check_command", map[string]any{"command": []string{"python3", "-c",
					"import urllib.request as u; assert u.urlopen('" + urls[n%10] + "', timeout=2).status == 200"}})
			case j%2 == 0:
				s = spec(fmt.Sprintf("tcp%d", j), "cookbook:check_port_listening", map[string]any{"host": "127.0.0.1", "port": ports[n%10]})
			default:
				s = spec(fmt.Sprintf("http%d", j), "cookbook:check_url_available", map[string]any{"url": urls[n%10], "content": "ok"})
			}
			specs = append(specs, s)
		}
		if err := SaveSpecs(p.Partition, specs); err != nil {
			b.Fatal(err)
		}
		parts = append(parts, p)
	}
	return parts
}

func benchRun(b *testing.B, r *Runner, parts []PartitionRef) {
	ctx := context.Background()
	// One run first: compiles the cookbook (cached on disk afterwards).
	if _, err := r.Run(ctx, parts, RunOptions{Force: true}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		res, err := r.Run(ctx, parts, RunOptions{Force: true})
		if err != nil {
			b.Fatal(err)
		}
		for _, x := range res {
			if !x.OK {
				b.Fatalf("%s/%s failed: %s", x.Partition, x.Name, x.Message)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/run")
}

// BenchmarkRun200 is one full run of 200 TCP/HTTP promises, concurrently
// (default worker pool) and one at a time.
func BenchmarkRun200(b *testing.B) {
	if testing.Short() {
		b.Skip("short")
	}
	for _, workers := range []int{16, 1} {
		b.Run("wasm/workers="+strconv.Itoa(workers), func(b *testing.B) {
			needWasm(b, false)
			benchRun(b, &Runner{Host: host(b), Workers: workers}, benchNode(b, false))
		})
	}
	b.Run("slapos-style/process-each/workers=1", func(b *testing.B) {
		if _, err := exec.LookPath("python3"); err != nil {
			b.Skip("python3 not found")
		}
		benchRun(b, &Runner{Workers: 1}, benchNode(b, true))
	})
}
