package netsetup

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

func TestSlapOSAddressPlan(t *testing.T) {
	p := netip.MustParsePrefix("2001:db8::/64")
	if got := PartitionIPv6(p, 0); got.String() != "2001:db8::2/64" {
		t.Errorf("partition 0 address %s", got)
	}
	if got := PartitionIPv6(p, 9); got.String() != "2001:db8::b/64" {
		t.Errorf("partition 9 address %s", got)
	}
	if got := PartitionIPv6Range(p, 16, 0); got.String() != "2001:db8:0:0:4001::/80" {
		t.Errorf("partition 0 range %s", got)
	}
	r, gw := TapIPv6Range(p, 16, 0)
	if r.String() != "2001:db8::8001:ffff:ffff:ffff/80" || gw.String() != "2001:db8::8001:0:0:1" {
		t.Errorf("tap 0 range %s gateway %s", r, gw)
	}
	if got := PartitionIPv6Range(p, 16, 5); got.String() != "2001:db8:0:0:4006::/80" {
		t.Errorf("partition 5 range %s", got)
	}
	// Wrap-around of a tiny prefix, as in SlapOS.
	if got := PartitionIPv6(netip.MustParsePrefix("2001:db8::/126"), 3); got.String() != "2001:db8::1/126" {
		t.Errorf("wrapped address %s", got)
	}
	if err := CheckIPv6Plan(p, 4, 5); err == nil {
		t.Error("16 slots accepted for 5 partitions (needs 4×5)")
	}
	if err := CheckIPv6Plan(netip.MustParsePrefix("2001:db8::/120"), 16, 1); err == nil {
		t.Error("/120 + 16 accepted")
	}
	if err := CheckIPv6Plan(p, 16, 100); err != nil {
		t.Error(err)
	}
	a, err := PartitionIPv4(netip.MustParsePrefix("10.0.0.0/16"), 300)
	if err != nil || a.String() != "10.0.1.45" {
		t.Errorf("IPv4 of 300: %s %v", a, err)
	}
	if _, err := PartitionIPv4(netip.MustParsePrefix("10.0.0.0/30"), 2); err == nil {
		t.Error("a /30 gave a third partition address")
	}
	u1, u2 := ULAPrefix("a"), ULAPrefix("b")
	if u1 == u2 || u1.Bits() != 64 || u1.Addr().As16()[0] != 0xfd || ULAPrefix("a") != u1 {
		t.Errorf("ULA prefixes %s %s", u1, u2)
	}
}

var nsCount atomic.Int32

// newNS creates a named network namespace for one test and deletes it at
// the end; every network test works only inside it.
func newNS(t testing.TB) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("creating a network namespace needs root (the address plan is tested rootless)")
	}
	sweepNS(t)
	name := fmt.Sprintf("slntest-%d-%d", os.Getpid(), nsCount.Add(1))
	errc := make(chan error, 1)
	go func() {
		// NewNamed switches this thread into the new namespace: it stays
		// locked so that the runtime throws it away.
		runtime.LockOSThread()
		h, err := netns.NewNamed(name)
		if err == nil {
			h.Close()
		}
		errc <- err
	}()
	if err := <-errc; err != nil {
		t.Fatalf("creating network namespace %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := netns.DeleteNamed(name); err != nil {
			t.Errorf("deleting network namespace %s: %v", name, err)
		}
	})
	return name
}

// sweepNS deletes slntest namespaces left by a run that crashed (those of
// live processes are left alone).
func sweepNS(t testing.TB) {
	ents, _ := os.ReadDir("/run/netns")
	for _, e := range ents {
		var pid, n int
		if _, err := fmt.Sscanf(e.Name(), "slntest-%d-%d", &pid, &n); err != nil {
			continue
		}
		if pid == os.Getpid() || unix.Kill(pid, 0) == nil {
			continue
		}
		if err := netns.DeleteNamed(e.Name()); err != nil {
			t.Logf("sweeping %s: %v", e.Name(), err)
		}
	}
}

func hostLinks(t *testing.T) []string {
	t.Helper()
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range links {
		out = append(out, fmt.Sprintf("%s/%d", l.Attrs().Name, l.Attrs().Flags))
	}
	slices.Sort(out)
	return out
}

func testPlan() Plan {
	prefix := netip.MustParsePrefix("fd00:5ab:1::/64")
	var p Plan
	p.Bridge = "slntbr0"
	for i := range 3 {
		v4, _ := PartitionIPv4(netip.MustParsePrefix("10.44.0.0/16"), i)
		p.Addrs = append(p.Addrs, netip.PrefixFrom(v4, 32), PartitionIPv6(prefix, i))
		p.LocalRanges = append(p.LocalRanges, PartitionIPv6Range(prefix, 16, i))
		r, _ := TapIPv6Range(prefix, 16, i)
		p.Taps = append(p.Taps, Tap{Name: fmt.Sprintf("slnttap%d", i), Uid: uint32(40000 + i), Gid: uint32(40000 + i), Range: r})
	}
	return p
}

func TestApplyInNamespace(t *testing.T) {
	ns := newNS(t)
	before := hostLinks(t)
	hostSysctl, _ := os.ReadFile("/proc/sys/net/ipv6/ip_nonlocal_bind")
	p := testPlan()

	dry, err := Apply(ns, p, true)
	if err != nil {
		t.Fatal(err)
	}
	changes, err := Apply(ns, p, false)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(toStrings(dry), "\n") != strings.Join(toStrings(changes), "\n") {
		t.Errorf("dry run planned:\n%s\nrun did:\n%s", strings.Join(toStrings(dry), "\n"), strings.Join(toStrings(changes), "\n"))
	}
	again, err := Apply(ns, p, false)
	if err != nil || len(again) != 0 {
		t.Errorf("second Apply: %v %v", again, err)
	}

	err = InNS(ns, func() error {
		br, err := netlink.LinkByName("slntbr0")
		if err != nil {
			return err
		}
		if br.Type() != "bridge" || br.Attrs().Flags&net.FlagUp == 0 {
			t.Errorf("bridge %s %v", br.Type(), br.Attrs().Flags)
		}
		addrs, _ := netlink.AddrList(br, netlink.FAMILY_ALL)
		var got []string
		for _, a := range addrs {
			if a.IP.IsGlobalUnicast() {
				got = append(got, a.IPNet.String())
			}
		}
		for _, want := range p.Addrs {
			if !slices.Contains(got, want.String()) {
				t.Errorf("address %s missing from %v", want, got)
			}
		}
		for _, tp := range p.Taps {
			l, err := netlink.LinkByName(tp.Name)
			if err != nil {
				t.Errorf("tap %s: %v", tp.Name, err)
				continue
			}
			tt, ok := l.(*netlink.Tuntap)
			if !ok || tt.Mode != netlink.TUNTAP_MODE_TAP || tt.Owner != tp.Uid || tt.Group != tp.Gid || tt.NonPersist {
				t.Errorf("tap %s = %+v", tp.Name, l)
			}
			if l.Attrs().MasterIndex != br.Attrs().Index {
				t.Errorf("tap %s not on the bridge", tp.Name)
			}
			rs, _ := netlink.RouteListFiltered(netlink.FAMILY_V6, &netlink.Route{Dst: toIPNet(tp.Range.Masked())}, netlink.RT_FILTER_DST)
			if len(rs) != 1 || rs[0].LinkIndex != br.Attrs().Index {
				t.Errorf("route of %s: %v", tp.Range, rs)
			}
		}
		if b, _ := os.ReadFile("/proc/sys/net/ipv6/ip_nonlocal_bind"); strings.TrimSpace(string(b)) != "1" {
			t.Errorf("ip_nonlocal_bind in the namespace = %q", b)
		}
		// A service can listen on any address of its routed range and on
		// its own addresses; the traffic stays inside the namespace.
		for _, addr := range []netip.Addr{p.LocalRanges[1].Addr().Next().Next(), p.Addrs[0].Addr(), p.Addrs[1].Addr()} {
			if err := echo(addr); err != nil {
				t.Errorf("talking to %s inside the namespace: %v", addr, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// Changing an owner recreates the tap.
	p.Taps[0].Uid = 41000
	ch, err := Apply(ns, p, false)
	if err != nil || len(ch) != 2 || !strings.HasPrefix(string(ch[0]), "recreate tap slnttap0") {
		t.Errorf("owner change: %v %v", ch, err)
	}

	removed, err := Remove(ns, p, false)
	if err != nil || len(removed) != 3+3+1 {
		t.Errorf("Remove: %v %v", removed, err)
	}
	if err := InNS(ns, func() error {
		if _, err := netlink.LinkByName("slntbr0"); err == nil {
			t.Error("bridge left after Remove")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if again, err := Remove(ns, p, false); err != nil || len(again) != 0 {
		t.Errorf("second Remove: %v %v", again, err)
	}

	if after := hostLinks(t); !slices.Equal(before, after) {
		t.Errorf("host links changed:\n%v\n%v", before, after)
	}
	if b, _ := os.ReadFile("/proc/sys/net/ipv6/ip_nonlocal_bind"); string(b) != string(hostSysctl) {
		t.Errorf("host ip_nonlocal_bind changed: %q → %q", hostSysctl, b)
	}
}

func toStrings(cs []Change) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = string(c)
	}
	return out
}

// echo listens on addr and talks to itself through it; it must run on a
// thread inside the namespace (sockets take the thread's namespace).
func echo(addr netip.Addr) error {
	ln, err := net.Listen("tcp", netip.AddrPortFrom(addr, 0).String())
	if err != nil {
		return err
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			_, _ = io.Copy(c, c)
			c.Close()
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Write([]byte("ping")); err != nil {
		return err
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		return fmt.Errorf("echo returned %q, %v", buf, err)
	}
	return nil
}

func TestInterfacePrefix(t *testing.T) {
	ns := newNS(t)
	err := InNS(ns, func() error {
		// A bridge stands for the uplink: this kernel has no dummy driver.
		d := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "slntdummy0"}}
		if err := netlink.LinkAdd(d); err != nil {
			return err
		}
		for _, a := range []string{"2001:db8:1::5/64", "2001:db8:2::5/48", "2001:db8:3::5/48", "fe80::5/64"} {
			ad, _ := netlink.ParseAddr(a)
			ad.Flags = unix.IFA_F_NODAD
			if err := netlink.AddrAdd(d, ad); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := InterfacePrefix(ns, "slntdummy0", netip.Prefix{})
	if err != nil || got.String() != "2001:db8:2::/48" {
		t.Errorf("largest then lowest: %s %v", got, err)
	}
	got, err = InterfacePrefix(ns, "slntdummy0", netip.MustParsePrefix("2001:db8:1::2/64"))
	if err != nil || got.String() != "2001:db8:1::/64" {
		t.Errorf("previous choice kept: %s %v", got, err)
	}
	if _, err := InterfacePrefix(ns, "lo", netip.Prefix{}); err == nil || !strings.Contains(err.Error(), "ipv6_prefix") {
		t.Errorf("lo has no global address: %v", err)
	}
	if _, err := InterfacePrefix("slntest-missing", "lo", netip.Prefix{}); err == nil || !strings.Contains(err.Error(), "ip netns add") {
		t.Errorf("missing namespace: %v", err)
	}
}

func TestRootlessRefused(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("checks the error a non-root user gets")
	}
	_, err := Apply(filepath.Base(t.TempDir()), testPlan(), false)
	if err == nil {
		t.Error("Apply without root succeeded")
	}
}
