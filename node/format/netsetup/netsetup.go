// Package netsetup prepares the network of a node through netlink: the
// bridge, one tap per partition owned by its user, the partitions' IPv4 /32
// and IPv6 addresses, their routed IPv6 ranges, and computes addresses the
// SlapOS way (addr.go). It never runs ip(8) or brctl.
//
// Everything runs in one network namespace: the caller's, or a named one
// (ip netns) that the work is done in from a dedicated OS thread, so that
// tests and benchmarks never touch the host's interfaces.
package netsetup

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sort"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Tap is one partition's tap device.
type Tap struct {
	Name     string
	Uid, Gid uint32
	// Range is routed to the bridge for what runs behind the tap (a VM).
	Range netip.Prefix
}

// Plan is the network state format wants.
type Plan struct {
	Bridge string
	// Addrs go on the bridge: partitions' IPv4 /32 and IPv6 /L.
	Addrs []netip.Prefix
	// LocalRanges are routed to the machine itself (table local, dev lo),
	// so that a partition can bind any address of its range.
	LocalRanges []netip.Prefix
	Taps        []Tap
}

// Change describes one modification, made or (dry run) to be made.
type Change string

// InNS runs fn with the current thread in named network namespace ns ("" =
// the caller's own). The thread is locked for fn and never unlocked, so
// the Go runtime discards it afterwards instead of reusing a thread left
// in another namespace.
func InNS(ns string, fn func() error) error {
	if ns == "" {
		return fn()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		h, err := netns.GetFromName(ns)
		if err != nil {
			errc <- fmt.Errorf("network namespace %q: %w (create it with 'ip netns add %s', or remove network.namespace from node.hcl)", ns, err, ns)
			return
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			errc <- fmt.Errorf("entering network namespace %q: %w", ns, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// Apply makes the namespace match p, doing only what differs. With dry it
// changes nothing and returns what it would do.
func Apply(ns string, p Plan, dry bool) (changes []Change, err error) {
	err = InNS(ns, func() error {
		a := &applier{dry: dry}
		a.apply(p)
		changes = a.changes
		return a.err
	})
	return changes, err
}

type applier struct {
	dry     bool
	changes []Change
	err     error
}

func (a *applier) do(desc string, f func() error) {
	if a.err != nil {
		return
	}
	a.changes = append(a.changes, Change(desc))
	if !a.dry {
		if err := f(); err != nil {
			a.err = fmt.Errorf("%s: %w", desc, err)
		}
	}
}

func (a *applier) apply(p Plan) {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		a.err = fmt.Errorf("finding lo: %w", err)
		return
	}
	if lo.Attrs().Flags&net.FlagUp == 0 {
		a.do("set lo up", func() error { return netlink.LinkSetUp(lo) })
	}
	var br netlink.Link
	if p.Bridge != "" {
		br = a.bridge(p.Bridge)
	}
	if a.err != nil {
		return
	}
	if br != nil {
		have := map[netip.Prefix]bool{}
		if !a.dry || br.Attrs().Index != 0 {
			addrs, err := netlink.AddrList(br, netlink.FAMILY_ALL)
			if err != nil {
				a.err = fmt.Errorf("listing addresses of %s: %w", p.Bridge, err)
				return
			}
			for _, ad := range addrs {
				if pf, ok := toPrefix(ad.IPNet); ok {
					have[pf] = true
				}
			}
		}
		for _, pf := range p.Addrs {
			if have[pf] {
				continue
			}
			pf := pf
			a.do(fmt.Sprintf("add address %s to %s", pf, p.Bridge), func() error {
				ad := &netlink.Addr{IPNet: toIPNet(pf)}
				if pf.Addr().Is6() {
					// Addresses are computed, so duplicates are ruled out by
					// construction: skip DAD, which would leave them
					// "tentative" (unusable) while the bridge has no carrier.
					ad.Flags = unix.IFA_F_NODAD
				}
				return netlink.AddrAdd(br, ad)
			})
		}
	}
	if len(p.LocalRanges) > 0 {
		a.nonlocalBind()
		have := map[netip.Prefix]bool{}
		routes, err := netlink.RouteListFiltered(netlink.FAMILY_V6, &netlink.Route{Table: unix.RT_TABLE_LOCAL, Type: unix.RTN_LOCAL}, netlink.RT_FILTER_TABLE|netlink.RT_FILTER_TYPE)
		if err != nil {
			a.err = fmt.Errorf("listing local routes: %w", err)
			return
		}
		for _, r := range routes {
			if r.Dst != nil && r.LinkIndex == lo.Attrs().Index {
				if pf, ok := toPrefix(r.Dst); ok {
					have[pf] = true
				}
			}
		}
		for _, pf := range p.LocalRanges {
			if have[pf] {
				continue
			}
			pf := pf
			a.do(fmt.Sprintf("route local %s dev lo", pf), func() error {
				return netlink.RouteAdd(localRoute(lo, pf))
			})
		}
	}
	// One dump of the routing table serves every tap: asking per tap
	// makes the no-op run quadratic in the number of partitions.
	routed := map[netip.Prefix]int{}
	if br != nil && br.Attrs().Index != 0 && len(p.Taps) > 0 {
		routes, err := netlink.RouteListFiltered(netlink.FAMILY_V6, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
		if err != nil {
			a.err = fmt.Errorf("listing routes: %w", err)
			return
		}
		for _, r := range routes {
			if pf, ok := toPrefix(r.Dst); ok {
				routed[pf] = r.LinkIndex
			}
		}
	}
	for _, t := range p.Taps {
		a.tap(t, br, routed)
	}
}

func localRoute(lo netlink.Link, pf netip.Prefix) *netlink.Route {
	return &netlink.Route{Dst: toIPNet(pf), LinkIndex: lo.Attrs().Index, Table: unix.RT_TABLE_LOCAL, Type: unix.RTN_LOCAL, Scope: netlink.SCOPE_HOST}
}

// bridge returns the bridge, creating it and setting it up as needed (in a
// dry run, a placeholder with index 0 when it does not exist yet).
func (a *applier) bridge(name string) netlink.Link {
	l, err := netlink.LinkByName(name)
	var notFound netlink.LinkNotFoundError
	switch {
	case errors.As(err, &notFound):
		a.do("create bridge "+name+", up", func() error {
			b := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}}
			if err := netlink.LinkAdd(b); err != nil {
				return err
			}
			return netlink.LinkSetUp(b)
		})
		if a.dry || a.err != nil {
			return &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}}
		}
		if l, err = netlink.LinkByName(name); err != nil {
			a.err = fmt.Errorf("finding bridge %s after creating it: %w", name, err)
			return nil
		}
	case err != nil:
		a.err = fmt.Errorf("finding bridge %s: %w", name, err)
		return nil
	case l.Type() != "bridge":
		a.err = fmt.Errorf("interface %s exists and is a %s, not a bridge: choose another network.bridge in node.hcl", name, l.Type())
		return nil
	}
	if l.Attrs().Flags&net.FlagUp == 0 {
		a.do("set "+name+" up", func() error { return netlink.LinkSetUp(l) })
	}
	return l
}

// tap makes the tap exist, owned by its user, up, on the bridge, with its
// range routed to the bridge (routed maps the main table's IPv6
// destinations to their interface).
func (a *applier) tap(t Tap, br netlink.Link, routed map[netip.Prefix]int) {
	if a.err != nil {
		return
	}
	l, err := netlink.LinkByName(t.Name)
	var notFound netlink.LinkNotFoundError
	exists := err == nil
	if err != nil && !errors.As(err, &notFound) {
		a.err = fmt.Errorf("finding tap %s: %w", t.Name, err)
		return
	}
	if exists {
		tt, ok := l.(*netlink.Tuntap)
		if !ok || tt.Mode != netlink.TUNTAP_MODE_TAP {
			a.err = fmt.Errorf("interface %s exists and is not a tap: remove it or change network.tap_base_name", t.Name)
			return
		}
		if tt.Owner != t.Uid || tt.Group != t.Gid {
			// A tap's owner is fixed at creation through the tun device;
			// recreating it is the reliable way to change it.
			a.do(fmt.Sprintf("recreate tap %s for uid %d gid %d (was %d/%d)", t.Name, t.Uid, t.Gid, tt.Owner, tt.Group), func() error {
				return netlink.LinkDel(l)
			})
			exists = false
		}
	}
	if !exists {
		desc := fmt.Sprintf("create tap %s owned by uid %d gid %d", t.Name, t.Uid, t.Gid)
		if br != nil {
			desc += ", on " + br.Attrs().Name
		}
		a.do(desc+", up", func() error {
			tt := &netlink.Tuntap{LinkAttrs: netlink.LinkAttrs{Name: t.Name}, Mode: netlink.TUNTAP_MODE_TAP, Owner: t.Uid, Group: t.Gid}
			if err := netlink.LinkAdd(tt); err != nil {
				return err
			}
			// LinkAdd keeps the queue descriptors open; the tap is
			// persistent, so they are not needed.
			for _, f := range tt.Fds {
				f.Close()
			}
			if br != nil {
				if err := netlink.LinkSetMaster(tt, br); err != nil {
					return err
				}
			}
			return netlink.LinkSetUp(tt)
		})
	} else {
		if br != nil && br.Attrs().Index != 0 && l.Attrs().MasterIndex != br.Attrs().Index {
			a.do(fmt.Sprintf("attach %s to %s", t.Name, br.Attrs().Name), func() error { return netlink.LinkSetMaster(l, br) })
		}
		if l.Attrs().Flags&net.FlagUp == 0 {
			a.do("set "+t.Name+" up", func() error { return netlink.LinkSetUp(l) })
		}
	}
	if br != nil && t.Range.IsValid() {
		dst := t.Range.Masked()
		if br.Attrs().Index != 0 && routed[dst] == br.Attrs().Index {
			return
		}
		a.do(fmt.Sprintf("route %s dev %s", dst, br.Attrs().Name), func() error {
			return netlink.RouteReplace(&netlink.Route{Dst: toIPNet(dst), LinkIndex: br.Attrs().Index})
		})
	}
}

// nonlocalBind lets services bind addresses of their routed range that are
// not assigned to an interface (SlapOS sets the same sysctl). The setting
// belongs to the network namespace of the thread that opens the file.
func (a *applier) nonlocalBind() {
	const p = "/proc/sys/net/ipv6/ip_nonlocal_bind"
	b, err := os.ReadFile(p)
	if err != nil {
		a.err = fmt.Errorf("reading %s: %w", p, err)
		return
	}
	if strings.TrimSpace(string(b)) == "1" {
		return
	}
	a.do("sysctl net.ipv6.ip_nonlocal_bind=1", func() error { return os.WriteFile(p, []byte("1"), 0) })
}

// Remove undoes p: taps, bridge (with its addresses), local routes. Missing
// pieces are not an error.
func Remove(ns string, p Plan, dry bool) (changes []Change, err error) {
	err = InNS(ns, func() error {
		a := &applier{dry: dry}
		var notFound netlink.LinkNotFoundError
		for _, t := range p.Taps {
			if l, err := netlink.LinkByName(t.Name); err == nil {
				a.do("delete tap "+t.Name, func() error { return netlink.LinkDel(l) })
			} else if !errors.As(err, &notFound) {
				return fmt.Errorf("finding tap %s: %w", t.Name, err)
			}
		}
		if lo, err := netlink.LinkByName("lo"); err == nil {
			for _, pf := range p.LocalRanges {
				r := localRoute(lo, pf)
				routes, err := netlink.RouteListFiltered(netlink.FAMILY_V6, r, netlink.RT_FILTER_TABLE|netlink.RT_FILTER_DST|netlink.RT_FILTER_TYPE)
				if err == nil && len(routes) > 0 {
					a.do(fmt.Sprintf("delete route local %s dev lo", pf), func() error { return netlink.RouteDel(r) })
				}
			}
		}
		if p.Bridge != "" {
			if l, err := netlink.LinkByName(p.Bridge); err == nil {
				if l.Type() != "bridge" {
					return fmt.Errorf("interface %s is a %s, not the bridge format created: left alone", p.Bridge, l.Type())
				}
				// Deleting the bridge drops its addresses and the routes
				// through it.
				a.do("delete bridge "+p.Bridge, func() error { return netlink.LinkDel(l) })
			} else if !errors.As(err, &notFound) {
				return fmt.Errorf("finding bridge %s: %w", p.Bridge, err)
			}
		}
		changes = a.changes
		return a.err
	})
	return changes, err
}

// InterfacePrefix returns the IPv6 prefix of interface name the way
// slapformat chooses it: the global address whose network contains prefer
// (the previous choice), else the one with the largest network, then the
// lowest address.
func InterfacePrefix(ns, name string, prefer netip.Prefix) (netip.Prefix, error) {
	var out netip.Prefix
	err := InNS(ns, func() error {
		l, err := netlink.LinkByName(name)
		if err != nil {
			return fmt.Errorf("ipv6_interface %s: %w", name, err)
		}
		addrs, err := netlink.AddrList(l, netlink.FAMILY_V6)
		if err != nil {
			return fmt.Errorf("listing addresses of %s: %w", name, err)
		}
		var cands []netip.Prefix
		for _, ad := range addrs {
			pf, ok := toPrefix(ad.IPNet)
			if !ok || !pf.Addr().IsGlobalUnicast() || pf.Addr().Is4In6() {
				continue
			}
			cands = append(cands, pf)
		}
		if len(cands) == 0 {
			return fmt.Errorf("ipv6_interface %s has no global IPv6 address: give network.ipv6_prefix in node.hcl instead", name)
		}
		if prefer.IsValid() {
			for _, c := range cands {
				if c.Masked().Contains(prefer.Addr()) {
					out = c.Masked()
					return nil
				}
			}
		}
		sort.Slice(cands, func(i, j int) bool {
			if cands[i].Bits() != cands[j].Bits() {
				return cands[i].Bits() < cands[j].Bits()
			}
			return cands[i].Addr().Less(cands[j].Addr())
		})
		out = cands[0].Masked()
		return nil
	})
	return out, err
}

func toIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func toPrefix(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	if a.Is4In6() {
		a = a.Unmap()
	}
	return netip.PrefixFrom(a, ones), true
}
