package promise

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/slapnode/slapnode/partition"
	"github.com/slapnode/slapnode/runtime/builtin"
	"github.com/slapnode/slapnode/runtime/wasmhost"
)

// testCache is the wazero compilation cache shared with the other packages'
// tests (the cookbook compiles once per machine, not once per run).
var testCache = filepath.Join(os.TempDir(), "slapnode-test-wazero-cache")

var (
	guestWasm []byte // testdata/guest.c, built by TestMain
	guestErr  error
	hostOnce  sync.Once
	testHost  *wasmhost.Host
	hostErr   error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "promise-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	guestWasm, guestErr = buildGuest(dir)
	code := m.Run()
	if testHost != nil {
		testHost.Close(context.Background())
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// buildGuest compiles testdata/guest.c with the flags of runtime/runtime.mk.
func buildGuest(dir string) ([]byte, error) {
	clang, err := exec.LookPath("clang")
	if err != nil {
		return nil, errors.New("clang not found (apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32)")
	}
	out := filepath.Join(dir, "guest.wasm")
	cmd := exec.Command(clang, "--target=wasm32-wasi", "--sysroot=/usr", "-O2", "-Wall", "-mexec-model=reactor", "-Wl,--strip-debug", "-o", out, "testdata/guest.c")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build testdata/guest.c: %v\n%s", err, msg)
	}
	return os.ReadFile(out)
}

// needWasm skips (or, under make test, fails) a test that needs the
// built-in cookbook or the test guest.
func needWasm(t testing.TB, guest bool) {
	t.Helper()
	var why error
	if len(builtin.Names()) == 0 {
		why = errors.New("the built-in cookbook is not built (make runtime/builtin/wasm/cookbook.wasm)")
	} else if guest && guestErr != nil {
		why = guestErr
	}
	if why == nil {
		return
	}
	if os.Getenv("SLAPNODE_REQUIRE_WASM") != "" {
		t.Fatal(why)
	}
	t.Skip(why)
}

func host(t testing.TB) *wasmhost.Host {
	t.Helper()
	hostOnce.Do(func() {
		testHost, hostErr = wasmhost.New(context.Background(), wasmhost.Config{CacheDir: testCache})
	})
	if hostErr != nil {
		t.Fatal(hostErr)
	}
	return testHost
}

// newPartition makes a rootless partition directory.
func newPartition(t *testing.T, id string) PartitionRef {
	t.Helper()
	dir := filepath.Join(t.TempDir(), id)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	return PartitionRef{Partition: partition.Partition{ID: id, Path: dir, User: "test", IPv4: "127.0.0.1", IPv6: "::1",
		StateDir: filepath.Join(filepath.Dir(dir), "state", id)}}
}
