package master

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/slapnode/slapnode/node/slap"
)

const killHelperEnv = "SLAPNODE_MASTER_KILL_HELPER_DB"

// TestKillHelper is the master TestKillMaster kills: it serves the
// database on loopback and prints its address.
func TestKillHelper(t *testing.T) {
	path := os.Getenv(killHelperEnv)
	if path == "" {
		t.Skip("run by TestKillMaster")
	}
	m, err := Open(path, Options{DefaultComputer: comp})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println("listening", ln.Addr())
	m.Serve(context.Background(), ln, nil)
}

// TestKillMaster runs a master in its own process, has several clients
// write to it at once (requests, connection parameters, reformats that
// rewrite every address), and SIGKILLs it in the middle of that work, five
// times. After each kill the database must be intact and hold every change
// the master acknowledged, and no change may be half applied.
func TestKillMaster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	path := filepath.Join(t.TempDir(), "master.db")
	var mu sync.Mutex
	requested := map[string]bool{}
	published := map[string]bool{}
	for cycle, after := range []int{1, 7, 19, 31, 43} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKillHelper$", "-test.count=1")
		cmd.Env = append(os.Environ(), killHelperEnv+"="+path)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		if !sc.Scan() || !strings.HasPrefix(sc.Text(), "listening ") {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("cycle %d: the master did not start: %q", cycle, sc.Text())
		}
		c, _ := slap.NewClient("http://" + strings.TrimPrefix(sc.Text(), "listening "))
		ctx, stop := context.WithCancel(context.Background())
		acks := make(chan struct{}, 1000)
		var wg sync.WaitGroup
		if cycle == 0 {
			if err := c.LoadComputerConfiguration(ctx, formatConfig(300)); err != nil {
				t.Fatal(err)
			}
		}
		wg.Add(1)
		go func() { // reformats: multi-statement transactions
			defer wg.Done()
			for ctx.Err() == nil {
				if c.LoadComputerConfiguration(ctx, formatConfig(300)) == nil {
					acks <- struct{}{}
				}
			}
		}()
		for w := 0; w < 3; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := 0; ctx.Err() == nil; i++ {
					title := fmt.Sprintf("c%d-w%d-%d", cycle, w, i)
					_, err := c.Request(ctx, slap.Request{SoftwareURL: sr, Reference: title, Parameters: map[string]any{"i": i, "pad": strings.Repeat("x", 2000)}})
					if err != nil {
						return
					}
					mu.Lock()
					requested[title] = true
					mu.Unlock()
					acks <- struct{}{}
					info, err := c.Request(ctx, slap.Request{SoftwareURL: sr, Reference: title, Parameters: map[string]any{"i": i, "pad": strings.Repeat("x", 2000)}})
					if err != nil {
						return
					}
					if c.SetConnectionParameters(ctx, comp, info.PartitionID, "", map[string]any{"url": "http://" + title + "/"}) != nil {
						return
					}
					mu.Lock()
					published[title] = true
					mu.Unlock()
					acks <- struct{}{}
				}
			}(w)
		}
		for n := 0; n < after; n++ {
			<-acks
		}
		cmd.Process.Kill() // SIGKILL, with requests in flight
		cmd.Wait()
		stop()
		wg.Wait()
		checkIntact(t, path, requested, published)
	}
}

func checkIntact(t *testing.T, path string, requested, published map[string]bool) {
	t.Helper()
	m, err := Open(path, Options{DefaultComputer: comp})
	if err != nil {
		t.Fatalf("reopening after kill: %v", err)
	}
	defer m.Close()
	var ok string
	if err := m.db.QueryRow(`PRAGMA integrity_check`).Scan(&ok); err != nil || ok != "ok" {
		t.Fatalf("integrity_check: %q %v", ok, err)
	}
	var parts, nets, broken int
	m.db.QueryRow(`SELECT COUNT(*) FROM partition`).Scan(&parts)
	m.db.QueryRow(`SELECT COUNT(*) FROM partition_network`).Scan(&nets)
	m.db.QueryRow(`SELECT COUNT(*) FROM partition WHERE slap_state='busy' AND (xml IS NULL OR timestamp IS NULL OR partition_reference IS NULL)`).Scan(&broken)
	if parts != 300 || nets != 300 || broken != 0 {
		t.Errorf("after kill: %d partitions, %d addresses, %d half-written instances; want 300, 300, 0", parts, nets, broken)
	}
	c, srv := startMaster(t, m)
	defer srv.Close()
	info, err := c.FullComputerInformation(context.Background(), comp)
	if err != nil {
		t.Fatal(err)
	}
	busy := map[string]*slap.ComputerPartition{}
	for _, p := range info.Partitions {
		if p.SoftwareRelease != nil {
			busy[p.InstanceTitle()] = p
		}
	}
	for title := range requested {
		p := busy[title]
		if p == nil {
			t.Errorf("%s was acknowledged but is gone", title)
			continue
		}
		if published[title] && p.ConnectionDict["url"] != "http://"+title+"/" {
			t.Errorf("%s's connection parameters were acknowledged but are %v", title, p.ConnectionDict)
		}
	}
}
