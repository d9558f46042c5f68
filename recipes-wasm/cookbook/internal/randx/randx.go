// Package randx draws the cookbook's random values (passwords, random
// integers and times, MAC addresses, temporary file suffixes) from the
// operating system's CSPRNG: under slapnode, WASI random_get, which the
// host serves from crypto/rand.
//
// crypto/rand reads the same random_get, but importing it links the FIPS
// 140 DRBG, AES, SHA-3, HMAC and math/big (about 150 KB of code and data
// in the cookbook, with their package initialisers at every
// instantiation), none of which a read of the host's random bytes needs.
// Natively (the tests) Read is crypto/rand.Read.
package randx

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// IntN returns a uniform random integer in [0, n); n must be positive.
// It rejects the draws above the largest multiple of n, so no value is
// more likely than another (as crypto/rand.Int).
func IntN(n int64) (int64, error) {
	if n <= 0 {
		return 0, errors.New("randx.IntN: n must be positive")
	}
	un := uint64(n)
	// limit is the largest multiple of n a uint64 holds, minus one.
	limit := ^uint64(0) - (^uint64(0)%un+1)%un
	var b [8]byte
	for {
		if err := Read(b[:]); err != nil {
			return 0, fmt.Errorf("reading random bytes: %w", err)
		}
		if v := binary.LittleEndian.Uint64(b[:]); v <= limit {
			return int64(v % un), nil
		}
	}
}
