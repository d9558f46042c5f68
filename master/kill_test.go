package master

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/slapnode/slapnode/slap"
)

const killHelperEnv = "SLAPNODE_MASTER_KILL_HELPER_DB"

// TestKillHelper is the process TestKillMaster kills: it writes to the
// master as fast as it can and prints each committed step.
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
	ctx := context.Background()
	cfg := formatConfig(300)
	// Start where the previous (killed) run stopped.
	var n int
	m.db.QueryRow(`SELECT COUNT(*) FROM partition WHERE slap_state='busy'`).Scan(&n)
	for i := n; i < 100000; i++ {
		if i%7 == 0 {
			// A multi-statement transaction: every address row is
			// deleted and written again.
			if err := m.tx(ctx, func(tx *sql.Tx) error { return formatComputer(tx, cfg) }); err != nil {
				fmt.Println("error", err)
				os.Exit(1)
			}
			fmt.Println("format")
		}
		title := "inst-" + strconv.Itoa(i)
		if _, err := m.request(ctx, instanceRequest{SoftwareURL: sr, Title: title, Params: map[string]any{"i": i, "pad": strings.Repeat("x", 2000)}}); err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println("requested", title)
		doc, _ := slap.DictToXML(map[string]any{"url": "http://" + title + "/"})
		if err := m.tx(ctx, func(tx *sql.Tx) error {
			_, err := tx.Exec(`UPDATE partition SET connection_xml=? WHERE partition_reference=? AND requested_by=''`, doc, title)
			return err
		}); err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println("published", title)
	}
}

// TestKillMaster kills (SIGKILL) a process writing to a master database at
// arbitrary points of its work, several times, and checks after each kill
// that the database is intact and holds every change that was committed.
func TestKillMaster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	path := filepath.Join(t.TempDir(), "master.db")
	published := map[string]bool{}
	requested := map[string]bool{}
	for cycle, after := range []int{1, 9, 23, 50, 77} {
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
		lines := 0
		for lines < after && sc.Scan() {
			f := strings.Fields(sc.Text())
			switch f[0] {
			case "requested":
				requested[f[1]] = true
				lines++
			case "published":
				published[f[1]] = true
				lines++
			case "error":
				t.Fatalf("helper: %s", sc.Text())
			}
		}
		cmd.Process.Kill()
		cmd.Wait()
		if lines < after {
			t.Fatalf("cycle %d: the helper stopped after %d lines", cycle, lines)
		}
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
			t.Errorf("%s was committed but is gone", title)
			continue
		}
		if published[title] && p.ConnectionDict["url"] != "http://"+title+"/" {
			t.Errorf("%s's connection parameters were committed but are %v", title, p.ConnectionDict)
		}
	}
}
