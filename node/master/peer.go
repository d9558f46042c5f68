package master

import (
	"bufio"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
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
	if s, err := netlink.SocketGet(ra, la); err == nil && s != nil {
		return s.UID, nil
	}
	return procNetUID(ra, la)
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
