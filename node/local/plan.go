package local

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/slapnode/slapnode/node/daemon"
	"github.com/slapnode/slapnode/node/supervisor"
	"github.com/slapnode/slapnode/partition"
	"github.com/slapnode/slapnode/partition/promise"
	"github.com/slapnode/slapnode/partition/service"
)

// What a plan says apply would do to an instance as a whole.
const (
	PlanCreate  = "create"  // a new instance, in a partition allocated for it
	PlanDestroy = "destroy" // its services stopped, its partition emptied, its record forgotten
	PlanStop    = "stop"    // its services stopped, kept for a later start
	PlanStart   = "start"   // a stopped instance started again
)

// Actions on one service.
const (
	ServiceStart     = "start"
	ServiceRestart   = "restart"
	ServiceStop      = "stop"
	ServiceUnchanged = "unchanged"
)

// Actions on one promise.
const (
	PromiseAdd       = "add"
	PromiseChange    = "change"
	PromiseRemove    = "remove"
	PromiseUnchanged = "unchanged"
)

// Plan is what an apply would do to an instance beyond its parts (which
// the engine's reports list): the instance's state, its services as the
// supervisor would run them, its promises, its connection parameters.
type Plan struct {
	Instance  string
	Partition string
	// Action is what happens to the instance as a whole: PlanCreate,
	// PlanDestroy, PlanStop, PlanStart, or "" (updated in place).
	Action string
	// Children are the instances it requested, destroyed with it.
	Children   []string
	Services   []ServicePlan
	Promises   []PromisePlan
	Connection []partition.ValueChange
}

// ServicePlan is one service's fate.
type ServicePlan struct {
	Name    string
	Action  string // ServiceStart, ServiceRestart, ServiceStop, ServiceUnchanged
	Reason  string
	Changes []partition.ValueChange
}

// PromisePlan is one promise's fate.
type PromisePlan struct {
	Name    string
	Action  string // PromiseAdd, PromiseChange, PromiseRemove, PromiseUnchanged
	Reason  string
	Changes []partition.ValueChange
}

// HasChanges reports whether the plan changes anything beyond parts.
func (p *Plan) HasChanges() bool {
	if p == nil {
		return false
	}
	if p.Action != "" || len(p.Connection) > 0 {
		return true
	}
	for _, s := range p.Services {
		if s.Action != ServiceUnchanged {
			return true
		}
	}
	for _, pr := range p.Promises {
		if pr.Action != PromiseUnchanged {
			return true
		}
	}
	return false
}

// liveStatus returns the supervisor's view of a partition's services, by
// name, and whether the daemon answered.
func liveStatus(ctx context.Context, svc Services, pid string) (map[string]service.Status, bool) {
	st, ok := svc.(promise.Services)
	if !ok || st == nil {
		return nil, false
	}
	all, err := st.Status(ctx)
	if err != nil {
		return nil, false
	}
	out := map[string]service.Status{}
	for _, s := range all {
		if s.Partition == pid {
			out[s.Name] = s
		}
	}
	return out, true
}

// planServices compares the services an apply would hand to the
// supervisor with those it keeps now (its persisted state, and its live
// status when the daemon runs).
func (n *Node) planServices(ctx context.Context, pid string, next []service.Spec, unknown map[string]bool, requested string, o ApplyOptions, m *partition.Masker) ([]ServicePlan, error) {
	wasRequested, old, found, err := supervisor.Persisted(daemon.StateDir(n.Root), pid)
	if err != nil {
		return nil, err
	}
	live, running := liveStatus(ctx, o.Services, pid)
	prev := map[string]service.Spec{}
	for _, sp := range old {
		prev[sp.Name] = sp
	}
	var out []ServicePlan
	seen := map[string]bool{}
	for _, sp := range next {
		sp.Partition = pid
		seen[sp.Name] = true
		was, had := prev[sp.Name]
		sl := ServicePlan{Name: sp.Name, Action: ServiceUnchanged}
		st, isLive := live[sp.Name]
		active := isLive && st.State != service.StateFatal && st.State != service.StateStopped
		key := "service." + sp.Name
		if sp.Schedule != "" {
			key = "schedule." + sp.Name
		}
		switch {
		case requested == StateStopped:
			if had && (active || (!running && wasRequested == supervisor.PartitionStarted)) {
				sl.Action, sl.Reason = ServiceStop, "the instance is requested stopped"
			}
		case !had:
			sl.Action = ServiceStart
			sl.Changes = specChanges(m, nil, &sp)
		case unknown[key]:
			sl.Action, sl.Reason = ServiceRestart, "restarts if its definition changes: it reads values known after apply"
			sl.Changes = specChanges(m, &was, &sp)
			for i := range sl.Changes {
				if strings.Contains(string(sl.Changes[i].New), "(known after apply)") {
					sl.Changes[i].New, sl.Changes[i].Unknown = nil, true
				}
			}
		case !specEqual(was, sp):
			sl.Action = ServiceRestart
			sl.Changes = specChanges(m, &was, &sp)
		case running && !active && (sp.Watch || sp.Schedule != ""):
			sl.Action, sl.Reason = ServiceStart, "it is not running ("+stateOf(st, isLive)+")"
		case !running && found && !(wasRequested == supervisor.PartitionStopped && requested == StateStopped):
			sl.Action, sl.Reason = ServiceStart, "the node daemon is not running: apply starts it, and it starts the service"
		case wasRequested == supervisor.PartitionStopped:
			sl.Action, sl.Reason = ServiceStart, "the instance was stopped"
		}
		out = append(out, sl)
	}
	for _, sp := range old {
		if !seen[sp.Name] {
			out = append(out, ServicePlan{Name: sp.Name, Action: ServiceStop, Reason: "no longer declared", Changes: specChanges(m, &sp, nil)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func stateOf(st service.Status, live bool) string {
	if !live {
		return "not known to the supervisor"
	}
	if st.LastExit != "" {
		return st.State + ": " + st.LastExit
	}
	return st.State
}

// specView is what a plan shows of a service spec, with stable keys.
func specView(sp *service.Spec) map[string]json.RawMessage {
	if sp == nil {
		return nil
	}
	v := map[string]any{"command": sp.Command, "watch": sp.Watch, "dir": sp.Dir}
	if len(sp.Env) > 0 {
		v["env"] = sp.Env
	}
	if sp.StopGrace != 0 {
		v["stop_grace"] = sp.StopGrace.String()
	}
	if sp.Schedule != "" {
		v["cron"] = sp.Schedule
	}
	if sp.Digest != "" {
		v["program_sha256"] = sp.Digest
	}
	if sp.Credential != nil {
		v["user"] = fmt.Sprintf("%d:%d", sp.Credential.Uid, sp.Credential.Gid)
	}
	if sp.Cgroup != "" {
		v["cgroup"] = sp.Cgroup
	}
	if sp.NetNS != "" {
		v["netns"] = sp.NetNS
	}
	if sp.LogFile != "" || sp.LogDir != "" {
		v["log"] = sp.LogFile + sp.LogDir
	}
	out := map[string]json.RawMessage{}
	for k, x := range v {
		b, _ := json.Marshal(x)
		out[k] = b
	}
	return out
}

func specChanges(m *partition.Masker, old, new *service.Spec) []partition.ValueChange {
	a, b := specView(old), specView(new)
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if old == nil {
		ja = []byte("{}")
	}
	if new == nil {
		jb = []byte("{}")
	}
	return m.DiffObjects("", ja, jb)
}

// specEqual is the supervisor's rule: a service restarts when any field of
// its spec changed.
func specEqual(a, b service.Spec) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// planPromises compares the promises an apply would save with those saved.
func planPromises(part partition.Partition, next []partition.PromiseSpec, unknown map[string]bool, m *partition.Masker) ([]PromisePlan, error) {
	old, err := promise.LoadSpecs(part)
	if err != nil {
		return nil, err
	}
	prev := map[string]promise.Spec{}
	for _, s := range old {
		prev[s.Name] = s
	}
	var out []PromisePlan
	seen := map[string]bool{}
	for _, s := range promise.FromPartition(next) {
		seen[s.Name] = true
		was, had := prev[s.Name]
		pp := PromisePlan{Name: s.Name, Action: PromiseUnchanged}
		switch {
		case !had:
			pp.Action = PromiseAdd
			pp.Changes = promiseChanges(m, nil, &s)
		default:
			pp.Changes = promiseChanges(m, &was, &s)
			if len(pp.Changes) > 0 {
				pp.Action = PromiseChange
			}
		}
		if unknown["promise."+s.Name] {
			if pp.Action == PromiseUnchanged {
				pp.Action = PromiseChange
			}
			pp.Reason = "some of its options are known after apply"
		}
		out = append(out, pp)
	}
	for _, s := range old {
		if !seen[s.Name] {
			out = append(out, PromisePlan{Name: s.Name, Action: PromiseRemove, Reason: "no longer declared"})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func promiseChanges(m *partition.Masker, old, new *promise.Spec) []partition.ValueChange {
	view := func(s *promise.Spec) json.RawMessage {
		if s == nil {
			return []byte("{}")
		}
		v := map[string]any{"check": s.Check, "every": s.Every, "timeout": s.Timeout, "test": s.Test,
			"anomaly": s.Anomaly, "failure_amount": s.FailureAmount}
		var opts map[string]any
		json.Unmarshal(s.Options, &opts)
		for k, x := range opts {
			v["options."+k] = x
		}
		if s.LatestMinute > 0 {
			v["options.latest_minute"] = s.LatestMinute
		}
		b, _ := json.Marshal(v)
		return b
	}
	return m.DiffObjects("", view(old), view(new))
}

// planConnection compares the connection parameters an apply would
// publish with those recorded.
func planConnection(old, next map[string]any, unknown map[string]bool, m *partition.Masker) []partition.ValueChange {
	a, _ := json.Marshal(userMap(old))
	b, _ := json.Marshal(userMap(next))
	out := m.DiffObjects("", a, b)
	var keys []string
	for k := range unknown {
		if key, ok := strings.CutPrefix(k, "connection."); ok {
			keys = append(keys, key)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		c := partition.ValueChange{Path: k, Unknown: true}
		if v, ok := old[k]; ok {
			raw, _ := json.Marshal(v)
			c.Old, c.Sensitive = m.Mask(k, raw)
		}
		// The diff above saw it removed: it is only unknown.
		for i := range out {
			if out[i].Path == k {
				out = append(out[:i], out[i+1:]...)
				break
			}
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

func userMap(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}
