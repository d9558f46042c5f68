package master

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// A master on loopback without --auth still needs to know who writes: any
// local user can reach 127.0.0.1, partition users included. The kernel
// knows which user owns the other end of a loopback TCP connection (the
// socket's uid, as `ss -e` shows it), so the master asks it, as
// PostgreSQL's "peer" authentication does over Unix sockets: the master's
// own user and root are its operator; everybody else must present a
// credential.

// errNoPeer says the other end of a connection could not be identified.
var errNoPeer = errors.New("the connecting process could not be identified")

// connPeer is the peer of one connection, looked up once, on its first
// request without a credential (Serve installs one per connection).
type connPeer struct {
	once sync.Once
	uid  uint32
	err  error
}

type connPeerKey struct{}

// withConnPeer is http.Server.ConnContext: a place for the connection's
// peer.
func withConnPeer(ctx context.Context, _ net.Conn) context.Context {
	return context.WithValue(ctx, connPeerKey{}, &connPeer{})
}

// requestPeerUID is peerUID, once per connection when Serve runs the
// master (a client keeping its connection open is looked up once).
func requestPeerUID(r *http.Request) (uint32, error) {
	cp, ok := r.Context().Value(connPeerKey{}).(*connPeer)
	if !ok {
		return peerUID(r)
	}
	cp.once.Do(func() { cp.uid, cp.err = peerUID(r) })
	return cp.uid, cp.err
}

// peerUID returns the uid owning the client end of the TCP connection
// that carried r, when both ends are on loopback.
func peerUID(r *http.Request) (uint32, error) {
	local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return 0, errNoPeer
	}
	la, ok := local.(*net.TCPAddr)
	if !ok {
		return 0, fmt.Errorf("%w: not a TCP connection (%s)", errNoPeer, local.Network())
	}
	ra, err := net.ResolveTCPAddr("tcp", r.RemoteAddr)
	if err != nil {
		return 0, fmt.Errorf("%w: remote address %q", errNoPeer, r.RemoteAddr)
	}
	if !la.IP.IsLoopback() || !ra.IP.IsLoopback() {
		return 0, fmt.Errorf("%w: %s is not on loopback", errNoPeer, r.RemoteAddr)
	}
	// From the client's side its socket is ra → la.
	if uid, err := diagUID(ra, la); err == nil {
		return uid, nil
	}
	return procNetUID(ra, la)
}

// inetDiagRequest is the kernel's struct inet_diag_req_v2 naming one TCP
// socket exactly. Sent without NLM_F_DUMP, the kernel answers from a hash
// lookup (inet_diag_find_one_icsk); netlink.SocketGet sends a dump, which
// walks every bucket of the TCP hash (a millisecond or more a call).
type inetDiagRequest struct {
	family       uint8
	sport, dport uint16
	src, dst     [16]byte
}

func (r *inetDiagRequest) Len() int { return 56 }

func (r *inetDiagRequest) Serialize() []byte {
	b := make([]byte, 56)
	b[0] = r.family
	b[1] = unix.IPPROTO_TCP
	binary.NativeEndian.PutUint32(b[4:], 0xffffffff) // every state
	binary.BigEndian.PutUint16(b[8:], r.sport)
	binary.BigEndian.PutUint16(b[10:], r.dport)
	copy(b[12:28], r.src[:])
	copy(b[28:44], r.dst[:])
	// interface 0; cookie INET_DIAG_NOCOOKIE: any socket with that tuple
	binary.NativeEndian.PutUint32(b[48:], 0xffffffff)
	binary.NativeEndian.PutUint32(b[52:], 0xffffffff)
	return b
}

// diagUID asks sock_diag for the owner of the TCP socket local → remote.
func diagUID(local, remote *net.TCPAddr) (uint32, error) {
	r := &inetDiagRequest{sport: uint16(local.Port), dport: uint16(remote.Port)}
	if l4, r4 := local.IP.To4(), remote.IP.To4(); l4 != nil && r4 != nil {
		r.family = unix.AF_INET
		copy(r.src[:], l4)
		copy(r.dst[:], r4)
	} else {
		r.family = unix.AF_INET6
		copy(r.src[:], local.IP.To16())
		copy(r.dst[:], remote.IP.To16())
	}
	req := nl.NewNetlinkRequest(nl.SOCK_DIAG_BY_FAMILY, 0)
	req.AddData(r)
	msgs, err := req.Execute(unix.NETLINK_INET_DIAG, nl.SOCK_DIAG_BY_FAMILY)
	if err != nil {
		return 0, err
	}
	// struct inet_diag_msg: family, state, timer, retrans, id (48 bytes),
	// expires, rqueue, wqueue, then uid.
	if len(msgs) != 1 || len(msgs[0]) < 68 {
		return 0, fmt.Errorf("%w: unexpected sock_diag answer", errNoPeer)
	}
	return binary.NativeEndian.Uint32(msgs[0][64:68]), nil
}

// procNetUID finds the socket local → remote in /proc/net/tcp{,6}, for
// kernels without the sock_diag module.
func procNetUID(local, remote *net.TCPAddr) (uint32, error) {
	files := []string{"/proc/net/tcp", "/proc/net/tcp6"}
	for _, name := range files {
		uid, ok, err := scanProcNet(name, local, remote)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return 0, err
		}
		if ok {
			return uid, nil
		}
	}
	return 0, fmt.Errorf("%w: no socket %s → %s", errNoPeer, local, remote)
}

func scanProcNet(name string, local, remote *net.TCPAddr) (uint32, bool, error) {
	f, err := os.Open(name)
	if err != nil {
		return 0, false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 8 {
			continue
		}
		if !procAddrIs(fields[1], local) || !procAddrIs(fields[2], remote) {
			continue
		}
		uid, err := strconv.ParseUint(fields[7], 10, 32)
		if err != nil {
			return 0, false, fmt.Errorf("%s: uid %q", name, fields[7])
		}
		return uint32(uid), true, nil
	}
	return 0, false, sc.Err()
}

// procAddrIs compares a /proc/net/tcp address (hex IP in host-order 32-bit
// words, then hex port) with a.
func procAddrIs(field string, a *net.TCPAddr) bool {
	h, p, ok := strings.Cut(field, ":")
	if !ok {
		return false
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil || int(port) != a.Port {
		return false
	}
	raw, err := hex.DecodeString(h)
	if err != nil || len(raw)%4 != 0 {
		return false
	}
	// Each 32-bit word is printed in the machine's (little-endian) order.
	for i := 0; i < len(raw); i += 4 {
		raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	got, ok := netip.AddrFromSlice(raw)
	want, ok2 := netip.AddrFromSlice(a.IP)
	return ok && ok2 && got.Unmap() == want.Unmap()
}
