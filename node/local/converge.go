package local

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/slapnode/slapnode/internal/atomicfile"
	"github.com/slapnode/slapnode/internal/nofollow"
	"github.com/slapnode/slapnode/node/slap"
	"github.com/slapnode/slapnode/partition"
)

// ErrOffline wraps errors reaching the master: the node keeps its services
// running and retries (SlapOS's offline mode; exit 3 for a one-shot run).
var ErrOffline = errors.New("master unreachable")

// ConvergeOptions connect the node to a master.
type ConvergeOptions struct {
	Master      *slap.Client
	ComputerID  string
	Partitions  int // partitions registered with the master
	Services    Services
	PromiseWait time.Duration
	// UsageEvery is how often the partitions' consumption is reported to
	// the master (useComputer); 0 reports on every pass.
	UsageEvery time.Duration
	// CertificateRepository, when set (slapos.cfg's
	// certificate_repository_path), receives each processed partition's
	// certificate and key from the master, as SlapOS writes them (certs.go).
	CertificateRepository string
	// Observer, when set, is told about passes, builds and the master's
	// reachability (the daemon's metrics).
	Observer ConvergeObserver
}

// ConvergeObserver is told what the converge loop does (node/daemon's
// Metrics is one).
type ConvergeObserver interface {
	// ObservePass: a pass ended with result PassOK, PassFailed or
	// PassOffline after d, with failures partitions or releases failed.
	ObservePass(result string, d time.Duration, failures int)
	// ObserveBuild: a software release build (an install that had work
	// to do) ended after d.
	ObserveBuild(d time.Duration, err error)
	// MasterReachable: the master answered, or did not, outside a pass.
	MasterReachable(up bool)
}

// Results of a converge pass, for ConvergeObserver.ObservePass.
const (
	PassOK      = "ok"      // every partition and release done
	PassFailed  = "failed"  // some failed (and were reported to the master)
	PassOffline = "offline" // the master did not answer
)

// ConvergeReport says what one pass did.
type ConvergeReport struct {
	Software  map[string]string // release URL -> available, destroyed, error: …
	Processed []string          // partitions applied
	Skipped   []string          // partitions up to date (same timestamp and state)
	Destroyed []string
	Errors    map[string]string // partition -> error reported to the master
}

// convergeMemo is what a node remembers between passes against a master,
// in ROOT/state/converge.json (out of the partitions' reach): what it last
// registered there, and when it last reported usage — so that a
// `slapnode node converge` run every minute re-sends neither each time.
type convergeMemo struct {
	Master   string `json:"master"`
	Computer string `json:"computer"`
	// Registration is the SHA-256 of the configuration last registered,
	// at Registered.
	Registration string    `json:"registration,omitempty"`
	Registered   time.Time `json:"registered,omitzero"`
	// UsageReported is when usage was last sent.
	UsageReported time.Time `json:"usage_reported,omitzero"`
}

// reregisterEvery is how long an unchanged registration is trusted: as
// SlapOS's cron runs slapformat every hour, the node registers again at
// least that often, in case the master's view of it changed.
const reregisterEvery = time.Hour

func (n *Node) memoPath() string { return filepath.Join(n.Root, "state", "converge.json") }

// memo reads the memo of the master o names; a missing or damaged one, or
// one about another master or computer, is empty.
func (n *Node) memo(o ConvergeOptions) convergeMemo {
	fresh := convergeMemo{Master: o.Master.URL(), Computer: o.ComputerID}
	b, err := os.ReadFile(n.memoPath())
	if err != nil {
		return fresh
	}
	var m convergeMemo
	if json.Unmarshal(b, &m) != nil || m.Master != fresh.Master || m.Computer != fresh.Computer {
		return fresh
	}
	return m
}

func (n *Node) saveMemo(m convergeMemo) error {
	if err := os.MkdirAll(filepath.Dir(n.memoPath()), 0o700); err != nil {
		return err
	}
	return atomicfile.WriteJSON(n.memoPath(), m, 0o600)
}

// Register posts the node's partitions to the master, as `slapos node
// format` does — unless it registered exactly these with this master less
// than an hour ago.
func (n *Node) Register(ctx context.Context, o ConvergeOptions) error {
	cfg := &slap.ComputerConfiguration{
		Reference: o.ComputerID, Address: "127.0.0.1", Netmask: "255.0.0.0",
		InstanceRoot: filepath.Join(n.Root, "instance"), SoftwareRoot: n.SoftwareRoot(),
	}
	if u, err := user.Current(); err == nil {
		cfg.SoftwareUser = u.Username
	}
	for i := 0; i < max(o.Partitions, 1); i++ {
		p, err := n.Partition(fmt.Sprintf("slappart%d", i))
		if err != nil {
			return err
		}
		cfg.Partitions = append(cfg.Partitions, slap.PartitionConfiguration{
			Reference: p.ID, Path: p.Path, UserName: p.User,
			Addresses: []slap.Address{{Addr: p.IPv4, Netmask: "255.255.255.255"}},
		})
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(b)
	digest := hex.EncodeToString(sum[:])
	memo := n.memo(o)
	if memo.Registration == digest && time.Since(memo.Registered) < reregisterEvery {
		return nil
	}
	if err := o.Master.LoadComputerConfiguration(ctx, cfg); err != nil {
		return offline(err)
	}
	memo.Registration, memo.Registered = digest, time.Now()
	return n.saveMemo(memo)
}

// forgetRegistration makes the next Register send the configuration.
func (n *Node) forgetRegistration(o ConvergeOptions) error {
	memo := n.memo(o)
	if memo.Registration == "" {
		return nil
	}
	memo.Registration = ""
	return n.saveMemo(memo)
}

// offline marks transport errors (no answer at all) as ErrOffline; an HTTP
// error answer means the master is there.
func offline(err error) error {
	if errors.Is(err, slap.ErrAuth) {
		// A refused credential or certificate: the master is there.
		return err
	}
	var he *slap.HTTPError
	var ne net.Error
	var oe *net.OpError
	if err != nil && !errors.As(err, &he) && (errors.As(err, &ne) || errors.As(err, &oe) || strings.Contains(err.Error(), "connection refused")) {
		return fmt.Errorf("%w: %v", ErrOffline, err)
	}
	return err
}

// partitionState is what a partition's last successful processing was, in
// converged.json of its state directory (partition.StateDir, out of its
// user's reach); the .timestamp file SlapOS writes is kept in the
// partition for compatibility.
type partitionState struct {
	Timestamp string `json:"timestamp"`
	State     string `json:"state"`
	Software  string `json:"software"`
	Type      string `json:"software_type"`
	// Title is the instance's name on the master, so that `slapnode
	// output NAME` finds it; not part of what makes a partition up to date.
	Title string `json:"title,omitempty"`
}

// ConvergeOnce fetches what the master wants of this node and does it:
// software releases installed or removed, partitions applied in their
// requested state (or skipped when their timestamp and state did not change
// since the last success), connection parameters published, and every
// outcome reported.
func (n *Node) ConvergeOnce(ctx context.Context, o ConvergeOptions) (*ConvergeReport, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	m := o.Master
	comp, err := m.FullComputerInformation(ctx, o.ComputerID)
	if errors.Is(err, slap.ErrNotFound) {
		// The master does not know this computer (its database was
		// replaced, say): register again, whatever the node remembers.
		if err = n.forgetRegistration(o); err == nil {
			if err = n.Register(ctx, o); err == nil {
				comp, err = m.FullComputerInformation(ctx, o.ComputerID)
			}
		}
	}
	if err != nil {
		return nil, offline(fmt.Errorf("get the computer information of %s: %w", o.ComputerID, err))
	}
	rep := &ConvergeReport{Software: map[string]string{}, Errors: map[string]string{}}
	softwares := map[string]*partition.Software{}
	for _, sr := range comp.SoftwareReleases {
		switch sr.RequestedState {
		case slap.StateDestroyed:
			if err := os.RemoveAll(n.Engine.SoftwareDir(sr.URL)); err != nil {
				rep.Software[sr.URL] = "error: " + err.Error()
				m.SoftwareReleaseError(ctx, sr.URL, o.ComputerID, err.Error())
				continue
			}
			rep.Software[sr.URL] = slap.StateDestroyed
			if err := m.DestroyedSoftwareRelease(ctx, sr.URL, o.ComputerID); err != nil {
				return rep, offline(err)
			}
		default:
			sw, err := n.installRelease(ctx, o, sr.URL)
			if err != nil {
				rep.Software[sr.URL] = "error: " + err.Error()
				if rerr := m.SoftwareReleaseError(ctx, sr.URL, o.ComputerID, err.Error()); rerr != nil {
					return rep, offline(rerr)
				}
				continue
			}
			if sw != nil {
				softwares[sr.URL] = sw
			}
			rep.Software[sr.URL] = slap.StateAvailable
		}
	}
	for _, p := range comp.Partitions {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		if p.SoftwareRelease == nil || p.SoftwareRelease.URL == "" {
			continue // a free partition
		}
		if err := n.convergePartition(ctx, o, p, softwares, rep); err != nil {
			return rep, err
		}
	}
	if n.lastUsage.IsZero() {
		// A node converging once a minute from cron is a new process
		// each time: the last report is remembered in the node root.
		n.lastUsage = n.memo(o).UsageReported
	}
	if now := time.Now(); n.lastUsage.IsZero() || now.Sub(n.lastUsage) >= o.UsageEvery {
		if err := n.ReportUsage(ctx, o.Master, o.ComputerID); err != nil {
			return rep, err
		}
		memo := n.memo(o)
		memo.UsageReported = n.lastUsage
		if err := n.saveMemo(memo); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// ReportUsage sends the partitions' consumption to the master.
func (n *Node) ReportUsage(ctx context.Context, m *slap.Client, computerID string) error {
	usage, err := n.Usage()
	if err != nil || len(usage) == 0 {
		return err
	}
	now := time.Now()
	from := n.lastUsage
	if from.IsZero() {
		from = now
	}
	doc, err := UsageXML(computerID, usage, from, now)
	if err != nil {
		return err
	}
	if err := m.UseComputer(ctx, computerID, string(doc)); err != nil {
		return offline(err)
	}
	n.lastUsage = now
	return nil
}

// installRelease installs a supplied release, reporting building and then
// available; a complete release is only reported available.
func (n *Node) installRelease(ctx context.Context, o ConvergeOptions, url string) (*partition.Software, error) {
	m, computerID := o.Master, o.ComputerID
	if complete, _ := n.Engine.Completed(url); complete {
		// Installed and unchanged: confirmed without parsing it again;
		// the partitions that use it load it when they need it.
		if err := m.AvailableSoftwareRelease(ctx, url, computerID); err != nil {
			return nil, offline(err)
		}
		return nil, nil
	}
	sw, err := n.Engine.LoadSoftware(url)
	if err != nil {
		return nil, err
	}
	if err := m.BuildingSoftwareRelease(ctx, url, computerID); err != nil {
		return nil, offline(err)
	}
	start := time.Now()
	err = n.Engine.InstallSoftware(ctx, sw, false, false)
	if o.Observer != nil {
		o.Observer.ObserveBuild(time.Since(start), err)
	}
	if err != nil {
		return nil, err
	}
	if err := m.AvailableSoftwareRelease(ctx, url, computerID); err != nil {
		return nil, offline(err)
	}
	return sw, nil
}

func (n *Node) convergePartition(ctx context.Context, o ConvergeOptions, p *slap.ComputerPartition, softwares map[string]*partition.Software, rep *ConvergeReport) error {
	m, pid := o.Master, p.PartitionID
	part, err := n.Partition(pid)
	if err != nil {
		return err
	}
	statePath := filepath.Join(part.StateDir, "converged.json")
	if p.RequestedState == slap.StateDestroyed {
		if err := n.destroyPartition(ctx, pid, o.Services); err != nil {
			rep.Errors[pid] = err.Error()
			return offline(m.InstanceError(ctx, o.ComputerID, pid, err.Error(), ""))
		}
		if o.CertificateRepository != "" {
			if err := RemovePartitionCertificate(o.CertificateRepository, pid); err != nil {
				rep.Errors[pid] = err.Error()
				return offline(m.InstanceError(ctx, o.ComputerID, pid, err.Error(), ""))
			}
		}
		rep.Destroyed = append(rep.Destroyed, pid)
		if _, err := m.Destroyed(ctx, o.ComputerID, pid); err != nil {
			return offline(err)
		}
		return nil
	}
	params, strs, stype, ts := partitionRequest(p)
	want := partitionState{Timestamp: ts, State: p.RequestedState, Software: p.SoftwareRelease.URL, Type: stype}
	var last partitionState
	if b, err := os.ReadFile(statePath); err == nil && json.Unmarshal(b, &last) == nil && ts != "" && upToDate(last, want) {
		rep.Skipped = append(rep.Skipped, pid)
		return nil
	}
	fail := func(err error) error {
		rep.Errors[pid] = err.Error()
		return offline(m.InstanceError(ctx, o.ComputerID, pid, err.Error(), ""))
	}
	if o.CertificateRepository != "" {
		// As slapgrid's _updateCertificate, before the instance is built.
		cert, key, err := m.Certificate(ctx, o.ComputerID, pid)
		if err != nil {
			if oe := offline(err); errors.Is(oe, ErrOffline) {
				return oe
			}
			return fail(fmt.Errorf("the certificate of %s: %w", pid, err))
		}
		if _, err := WritePartitionCertificate(o.CertificateRepository, pid, part.Credential, cert, key); err != nil {
			return fail(err)
		}
	}
	sw := softwares[p.SoftwareRelease.URL]
	if sw == nil {
		// Not supplied to this node (or failed): install it now.
		if sw, err = n.installRelease(ctx, o, p.SoftwareRelease.URL); err != nil {
			return fail(fmt.Errorf("software %s: %w", p.SoftwareRelease.URL, err))
		}
		if sw == nil { // complete: installRelease did not need to parse it
			if sw, err = n.Engine.LoadSoftware(p.SoftwareRelease.URL); err != nil {
				return fail(fmt.Errorf("software %s: %w", p.SoftwareRelease.URL, err))
			}
		}
		softwares[p.SoftwareRelease.URL] = sw
	}
	it, err := sw.InstanceType(stype)
	if err != nil {
		return fail(err)
	}
	var shared []partition.SharedInstance
	for _, s := range p.SharedInstances() {
		shared = append(shared, partition.SharedInstance{Reference: s.Reference, Title: s.Title, SoftwareType: s.SoftwareType, Parameters: s.Parameters})
	}
	state := StateStarted
	if p.RequestedState == slap.StateStopped {
		state = StateStopped
	}
	ao := ApplyOptions{Params: params, Strings: strs, State: state, PromiseWait: o.PromiseWait, Services: o.Services,
		Requester: &masterRequester{m: m, computer: o.ComputerID, partition: pid}, MasterURL: m.URL()}
	if o.CertificateRepository != "" {
		// slap-connection's key-file and cert-file: the certificate
		// written above, where slapgrid points them.
		ao.KeyFile = filepath.Join(o.CertificateRepository, pid+".key")
		ao.CertFile = filepath.Join(o.CertificateRepository, pid+".crt")
	}
	res, err := n.deploy(ctx, sw, it, pid, ao, shared)
	if res != nil && res.Instance != nil {
		if perr := m.SetConnectionParameters(ctx, o.ComputerID, pid, "", res.Instance.Connection); perr != nil {
			return offline(perr)
		}
		for ref, conn := range res.Instance.SharedConnections {
			if perr := m.SetConnectionParameters(ctx, o.ComputerID, pid, ref, conn); perr != nil {
				return offline(perr)
			}
		}
	}
	if err != nil {
		return fail(err)
	}
	if state == StateStopped {
		err = m.Stopped(ctx, o.ComputerID, pid)
	} else {
		err = m.Started(ctx, o.ComputerID, pid)
	}
	if err != nil {
		return offline(err)
	}
	rep.Processed = append(rep.Processed, pid)
	// Written only after full success, so a failed partition is processed
	// again on the next pass.
	want.Title = p.InstanceTitle()
	if err := atomicfile.WriteJSON(statePath, want, 0o640); err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(part.Path, ".timestamp"), []byte(ts), 0o640)
}

// upToDate reports whether a partition's last success did what want asks:
// its title is left out, an instance renamed on the master needs no work.
func upToDate(last, want partitionState) bool {
	last.Title, want.Title = "", ""
	return last == want
}

// partitionRequest extracts what the requester asked: parameters (decoded
// from the json-in-xml "_" form when used; otherwise strings to coerce), the
// software type and the timestamp.
func partitionRequest(p *slap.ComputerPartition) (params map[string]any, strs bool, stype, timestamp string) {
	params = p.InstanceParameters()
	stype, _ = p.ParameterDict["slap_software_type"].(string)
	timestamp, _ = p.ParameterDict["timestamp"].(string)
	if raw, ok := params["_"].(string); ok && len(params) == 1 {
		var decoded map[string]any
		if json.Unmarshal([]byte(raw), &decoded) == nil {
			return decoded, false, stype, timestamp
		}
	}
	for _, v := range params {
		if _, ok := v.(string); ok {
			strs = true
		}
	}
	return params, strs, stype, timestamp
}

// Converge runs ConvergeOnce every interval until ctx ends. The node
// registers its partitions first; while the master is unreachable the
// services keep running and the node retries with a growing delay. What
// each pass did goes to logger (nil: nowhere) and o.Observer.
func (n *Node) Converge(ctx context.Context, o ConvergeOptions, interval time.Duration, logger *slog.Logger) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("master", o.Master.URL())
	backoff := time.Second
	wait := func(d time.Duration) bool {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(d):
			return true
		}
	}
	for {
		err := n.Register(ctx, o)
		if o.Observer != nil && ctx.Err() == nil {
			o.Observer.MasterReachable(!errors.Is(err, ErrOffline))
		}
		if err == nil {
			logger.Info("registered with the master", "node", o.ComputerID, "partitions", max(o.Partitions, 1))
			break
		}
		logger.Warn("cannot register with the master", "err", err, "retry_in", backoff.String())
		if !wait(backoff) {
			return ctx.Err()
		}
		backoff = min(backoff*2, 5*time.Minute)
	}
	backoff = time.Second
	for {
		start := time.Now()
		rep, err := n.ConvergeOnce(ctx, o)
		took := time.Since(start)
		next := interval
		result, failures := PassOK, 0
		if rep != nil {
			failures = len(rep.Errors)
			for url, st := range rep.Software {
				if msg, ok := strings.CutPrefix(st, "error: "); ok {
					failures++
					logger.Error("software release failed", "url", url, "err", msg)
				}
			}
			for _, pid := range slices.Sorted(maps.Keys(rep.Errors)) {
				logger.Error("partition failed", "partition", pid, "err", rep.Errors[pid])
			}
		}
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, ErrOffline):
			result = PassOffline
			logger.Warn("master unreachable; services keep running", "err", err, "retry_in", backoff.String())
			next, backoff = backoff, min(backoff*2, 5*time.Minute)
		case err != nil:
			result = PassFailed
			logger.Error("converge pass failed", "err", err, "took", took.Round(time.Millisecond).String())
		default:
			backoff = time.Second
			if failures > 0 {
				result = PassFailed
			}
			attrs := []any{"processed", len(rep.Processed), "up_to_date", len(rep.Skipped), "destroyed", len(rep.Destroyed),
				"failed", failures, "took", took.Round(time.Millisecond).String()}
			if len(rep.Processed) > 0 {
				attrs = append(attrs, "processed_partitions", strings.Join(rep.Processed, ","))
			}
			if len(rep.Destroyed) > 0 {
				attrs = append(attrs, "destroyed_partitions", strings.Join(rep.Destroyed, ","))
			}
			level := slog.LevelDebug // a pass that changed nothing, every interval
			switch {
			case failures > 0:
				level = slog.LevelWarn
			case len(rep.Processed)+len(rep.Destroyed) > 0:
				level = slog.LevelInfo
			}
			logger.Log(ctx, level, "converge pass", attrs...)
		}
		if o.Observer != nil {
			o.Observer.ObservePass(result, took, failures)
		}
		if !wait(next) {
			return ctx.Err()
		}
	}
}

// Banger reports a partition's failures to the master at most once per
// deployment (until the partition is processed again), as SlapOS's watchdog
// does.
type Banger struct {
	Master     *slap.Client
	ComputerID string
	mu         sync.Mutex
	done       map[string]string // partition -> timestamp banged for
	root       string
}

// NewBanger returns a Banger for the node at root.
func NewBanger(root string, m *slap.Client, computerID string) *Banger {
	return &Banger{Master: m, ComputerID: computerID, done: map[string]string{}, root: root}
}

// Bang asks the master to reprocess partition, once per deployment.
func (b *Banger) Bang(ctx context.Context, partitionID, message string) error {
	// The partition's user could make .timestamp a FIFO or a link: read
	// it without following nor blocking.
	var ts []byte
	if d, err := nofollow.Open(filepath.Join(b.root, "instance")); err == nil {
		ts, _ = d.ReadFile(filepath.Join(partitionID, ".timestamp"), 4096)
		d.Close()
	}
	b.mu.Lock()
	if last, ok := b.done[partitionID]; ok && last == string(ts) {
		b.mu.Unlock()
		return nil
	}
	b.done[partitionID] = string(ts)
	b.mu.Unlock()
	return b.Master.Bang(ctx, b.ComputerID, partitionID, message)
}

// masterRequester sends an instance's child requests to the master, as the
// requesting partition (SlapOS's ComputerPartition.request).
type masterRequester struct {
	m                   *slap.Client
	computer, partition string
}

func (mr *masterRequester) Request(ctx context.Context, _ string, cr partition.ChildRequest) (map[string]any, error) {
	params := map[string]any{}
	if len(cr.Parameters) > 0 {
		// json-in-xml: typed values survive the trip.
		b, err := json.Marshal(cr.Parameters)
		if err != nil {
			return nil, err
		}
		params["_"] = string(b)
	}
	var filter map[string]any
	if cr.Node != "" {
		filter = map[string]any{"computer_guid": cr.Node}
	}
	inst, err := mr.m.Request(ctx, slap.Request{ComputerID: mr.computer, PartitionID: mr.partition,
		SoftwareURL: cr.Software, SoftwareType: cr.SoftwareType, Reference: cr.Name, Shared: cr.Shared,
		Parameters: params, Filter: filter, State: cr.State})
	if errors.Is(err, slap.ErrNotReady) {
		return map[string]any{}, nil
	}
	if err != nil {
		return nil, offline(err)
	}
	return inst.ConnectionDict, nil
}

// ConvergedPartition is a partition a master asked this node to run, as
// its last successful processing recorded it.
type ConvergedPartition struct {
	ID, State, Software, Type string
	Title                     string // the instance's name on the master
}

// ConvergedPartitions lists the partitions processed for a master (the
// converged.json of their state directories), for the promise scheduler and
// `promise run`.
func (n *Node) ConvergedPartitions() ([]ConvergedPartition, error) {
	dir := filepath.Dir(partition.StateDir(n.Root, "x"))
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	var out []ConvergedPartition
	for _, ent := range entries {
		b, err := os.ReadFile(filepath.Join(dir, ent.Name(), "converged.json"))
		if err != nil {
			continue
		}
		var st partitionState
		if json.Unmarshal(b, &st) != nil {
			continue
		}
		out = append(out, ConvergedPartition{ID: ent.Name(), State: st.State, Software: st.Software, Type: st.Type, Title: st.Title})
	}
	return out, nil
}
