package master

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/slapnode/slapnode/node/slap"
)

func (m *Master) routeSLAP(mux *http.ServeMux) {
	get, post := http.MethodGet, http.MethodPost
	routeBytes(mux, get, "/getFullComputerInformation", serveBytes(m.getFullComputerInformation))
	routeBytes(mux, get, "/getComputerInformation", serveBytes(m.getFullComputerInformation))
	routeBytes(mux, get, "/registerComputerPartition", serveBytes(m.registerComputerPartition))
	route(mux, get, "/getComputerPartitionCertificate", m.certificate)
	route(mux, post, "/generateComputerCertificate", m.generateComputerCertificate)
	route(mux, post, "/revokeComputerCertificate", m.revokeComputerCertificate)
	route(mux, get, "/getSoftwareReleaseListFromSoftwareProduct", m.productList)
	route(mux, get, "/getComputerPartitionStatus", func(r *http.Request) (string, error) {
		if err := authorizeRead(r); err != nil {
			return "", err
		}
		return dumps("Not implemented.")
	})
	route(mux, get, "/getRunId", func(r *http.Request) (string, error) {
		if err := authorizeRead(r); err != nil {
			return "", err
		}
		return m.runID, nil
	})
	route(mux, post, "/loadComputerConfigurationFromXML", m.loadComputerConfiguration)
	route(mux, post, "/supplySupply", m.supply)
	routeBytes(mux, post, "/requestComputerPartition", serveRaw(m.requestComputerPartition))
	route(mux, post, "/setComputerPartitionConnectionXml", m.setConnectionXML)
	route(mux, post, "/softwareInstanceBang", m.bang)
	route(mux, post, "/softwareInstanceRename", m.rename)
	route(mux, post, "/destroyedComputerPartition", m.destroyedComputerPartition)
	route(mux, post, "/destroyedSoftwareRelease", m.destroyedSoftwareRelease)
	route(mux, post, "/computerBang", func(r *http.Request) (string, error) {
		c, err := field(r, "computer_id")
		if err != nil {
			return "", err
		}
		if err := authorizeComputer(r, c); err != nil {
			return "", err
		}
		return dumps("")
	})
	mux.HandleFunc("/Person_requestComputer", m.registerComputer)
	for path, state := range map[string]string{
		"/startedComputerPartition": "started", "/stoppedComputerPartition": "stopped",
		"/softwareInstanceError": "error",
	} {
		route(mux, post, path, m.reportPartition(state))
	}
	for path, state := range map[string]string{
		"/buildingSoftwareRelease": "building", "/availableSoftwareRelease": "available",
		"/softwareReleaseError": "error",
	} {
		route(mux, post, path, m.reportSoftware(state))
	}
	route(mux, post, "/useComputer", m.recordUsage)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		htmlError(w, http.StatusNotFound, notFoundMsg)
	})
}

// partitionRow is a row of the partition table.
type partitionRow struct {
	Reference, Computer, SlapState   string
	SoftwareRelease, XML, Connection sql.NullString
	SlaveList, SoftwareType, Title   sql.NullString
	RequestedBy, RequestedState      string
	Timestamp                        sql.NullFloat64
	ReportedState, ErrorLog          string
}

const partitionColumns = `reference, computer_reference, slap_state, software_release, xml, connection_xml,
	slave_instance_list, software_type, partition_reference, requested_by, requested_state, timestamp,
	reported_state, error_log`

type scanner interface{ Scan(...any) error }

func scanPartition(s scanner) (*partitionRow, error) {
	p := &partitionRow{}
	err := s.Scan(&p.Reference, &p.Computer, &p.SlapState, &p.SoftwareRelease, &p.XML, &p.Connection,
		&p.SlaveList, &p.SoftwareType, &p.Title, &p.RequestedBy, &p.RequestedState, &p.Timestamp,
		&p.ReportedState, &p.ErrorLog)
	return p, err
}

// queryPartition returns the first partition matching where, or nil.
func queryPartition(tx *txn, where string, args ...any) (*partitionRow, error) {
	p, err := scanPartition(tx.QueryRow(`SELECT `+partitionColumns+` FROM partition WHERE `+where+` ORDER BY rowid LIMIT 1`, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return p, err
}

func queryPartitions(tx *txn, where string, args ...any) ([]*partitionRow, error) {
	rows, err := tx.Query(`SELECT `+partitionColumns+` FROM partition WHERE `+where+` ORDER BY rowid`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*partitionRow
	for rows.Next() {
		p, err := scanPartition(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

func (p *partitionRow) rootTitle() string {
	if p.RequestedBy != "" {
		return p.RequestedBy
	}
	return p.Title.String
}

func (p *partitionRow) slaves() ([]any, error) {
	if !p.SlaveList.Valid || p.SlaveList.String == "" {
		return []any{}, nil
	}
	v, err := slap.Unmarshal([]byte(p.SlaveList.String))
	if err != nil {
		return nil, fmt.Errorf("partition %s: stored shared instance list: %w", p.Reference, err)
	}
	l, _ := v.([]any)
	if l == nil {
		l = []any{}
	}
	return l, nil
}

// ipList is the partition's (interface, address) list in the order the
// node registered them.
func ipList(tx *txn, computer, partition string) ([][2]string, error) {
	rows, err := tx.Query(`SELECT reference, address FROM partition_network WHERE computer_reference=? AND partition_reference=? ORDER BY rowid`, computer, partition)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out [][2]string
	for rows.Next() {
		var a [2]string
		if err := rows.Scan(&a[0], &a[1]); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// computerNetworks reads every address of a computer, by partition.
func computerNetworks(tx *txn, computer string) (map[string][][2]string, error) {
	rows, err := tx.Query(`SELECT partition_reference, reference, address FROM partition_network WHERE computer_reference=? ORDER BY rowid`, computer)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string][][2]string{}
	for rows.Next() {
		var p string
		var a [2]string
		if err := rows.Scan(&p, &a[0], &a[1]); err != nil {
			return nil, err
		}
		out[p] = append(out[p], a)
	}
	return out, rows.Err()
}

func ipTuples(l [][2]string) []any {
	out := make([]any, len(l))
	for i, a := range l {
		out[i] = slap.Tuple{a[0], a[1]}
	}
	return out
}

func xmlDict(s sql.NullString) (map[string]any, error) {
	if !s.Valid {
		return map[string]any{}, nil
	}
	return slap.XMLToDict(s.String)
}

// partitionDoc is slapproxy's partitiondict2partition: what a node sees of
// one of its partitions.
func partitionDoc(tx *txn, p *partitionRow) (*slap.ComputerPartition, error) {
	return partitionDocWith(tx, p, nil)
}

// partitionDocWith is partitionDoc with the computer's addresses already
// read (nets, by partition), so that a whole computer takes one query.
func partitionDocWith(tx *txn, p *partitionRow, nets map[string][][2]string) (*slap.ComputerPartition, error) {
	cp := &slap.ComputerPartition{
		ComputerID: p.Computer, PartitionID: p.Reference,
		InstanceGUID: p.Computer + "-" + p.Reference,
	}
	if p.SlapState == "free" {
		cp.RequestedState = slap.StateDestroyed
		return cp, nil
	}
	cp.NeedModification = true
	cp.RequestedState = p.RequestedState
	cp.SoftwareRelease = &slap.SoftwareRelease{URL: p.SoftwareRelease.String, ComputerID: p.Computer}
	conn, err := xmlDict(p.Connection)
	if err != nil {
		return nil, fmt.Errorf("partition %s: stored connection parameters: %w", p.Reference, err)
	}
	params, err := xmlDict(p.XML)
	if err != nil {
		return nil, fmt.Errorf("partition %s: stored parameters: %w", p.Reference, err)
	}
	ips, ok := nets[p.Reference]
	if nets == nil || !ok {
		if ips, err = ipList(tx, p.Computer, p.Reference); err != nil {
			return nil, err
		}
	}
	slaves, err := p.slaves()
	if err != nil {
		return nil, err
	}
	params["ip_list"] = ipTuples(ips)
	params["full_address_list"] = []any{}
	params["instance_title"] = p.Title.String
	params["root_instance_title"] = p.rootTitle()
	params["slap_computer_id"] = p.Computer
	params["slap_computer_partition_id"] = p.Reference
	params["slap_software_release_url"] = p.SoftwareRelease.String
	params["slap_software_type"] = p.SoftwareType.String
	params["slave_instance_list"] = slaves
	params["timestamp"] = tsString(p.Timestamp)
	cp.ConnectionDict = conn
	cp.ParameterDict = params
	return cp, nil
}

func tsString(t sql.NullFloat64) any {
	if !t.Valid {
		return nil
	}
	return slap.PyFloat(t.Float64)
}

func computerExists(tx *txn, id string) (bool, error) {
	var n int
	err := tx.QueryRow(`SELECT COUNT(*) FROM computer WHERE reference=?`, id).Scan(&n)
	return n > 0, err
}

// computerDoc builds the getFullComputerInformation answer.
func (m *Master) computerDoc(tx *txn, id string) (*slap.Computer, error) {
	ok, err := computerExists(tx, id)
	if err != nil {
		return nil, err
	}
	if !ok && id != m.opts.DefaultComputer {
		return nil, errorf(http.StatusNotFound, "unknown computer %q: register it first (slapos node format, or loadComputerConfigurationFromXML)", id)
	}
	c := &slap.Computer{ID: id}
	parts, err := queryPartitions(tx, `computer_reference=?`, id)
	if err != nil {
		return nil, err
	}
	nets, err := computerNetworks(tx, id)
	if err != nil {
		return nil, err
	}
	for _, p := range parts {
		cp, err := partitionDocWith(tx, p, nets)
		if err != nil {
			return nil, err
		}
		c.Partitions = append(c.Partitions, cp)
	}
	rows, err := tx.Query(`SELECT url, requested_state FROM software WHERE computer_reference=? ORDER BY rowid`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		s := &slap.SoftwareRelease{ComputerID: id}
		if err := rows.Scan(&s.URL, &s.RequestedState); err != nil {
			return nil, err
		}
		c.SoftwareReleases = append(c.SoftwareReleases, s)
	}
	return c, rows.Err()
}

func (m *Master) getFullComputerInformation(r *http.Request) ([]byte, error) {
	id, err := field(r, "computer_id")
	if err != nil {
		return nil, err
	}
	if err := authorizeComputer(r, id); err != nil {
		return nil, err
	}
	return m.cached(r.Context(), cacheKey("computer", id), func(tx *txn) ([]byte, error) {
		c, err := m.computerDoc(tx, id)
		if err != nil {
			return nil, err
		}
		return marshal(c.Object())
	})
}

func (m *Master) registerComputerPartition(r *http.Request) ([]byte, error) {
	cid, err := field(r, "computer_reference")
	if err != nil {
		return nil, err
	}
	pid, err := field(r, "computer_partition_reference")
	if err != nil {
		return nil, err
	}
	if err := authorizePartition(r, cid, pid); err != nil {
		return nil, err
	}
	return m.cached(r.Context(), cacheKey("partition", cid, pid), func(tx *txn) ([]byte, error) {
		p, err := mustPartition(tx, cid, pid)
		if err != nil {
			return nil, err
		}
		cp, err := partitionDoc(tx, p)
		if err != nil {
			return nil, err
		}
		return marshal(cp.Object())
	})
}

// cacheKey makes an answerCache key of a call and its arguments, each
// prefixed with its length so that no two argument lists share a key.
func cacheKey(call string, args ...string) string {
	var b strings.Builder
	b.WriteString(call)
	for _, a := range args {
		b.WriteByte(' ')
		b.WriteString(strconv.Itoa(len(a)))
		b.WriteByte(':')
		b.WriteString(a)
	}
	return b.String()
}

// mustPartition returns a partition or a 404 naming it (slapproxy answers
// a bare 500 there).
func mustPartition(tx *txn, computer, partition string) (*partitionRow, error) {
	p, err := queryPartition(tx, `reference=? AND computer_reference=?`, partition, computer)
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, errorf(http.StatusNotFound, "unknown partition %q on computer %q", partition, computer)
	}
	return p, nil
}

// certificate answers a partition's certificate and key. Over HTTPS the
// master issues one per instance (its own CA, pki.go), as a SlapOS Master
// does; over plain HTTP it answers empty strings, as slapproxy does, since
// a key must not travel in clear and a certificate is of no use there.
func (m *Master) certificate(r *http.Request) (string, error) {
	c, pid, err := partitionArgs(r)
	if err != nil {
		return "", err
	}
	cert, key := "", ""
	if r.TLS != nil {
		err := m.tx(r.Context(), func(tx *txn) error {
			p, err := mustPartition(tx, c, pid)
			if err != nil || p.SlapState == "free" {
				return err
			}
			cert, key, err = m.partitionCertificate(tx, c, pid)
			return err
		})
		if err != nil {
			return "", err
		}
	}
	return dumps(map[string]any{"certificate": cert, "key": key})
}

func (m *Master) productList(r *http.Request) (string, error) {
	ref, err := field(r, "software_product_reference")
	if err != nil {
		return "", err
	}
	if err := authorizeRead(r); err != nil {
		return "", err
	}
	l := []any{}
	for _, u := range m.opts.SoftwareProducts[ref] {
		l = append(l, u)
	}
	return dumps(l)
}

func (m *Master) loadComputerConfiguration(r *http.Request) (string, error) {
	v, err := marshalled(r, "xml", nil)
	if err != nil {
		return "", err
	}
	if v == nil {
		return "", errorf(http.StatusBadRequest, "missing field \"xml\": the marshalled computer dictionary slapos node format sends")
	}
	cfg, err := slap.ParseComputerConfiguration(v)
	if err != nil {
		return "", errorf(http.StatusBadRequest, "%v", err)
	}
	if err := authorizeComputer(r, cfg.Reference); err != nil {
		return "", err
	}
	return "done", m.tx(r.Context(), func(tx *txn) error { return formatComputer(tx, cfg) })
}

// formatComputer is slapproxy's formatFromDB: upsert the computer, drop
// partitions (with their shared instances) that are no longer listed, add
// new ones free, keep existing ones as they are, and replace every address.
func formatComputer(tx *txn, cfg *slap.ComputerConfiguration) error {
	c := cfg.Reference
	if same, err := formatted(tx, cfg); err != nil || same {
		// A node re-registering what it registered before (slapformat
		// runs hourly, `slapnode node converge` on every pass) changes
		// nothing, and keeps the cached answers.
		return err
	}
	if _, err := tx.Exec(`INSERT INTO computer (reference, address, netmask) VALUES (?, ?, ?)
		ON CONFLICT (reference) DO UPDATE SET address=excluded.address, netmask=excluded.netmask`, c, cfg.Address, cfg.Netmask); err != nil {
		return err
	}
	keep := map[string]bool{}
	for _, p := range cfg.Partitions {
		keep[p.Reference] = true
	}
	existing, err := queryPartitions(tx, `computer_reference=?`, c)
	if err != nil {
		return err
	}
	for _, p := range existing {
		if keep[p.Reference] {
			continue
		}
		if _, err := tx.Exec(`DELETE FROM slave WHERE computer_reference=? AND hosted_by=?`, c, p.Reference); err != nil {
			return err
		}
		if _, err := tx.Exec(`DELETE FROM partition WHERE computer_reference=? AND reference=?`, c, p.Reference); err != nil {
			return err
		}
	}
	if _, err := tx.Exec(`DELETE FROM partition_network WHERE computer_reference=?`, c); err != nil {
		return err
	}
	for _, p := range cfg.Partitions {
		if _, err := tx.Exec(`INSERT OR IGNORE INTO partition (reference, computer_reference) VALUES (?, ?)`, p.Reference, c); err != nil {
			return err
		}
		iface := p.TapName
		if iface == "" {
			iface = p.Reference
		}
		for _, a := range p.Addresses {
			if _, err := tx.Exec(`INSERT INTO partition_network (partition_reference, computer_reference, reference, address, netmask) VALUES (?, ?, ?, ?, ?)`,
				p.Reference, c, iface, a.Addr, a.Netmask); err != nil {
				return err
			}
		}
	}
	return nil
}

// formatted tells whether the database already holds cfg exactly: the
// computer's address, the same partitions, and the same addresses in the
// same order.
func formatted(tx *txn, cfg *slap.ComputerConfiguration) (bool, error) {
	c := cfg.Reference
	var addr, mask string
	switch err := tx.QueryRow(`SELECT address, netmask FROM computer WHERE reference=?`, c).Scan(&addr, &mask); {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, err
	}
	if addr != cfg.Address || mask != cfg.Netmask {
		return false, nil
	}
	rows, err := tx.Query(`SELECT reference FROM partition WHERE computer_reference=?`, c)
	if err != nil {
		return false, err
	}
	have := map[string]bool{}
	for rows.Next() {
		var ref string
		if err := rows.Scan(&ref); err != nil {
			rows.Close()
			return false, err
		}
		have[ref] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return false, err
	}
	want := map[string]bool{}
	var nets [][4]string
	for _, p := range cfg.Partitions {
		want[p.Reference] = true
		iface := p.TapName
		if iface == "" {
			iface = p.Reference
		}
		for _, a := range p.Addresses {
			nets = append(nets, [4]string{p.Reference, iface, a.Addr, a.Netmask})
		}
	}
	if len(have) != len(want) || len(want) != len(cfg.Partitions) {
		return false, nil
	}
	for ref := range want {
		if !have[ref] {
			return false, nil
		}
	}
	rows, err = tx.Query(`SELECT partition_reference, reference, address, netmask FROM partition_network WHERE computer_reference=? ORDER BY rowid`, c)
	if err != nil {
		return false, err
	}
	defer rows.Close()
	i := 0
	for rows.Next() {
		var n [4]string
		if err := rows.Scan(&n[0], &n[1], &n[2], &n[3]); err != nil {
			return false, err
		}
		if i >= len(nets) || n != nets[i] {
			return false, nil
		}
		i++
	}
	return i == len(nets), rows.Err()
}

func (m *Master) supply(r *http.Request) (string, error) {
	u, err := field(r, "url")
	if err != nil {
		return "", err
	}
	c, err := field(r, "computer_id")
	if err != nil {
		return "", err
	}
	state := r.Form.Get("state")
	if state == "" {
		state = slap.StateAvailable
	}
	if state != slap.StateAvailable && state != slap.StateDestroyed {
		return "", errorf(http.StatusBadRequest, "state %q: supply a software release as available or destroyed", state)
	}
	if u == "" || c == "" {
		return "", errorf(http.StatusBadRequest, "supplySupply needs a url and a computer_id")
	}
	if err := authorizeAdmin(r); err != nil {
		return "", err
	}
	err = m.tx(r.Context(), func(tx *txn) error {
		_, err := tx.Exec(`INSERT INTO software (url, computer_reference, requested_state) VALUES (?, ?, ?)
			ON CONFLICT (url, computer_reference) DO UPDATE SET requested_state=excluded.requested_state`, u, c, state)
		return err
	})
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("Supplied %s to be %s", slap.PyRepr(u), state), nil
}

func (m *Master) destroyedSoftwareRelease(r *http.Request) (string, error) {
	u, err := field(r, "url")
	if err != nil {
		return "", err
	}
	c, err := field(r, "computer_id")
	if err != nil {
		return "", err
	}
	if err := authorizeComputer(r, c); err != nil {
		return "", err
	}
	return "OK", m.tx(r.Context(), func(tx *txn) error {
		_, err := tx.Exec(`DELETE FROM software WHERE url=? AND computer_reference=?`, u, c)
		return err
	})
}

// reportSoftware records what a node reports about a software release
// (slapproxy ignores it; slapnode shows it in list and info).
func (m *Master) reportSoftware(state string) slapHandler {
	return func(r *http.Request) (string, error) {
		u, err := field(r, "url")
		if err != nil {
			return "", err
		}
		c, err := field(r, "computer_id")
		if err != nil {
			return "", err
		}
		if err := authorizeComputer(r, c); err != nil {
			return "", err
		}
		log := r.Form.Get("error_log")
		return "Ignored", m.tx(r.Context(), func(tx *txn) error {
			_, err := tx.execUnseen(`UPDATE software SET reported_state=?, error_log=? WHERE url=? AND computer_reference=?`, state, log, u, c)
			return err
		})
	}
}

// partitionArgs reads computer_id and computer_partition_id and checks the
// caller may act for that partition.
func partitionArgs(r *http.Request) (string, string, error) {
	c, err := field(r, "computer_id")
	if err != nil {
		return "", "", err
	}
	p, err := field(r, "computer_partition_id")
	if err != nil {
		return "", "", err
	}
	return c, p, authorizePartition(r, c, p)
}

func (m *Master) reportPartition(state string) slapHandler {
	return func(r *http.Request) (string, error) {
		c, p, err := partitionArgs(r)
		if err != nil {
			return "", err
		}
		log := r.Form.Get("error_log")
		return "Ignored", m.tx(r.Context(), func(tx *txn) error {
			_, err := tx.execUnseen(`UPDATE partition SET reported_state=?, error_log=? WHERE reference=? AND computer_reference=?`, state, log, p, c)
			return err
		})
	}
}

func (m *Master) setConnectionXML(r *http.Request) (string, error) {
	c, p, err := partitionArgs(r)
	if err != nil {
		return "", err
	}
	params, err := marshalledDict(r, "connection_xml")
	if err != nil {
		return "", err
	}
	doc, err := slap.DictToXML(params)
	if err != nil {
		return "", errorf(http.StatusBadRequest, "connection parameters: %v", err)
	}
	slave := optional(r, "slave_reference")
	return "done", m.tx(r.Context(), func(tx *txn) error {
		if slave == "" {
			res, err := tx.Exec(`UPDATE partition SET connection_xml=? WHERE reference=? AND computer_reference=?`, doc, p, c)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				return errorf(http.StatusNotFound, "unknown partition %q on computer %q", p, c)
			}
			return nil
		}
		// slapproxy matches the shared instance on its reference alone;
		// with authentication, only the partition hosting it may publish.
		where, args := `reference=?`, []any{slave}
		if scoped(r) {
			where, args = `reference=? AND computer_reference=? AND hosted_by=?`, []any{slave, c, p}
		}
		res, err := tx.Exec(`UPDATE slave SET connection_xml=?, hosted_by=? WHERE `+where, append([]any{doc, p}, args...)...)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errorf(http.StatusNotFound, "partition %q on %q hosts no shared instance %q", p, c, slave)
		}
		return nil
	})
}

func (m *Master) bang(r *http.Request) (string, error) {
	c, pid, err := partitionArgs(r)
	if err != nil {
		return "", err
	}
	return "OK", m.tx(r.Context(), func(tx *txn) error {
		p, err := mustPartition(tx, c, pid)
		if err != nil {
			return err
		}
		if p.SlapState == "free" {
			return errorf(http.StatusNotFound, "partition %q on %q hosts no instance", pid, c)
		}
		return bangTree(tx, p.rootTitle(), m.timestamp())
	})
}

// bangTree makes the whole tree of root be processed again: one new
// timestamp for the root and every instance it requested.
func bangTree(tx *txn, root string, ts float64) error {
	_, err := tx.Exec(`UPDATE partition SET timestamp=? WHERE slap_state='busy' AND ((partition_reference=? AND requested_by='') OR requested_by=?)`, ts, root, root)
	return err
}

func (m *Master) rename(r *http.Request) (string, error) {
	c, pid, err := partitionArgs(r)
	if err != nil {
		return "", err
	}
	name, err := field(r, "new_name")
	if err != nil {
		return "", err
	}
	if name == "" {
		return "", errorf(http.StatusBadRequest, "new_name is empty")
	}
	return "done", m.tx(r.Context(), func(tx *txn) error {
		p, err := mustPartition(tx, c, pid)
		if err != nil {
			return err
		}
		if p.SlapState == "free" {
			return errorf(http.StatusNotFound, "partition %q on %q hosts no instance to rename", pid, c)
		}
		return renameInstance(tx, p, name)
	})
}

func renameInstance(tx *txn, p *partitionRow, name string) error {
	if other, err := queryPartition(tx, `slap_state='busy' AND partition_reference=? AND requested_by=?`, name, p.RequestedBy); err != nil {
		return err
	} else if other != nil {
		return errorf(http.StatusConflict, "an instance named %q already exists in this tree (partition %s)", name, other.Reference)
	}
	if _, err := tx.Exec(`UPDATE partition SET partition_reference=? WHERE reference=? AND computer_reference=?`, name, p.Reference, p.Computer); err != nil {
		return err
	}
	if p.RequestedBy == "" {
		_, err := tx.Exec(`UPDATE partition SET requested_by=? WHERE requested_by=?`, name, p.Title.String)
		return err
	}
	return nil
}

func (m *Master) destroyedComputerPartition(r *http.Request) (string, error) {
	c, pid, err := partitionArgs(r)
	if err != nil {
		return "", err
	}
	var out string
	err = m.tx(r.Context(), func(tx *txn) error {
		out, err = freePartition(tx, c, pid)
		return err
	})
	return out, err
}

// freePartition is slapproxy's freePartitionFromDB: a root whose children
// still exist is not freed — they are asked to be destroyed first, and the
// answer (a 200, as slapproxy's) says so.
func freePartition(tx *txn, c, pid string) (string, error) {
	p, err := queryPartition(tx, `reference=? AND computer_reference=?`, pid, c)
	if err != nil {
		return "", err
	}
	if p == nil {
		return fmt.Sprintf("Unknown partition %s on %s", slap.PyRepr(pid), slap.PyRepr(c)), nil
	}
	if p.SlapState == "busy" && p.RequestedBy == "" {
		children, err := queryPartitions(tx, `slap_state='busy' AND requested_by=?`, p.Title.String)
		if err != nil {
			return "", err
		}
		if len(children) > 0 {
			names := make([]string, len(children))
			for i, ch := range children {
				names[i] = ch.Title.String
			}
			if _, err := tx.Exec(`UPDATE partition SET requested_state='destroyed' WHERE slap_state='busy' AND requested_by=?`, p.Title.String); err != nil {
				return "", err
			}
			return "Not destroying yet because this partition has child partitions: " + strings.Join(names, ", "), nil
		}
	}
	// The instance's certificate ends with it (pki.go).
	if _, err := tx.Exec(`UPDATE certificate SET revoked=?, key='' WHERE revoked='' AND scope='partition' AND computer_reference=? AND partition_reference=?`,
		time.Now().UTC().Format(time.RFC3339), c, pid); err != nil {
		return "", err
	}
	_, err = tx.Exec(`UPDATE partition SET slap_state='free', software_release=NULL, xml=NULL, connection_xml=NULL,
		slave_instance_list=NULL, software_type=NULL, partition_reference=NULL, requested_by='', requested_state='started',
		timestamp=NULL, reported_state='', error_log='' WHERE reference=? AND computer_reference=?`, pid, c)
	return "OK", err
}

// instanceRequest is a requestComputerPartition, from the SLAP form or the
// JSON API.
type instanceRequest struct {
	RequesterComputer, RequesterPartition string
	SoftwareURL, SoftwareType, Title      string
	Params, Filter                        map[string]any
	State                                 string // "" keeps the current state
	Shared                                bool
}

func (m *Master) requestComputerPartition(r *http.Request, raw []byte) ([]byte, error) {
	// The same request, unchanged, gets the same answer until the
	// database changes. The key is the request as sent — its form, before
	// any parsing, and what decides how it parses — so that a re-request
	// costs neither parsing nor decoding; the requester its form names is
	// kept with the answer, and the caller's credential is checked against
	// it as it would be against the parsed form.
	key := cacheKey("request", r.Header.Get("Content-Type"), r.URL.RawQuery, string(raw))
	if a, ok, err := m.lookup(key); err != nil {
		return nil, err
	} else if ok {
		if err := authorizeRequester(r, a.computer, a.partition); err != nil {
			return nil, err
		}
		return a.body, nil
	}
	if err := parseForm(r); err != nil {
		return nil, err
	}
	for _, f := range []string{"software_release", "partition_reference"} {
		if _, err := field(r, f); err != nil {
			return nil, err
		}
	}
	rc, rp := optional(r, "computer_id"), optional(r, "computer_partition_id")
	if err := authorizeRequester(r, rc, rp); err != nil {
		return nil, err
	}
	a, err := m.cachedFull(r.Context(), key, func(tx *txn) (cachedAnswer, error) {
		q, err := parseRequest(r)
		if err != nil {
			return cachedAnswer{}, err
		}
		inst, err := m.requestIn(tx, q)
		if err != nil {
			return cachedAnswer{}, err
		}
		b, err := marshal(inst.Object())
		return cachedAnswer{body: b, computer: rc, partition: rp}, err
	})
	return a.body, err
}

// authorizeRequester checks that the caller may request as the requester
// a requestComputerPartition names: a partition (its children), or nobody
// (an operator's request).
func authorizeRequester(r *http.Request, computer, partition string) error {
	if computer != "" || partition != "" {
		return authorizePartition(r, computer, partition)
	}
	return authorizeAdmin(r)
}

// parseRequest reads a requestComputerPartition's form.
func parseRequest(r *http.Request) (instanceRequest, error) {
	var q instanceRequest
	var err error
	if q.SoftwareURL, err = field(r, "software_release"); err != nil {
		return q, err
	}
	if q.Title, err = field(r, "partition_reference"); err != nil {
		return q, err
	}
	if q.Title == "" {
		return q, errorf(http.StatusBadRequest, "partition_reference (the instance's title) is empty")
	}
	q.SoftwareType = r.Form.Get("software_type")
	q.RequesterComputer, q.RequesterPartition = optional(r, "computer_id"), optional(r, "computer_partition_id")
	if q.Params, err = marshalledDict(r, "partition_parameter_xml"); err != nil {
		return q, err
	}
	if q.Filter, err = marshalledDict(r, "filter_xml"); err != nil {
		return q, err
	}
	st, err := marshalled(r, "state", nil)
	if err != nil {
		return q, err
	}
	switch s := st.(type) {
	case nil:
	case string:
		q.State = s
	default:
		return q, errorf(http.StatusBadRequest, "field \"state\": expected a marshalled string or None, got %T", st)
	}
	sh, err := marshalled(r, "shared_xml", false)
	if err != nil {
		return q, err
	}
	if b, ok := sh.(bool); ok {
		q.Shared = b
	} else if sh != nil {
		return q, errorf(http.StatusBadRequest, "field \"shared_xml\": expected a marshalled bool, got %T", sh)
	}
	return q, nil
}

var validStates = map[string]bool{slap.StateStarted: true, slap.StateStopped: true, slap.StateDestroyed: true}

// request allocates or updates an instance, as slapproxy's
// requestNotSlave and requestSlave do.
func (m *Master) request(ctx context.Context, q instanceRequest) (*slap.SoftwareInstance, error) {
	var out *slap.SoftwareInstance
	err := m.tx(ctx, func(tx *txn) error {
		var err error
		out, err = m.requestIn(tx, q)
		return err
	})
	return out, err
}

// requestIn is request within the call's transaction.
func (m *Master) requestIn(tx *txn, q instanceRequest) (*slap.SoftwareInstance, error) {
	if q.State != "" && !validStates[q.State] {
		return nil, errorf(http.StatusBadRequest, "state %q: request an instance as started, stopped or destroyed", q.State)
	}
	if q.SoftwareURL == "" {
		return nil, errorf(http.StatusBadRequest, "software_release is empty")
	}
	requestedBy := ""
	if q.RequesterComputer != "" || q.RequesterPartition != "" {
		p, err := queryPartition(tx, `reference=? AND computer_reference=? AND slap_state='busy'`, q.RequesterPartition, q.RequesterComputer)
		if err != nil {
			return nil, err
		}
		if p == nil {
			return nil, errorf(http.StatusNotFound, "requesting partition %q on computer %q hosts no instance", q.RequesterPartition, q.RequesterComputer)
		}
		requestedBy = p.rootTitle()
	}
	computer, _ := q.Filter["computer_guid"].(string)
	if computer == "" {
		computer = m.opts.DefaultComputer
	}
	if q.Shared {
		return m.requestShared(tx, q, requestedBy, computer)
	}
	return m.requestInstance(tx, q, requestedBy, computer)
}

func (m *Master) requestInstance(tx *txn, q instanceRequest, requestedBy, computer string) (*slap.SoftwareInstance, error) {
	typ := q.SoftwareType
	if typ == "" {
		typ = "default"
	}
	doc, err := slap.DictToXML(q.Params)
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "parameters: %v", err)
	}
	state := q.State
	p, err := queryPartition(tx, `slap_state='busy' AND partition_reference=? AND requested_by=?`, q.Title, requestedBy)
	if err != nil {
		return nil, err
	}
	isNew := p == nil
	if isNew {
		p, err = queryPartition(tx, `slap_state='free' AND computer_reference=?`, computer)
		if err != nil {
			return nil, err
		}
		if p == nil {
			return nil, errorf(http.StatusNotFound, "No free computer partition found for: %s", q.Title)
		}
	} else if requestedBy != "" {
		// A child follows its root's state once the root is no longer
		// started, the next time it is requested — except that a child
		// asked to be destroyed stays so under a merely stopped root.
		root, err := queryPartition(tx, `slap_state='busy' AND partition_reference=? AND requested_by=''`, requestedBy)
		if err != nil {
			return nil, err
		}
		if root != nil && root.RequestedState != slap.StateStarted &&
			!(root.RequestedState == slap.StateStopped && state == slap.StateDestroyed) {
			state = root.RequestedState
		}
	}
	if state == "" {
		state = p.RequestedState
	}
	changed := isNew || state != p.RequestedState || q.SoftwareURL != p.SoftwareRelease.String ||
		typ != p.SoftwareType.String || !p.XML.Valid || doc != p.XML.String
	ts := p.Timestamp
	if changed {
		ts = sql.NullFloat64{Float64: m.timestamp(), Valid: true}
	}
	if changed {
		if _, err := tx.Exec(`UPDATE partition SET slap_state='busy', software_release=?, software_type=?, partition_reference=?,
			requested_by=?, xml=?, requested_state=?, timestamp=? WHERE reference=? AND computer_reference=?`,
			q.SoftwareURL, typ, q.Title, requestedBy, doc, state, ts, p.Reference, p.Computer); err != nil {
			return nil, err
		}
	}
	conn, err := xmlDict(p.Connection)
	if err != nil {
		return nil, err
	}
	params, err := slap.XMLToDict(doc)
	if err != nil {
		return nil, err
	}
	params["timestamp"] = tsString(ts)
	ips, err := ipList(tx, p.Computer, p.Reference)
	if err != nil {
		return nil, err
	}
	inst := &slap.SoftwareInstance{
		ConnectionDict: conn, InstanceGUID: p.Computer + "-" + p.Reference, ParameterDict: params,
		RequestedState: state, IPList: ips, ComputerID: p.Computer, PartitionID: p.Reference,
		ServerURL: "slap_server_url", SoftwareURL: q.SoftwareURL, SoftwareType: typ,
	}
	if p.Connection.Valid {
		s := p.Connection.String
		inst.ConnectionXML = &s
	}
	return inst, nil
}

func (m *Master) requestShared(tx *txn, q instanceRequest, requestedBy, computer string) (*slap.SoftwareInstance, error) {
	where := `slap_state='busy' AND software_release=? AND computer_reference=?`
	args := []any{q.SoftwareURL, computer}
	if q.SoftwareType != "" {
		where += ` AND software_type=?`
		args = append(args, q.SoftwareType)
	}
	if guid, _ := q.Filter["instance_guid"].(string); guid != "" {
		where += ` AND computer_reference || '-' || reference = ?`
		args = append(args, guid)
	}
	host, err := queryPartition(tx, where, args...)
	if err != nil {
		return nil, err
	}
	if host == nil {
		return nil, errorf(http.StatusNotFound, "No partition corresponding to slave request: %s", slap.PyRepr(args))
	}
	ref := requestedBy + "_" + q.Title
	slaves, err := host.slaves()
	if err != nil {
		return nil, err
	}
	before, err := dumps(slaves)
	if err != nil {
		return nil, err
	}
	entry := map[string]any{}
	for k, v := range q.Params {
		entry[k] = v
	}
	entry["slave_title"] = ref
	entry["slap_software_type"] = q.SoftwareType
	entry["slave_reference"] = ref
	updated := make([]any, 0, len(slaves)+1)
	found := false
	for _, s := range slaves {
		if sm, ok := s.(map[string]any); ok && sm["slave_reference"] == ref {
			found = true
			if q.State != slap.StateDestroyed {
				updated = append(updated, entry)
			}
			continue
		}
		updated = append(updated, s)
	}
	if !found && q.State != slap.StateDestroyed {
		updated = append(updated, entry)
	}
	after, err := dumps(updated)
	if err != nil {
		return nil, err
	}
	if after != before {
		if _, err := tx.Exec(`UPDATE partition SET slave_instance_list=?, timestamp=? WHERE reference=? AND computer_reference=?`,
			after, m.timestamp(), host.Reference, host.Computer); err != nil {
			return nil, err
		}
	}
	var conn sql.NullString
	err = tx.QueryRow(`SELECT connection_xml FROM slave WHERE reference=? AND computer_reference=? ORDER BY rowid LIMIT 1`, ref, computer).Scan(&conn)
	if errors.Is(err, sql.ErrNoRows) {
		if _, err := tx.Exec(`INSERT INTO slave (reference, computer_reference, hosted_by, asked_by) VALUES (?, ?, ?, ?)`,
			ref, computer, host.Reference, requestedBy); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, err
	}
	connDict, err := xmlDict(conn)
	if err != nil {
		return nil, err
	}
	ips, err := ipList(tx, host.Computer, host.Reference)
	if err != nil {
		return nil, err
	}
	params := map[string]any{}
	for k, v := range q.Params {
		params[k] = v
	}
	return &slap.SoftwareInstance{
		Shared: true, ConnectionDict: connDict, ParameterDict: params, IPList: ips,
		ComputerID: host.Computer, PartitionID: host.Reference, ServerURL: "slap_server_url",
		SoftwareURL: q.SoftwareURL, SoftwareType: q.SoftwareType,
	}, nil
}
