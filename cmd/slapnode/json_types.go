package main

import (
	"encoding/json"
	"time"

	"github.com/slapnode/slapnode/node/supervisor"
	"github.com/slapnode/slapnode/partition"
	"github.com/slapnode/slapnode/partition/promise"
)

// Shapes shared by several --json documents (docs/json.md).

// jsonTime is a time for JSON: nil (left out) when zero, never
// "0001-01-01T00:00:00Z".
func jsonTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// ms is a duration in milliseconds, with microsecond precision.
func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// jsonReport is what an apply did, or a plan would do, to one target.
type jsonReport struct {
	Target  string       `json:"target"`
	Counts  jsonCounts   `json:"counts"`
	Actions []jsonAction `json:"actions"`
}

type jsonCounts struct {
	Install   int `json:"install"`
	Reinstall int `json:"reinstall"`
	Uninstall int `json:"uninstall"`
	Unchanged int `json:"unchanged"`
}

type jsonAction struct {
	Part    string   `json:"part"`
	Action  string   `json:"action"` // install, reinstall, uninstall, unchanged
	Recipe  string   `json:"recipe,omitempty"`
	Changed []string `json:"changed"` // options that differ, on reinstall
	Reason  string   `json:"reason,omitempty"`
}

func reportJSON(r *partition.Report) *jsonReport {
	if r == nil {
		return nil
	}
	out := &jsonReport{Target: r.Target, Actions: []jsonAction{},
		Counts: jsonCounts{r.Counts[partition.Install], r.Counts[partition.Reinstall], r.Counts[partition.Uninstall], r.Counts[partition.Unchanged]}}
	for _, a := range r.Actions {
		out.Actions = append(out.Actions, jsonAction{Part: a.Part, Action: string(a.Kind), Recipe: a.Recipe, Changed: nonNil(a.Changed), Reason: a.Reason})
	}
	return out
}

// jsonServices is what an apply did to a partition's services.
type jsonServices struct {
	Started   []string `json:"started"`
	Restarted []string `json:"restarted"`
	Stopped   []string `json:"stopped"`
	Unchanged []string `json:"unchanged"`
}

func servicesJSON(c supervisor.Changes) jsonServices {
	return jsonServices{nonNil(c.Started), nonNil(c.Restarted), nonNil(c.Stopped), nonNil(c.Unchanged)}
}

// jsonPromise is one promise result.
type jsonPromise struct {
	Partition  string     `json:"partition"`
	Name       string     `json:"name"`
	Result     string     `json:"result"` // ok, failed, timeout, skipped
	OK         bool       `json:"ok"`
	Message    string     `json:"message"`
	Check      string     `json:"check,omitempty"`
	Legacy     bool       `json:"legacy"` // an etc/promise executable
	Date       *time.Time `json:"date,omitempty"`
	DurationMS float64    `json:"duration_ms"`
	NextRun    *time.Time `json:"next_run,omitempty"`
}

func promiseResult(r promise.Result) string {
	switch {
	case r.Skipped:
		return "skipped"
	case r.TimedOut:
		return "timeout"
	case !r.OK:
		return "failed"
	}
	return "ok"
}

func promisesJSON(rs []promise.Result) []jsonPromise {
	out := []jsonPromise{}
	for _, r := range rs {
		out = append(out, jsonPromise{Partition: r.Partition, Name: r.Name, Result: promiseResult(r), OK: r.OK, Message: r.Message,
			Check: r.Check, Legacy: r.Legacy, Date: jsonTime(r.Date), DurationMS: ms(r.Duration), NextRun: jsonTime(r.NextRun)})
	}
	return out
}

// connectionJSON decodes json-in-xml connection parameters (one "_" key
// holding a JSON object, as SlapOS software publishes them) and returns
// an object, never null.
func connectionJSON(conn map[string]any) map[string]any {
	if s, ok := conn["_"].(string); ok && len(conn) == 1 {
		var m map[string]any
		if json.Unmarshal([]byte(s), &m) == nil && m != nil {
			return m
		}
	}
	return userData(conn)
}
