package wasmhost

import (
	"bufio"
	"container/list"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/dustin/go-humanize"
	"github.com/tetratelabs/wazero/experimental"
	"golang.org/x/sys/unix"
)

// Guest memory (docs/adr/0009-wasm-memory-budget.md).
//
// wazero's default linear memory is a Go slice that memory.grow extends
// with append: each growth past the capacity copies the whole memory into
// a new, larger slice and leaves the old one to the garbage collector,
// which runs only once the heap has doubled. A guest growing to a 1 GiB
// limit in 1 MiB steps left the process at 4 GiB. Here each instance's
// memory is one anonymous mapping reserved at its limit and made
// accessible as it grows: no copy, no garbage, and the pages go back to
// the kernel the moment the instance is closed.
//
// Each live instance also holds, from a node-wide budget, the pages its
// limit allows, from instantiation to close: the sum of the limits of the
// live instances, and so their resident memory, never exceeds the budget.
// An instantiation that does not fit first closes idle reactor instances
// (kept by sessions between calls, and re-created on their next call),
// then waits, within its call's time limit, for running ones to end.

// MemoryBudgetEnv names the environment variable that sets the budget when
// Config.MemoryBudget is zero ("4GiB", "512MiB", a number of bytes).
const MemoryBudgetEnv = "SLAPNODE_WASM_MEMORY"

// minDefaultBudget is the smallest default budget: two instances at the
// default limit.
const minDefaultBudget = 2 * DefaultMemory

// DefaultMemoryBudget is half the machine's memory (MemTotal), at least
// 512 MiB.
func DefaultMemoryBudget() uint64 {
	total := memTotal()
	if total/2 < minDefaultBudget {
		return minDefaultBudget
	}
	return total / 2
}

func memTotal() uint64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}

// memoryBudget resolves Config.MemoryBudget.
func memoryBudget(cfg uint64) (uint64, error) {
	if cfg != 0 {
		return cfg, nil
	}
	if v := os.Getenv(MemoryBudgetEnv); v != "" {
		n, err := humanize.ParseBytes(v)
		if err != nil || n < pageSize {
			return 0, fmt.Errorf("wasmhost: %s=%q is not a memory size such as \"4GiB\"", MemoryBudgetEnv, v)
		}
		return n, nil
	}
	return DefaultMemoryBudget(), nil
}

// budget is the node-wide semaphore on guest memory pages.
type budget struct {
	mu      sync.Mutex
	limit   uint64    // pages
	used    uint64    // pages held by live instances
	waiters list.List // of *budgetWaiter, first come first served
	idle    list.List // of *slot whose instance is between calls, oldest first
	peak    uint64    // most pages ever held, for tests and benchmarks
	evicted uint64    // instances closed between calls to make room
}

type budgetWaiter struct {
	n     uint64
	ready chan struct{}
}

func newBudget(bytes uint64) *budget {
	return &budget{limit: bytes / pageSize}
}

// errBudget marks a wait for the budget that ended with the call's context.
var errBudget = errors.New("the node's WebAssembly memory budget is exhausted")

// acquire takes n pages, closing idle instances and then waiting as needed.
func (b *budget) acquire(ctx context.Context, n uint64) error {
	b.mu.Lock()
	if n > b.limit {
		b.mu.Unlock()
		return fmt.Errorf("%w: this instance needs %d MiB, more than the whole budget of %d MiB (raise %s)", errBudget, n*pageSize>>20, b.limit*pageSize>>20, MemoryBudgetEnv)
	}
	for {
		if b.waiters.Len() == 0 && b.used+n <= b.limit {
			b.take(n)
			b.mu.Unlock()
			return nil
		}
		victims := b.evictLocked(n)
		if len(victims) == 0 {
			break
		}
		b.mu.Unlock()
		for _, v := range victims {
			v.close(context.Background())
		}
		b.mu.Lock()
	}
	w := &budgetWaiter{n: n, ready: make(chan struct{})}
	e := b.waiters.PushBack(w)
	used := b.used
	b.mu.Unlock()
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
		b.mu.Lock()
		select {
		case <-w.ready:
			// Granted meanwhile: give it back.
			b.mu.Unlock()
			b.release(n)
		default:
			b.waiters.Remove(e)
			b.grantLocked() // a large waiter leaving may unblock smaller ones
			b.mu.Unlock()
		}
		return fmt.Errorf("%w: waited for %d MiB while other instances held %d of %d MiB (%v); raise %s or lower memory in module blocks",
			errBudget, n*pageSize>>20, used*pageSize>>20, b.limit*pageSize>>20, context.Cause(ctx), MemoryBudgetEnv)
	}
}

func (b *budget) take(n uint64) {
	b.used += n
	if b.used > b.peak {
		b.peak = b.used
	}
}

// release gives n pages back and wakes the waiters that now fit.
func (b *budget) release(n uint64) {
	b.mu.Lock()
	b.used -= n
	b.grantLocked()
	b.mu.Unlock()
}

func (b *budget) grantLocked() {
	for e := b.waiters.Front(); e != nil; e = b.waiters.Front() {
		w := e.Value.(*budgetWaiter)
		if b.used+w.n > b.limit {
			return
		}
		b.take(w.n)
		b.waiters.Remove(e)
		close(w.ready)
	}
}

// evictLocked detaches idle instances, oldest first, until n more pages
// would fit; the caller closes them (which releases their pages) without
// holding b.mu. A slot whose lock is taken is in a call (or closing), not
// idle: TryLock never waits, so the lock order slot → budget of Call is
// safe.
func (b *budget) evictLocked(n uint64) []*instance {
	var victims []*instance
	freed := uint64(0)
	for e := b.idle.Front(); e != nil && b.used-freed+n > b.limit; {
		next := e.Next()
		sl := e.Value.(*slot)
		if sl.mu.TryLock() {
			b.idle.Remove(e)
			sl.idle = nil
			if inst := sl.inst; inst != nil {
				sl.inst = nil
				victims = append(victims, inst)
				freed += inst.pages
				b.evicted++
			}
			sl.mu.Unlock()
		}
		e = next
	}
	return victims
}

// markIdle records that sl's instance is between calls (sl.mu held). It
// returns false when an instantiation is waiting for memory: the caller
// then closes the instance at once instead of keeping it.
func (b *budget) markIdle(sl *slot) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.waiters.Len() > 0 {
		b.evicted++
		return false
	}
	if sl.idle == nil {
		sl.idle = b.idle.PushBack(sl)
	}
	return true
}

// markBusy takes sl out of the idle list (sl.mu held).
func (b *budget) markBusy(sl *slot) {
	b.mu.Lock()
	if sl.idle != nil {
		b.idle.Remove(sl.idle)
		sl.idle = nil
	}
	b.mu.Unlock()
}

// MemoryStats reports the budget: its size, the bytes held by live
// instances, the most ever held, and how many idle instances were closed
// to make room.
type MemoryStats struct {
	Budget, Used, Peak uint64
	Evicted            uint64
}

// MemoryStats returns the state of the guest memory budget.
func (h *Host) MemoryStats() MemoryStats {
	b := h.mem
	b.mu.Lock()
	defer b.mu.Unlock()
	return MemoryStats{Budget: b.limit * pageSize, Used: b.used * pageSize, Peak: b.peak * pageSize, Evicted: b.evicted}
}

// mappedMemory is a linear memory in its own anonymous mapping: reserved
// (PROT_NONE, no commit charge) at the memory's maximum, made readable
// and writable as it grows. Its address never changes.
type mappedMemory struct {
	m    []byte // the whole reservation
	size uint64 // accessible bytes
}

// allocator is the experimental.MemoryAllocator given to every
// instantiation.
var allocator = experimental.MemoryAllocatorFunc(func(capacity, max uint64) experimental.LinearMemory {
	if max == 0 {
		return &heapMemory{}
	}
	m, err := unix.Mmap(-1, 0, int(max), unix.PROT_NONE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		// No address space for the reservation (RLIMIT_AS): a Go slice,
		// which copies on growth but works.
		return &heapMemory{buf: make([]byte, 0, capacity)}
	}
	return &mappedMemory{m: m}
})

func (mm *mappedMemory) Reallocate(size uint64) []byte {
	if size > uint64(len(mm.m)) {
		return nil
	}
	if size > mm.size {
		if err := unix.Mprotect(mm.m[mm.size:size], unix.PROT_READ|unix.PROT_WRITE); err != nil {
			return nil // memory.grow fails: the guest sees -1
		}
		mm.size = size
	}
	return mm.m[:size:size]
}

func (mm *mappedMemory) Free() {
	if mm.m != nil {
		unix.Munmap(mm.m)
		mm.m, mm.size = nil, 0
	}
}

// heapMemory is wazero's own strategy, for the rare cases above.
type heapMemory struct{ buf []byte }

func (hm *heapMemory) Reallocate(size uint64) []byte {
	if size <= uint64(cap(hm.buf)) {
		hm.buf = hm.buf[:size]
	} else {
		nb := make([]byte, size)
		copy(nb, hm.buf)
		hm.buf = nb
	}
	return hm.buf
}

func (hm *heapMemory) Free() { hm.buf = nil }
