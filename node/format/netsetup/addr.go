package netsetup

import (
	"crypto/sha256"
	"fmt"
	"math/big"
	"net/netip"
)

// The IPv6 plan is SlapOS's (slapos/util.py), so that partitions keep the
// addresses a SlapOS node would give them. With P/L the node prefix, n the
// prefix shift and i the partition index:
//
//	partition address  P + (i+2)                          /L  (::1 is left to re6st)
//	partition range    P + field((1<<(n-2)) + i + 1), 0…   /L+n
//	tap range          P + field((2<<(n-2)) + i + 1), 1…   /L+n, gateway = its first address + 1
//
// where field(v) is v written in the n bits that follow the prefix. The
// four quarters of the n-bit space keep the kinds apart (quarter 0 holds
// the partition addresses), hence SlapOS's rule 2^n ≥ 4 × partitions.

// CheckIPv6Plan says whether count partitions fit prefix with shift.
func CheckIPv6Plan(prefix netip.Prefix, shift, count int) error {
	if !prefix.Addr().Is6() {
		return fmt.Errorf("%s is not an IPv6 prefix", prefix)
	}
	if prefix.Bits()+shift > 128 {
		return fmt.Errorf("IPv6 prefix %s with prefix shift %d leaves no room for partition ranges (/%d > /128); use a shorter prefix or a smaller ipv6_prefix_shift", prefix, shift, prefix.Bits()+shift)
	}
	if big.NewInt(1).Lsh(big.NewInt(1), uint(shift)).Cmp(big.NewInt(4*int64(count))) < 0 {
		return fmt.Errorf("ipv6_prefix_shift %d is too small for %d partitions (2^shift must be at least 4 × partitions)", shift, count)
	}
	return nil
}

func toInt(a netip.Addr) *big.Int {
	b := a.As16()
	return new(big.Int).SetBytes(b[:])
}

func fromInt(v *big.Int) netip.Addr {
	var b [16]byte
	v.FillBytes(b[:])
	return netip.AddrFrom16(b)
}

// PartitionIPv6 is the address of partition i, with the prefix's length.
// Like SlapOS, it wraps around when the prefix is too small.
func PartitionIPv6(prefix netip.Prefix, i int) netip.Prefix {
	host := 128 - prefix.Bits()
	suffix := big.NewInt(int64(i + 2))
	suffix.Mod(suffix, new(big.Int).Lsh(big.NewInt(1), uint(host)))
	a := new(big.Int).Or(toInt(prefix.Masked().Addr()), suffix)
	return netip.PrefixFrom(fromInt(a), prefix.Bits())
}

// rangeOf computes the /L+n range of quarter q for partition i; ones
// fills the host part with ones (taps) instead of zeros.
func rangeOf(prefix netip.Prefix, shift, q, i int, ones bool) netip.Prefix {
	host := 128 - prefix.Bits() - shift
	field := big.NewInt(int64(q))
	field.Lsh(field, uint(shift-2))
	field.Add(field, big.NewInt(int64(i+1)))
	field.Lsh(field, uint(host))
	a := new(big.Int).Or(toInt(prefix.Masked().Addr()), field)
	if ones {
		a.Or(a, new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), uint(host)), big.NewInt(1)))
	}
	return netip.PrefixFrom(fromInt(a), prefix.Bits()+shift)
}

// PartitionIPv6Range is the range routed to partition i (for services
// that need many addresses).
func PartitionIPv6Range(prefix netip.Prefix, shift, i int) netip.Prefix {
	return rangeOf(prefix, shift, 1, i, false)
}

// TapIPv6Range is the range of partition i's tap, written as SlapOS
// writes it (host bits all ones), and its gateway.
func TapIPv6Range(prefix netip.Prefix, shift, i int) (netip.Prefix, netip.Addr) {
	r := rangeOf(prefix, shift, 2, i, true)
	return r, r.Masked().Addr().Next()
}

// PartitionIPv4 is address i of the local network, skipping its network
// address: deterministic, so that a re-run or a lost state file gives the
// same addresses (SlapOS picks them at random and must remember them).
func PartitionIPv4(network netip.Prefix, i int) (netip.Addr, error) {
	size := uint64(1) << (32 - network.Bits())
	if uint64(i)+2 >= size {
		return netip.Addr{}, fmt.Errorf("ipv4_local_network %s has room for %d partitions, not %d", network, size-2, i+1)
	}
	b := network.Masked().Addr().As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v += uint32(i) + 1
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), nil
}

// ULAPrefix derives a private IPv6 /64 (RFC 4193: fd00::/8 + 40-bit global
// id + 16-bit subnet 0) from the node id, for nodes configured with
// neither an interface nor a prefix: stable across runs and different
// between nodes.
func ULAPrefix(nodeID string) netip.Prefix {
	h := sha256.Sum256([]byte("slapnode node " + nodeID))
	var b [16]byte
	b[0] = 0xfd
	copy(b[1:6], h[:5])
	return netip.PrefixFrom(netip.AddrFrom16(b), 64)
}
