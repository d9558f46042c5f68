package daemon

import (
	"context"
	"time"

	"github.com/slapnode/slapnode/node/supervisor"
)

// Starting is a daemon made ready in the background (Start) while the
// command goes on with work that does not need it yet — a first apply
// installs its software meanwhile, so the daemon's start (a new process,
// its state read, its socket up: tens of milliseconds) is no longer paid
// before the first part is installed. Every method waits for the daemon
// first and fails with the error that kept it from starting; Wait says
// whether it started, and a command that used none of the methods must
// call it before it reports success.
type Starting struct {
	done chan struct{}
	c    *Client
	err  error
}

// Start makes the daemon of root ready as Ensure does (exe is the slapnode
// executable), in the background.
func Start(root, exe string) *Starting {
	s := &Starting{done: make(chan struct{})}
	go func() {
		defer close(s.done)
		s.c, s.err = Ensure(root, exe)
	}()
	return s
}

// Wait waits until the daemon answers, or until starting it failed.
func (s *Starting) Wait() (*Client, error) {
	<-s.done
	return s.c, s.err
}

// Ready reports whether the daemon's start has ended (well or not) without
// waiting.
func (s *Starting) Ready() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// Close waits for the start and closes the client's idle connections.
func (s *Starting) Close() {
	if c, err := s.Wait(); err == nil {
		c.Close()
	}
}

// Apply is Client.Apply once the daemon is ready.
func (s *Starting) Apply(ctx context.Context, partition string, specs []supervisor.ServiceSpec) (supervisor.Changes, error) {
	c, err := s.Wait()
	if err != nil {
		return supervisor.Changes{}, err
	}
	return c.Apply(ctx, partition, specs)
}

// ApplyState is Client.ApplyState once the daemon is ready.
func (s *Starting) ApplyState(ctx context.Context, partition string, specs []supervisor.ServiceSpec, requested string) (supervisor.Changes, error) {
	c, err := s.Wait()
	if err != nil {
		return supervisor.Changes{}, err
	}
	return c.ApplyState(ctx, partition, specs, requested)
}

// Status is Client.Status once the daemon is ready.
func (s *Starting) Status(ctx context.Context) ([]supervisor.ServiceStatus, error) {
	c, err := s.Wait()
	if err != nil {
		return nil, err
	}
	return c.Status(ctx)
}

// StopPartition is Client.StopPartition once the daemon is ready.
func (s *Starting) StopPartition(ctx context.Context, partition string) error {
	c, err := s.Wait()
	if err != nil {
		return err
	}
	return c.StopPartition(ctx, partition)
}

// Remove is Client.Remove once the daemon is ready.
func (s *Starting) Remove(ctx context.Context, partition string) error {
	c, err := s.Wait()
	if err != nil {
		return err
	}
	return c.Remove(ctx, partition)
}

// RecordBuild is Client.RecordBuild once the daemon is ready.
func (s *Starting) RecordBuild(ctx context.Context, url string, d time.Duration, buildErr error) error {
	c, err := s.Wait()
	if err != nil {
		return err
	}
	return c.RecordBuild(ctx, url, d, buildErr)
}
