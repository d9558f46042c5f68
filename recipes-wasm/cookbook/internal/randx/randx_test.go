package randx

import (
	"bytes"
	"testing"
)

func TestRead(t *testing.T) {
	a, b := make([]byte, 32), make([]byte, 32)
	if err := Read(a); err != nil {
		t.Fatal(err)
	}
	if err := Read(b); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a, make([]byte, 32)) || bytes.Equal(a, b) {
		t.Fatalf("two reads of 32 random bytes: %x and %x", a, b)
	}
}

func TestIntN(t *testing.T) {
	if _, err := IntN(0); err == nil {
		t.Fatal("IntN(0): no error")
	}
	if v, err := IntN(1); err != nil || v != 0 {
		t.Fatalf("IntN(1) = %d, %v", v, err)
	}
	// Every value of a small range comes out, none outside it, and no
	// value is far from its expected count (6000 draws of 6: 1000 each;
	// 700 is more than 10 standard deviations away).
	counts := make([]int, 6)
	for range 6000 {
		v, err := IntN(6)
		if err != nil {
			t.Fatal(err)
		}
		if v < 0 || v >= 6 {
			t.Fatalf("IntN(6) = %d", v)
		}
		counts[v]++
	}
	for v, c := range counts {
		if c < 700 || c > 1300 {
			t.Fatalf("IntN(6) gave %d %d times in 6000 draws: %v", v, c, counts)
		}
	}
	// The largest range.
	for range 100 {
		if v, err := IntN(1<<63 - 1); err != nil || v < 0 {
			t.Fatalf("IntN(MaxInt64) = %d, %v", v, err)
		}
	}
}
