package format

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slapnode/slapnode/internal/testenv"
)

// TestMain keeps the tests' loopback claims out of the machine's registry.
// (Helper processes re-run the test binary as another user: they leave
// the variable as they found it.)
func TestMain(m *testing.M) { testenv.Main(m) }

// Two node roots never share a loopback block (issue 19: two rootless
// roots both got 127.1.0.x, and one root's promise checked the other
// root's server): a root's block is recorded, claimed, kept; a block some
// other root claims, or where something listens, is skipped.
func TestLoopbackBlocksNeverCollide(t *testing.T) {
	t.Setenv(LoopbackEnv, t.TempDir())
	seen := map[int]string{}
	var roots []string
	for i := range 20 {
		root := filepath.Join(t.TempDir(), "root")
		os.MkdirAll(root, 0o755)
		roots = append(roots, root)
		b, err := LoopbackBlock(root, 0, false)
		if err != nil {
			t.Fatal(err)
		}
		if other, dup := seen[b]; dup {
			t.Fatalf("root %d got block %d, already %s's", i, b, other)
		}
		seen[b] = root
		if again, _ := LoopbackBlock(root, 0, false); again != b || RecordedLoopback(root) != b {
			t.Fatalf("block not kept: %d then %d (recorded %d)", b, again, RecordedLoopback(root))
		}
	}
	// A root that claims the block another already uses (an older root
	// migrating) does not get it.
	first := roots[0]
	late := filepath.Join(t.TempDir(), "late")
	os.MkdirAll(late, 0o755)
	if b, _ := LoopbackBlock(late, RecordedLoopback(first), false); b == RecordedLoopback(first) {
		t.Fatalf("a new root took block %d, claimed by %s", b, first)
	}
	// A claim whose root is gone stands for nothing.
	gone := roots[1]
	b := RecordedLoopback(gone)
	os.RemoveAll(gone)
	heir := filepath.Join(t.TempDir(), "heir")
	os.MkdirAll(heir, 0o755)
	if got, _ := LoopbackBlock(heir, b, false); got != b {
		t.Errorf("block %d of a removed root not reusable: got %d", b, got)
	}
}

// A block where a socket is bound is not given to a new root.
func TestLoopbackSkipsBoundBlocks(t *testing.T) {
	t.Setenv(LoopbackEnv, t.TempDir())
	root := filepath.Join(t.TempDir(), "root")
	os.MkdirAll(root, 0o755)
	want := DerivedLoopback(root)
	l, err := net.Listen("tcp", LoopbackAddr(want, 7)+":0")
	if err != nil {
		t.Skipf("cannot listen on %s: %v", LoopbackAddr(want, 7), err)
	}
	defer l.Close()
	if !boundLoopbackBlocks()[want] {
		t.Fatalf("the listener on %s is not seen in /proc/net/tcp", l.Addr())
	}
	b, err := LoopbackBlock(root, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	if b == want {
		t.Errorf("block %d given although %s listens there", b, l.Addr())
	}
	if _, ok := loopbackBlockOf("0100007F"); ok || !strings.HasPrefix(LoopbackAddr(b, 0), "127.") {
		t.Error("127.0.0.1 is not a block")
	}
	if got, ok := loopbackBlockOf("0000000000000000FFFF00000100057F"); !ok || got != 5 {
		t.Errorf("::ffff:127.5.0.1 read as block %d %v", got, ok)
	}
}

// node format says when it changes a partition's address (issue 19: it
// renumbered them silently).
func TestFormatPrintsAddressChanges(t *testing.T) {
	reg := t.TempDir()
	t.Setenv(LoopbackEnv, reg)
	root := nodeRoot(t)
	cfg := parse(t, root, "partitions {\n count = 2\n}\n")
	if _, err := Format(Options{Config: cfg, Rootless: true}); err != nil {
		t.Fatal(err)
	}
	b := RecordedLoopback(root)
	// Another root claims the block while this root's claim is lost (the
	// registry was wiped): the next format moves this root, and says so.
	os.RemoveAll(reg)
	other := filepath.Join(t.TempDir(), "other")
	os.MkdirAll(other, 0o755)
	if got, _ := LoopbackBlock(other, b, false); got != b {
		t.Fatalf("the other root did not get block %d: %d", b, got)
	}
	res, err := Format(Options{Config: cfg, Rootless: true})
	if err != nil {
		t.Fatal(err)
	}
	nb := RecordedLoopback(root)
	want := "partition slappart1: IPv4 address " + LoopbackAddr(b, 1) + " → " + LoopbackAddr(nb, 1)
	if nb == b || !strings.Contains(strings.Join(res.Changes, "\n"), want) {
		t.Errorf("block %d → %d; changes:\n%s\nwant %q", b, nb, strings.Join(res.Changes, "\n"), want)
	}
}

// The tests' private registry (internal/testenv) is the one format reads.
func TestLoopbackEnvName(t *testing.T) {
	if LoopbackEnv != testenv.LoopbackEnv {
		t.Fatalf("format reads %s, tests set %s", LoopbackEnv, testenv.LoopbackEnv)
	}
}
