//go:build !wasip1

package randx

import "crypto/rand"

// Read fills b with random bytes from crypto/rand.
func Read(b []byte) error {
	_, err := rand.Read(b)
	return err
}
