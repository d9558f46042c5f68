package promise

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/slapnode/slapnode/internal/atomicfile"
	"github.com/slapnode/slapnode/partition"
)

// Scheduler runs the promises of the node's partitions by their
// periodicity, in anomaly mode, as SlapOS's periodic instance run does, and
// bangs when an anomaly is detected: at most once per partition and
// deployment, a deployment lasting until the partition's promises file
// (SaveSpecs) changes — as SlapOS's watchdog bangs once per deployment
// timestamp.
type Scheduler struct {
	Runner *Runner
	// Partitions lists the partitions whose promises run (the started
	// ones); it is called before every run, so new instances are picked up.
	Partitions func(ctx context.Context) ([]PartitionRef, error)
	// Bang is called for the first failing anomaly of a partition in a
	// deployment, with SlapOS's message "Promise <title> is failing".
	Bang func(partition, promise, message string)
	// OnResults receives the results of every run (e.g. Metrics.Observe).
	OnResults func([]Result)
	// Interval is the longest wait between two runs; default 1 minute.
	// Runs happen sooner when a promise is due sooner.
	Interval time.Duration
	// Logf receives errors of runs; nil discards them.
	Logf func(format string, args ...any)

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// Start runs the scheduler in the background until Stop or ctx ends.
func (s *Scheduler) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cancel != nil {
		return errors.New("promise scheduler already started")
	}
	if s.Runner == nil || s.Partitions == nil {
		return errors.New("promise scheduler: Runner and Partitions are required")
	}
	ctx, s.cancel = context.WithCancel(ctx)
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		for {
			next, err := s.RunOnce(ctx)
			if err != nil && s.Logf != nil && ctx.Err() == nil {
				s.Logf("promises: %v", err)
			}
			t := time.NewTimer(time.Until(next))
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
	}()
	return nil
}

// Stop stops the scheduler and waits for the run in progress, which is
// cancelled.
func (s *Scheduler) Stop() {
	s.mu.Lock()
	cancel, done := s.cancel, s.done
	s.cancel = nil
	s.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// RunOnce runs the promises that are due, bangs where needed, and returns
// when the next run should happen.
func (s *Scheduler) RunOnce(ctx context.Context) (time.Time, error) {
	interval := s.Interval
	if interval <= 0 {
		interval = time.Minute
	}
	now := time.Now()
	next := now.Add(interval)
	parts, err := s.Partitions(ctx)
	if err != nil {
		return next, fmt.Errorf("list partitions: %w", err)
	}
	results, runErr := s.Runner.Run(ctx, parts, RunOptions{Anomaly: true})
	if ctx.Err() != nil {
		return next, ctx.Err()
	}
	if s.OnResults != nil {
		s.OnResults(results)
	}
	var errs []error
	if runErr != nil {
		errs = append(errs, runErr)
	}
	banged := map[string]bool{}
	for _, r := range results {
		if !r.Skipped && r.NextRun.Before(next) {
			next = r.NextRun
		}
		if !r.CanBang || banged[r.Partition] || s.Bang == nil {
			continue
		}
		// Only the first failing anomaly of a partition may bang in a run.
		banged[r.Partition] = true
		if err := s.bangOnce(partitionOf(parts, r.Partition), r); err != nil {
			errs = append(errs, err)
		}
	}
	if min := time.Now().Add(time.Second); next.Before(min) {
		next = min
	}
	return next, errors.Join(errs...)
}

func partitionOf(parts []PartitionRef, id string) partition.Partition {
	for _, p := range parts {
		if p.ID == id {
			return p.Partition
		}
	}
	return partition.Partition{ID: id}
}

// bangState records the deployment a partition last banged in.
type bangState struct {
	Deployment string    `json:"deployment"` // sha256 of the promises file
	Promise    string    `json:"promise"`
	Date       time.Time `json:"date"`
}

// ResetBang forgets that a partition banged, so that its next anomaly bangs
// again even if its promises did not change: for callers that count every
// successful processing of a partition as a new deployment, as SlapOS's
// .timestamp does.
func ResetBang(p partition.Partition) error {
	if err := needState(p); err != nil {
		return err
	}
	if err := os.Remove(bangPath(p)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("reset bang of %s: %w", p.ID, err)
	}
	return nil
}

// bangPath is where the last bang is recorded, in the partition's state
// directory.
func bangPath(p partition.Partition) string {
	return filepath.Join(p.StateDir, "promise-bang.json")
}

// deployment identifies the current deployment of a partition by its
// promises file, which apply rewrites.
func deployment(p partition.Partition) string {
	b, err := os.ReadFile(SpecsPath(p))
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func (s *Scheduler) bangOnce(p partition.Partition, r Result) error {
	if err := needState(p); err != nil {
		return err
	}
	dep := deployment(p)
	var st bangState
	if b, err := os.ReadFile(bangPath(p)); err == nil && json.Unmarshal(b, &st) == nil && st.Deployment == dep {
		return nil
	}
	s.Bang(r.Partition, r.Name, fmt.Sprintf("Promise %s is failing", r.Name))
	if err := os.MkdirAll(p.StateDir, 0o700); err != nil {
		return fmt.Errorf("partition %s: record bang: %w", r.Partition, err)
	}
	if err := atomicfile.WriteJSON(bangPath(p), bangState{Deployment: dep, Promise: r.Name, Date: time.Now().UTC()}, 0o600); err != nil {
		return fmt.Errorf("partition %s: record bang (it may bang again): %w", r.Partition, err)
	}
	return nil
}
