package local

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slapnode/slapnode/node/master"
	"github.com/slapnode/slapnode/node/slap"
	"github.com/slapnode/slapnode/node/supervisor"
	"github.com/slapnode/slapnode/runtime/builtin"
)

// openNode opens a node on a fresh root whose wazero cache is shared
// between tests (compiling the cookbook costs seconds).
func openNode(t testing.TB) *Node {
	t.Helper()
	if _, err := builtin.Module("cookbook"); err != nil {
		if os.Getenv("SLAPNODE_REQUIRE_WASM") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	root := t.TempDir()
	shared := filepath.Join(os.TempDir(), "slapnode-test-wazero-cache")
	os.MkdirAll(shared, 0o755)
	os.MkdirAll(filepath.Join(root, "cache"), 0o755)
	if err := os.Symlink(shared, filepath.Join(root, "cache", "wazero")); err != nil {
		t.Fatal(err)
	}
	n, err := Open(context.Background(), root, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close(context.Background()) })
	return n
}

func inProcessServices(t testing.TB, root string) (Services, *supervisor.Supervisor) {
	t.Helper()
	sup, err := supervisor.New(supervisor.Options{StateDir: filepath.Join(root, "var", "lib", "supervisor")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		sup.Shutdown(ctx)
	})
	return InProcess(sup), sup
}

// testMaster serves a master with a database of its own over loopback
// HTTP, its handler wrapped by wrap when set, until the test ends.
func testMaster(t *testing.T, wrap func(http.Handler) http.Handler) (*httptest.Server, *slap.Client) {
	t.Helper()
	m, err := master.Open(filepath.Join(t.TempDir(), "master.db"), master.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	h := m.Handler()
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	client, err := slap.NewClient(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return srv, client
}

func TestConvergeWithMaster(t *testing.T) {
	n := openNode(t)
	svc, sup := inProcessServices(t, n.Root)
	srv, client := testMaster(t, nil)
	ctx := context.Background()
	o := ConvergeOptions{Master: client, ComputerID: "COMP-1", Partitions: 2, Services: svc, PromiseWait: 20 * time.Second}
	if err := n.Register(ctx, o); err != nil {
		t.Fatal(err)
	}
	sw, err := filepath.Abs("../../examples/helloweb/software.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if err := client.Supply(ctx, sw, "COMP-1", slap.StateAvailable); err != nil {
		t.Fatal(err)
	}
	req := slap.Request{SoftwareURL: sw, Reference: "web", Parameters: map[string]any{"port": "18491", "greeting": "from the master"},
		Filter: map[string]any{"computer_guid": "COMP-1"}}
	if _, err := client.Request(ctx, req); err != nil && !strings.Contains(err.Error(), "408") {
		t.Fatal(err)
	}

	rep, err := n.ConvergeOnce(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Software[sw] != slap.StateAvailable || len(rep.Processed) != 1 || len(rep.Errors) != 0 {
		t.Fatalf("first pass: %+v", rep)
	}
	inst, err := client.Request(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	url, _ := inst.ConnectionDict["url"].(string)
	if !strings.HasPrefix(url, "http://127.") {
		t.Fatalf("connection parameters: %v", inst.ConnectionDict)
	}
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "from the master") {
		t.Fatalf("page: %s", body)
	}

	// The node reported the partition's consumption; the master shows it.
	apiResp, err := http.Get(srv.URL + "/api/v1/instances/web")
	if err != nil {
		t.Fatal(err)
	}
	apiBody, _ := io.ReadAll(apiResp.Body)
	apiResp.Body.Close()
	if !strings.Contains(string(apiBody), `"Disk Usage"`) {
		t.Fatalf("no usage in the master's view of web: %s", apiBody)
	}

	// Nothing changed: the partition is skipped.
	rep, err = n.ConvergeOnce(ctx, o)
	if err != nil || len(rep.Skipped) != 1 || len(rep.Processed) != 0 {
		t.Fatalf("second pass: %+v %v", rep, err)
	}

	// A shared instance is attached to it and gets its own connection.
	shared := slap.Request{SoftwareURL: sw, Reference: "site-a", Shared: true, Filter: map[string]any{"computer_guid": "COMP-1"}}
	if _, err := client.Request(ctx, shared); err != nil && !strings.Contains(err.Error(), "408") {
		t.Fatal(err)
	}
	if rep, err = n.ConvergeOnce(ctx, o); err != nil || len(rep.Processed) != 1 {
		t.Fatalf("pass with a shared instance: %+v %v", rep, err)
	}
	sh, err := client.Request(ctx, shared)
	if err != nil {
		t.Fatal(err)
	}
	if u, _ := sh.ConnectionDict["url"].(string); !strings.HasSuffix(u, "site-a") {
		t.Fatalf("shared connection: %v", sh.ConnectionDict)
	}

	// Stop propagates, then destroy.
	req.State = slap.StateStopped
	if _, err := client.Request(ctx, req); err != nil {
		t.Fatal(err)
	}
	if rep, err = n.ConvergeOnce(ctx, o); err != nil || len(rep.Processed) != 1 {
		t.Fatalf("stop pass: %+v %v", rep, err)
	}
	for _, st := range sup.Status() {
		if st.State == supervisor.StateRunning {
			t.Fatalf("service still running after stop: %+v", st)
		}
	}
	req.State = slap.StateDestroyed
	if _, err := client.Request(ctx, req); err != nil {
		t.Fatal(err)
	}
	// Destruction is child first: the shared instance is destroyed too by
	// the master; the node empties the partition.
	if rep, err = n.ConvergeOnce(ctx, o); err != nil || len(rep.Destroyed) == 0 {
		t.Fatalf("destroy pass: %+v %v", rep, err)
	}
	if entries, _ := os.ReadDir(filepath.Join(n.Root, "instance", rep.Destroyed[0])); len(entries) != 0 {
		t.Fatalf("partition not emptied: %v", entries)
	}
	if len(sup.Status()) != 0 {
		t.Fatalf("services left: %+v", sup.Status())
	}
}

func TestConvergeOffline(t *testing.T) {
	n := openNode(t)
	svc, _ := inProcessServices(t, n.Root)
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close() // nothing listens there any more
	client, _ := slap.NewClient(srv.URL)
	_, err := n.ConvergeOnce(context.Background(), ConvergeOptions{Master: client, ComputerID: "X", Services: svc})
	if err == nil || !strings.Contains(err.Error(), ErrOffline.Error()) {
		t.Fatalf("offline master: %v", err)
	}
}

// countingHandler counts the calls of each path.
type countingHandler struct {
	h     http.Handler
	mu    sync.Mutex
	calls map[string]int
}

func (c *countingHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	c.calls[r.URL.Path]++
	c.mu.Unlock()
	c.h.ServeHTTP(w, r)
}

func (c *countingHandler) count(path string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[path]
}

// A node converging from cron is a new process each minute: it registers
// its partitions and reports usage again only when something changed or
// is due, and registers again when the master forgot it.
func TestConvergeRemembersRegistrationAndUsage(t *testing.T) {
	root := openNode(t).Root
	newMaster := func() (*countingHandler, *slap.Client) {
		var ch *countingHandler
		_, c := testMaster(t, func(h http.Handler) http.Handler {
			ch = &countingHandler{h: h, calls: map[string]int{}}
			return ch
		})
		return ch, c
	}
	ch, client := newMaster()
	// A partition with something instantiated, so that there is usage.
	os.MkdirAll(filepath.Join(root, "instance", "slappart0"), 0o755)
	os.WriteFile(filepath.Join(root, "instance", "slappart0", ".slapnode"), nil, 0o644)
	ctx := context.Background()
	pass := func(c *slap.Client) {
		t.Helper()
		// A new process: a Node opened afresh on the same root.
		n, err := Open(ctx, root, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer n.Close(ctx)
		o := ConvergeOptions{Master: c, ComputerID: "COMP-1", Partitions: 2, UsageEvery: time.Hour}
		if err := n.Register(ctx, o); err != nil {
			t.Fatal(err)
		}
		if _, err := n.ConvergeOnce(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	pass(client)
	pass(client)
	if got := ch.count("/loadComputerConfigurationFromXML"); got != 1 {
		t.Errorf("the same partitions registered %d times, want once", got)
	}
	if got := ch.count("/useComputer"); got != 1 {
		t.Errorf("usage reported %d times within UsageEvery, want once", got)
	}
	// A master whose database was replaced knows nothing of the node,
	// though the node remembers registering at its URL: the memo, pointed
	// at a new master, stands for that. The pass registers again.
	ch2, client2 := newMaster()
	b, err := os.ReadFile(filepath.Join(root, "state", "converge.json"))
	if err != nil {
		t.Fatal(err)
	}
	b = []byte(strings.ReplaceAll(string(b), client.URL(), client2.URL()))
	if err := os.WriteFile(filepath.Join(root, "state", "converge.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	n, err := Open(ctx, root, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(ctx)
	o := ConvergeOptions{Master: client2, ComputerID: "COMP-1", Partitions: 2, UsageEvery: time.Hour}
	if err := n.Register(ctx, o); err != nil {
		t.Fatal(err)
	}
	if got := ch2.count("/loadComputerConfigurationFromXML"); got != 0 {
		t.Fatalf("registered %d times with a master the memo says it registered with", got)
	}
	if _, err := n.ConvergeOnce(ctx, o); err != nil {
		t.Fatalf("a master that forgot the node: %v", err)
	}
	if got := ch2.count("/loadComputerConfigurationFromXML"); got != 1 {
		t.Errorf("after the master answered 404, registered %d times, want once", got)
	}
}

// A buildout release converged with a master reads, from slap-connection,
// the master's URL and the partition certificate the node fetched into
// certificate_repository_path, as slapgrid points them.
func TestConvergeBuildoutSlapConnection(t *testing.T) {
	n := openNode(t)
	svc, _ := inProcessServices(t, n.Root)
	_, client := testMaster(t, nil)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "software.cfg"), []byte(`[buildout]
parts = instance-profile

[instance-profile]
recipe = slapos.recipe.template
output = ${buildout:directory}/instance.cfg
inline =
  [buildout]
  parts = publish
  [publish]
  recipe = slapos.cookbook:publish
  server-url = $${slap-connection:server-url}
  key-file = $${slap-connection:key-file}
  cert-file = $${slap-connection:cert-file}
`), 0o644)
	repo := filepath.Join(t.TempDir(), "pki")
	os.Mkdir(repo, 0o711)
	ctx := context.Background()
	o := ConvergeOptions{Master: client, ComputerID: "COMP-1", Partitions: 1, Services: svc, CertificateRepository: repo}
	if err := n.Register(ctx, o); err != nil {
		t.Fatal(err)
	}
	sw := filepath.Join(dir, "software.cfg")
	if err := client.Supply(ctx, sw, "COMP-1", slap.StateAvailable); err != nil {
		t.Fatal(err)
	}
	req := slap.Request{SoftwareURL: sw, Reference: "b", Filter: map[string]any{"computer_guid": "COMP-1"}}
	if _, err := client.Request(ctx, req); err != nil && !strings.Contains(err.Error(), "408") {
		t.Fatal(err)
	}
	rep, err := n.ConvergeOnce(ctx, o)
	if err != nil || len(rep.Errors) != 0 {
		t.Fatalf("converge: %+v %v", rep, err)
	}
	inst, err := client.Request(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"server-url": client.URL(), "key-file": filepath.Join(repo, "slappart0.key"), "cert-file": filepath.Join(repo, "slappart0.crt")}
	for k, v := range want {
		if inst.ConnectionDict[k] != v {
			t.Errorf("%s = %v, want %v (all: %v)", k, inst.ConnectionDict[k], v, inst.ConnectionDict)
		}
	}
	if st, err := os.Stat(filepath.Join(repo, "slappart0.crt")); err != nil || st.Mode().Perm() != 0o400 {
		t.Errorf("the partition certificate: %v", err)
	}
}
