package local

import (
	"context"
	"time"

	"github.com/slapnode/slapnode/partition"
)

// BuildRecorder is implemented by the Services that keep the node's
// metrics (the daemon's client): a build a command does in its own process
// is counted by the daemon too.
type BuildRecorder interface {
	RecordBuild(ctx context.Context, url string, d time.Duration, err error) error
}

// installSoftware installs sw as apply asks, and tells the daemon about a
// build that had work to do (not a plan, not a complete release left as
// it is).
func (n *Node) installSoftware(ctx context.Context, sw *partition.Software, o ApplyOptions) error {
	if _, ok := o.Services.(BuildRecorder); o.Plan || !ok {
		return n.Engine.InstallSoftware(ctx, sw, o.Force, o.Plan)
	}
	if complete, _ := n.Engine.Completed(sw.URL); complete && !o.Force && !sw.Recheck {
		return n.Engine.InstallSoftware(ctx, sw, o.Force, o.Plan)
	}
	start := time.Now()
	err := n.Engine.InstallSoftware(ctx, sw, o.Force, o.Plan)
	n.recordBuild(ctx, sw, o, start, err)
	return err
}

// recordBuild tells the daemon's metrics about a build (a recheck
// included) that began at start.
func (n *Node) recordBuild(ctx context.Context, sw *partition.Software, o ApplyOptions, start time.Time, err error) {
	rec, ok := o.Services.(BuildRecorder)
	if o.Plan || !ok {
		return
	}
	// Metrics never fail an apply: a daemon that cannot count is no reason
	// to report a build as failed.
	_ = rec.RecordBuild(context.WithoutCancel(ctx), sw.URL, time.Since(start), err)
}
