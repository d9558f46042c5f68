package format

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"github.com/slapnode/slapnode/internal/atomicfile"
)

// Partitions of a node without a network of its own (never formatted,
// formatted rootless, or with the network disabled) each get a loopback
// address, 127.B.x.y: Linux routes all of 127/8 to lo without any setup,
// so every partition can listen on a fixed port of its own. B, the node
// root's block, must not be another node root's: two roots sharing it
// give their partitions the same addresses, and one root's promise then
// checks the other root's server (issue 19).
//
// B is chosen once per root and recorded in the root (LoopbackFile). A
// new root starts from a block derived from its path and takes the first
// block that no other root of the machine has claimed (LoopbackRegistry:
// one file per claimed block naming its root, which must still record the
// block for the claim to stand) and where nothing listens yet
// (/proc/net/tcp, udp: a process of another root, or of no root, owning an
// address of the block).

// LoopbackFile records a root's loopback block, in the root.
const LoopbackFile = "loopback.json"

// LoopbackEnv overrides the machine's registry of claimed blocks (tests).
const LoopbackEnv = "SLAPNODE_LOOPBACK_DIR"

type loopbackRecord struct {
	Block int `json:"block"` // B of 127.B.x.y
}

// LoopbackRegistry is the directory where node roots claim their blocks:
// /var/lib/slapnode/loopback for root, $XDG_STATE_HOME/slapnode-loopback
// (~/.local/state/slapnode-loopback) for other users, whose roots'
// blocks are also told apart by what is bound.
func LoopbackRegistry() string {
	if d := os.Getenv(LoopbackEnv); d != "" {
		return d
	}
	if os.Geteuid() == 0 {
		return "/var/lib/slapnode/loopback"
	}
	base := os.Getenv("XDG_STATE_HOME")
	if base == "" {
		home, _ := os.UserHomeDir()
		base = filepath.Join(home, ".local", "state")
	}
	return filepath.Join(base, "slapnode-loopback")
}

// DerivedLoopback is the block an unformatted root used before blocks were
// recorded: derived from its path alone.
func DerivedLoopback(root string) int {
	h := fnv.New32a()
	h.Write([]byte(root))
	return 1 + int(h.Sum32()%254)
}

// BlockOfAddr returns B of an address 127.B.x.y, 0 for any other.
func BlockOfAddr(s string) int {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() || a.As4()[0] != 127 {
		return 0
	}
	return int(a.As4()[1])
}

// LoopbackAddr is partition i's address in block b.
func LoopbackAddr(b, i int) string {
	return netip.AddrFrom4([4]byte{127, byte(b), byte(i / 250), byte(i%250 + 1)}).String()
}

// RecordedLoopback returns the block a root recorded, 0 when none.
func RecordedLoopback(root string) int {
	b, err := os.ReadFile(filepath.Join(root, LoopbackFile))
	if err != nil {
		return 0
	}
	var r loopbackRecord
	if json.Unmarshal(b, &r) != nil || r.Block < 1 || r.Block > 254 {
		return 0
	}
	return r.Block
}

// LoopbackBlock returns the root's block: the one it recorded (claimed
// again if its claim was lost), else the one it used before blocks were
// recorded (was, when not 0: what its partitions already listen on, kept
// unless another root claims it), else a new one; recorded and claimed.
// With dry set nothing is written: the block it would take is returned.
func LoopbackBlock(root string, was int, dry bool) (int, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return 0, err
	}
	reg := LoopbackRegistry()
	if b := RecordedLoopback(abs); b != 0 {
		owner := claimOwner(reg, b)
		if owner == "" || owner == abs || !stillClaims(owner, b) {
			if !dry {
				if err := claim(reg, b, abs); err != nil {
					return 0, err
				}
			}
			return b, nil
		}
		// Another root took the block while this one's claim was lost
		// (the registry was wiped): this root moves, which format says.
	}
	if was >= 1 && was <= 254 {
		if owner := claimOwner(reg, was); owner == "" || owner == abs || !stillClaims(owner, was) {
			if !dry {
				if err := claim(reg, was, abs); err != nil {
					return 0, err
				}
				if err := atomicfile.WriteJSON(filepath.Join(abs, LoopbackFile), loopbackRecord{Block: was}, 0o644); err != nil {
					return 0, err
				}
			}
			return was, nil
		}
	}
	bound := boundLoopbackBlocks()
	h := fnv.New32a()
	h.Write([]byte(abs))
	start := int(h.Sum32() % 254)
	for i := range 254 {
		b := 1 + (start+i)%254
		if owner := claimOwner(reg, b); owner != "" && owner != abs && stillClaims(owner, b) {
			continue
		}
		if bound[b] {
			continue
		}
		if !dry {
			if err := claim(reg, b, abs); err != nil {
				return 0, err
			}
			if err := atomicfile.WriteJSON(filepath.Join(abs, LoopbackFile), loopbackRecord{Block: b}, 0o644); err != nil {
				return 0, err
			}
		}
		return b, nil
	}
	return 0, errors.New("every loopback block 127.1–254.x.y is claimed by another node root or in use: remove node roots no longer used ('slapnode node unformat'), or format with a network of its own")
}

// claimOwner returns the root named by block b's claim, "" when none.
func claimOwner(reg string, b int) string {
	f, err := os.OpenFile(filepath.Join(reg, "127."+strconv.Itoa(b)), os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return ""
	}
	defer f.Close()
	var buf [4096]byte
	n, _ := f.Read(buf[:])
	return strings.TrimSpace(string(buf[:n]))
}

// stillClaims reports whether a root still records block b (a claim of a
// root since removed, or moved to another block, stands for nothing).
func stillClaims(root string, b int) bool {
	return RecordedLoopback(root) == b
}

// claim writes block b's claim for root, replacing a stale one.
func claim(reg string, b int, root string) error {
	if err := os.MkdirAll(reg, 0o755); err != nil {
		return fmt.Errorf("loopback registry: %w", err)
	}
	st, err := os.Lstat(reg)
	if err != nil || !st.IsDir() || st.Sys().(*syscall.Stat_t).Uid != uint32(os.Geteuid()) {
		return fmt.Errorf("loopback registry %s is not a directory of this user's: remove it", reg)
	}
	if claimOwner(reg, b) == root {
		return nil
	}
	return atomicfile.Write(filepath.Join(reg, "127."+strconv.Itoa(b)), []byte(root+"\n"), 0o644)
}

// boundLoopbackBlocks lists the blocks B where some socket of this
// network namespace is bound to an address 127.B.x.y (B ≥ 1): TCP and
// UDP, IPv4 and IPv4-mapped IPv6.
func boundLoopbackBlocks() map[int]bool {
	out := map[int]bool{}
	for _, name := range []string{"tcp", "udp", "tcp6", "udp6"} {
		f, err := OpenProcNet(name)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 2 {
				continue
			}
			addr, _, _ := strings.Cut(fields[1], ":")
			if b, ok := loopbackBlockOf(addr); ok {
				out[b] = true
			}
		}
		f.Close()
	}
	return out
}

// loopbackBlockOf reads the B of a /proc/net address that is 127.B.x.y:
// hex, each 32-bit word in host (little-endian) order; IPv6 addresses
// count when they map an IPv4 one (::ffff:127.B.x.y).
func loopbackBlockOf(hexAddr string) (int, bool) {
	raw, err := hex.DecodeString(hexAddr)
	if err != nil || len(raw)%4 != 0 {
		return 0, false
	}
	for w := 0; w < len(raw); w += 4 {
		raw[w], raw[w+1], raw[w+2], raw[w+3] = raw[w+3], raw[w+2], raw[w+1], raw[w]
	}
	var a netip.Addr
	switch len(raw) {
	case 4:
		a = netip.AddrFrom4([4]byte(raw))
	case 16:
		a = netip.AddrFrom16([16]byte(raw)).Unmap()
	default:
		return 0, false
	}
	if !a.Is4() {
		return 0, false
	}
	v4 := a.As4()
	if v4[0] != 127 || v4[1] == 0 {
		return 0, false
	}
	return int(v4[1]), true
}

// OpenProcNet opens a /proc/net table of this thread's network namespace
// (/proc/net follows the process's main thread, which a test or a netns
// helper may have moved).
func OpenProcNet(name string) (*os.File, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	f, err := os.Open("/proc/thread-self/net/" + name)
	if err != nil {
		return os.Open("/proc/net/" + name)
	}
	return f, nil
}
