// Package service holds what a partition declares about its processes —
// the specification of a service or scheduled job, the identity it runs
// as — and what is reported back about them. The engine (package
// partition) produces specs, promises read statuses, and the node's
// supervisor runs them; the types live here, below all three, so that no
// layer imports the one above it.
package service

import "time"

// Credential is the identity a service runs as.
type Credential struct {
	Uid, Gid uint32
	Groups   []uint32 `json:",omitempty"`
}

// Spec is what an instance declares for one service or scheduled job.
// Its hash decides whether the supervisor restarts it, so every field that
// changes how the process runs belongs here.
type Spec struct {
	Partition, Name string
	Command         []string
	Env             map[string]string `json:",omitempty"`
	Dir             string            // working directory: the partition directory
	Watch           bool              // true: a service, restarted when it exits; false: run once
	StopGrace       time.Duration     `json:",omitempty"` // SIGTERM→SIGKILL delay; 0 = 60s like SlapOS
	Credential      *Credential       `json:",omitempty"` // nil = the supervisor's own user
	// Cgroup is a cgroup directory of the partition (a cgroup v2 directory, or
	// one v1 controller directory). The supervisor makes one child directory
	// per service in it and starts the service there, so that stopping one
	// service kills exactly its processes while the partition's limits,
	// set on the parent by the node layer, still apply. "" = no cgroup.
	Cgroup string `json:",omitempty"`
	// ExtraCgroups are further directories to join the same way: the other
	// controller hierarchies on a cgroup v1 node (cpu, memory, pids…).
	ExtraCgroups []string `json:",omitempty"`
	// NetNS, when set, is the network namespace (a name under /run/netns,
	// or a path) the service runs in: the partition's, on a node formatted
	// with network.namespace. The service is started through the exec shim
	// (internal/nsexec), which enters it and then drops to the service's
	// credential.
	NetNS  string `json:",omitempty"`
	LogDir string `json:",omitempty"` // default <Dir>/var/log; the log is LogDir/<Name>.log
	// LogFile overrides the log path (SlapOS's <partition>/.<partition>_<service>.log).
	LogFile string `json:",omitempty"`
	// Schedule, when set, is a cron expression: the command runs on that
	// schedule instead of as a service, never two runs at once.
	Schedule string `json:",omitempty"`
	// Digest is the sha256 of the program's content when the engine knows
	// it (an executable a recipe wrote in etc/service or etc/run): a
	// rewritten wrapper restarts its service although its path is the same.
	Digest string `json:",omitempty"`
}

// Service states, as supervisord names them, plus SCHEDULED for a job
// waiting for its next run.
const (
	StateStarting  = "STARTING"
	StateRunning   = "RUNNING"
	StateBackoff   = "BACKOFF"
	StateExited    = "EXITED" // a run-once program that finished
	StateFatal     = "FATAL"  // a watched service that kept failing
	StateStopped   = "STOPPED"
	StateScheduled = "SCHEDULED"
)

// Status is what the supervisor reports of one service.
type Status struct {
	Partition, Name string
	State           string
	Pid             int       `json:",omitempty"`
	Since           time.Time // when State was entered
	Restarts        int       // restarts after failures (watched services) or runs (jobs)
	LastExit        string    `json:",omitempty"`
	Watch           bool
	Schedule        string    `json:",omitempty"`
	Next            time.Time `json:",omitempty"` // next run (job) or restart (BACKOFF)
	Requested       string    // requested state of the partition
	Log             string    // path of the service's log
}

// Up reports whether the service is doing what it should: running, or a
// scheduled job waiting for its next run.
func (s Status) Up() bool {
	return s.State == StateRunning || (s.Schedule != "" && s.State == StateScheduled)
}
