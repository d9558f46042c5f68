package master

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/slapnode/slapnode/node/slap"
)

// The JSON API (docs/api.md) is what slapnode's own CLI reads: listing and
// describing instances, which the SLAP endpoints cannot do. Every answer is
// JSON; errors are {"error": "…"} with a 4xx (or 500) status.

// Instance is an instance as the JSON API describes it.
type Instance struct {
	Title           string            `json:"title"`
	RequestedBy     string            `json:"requested_by"` // the root's title; "" for a root
	Shared          bool              `json:"shared"`
	SoftwareURL     string            `json:"software_url"`
	SoftwareType    string            `json:"software_type"`
	RequestedState  string            `json:"requested_state"`
	ReportedState   string            `json:"reported_state,omitempty"` // started, stopped, error (from the node)
	Error           string            `json:"error,omitempty"`
	Computer        string            `json:"computer"`
	Partition       string            `json:"partition"` // the partition (the host's, for a shared instance)
	InstanceGUID    string            `json:"instance_guid,omitempty"`
	SharedReference string            `json:"shared_reference,omitempty"`
	Timestamp       string            `json:"timestamp,omitempty"`
	Parameters      map[string]any    `json:"parameters"`
	Connection      map[string]string `json:"connection"`
	IPList          [][2]string       `json:"ip_list"`
	Children        []string          `json:"children,omitempty"`
	SharedInstances []string          `json:"shared_instances,omitempty"`
	// Usage is what the partition's node last reported (useComputer).
	Usage map[string]Usage `json:"usage,omitempty"`
}

// Computer is a computer as the JSON API lists it.
type Computer struct {
	ID         string `json:"id"`
	Address    string `json:"address"`
	Partitions int    `json:"partitions"`
	Free       int    `json:"free"`
}

// Software is a supplied software release.
type Software struct {
	URL            string `json:"url"`
	Computer       string `json:"computer"`
	RequestedState string `json:"requested_state"`
	ReportedState  string `json:"reported_state,omitempty"`
	Error          string `json:"error,omitempty"`
}

// Status describes the master.
type Status struct {
	DefaultComputer string     `json:"default_computer"`
	RunID           string     `json:"run_id"`
	Computers       []Computer `json:"computers"`
	Software        []Software `json:"software"`
}

// RequestBody is POST /api/v1/request.
type RequestBody struct {
	Title        string         `json:"title"`
	SoftwareURL  string         `json:"software_url"`
	SoftwareType string         `json:"software_type,omitempty"`
	Parameters   map[string]any `json:"parameters,omitempty"`
	Shared       bool           `json:"shared,omitempty"`
	State        string         `json:"state,omitempty"`
	Computer     string         `json:"computer,omitempty"`
}

// SupplyBody is POST /api/v1/supply.
type SupplyBody struct {
	SoftwareURL string `json:"software_url"`
	Computer    string `json:"computer"`
	State       string `json:"state,omitempty"`
}

type apiHandler func(r *http.Request) (any, error)

func apiRoute(mux *http.ServeMux, pattern string, h apiHandler) {
	mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxForm)
		var v any
		err := authorizeAdmin(r)
		if err == nil {
			v, err = h(r)
		}
		w.Header().Set("Content-Type", "application/json")
		if err != nil {
			status := http.StatusInternalServerError
			var se *statusError
			if errors.As(err, &se) {
				status = se.status
			}
			w.WriteHeader(status)
			json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
			return
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(v)
	})
}

func (m *Master) routeAPI(mux *http.ServeMux) {
	apiRoute(mux, "GET /api/v1/status", m.apiStatus)
	apiRoute(mux, "GET /api/v1/instances", m.apiInstances)
	apiRoute(mux, "GET /api/v1/instances/{title}", m.apiInstance)
	apiRoute(mux, "DELETE /api/v1/instances/{title}", m.apiRemove)
	apiRoute(mux, "POST /api/v1/request", m.apiRequest)
	apiRoute(mux, "POST /api/v1/supply", m.apiSupply)
	apiRoute(mux, "/api/", func(r *http.Request) (any, error) {
		return nil, errorf(http.StatusNotFound, "no API endpoint %s %s (see docs/api.md)", r.Method, r.URL.Path)
	})
}

// decodeJSON reads a JSON body; numbers become int when integral (so that
// 3 is stored as "3", as Python would, not "3.0").
func decodeJSON(r *http.Request, v any) error {
	d := json.NewDecoder(r.Body)
	d.UseNumber()
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return errorf(http.StatusBadRequest, "request body: %v", err)
	}
	return nil
}

func fixNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return int(i)
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = fixNumbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = fixNumbers(e)
		}
	}
	return v
}

func (m *Master) apiStatus(r *http.Request) (any, error) {
	st := &Status{DefaultComputer: m.opts.DefaultComputer, RunID: m.runID, Computers: []Computer{}, Software: []Software{}}
	err := m.tx(r.Context(), func(tx *txn) error {
		rows, err := tx.Query(`SELECT c.reference, c.address,
			(SELECT COUNT(*) FROM partition p WHERE p.computer_reference=c.reference),
			(SELECT COUNT(*) FROM partition p WHERE p.computer_reference=c.reference AND p.slap_state='free')
			FROM computer c ORDER BY c.reference`)
		if err != nil {
			return err
		}
		for rows.Next() {
			var c Computer
			if err := rows.Scan(&c.ID, &c.Address, &c.Partitions, &c.Free); err != nil {
				rows.Close()
				return err
			}
			st.Computers = append(st.Computers, c)
		}
		rows.Close()
		rows, err = tx.Query(`SELECT url, computer_reference, requested_state, reported_state, error_log FROM software ORDER BY rowid`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var s Software
			if err := rows.Scan(&s.URL, &s.Computer, &s.RequestedState, &s.ReportedState, &s.Error); err != nil {
				return err
			}
			st.Software = append(st.Software, s)
		}
		return rows.Err()
	})
	return st, err
}

// instances lists every instance: partitions first (in partition order),
// then the shared instances their hosts carry.
func (m *Master) instances(tx *txn) ([]*Instance, error) {
	parts, err := queryPartitions(tx, `slap_state='busy'`)
	if err != nil {
		return nil, err
	}
	var out, shared []*Instance
	for _, p := range parts {
		inst, err := partitionInstance(tx, p)
		if err != nil {
			return nil, err
		}
		out = append(out, inst)
		slaves, err := p.slaves()
		if err != nil {
			return nil, err
		}
		for _, s := range slaves {
			sm, _ := s.(map[string]any)
			if sm == nil {
				continue
			}
			si, err := sharedInstance(tx, p, sm)
			if err != nil {
				return nil, err
			}
			inst.SharedInstances = append(inst.SharedInstances, si.SharedReference)
			shared = append(shared, si)
		}
	}
	byRoot := map[string]*Instance{}
	for _, i := range out {
		if i.RequestedBy == "" {
			byRoot[i.Title] = i
		}
	}
	for _, i := range out {
		if r := byRoot[i.RequestedBy]; i.RequestedBy != "" && r != nil {
			r.Children = append(r.Children, i.Title)
		}
	}
	return append(out, shared...), nil
}

func partitionInstance(tx *txn, p *partitionRow) (*Instance, error) {
	params, err := xmlDict(p.XML)
	if err != nil {
		return nil, err
	}
	conn, err := xmlDict(p.Connection)
	if err != nil {
		return nil, err
	}
	ips, err := ipList(tx, p.Computer, p.Reference)
	if err != nil {
		return nil, err
	}
	ts, _ := tsString(p.Timestamp).(string)
	usage, err := partitionUsage(tx, p.Computer, p.Reference)
	if err != nil {
		return nil, err
	}
	return &Instance{Usage: usage,
		Title: p.Title.String, RequestedBy: p.RequestedBy, SoftwareURL: p.SoftwareRelease.String,
		SoftwareType: p.SoftwareType.String, RequestedState: p.RequestedState, ReportedState: p.ReportedState,
		Error: p.ErrorLog, Computer: p.Computer, Partition: p.Reference, InstanceGUID: p.Computer + "-" + p.Reference,
		Timestamp: ts, Parameters: params, Connection: slap.StringDict(conn), IPList: nonNilIPs(ips),
	}, nil
}

func nonNilIPs(l [][2]string) [][2]string {
	if l == nil {
		return [][2]string{}
	}
	return l
}

func sharedInstance(tx *txn, host *partitionRow, entry map[string]any) (*Instance, error) {
	ref, _ := entry["slave_reference"].(string)
	var conn sql.NullString
	var askedBy sql.NullString
	err := tx.QueryRow(`SELECT connection_xml, asked_by FROM slave WHERE reference=? AND computer_reference=? ORDER BY rowid LIMIT 1`, ref, host.Computer).Scan(&conn, &askedBy)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, err
	}
	cd, err := xmlDict(conn)
	if err != nil {
		return nil, err
	}
	params := map[string]any{}
	for k, v := range entry {
		switch k {
		case "slave_reference", "slave_title", "slap_software_type":
		default:
			params[k] = v
		}
	}
	typ, _ := entry["slap_software_type"].(string)
	ips, err := ipList(tx, host.Computer, host.Reference)
	if err != nil {
		return nil, err
	}
	return &Instance{
		Title: strings.TrimPrefix(ref, askedBy.String+"_"), RequestedBy: askedBy.String, Shared: true,
		SoftwareURL: host.SoftwareRelease.String, SoftwareType: typ, RequestedState: slap.StateStarted,
		Computer: host.Computer, Partition: host.Reference, SharedReference: ref,
		Parameters: params, Connection: slap.StringDict(cd), IPList: nonNilIPs(ips),
	}, nil
}

func (m *Master) apiInstances(r *http.Request) (any, error) {
	var out []*Instance
	err := m.tx(r.Context(), func(tx *txn) error {
		var err error
		out, err = m.instances(tx)
		return err
	})
	if out == nil {
		out = []*Instance{}
	}
	return out, err
}

// findInstance finds an instance by title: with ?requested_by= exactly;
// otherwise a root first, then the only instance of that title.
func (m *Master) findInstance(ctx context.Context, r *http.Request) (*Instance, error) {
	title := r.PathValue("title")
	by, byGiven := r.URL.Query()["requested_by"]
	var found *Instance
	err := m.tx(ctx, func(tx *txn) error {
		all, err := m.instances(tx)
		if err != nil {
			return err
		}
		var matches []*Instance
		for _, i := range all {
			if i.Title != title {
				continue
			}
			if byGiven && i.RequestedBy != by[0] {
				continue
			}
			matches = append(matches, i)
		}
		switch {
		case len(matches) == 0:
			return errorf(http.StatusNotFound, "no instance named %q", title)
		case len(matches) == 1:
			found = matches[0]
		default:
			for _, i := range matches {
				if i.RequestedBy == "" && !i.Shared {
					found = i
					return nil
				}
			}
			var trees []string
			for _, i := range matches {
				trees = append(trees, fmt.Sprintf("%q", i.RequestedBy))
			}
			return errorf(http.StatusConflict, "%d instances are named %q (requested by %s): add ?requested_by=ROOT", len(matches), title, strings.Join(trees, ", "))
		}
		return nil
	})
	return found, err
}

func (m *Master) apiInstance(r *http.Request) (any, error) { return m.findInstance(r.Context(), r) }

// apiRemove requests the instance destroyed, keeping its software, type
// and parameters: the node then destroys it and reports, freeing the
// partition (children first).
func (m *Master) apiRemove(r *http.Request) (any, error) {
	inst, err := m.findInstance(r.Context(), r)
	if err != nil {
		return nil, err
	}
	q := instanceRequest{
		SoftwareURL: inst.SoftwareURL, SoftwareType: inst.SoftwareType, Title: inst.Title,
		Params: inst.Parameters, Filter: map[string]any{"computer_guid": inst.Computer},
		State: slap.StateDestroyed, Shared: inst.Shared,
	}
	if inst.RequestedBy != "" {
		// Re-request from the root's partition, so that identity
		// (title, requested_by) is the same.
		var root *partitionRow
		err := m.tx(r.Context(), func(tx *txn) error {
			var err error
			root, err = queryPartition(tx, `slap_state='busy' AND partition_reference=? AND requested_by=''`, inst.RequestedBy)
			return err
		})
		if err != nil {
			return nil, err
		}
		if root == nil {
			return nil, errorf(http.StatusConflict, "instance %q was requested by %q, which no longer exists", inst.Title, inst.RequestedBy)
		}
		q.RequesterComputer, q.RequesterPartition = root.Computer, root.Reference
	}
	if inst.Shared {
		q.Filter["instance_guid"] = inst.Computer + "-" + inst.Partition
	}
	if _, err := m.request(r.Context(), q); err != nil {
		return nil, err
	}
	inst.RequestedState = slap.StateDestroyed
	return inst, nil
}

func (m *Master) apiRequest(r *http.Request) (any, error) {
	var b RequestBody
	if err := decodeJSON(r, &b); err != nil {
		return nil, err
	}
	if b.Title == "" || b.SoftwareURL == "" {
		return nil, errorf(http.StatusBadRequest, "a request needs a title and a software_url")
	}
	for k, v := range b.Parameters {
		b.Parameters[k] = fixNumbers(v)
	}
	typ := b.SoftwareType
	if typ == "" {
		typ = "default"
	}
	filter := map[string]any{}
	if b.Computer != "" {
		filter["computer_guid"] = b.Computer
	}
	inst, err := m.request(r.Context(), instanceRequest{
		SoftwareURL: b.SoftwareURL, SoftwareType: typ, Title: b.Title, Params: b.Parameters,
		Filter: filter, State: b.State, Shared: b.Shared,
	})
	if err != nil {
		return nil, err
	}
	out := &Instance{
		Title: b.Title, Shared: b.Shared, SoftwareURL: b.SoftwareURL, SoftwareType: typ,
		RequestedState: inst.RequestedState, Computer: inst.ComputerID, Partition: inst.PartitionID,
		InstanceGUID: inst.InstanceGUID, Parameters: inst.Parameters(), Connection: slap.StringDict(inst.ConnectionDict),
		IPList: nonNilIPs(inst.IPList),
	}
	if ts, ok := inst.ParameterDict["timestamp"].(string); ok {
		out.Timestamp = ts
	}
	if b.Shared {
		out.RequestedState = slap.StateStarted
		if b.State == slap.StateDestroyed {
			out.RequestedState = slap.StateDestroyed
		}
		out.SharedReference = "_" + b.Title
	}
	return out, nil
}

func (m *Master) apiSupply(r *http.Request) (any, error) {
	var b SupplyBody
	if err := decodeJSON(r, &b); err != nil {
		return nil, err
	}
	if b.Computer == "" {
		b.Computer = m.opts.DefaultComputer
	}
	if b.State == "" {
		b.State = slap.StateAvailable
	}
	if b.SoftwareURL == "" || (b.State != slap.StateAvailable && b.State != slap.StateDestroyed) {
		return nil, errorf(http.StatusBadRequest, "supply needs a software_url and a state of available or destroyed")
	}
	err := m.tx(r.Context(), func(tx *txn) error {
		_, err := tx.Exec(`INSERT INTO software (url, computer_reference, requested_state) VALUES (?, ?, ?)
			ON CONFLICT (url, computer_reference) DO UPDATE SET requested_state=excluded.requested_state`, b.SoftwareURL, b.Computer, b.State)
		return err
	})
	return Software{URL: b.SoftwareURL, Computer: b.Computer, RequestedState: b.State}, err
}
