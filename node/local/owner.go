package local

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/slapnode/slapnode/node/format"
	"github.com/slapnode/slapnode/partition"
	"github.com/slapnode/slapnode/partition/service"
)

// A promise that checks an address answers for whatever listens there. On
// a node whose partitions share a loopback range with another node root
// (issue 19), a partition's promise said ok about the other root's server
// while its own service could not bind. So after apply's promises pass,
// the address each one checked is looked at: an address the node gives
// partitions must be this partition's own, and what listens on it must be
// one of this partition's services (or a process they started).

// checkedAddr is the address a promise's options name: url, or host and
// port; ok false when it names none.
func checkedAddr(opts json.RawMessage) (netip.AddrPort, bool) {
	var o map[string]any
	if json.Unmarshal(opts, &o) != nil {
		return netip.AddrPort{}, false
	}
	host, port := "", 0
	if u, ok := o["url"].(string); ok {
		pu, err := url.Parse(u)
		if err != nil || pu.Hostname() == "" {
			return netip.AddrPort{}, false
		}
		host = pu.Hostname()
		port, _ = strconv.Atoi(pu.Port())
		if port == 0 {
			port = map[string]int{"http": 80, "https": 443}[pu.Scheme]
		}
	} else if h, ok := o["host"].(string); ok {
		host = h
		switch p := o["port"].(type) {
		case float64:
			port = int(p)
		case string:
			port, _ = strconv.Atoi(p)
		}
	}
	a, err := netip.ParseAddr(strings.Trim(host, "[]"))
	if err != nil || port <= 0 || port > 65535 {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(a.Unmap(), uint16(port)), true
}

// ownAddrs are the addresses of a partition.
func ownAddrs(p partition.Partition) map[netip.Addr]bool {
	out := map[netip.Addr]bool{}
	for _, s := range append(append([]string{p.IPv4, p.IPv6}, p.IPv4List...), p.IPv6List...) {
		if a, err := netip.ParseAddr(s); err == nil {
			out[a.Unmap()] = true
		}
	}
	return out
}

// foreignAddress says why the address a passing promise checked is not
// its partition's ("" when it is, or when it is no partition address of
// this node at all: an outside service the promise may well check).
// nodeAddrs are the addresses the node gives its partitions, by owner;
// statuses the supervisor's view of the partition's services.
func foreignAddress(p partition.Partition, ap netip.AddrPort, nodeAddrs map[netip.Addr]string, nodeBlock int, statuses []service.Status) string {
	a := ap.Addr()
	own := ownAddrs(p)
	if !own[a] {
		if owner, ok := nodeAddrs[a]; ok && owner != p.ID {
			return fmt.Sprintf("it checked %s, the address of partition %s, not of %s", ap, owner, p.ID)
		}
		if nodeBlock != 0 && a.Is4() && a.As4()[0] == 127 && int(a.As4()[1]) == nodeBlock {
			return fmt.Sprintf("it checked %s, in this node's loopback range, which no partition owns", ap)
		}
		return ""
	}
	if p.NetNS != "" {
		return "" // the partition's sockets are in its own namespace
	}
	inode, found := listener(ap)
	if !found {
		return ""
	}
	pids := partitionPIDs(statuses)
	if len(pids) == 0 {
		return fmt.Sprintf("it checked %s, where something listens, but %s runs no service: another program (another node root's?) answered", ap, p.ID)
	}
	if ownsSocket(pids, inode) {
		return ""
	}
	return fmt.Sprintf("it checked %s, but what listens there is none of %s's services (another node root's, or another program): its own service may not be listening", ap, p.ID)
}

// listener finds the socket listening on ap (or on the wildcard address
// of its family, at its port), by inode.
func listener(ap netip.AddrPort) (string, bool) {
	for _, name := range []string{"tcp", "tcp6"} {
		f, err := format.OpenProcNet(name)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Scan()
		for sc.Scan() {
			fl := strings.Fields(sc.Text())
			if len(fl) < 10 || fl[3] != "0A" { // LISTEN
				continue
			}
			h, p, _ := strings.Cut(fl[1], ":")
			port, err := strconv.ParseUint(p, 16, 16)
			if err != nil || uint16(port) != ap.Port() {
				continue
			}
			a, ok := procAddr(h)
			if ok && (a == ap.Addr() || a.IsUnspecified()) {
				f.Close()
				return fl[9], true
			}
		}
		f.Close()
	}
	return "", false
}

// procAddr reads a /proc/net address (hex, 32-bit words in host order).
func procAddr(h string) (netip.Addr, bool) {
	raw, err := hex.DecodeString(h)
	if err != nil || len(raw)%4 != 0 {
		return netip.Addr{}, false
	}
	for w := 0; w < len(raw); w += 4 {
		raw[w], raw[w+1], raw[w+2], raw[w+3] = raw[w+3], raw[w+2], raw[w+1], raw[w]
	}
	switch len(raw) {
	case 4:
		return netip.AddrFrom4([4]byte(raw)), true
	case 16:
		return netip.AddrFrom16([16]byte(raw)).Unmap(), true
	}
	return netip.Addr{}, false
}

// partitionPIDs are the processes of a partition's services and every
// process they started.
func partitionPIDs(statuses []service.Status) map[int]bool {
	pids := map[int]bool{}
	for _, s := range statuses {
		if s.Pid > 0 {
			pids[s.Pid] = true
		}
	}
	if len(pids) == 0 {
		return pids
	}
	children := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid …: comm may hold spaces and parentheses.
		rest := string(b[strings.LastIndexByte(string(b), ')')+1:])
		f := strings.Fields(rest)
		if len(f) < 2 {
			continue
		}
		if ppid, err := strconv.Atoi(f[1]); err == nil {
			children[ppid] = append(children[ppid], pid)
		}
	}
	queue := make([]int, 0, len(pids))
	for p := range pids {
		queue = append(queue, p)
	}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			if !pids[c] {
				pids[c] = true
				queue = append(queue, c)
			}
		}
	}
	return pids
}

// ownsSocket reports whether one of pids holds the socket inode.
func ownsSocket(pids map[int]bool, inode string) bool {
	want := "socket:[" + inode + "]"
	for pid := range pids {
		dir := filepath.Join("/proc", strconv.Itoa(pid), "fd")
		ents, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if l, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && l == want {
				return true
			}
		}
	}
	return false
}

// partitionAddrs maps the addresses the node gives its partitions to
// their partition, and returns the loopback block of an unformatted node
// (0 when formatted).
func (n *Node) partitionAddrs() (map[netip.Addr]string, int) {
	out := map[netip.Addr]string{}
	add := func(id string, addrs ...string) {
		for _, s := range addrs {
			a, err := netip.ParseAddr(s)
			if err != nil || a.IsLoopback() && !(a.Is4() && a.As4()[1] != 0) {
				continue // 127.0.0.1 and ::1 are every partition's
			}
			out[a.Unmap()] = id
		}
	}
	if n.format != nil {
		for _, p := range n.format.Partitions() {
			add(p.ID, p.IPv4, p.IPv6)
		}
		return out, 0
	}
	reg, err := n.load()
	if err != nil {
		return out, n.block
	}
	for _, rec := range reg.Instances {
		if p, err := n.Partition(rec.Partition); err == nil {
			add(p.ID, p.IPv4)
		}
	}
	return out, n.block
}
