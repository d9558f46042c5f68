package wasmhost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// rssPeak resets the process's peak resident set (VmHWM, through
// /proc/self/clear_refs) and returns a function that reports how far the
// peak rose above the resident set at the reset.
func rssPeak(t *testing.T) func() uint64 {
	t.Helper()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Skipf("cannot reset the peak RSS (/proc/self/clear_refs): %v", err)
	}
	base := procStatus(t, "VmRSS")
	return func() uint64 {
		hwm := procStatus(t, "VmHWM")
		if hwm < base {
			return 0
		}
		return hwm - base
	}
}

// procStatus reads a "kB" field of /proc/self/status, in bytes.
func procStatus(t *testing.T, field string) uint64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	must(t, err)
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			n, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			must(t, err)
			return n << 10
		}
	}
	t.Fatalf("no %s in /proc/self/status", field)
	return 0
}

func newBudgetHost(t *testing.T, budget uint64) *Host {
	t.Helper()
	h, err := New(context.Background(), Config{MemoryBudget: budget})
	must(t, err)
	t.Cleanup(func() { h.Close(context.Background()) })
	return h
}

// fill runs the hostile module's fill recipe: memory grown to the limit,
// every page written, kept by the instance.
func fill(ctx context.Context, s *Session, m *Module, step int) (int, error) {
	out, err := s.Call(ctx, m, "recipe_install", input("fill", map[string]any{"step": step}))
	if err != nil {
		return 0, err
	}
	var r struct {
		Outputs struct {
			Pages int `json:"pages"`
		} `json:"outputs"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		return 0, err
	}
	return r.Outputs.Pages, nil
}

const slack = 32 << 20 // the test's own allocations, the runtime's

// TestGuestMemoryIsTheLimit is issue 18 #7's cause: a guest growing to its
// limit in small steps costs the process its limit, not the several times
// over that copying the memory on each growth left behind.
func TestGuestMemoryIsTheLimit(t *testing.T) {
	h := newBudgetHost(t, 1<<30)
	const limit = 256 << 20
	m := load(t, h, "hostile", "hostile", Grants{MemoryBytes: limit, Timeout: time.Minute})
	s := newSession(t, h, SessionConfig{})
	peak := rssPeak(t)
	pages, err := fill(context.Background(), s, m, 16)
	must(t, err)
	if pages*pageSize < limit-(1<<20) {
		t.Fatalf("the guest reached %d pages, not its limit", pages)
	}
	if p := peak(); p > limit+slack {
		t.Errorf("a guest with a %d MiB limit raised the peak RSS by %d MiB (bound %d MiB)", limit>>20, p>>20, (limit+slack)>>20)
	} else {
		t.Logf("peak RSS rose by %d MiB for a %d MiB guest", p>>20, limit>>20)
	}
	// Closing the instance gives the memory back at once.
	before := procStatus(t, "VmRSS")
	must(t, s.Close(context.Background()))
	if after := procStatus(t, "VmRSS"); before-after < limit/2 {
		t.Errorf("closing the instance freed only %d MiB of RSS", (before-after)>>20)
	}
}

// TestMemoryBudgetHostile: hostile guests growing to their limit in
// several sessions at once keep the process under the node's budget; each
// still gets its full limit, in turn.
func TestMemoryBudgetHostile(t *testing.T) {
	const budget, limit, guests = 128 << 20, 48 << 20, 6
	h := newBudgetHost(t, budget)
	m := load(t, h, "hostile", "hostile", Grants{MemoryBytes: limit, Timeout: time.Minute})
	peak := rssPeak(t)
	var wg sync.WaitGroup
	sessions := make([]*Session, guests)
	for i := range sessions {
		sessions[i] = newSession(t, h, SessionConfig{})
	}
	var mu sync.Mutex
	var errs []error
	for _, s := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pages, err := fill(context.Background(), s, m, 16)
			if err == nil && pages*pageSize < limit-(1<<20) {
				err = fmt.Errorf("reached %d pages only", pages)
			}
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		}()
	}
	wg.Wait() // every session still open: their idle instances had to go
	must(t, errors.Join(errs...))
	p := peak()
	st := h.MemoryStats()
	t.Logf("%d guests of %d MiB, budget %d MiB: peak RSS +%d MiB, budget peak %d MiB, %d idle instances closed",
		guests, limit>>20, budget>>20, p>>20, st.Peak>>20, st.Evicted)
	if p > budget+slack {
		t.Errorf("peak RSS rose by %d MiB, above the %d MiB budget (+%d MiB slack)", p>>20, budget>>20, slack>>20)
	}
	if st.Peak > budget {
		t.Errorf("instances held %d MiB of a %d MiB budget", st.Peak>>20, budget>>20)
	}
	if st.Evicted == 0 {
		t.Error("no idle instance was closed, yet the sessions' instances cannot all fit")
	}
	// The sessions keep their last instances between calls; a new one
	// makes room by closing idle ones.
	evicted := st.Evicted
	late := newSession(t, h, SessionConfig{})
	if _, err := fill(context.Background(), late, m, 64); err != nil {
		t.Fatal(err)
	}
	sessions = append(sessions, late)
	if st := h.MemoryStats(); st.Evicted == evicted || st.Peak > budget {
		t.Errorf("a new session's instance: %+v (%d evicted before)", st, evicted)
	}
	for _, s := range sessions {
		must(t, s.Close(context.Background()))
	}
	if st := h.MemoryStats(); st.Used != 0 {
		t.Errorf("%d bytes still held after every session closed", st.Used)
	}
}

// TestMemoryBudgetWait: an instance in a call is never taken away; a
// call that cannot get memory within its time limit fails, saying why,
// and the budget is whole again afterwards.
func TestMemoryBudgetWait(t *testing.T) {
	h := newBudgetHost(t, 64<<20)
	ctx := context.Background()
	busy := load(t, h, "hostile", "hostile", Grants{MemoryBytes: 48 << 20, Timeout: 3 * time.Second})
	quick := load(t, h, "hostile", "hostile", Grants{MemoryBytes: 48 << 20, Timeout: 300 * time.Millisecond})
	a, b := newSession(t, h, SessionConfig{}), newSession(t, h, SessionConfig{})
	done := make(chan error)
	go func() {
		_, err := a.Call(ctx, busy, "recipe_install", input("loop", nil))
		done <- err
	}()
	for h.MemoryStats().Used == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	_, err := b.Call(ctx, quick, "recipe_install", input("shadow", nil))
	if err == nil || !strings.Contains(err.Error(), "memory budget is exhausted: waited for 48 MiB while other instances held 48 of 64 MiB") {
		t.Errorf("waiting call: %v", err)
	}
	if err := <-done; err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Errorf("looping call: %v", err)
	}
	if _, err := b.Call(ctx, quick, "recipe_install", input("shadow", nil)); err != nil {
		t.Errorf("after the looping instance was discarded: %v", err)
	}
	// A module whose limit alone exceeds the budget is refused at load.
	_, err = h.Load(ctx, "hostile", module(t, "hostile"), Grants{MemoryBytes: 128 << 20})
	if err == nil || !strings.Contains(err.Error(), "memory limit of 128 MiB exceeds the node's WebAssembly memory budget of 64 MiB") {
		t.Errorf("load above the budget: %v", err)
	}
}

func TestMemoryBudgetConfig(t *testing.T) {
	t.Setenv(MemoryBudgetEnv, "96MiB")
	h, err := New(context.Background(), Config{})
	must(t, err)
	h.Close(context.Background())
	if got := h.MemoryStats().Budget; got != 96<<20 {
		t.Errorf("budget %d, want 96 MiB from %s", got, MemoryBudgetEnv)
	}
	t.Setenv(MemoryBudgetEnv, "lots")
	if _, err := New(context.Background(), Config{}); err == nil || !strings.Contains(err.Error(), MemoryBudgetEnv) {
		t.Errorf("bad %s: %v", MemoryBudgetEnv, err)
	}
	t.Setenv(MemoryBudgetEnv, "")
	if got := DefaultMemoryBudget(); got < minDefaultBudget || got > memTotal() && memTotal() > 2*minDefaultBudget {
		t.Errorf("default budget %d (MemTotal %d)", got, memTotal())
	}
}
