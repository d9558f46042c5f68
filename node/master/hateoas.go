package master

import (
	"database/sql"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/slapnode/slapnode/node/slap"
)

// The HATEOAS API, as slapproxy serves it under /hateoas/: the few
// documents SlapOS's client navigates for `slapos service list`, `service
// info NAME`, `computer list` and `computer info ID` (slapos/slap/hateoas.py
// reads them). The client finds it through master_rest_url, or through
// getHateoasUrl when the master advertises it (Options.AdvertiseHATEOAS),
// as a SlapOS Master does.

// The queries those commands send, exactly (slapos/slap/hateoas.py).
const (
	queryServiceList  = `portal_type:"Instance Tree" AND validation_state:validated`
	queryServiceInfo  = queryServiceList + ` AND title:=`
	queryComputerList = `portal_type:"Compute Node" AND validation_state:validated`
	queryComputerInfo = queryComputerList + ` AND reference:=`
)

// quotedRe is one double-quoted string, backslash escapes allowed.
var quotedRe = regexp.MustCompile(`^"((?:\\.|[^\\"])*)"$`)

func (m *Master) routeHATEOAS(mux *http.ServeMux) {
	mux.HandleFunc("GET /getHateoasUrl", func(w http.ResponseWriter, r *http.Request) {
		if !m.opts.AdvertiseHATEOAS {
			htmlError(w, http.StatusNotFound, notFoundMsg)
			return
		}
		if err := authorizeRead(r); err != nil {
			writeStatusError(w, err)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte(baseURL(r) + "/hateoas/"))
	})
	mux.HandleFunc("GET /hateoas/{$}", m.hateoasRoot)
	mux.HandleFunc("GET /hateoas/partitions/{title}", m.hateoasDoc(m.hateoasPartition))
	mux.HandleFunc("GET /hateoas/shared/{title}", m.hateoasDoc(m.hateoasShared))
	mux.HandleFunc("GET /hateoas/computers/{reference}", m.hateoasDoc(m.hateoasComputer))
}

// baseURL is the master's URL as the client reached it: through a TLS
// front, the scheme the front says it was reached by (X-Forwarded-Proto,
// as slapproxy's ProxyFix reads it; only a link is built from it).
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	} else if p := r.Header.Get("X-Forwarded-Proto"); p == "https" {
		scheme = p
	}
	return scheme + "://" + r.Host
}

func writeStatusError(w http.ResponseWriter, err error) {
	var se *statusError
	if errors.As(err, &se) {
		htmlError(w, se.status, se.msg)
		return
	}
	htmlError(w, http.StatusInternalServerError, "The master could not complete the request: "+err.Error())
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// hateoasRoot answers the root document, or a search, or a traversal.
func (m *Master) hateoasRoot(w http.ResponseWriter, r *http.Request) {
	if err := authorizeAdmin(r); err != nil {
		writeStatusError(w, err)
		return
	}
	q := r.URL.Query()
	switch mode := q.Get("mode"); mode {
	case "":
		base := baseURL(r) + "/hateoas/"
		writeJSON(w, map[string]any{"_links": map[string]any{
			"raw_search": map[string]string{"href": base + "?mode=search&query={query}&select_list={select_list}"},
			"traverse":   map[string]string{"href": base + "?mode=traverse&relative_url={relative_url}&view={view}"},
		}})
	case "search":
		var contents []map[string]any
		err := m.tx(r.Context(), func(tx *txn) (err error) {
			contents, err = m.hateoasSearch(tx, r, q.Get("query"))
			return err
		})
		if err != nil {
			writeStatusError(w, err)
			return
		}
		writeJSON(w, map[string]any{"_embedded": map[string]any{"contents": contents}})
	case "traverse":
		rel := q.Get("relative_url")
		if !strings.HasPrefix(rel, "/hateoas/") || strings.Contains(rel, "..") || strings.Contains(rel, "//") {
			htmlError(w, http.StatusBadRequest, "relative_url must be a document of this master's /hateoas/")
			return
		}
		http.Redirect(w, r, rel, http.StatusFound)
	default:
		htmlError(w, http.StatusBadRequest, "Unhandled mode: "+mode)
	}
}

// hateoasSearch answers the four queries SlapOS's client sends.
func (m *Master) hateoasSearch(tx *txn, r *http.Request, query string) ([]map[string]any, error) {
	arg := func(prefix string) (string, bool) {
		v, ok := strings.CutPrefix(query, prefix)
		if !ok {
			return "", false
		}
		sm := quotedRe.FindStringSubmatch(v)
		if sm == nil {
			return "", false
		}
		return strings.NewReplacer(`\"`, `"`, `\\`, `\`).Replace(sm[1]), true
	}
	out := []map[string]any{}
	switch {
	case query == queryServiceList:
		return m.instanceTrees(tx, "")
	case strings.HasPrefix(query, queryServiceInfo):
		if title, ok := arg(queryServiceInfo); ok {
			return m.instanceTrees(tx, title)
		}
	case query == queryComputerList:
		return computerRows(tx, "")
	case strings.HasPrefix(query, queryComputerInfo):
		if ref, ok := arg(queryComputerInfo); ok {
			return computerRows(tx, ref)
		}
	}
	return out, errorf(http.StatusBadRequest, "Unhandled query: %s", query)
}

// instanceTrees lists root instances: partitions first, then root shared
// instances (slapproxy's busy_root_partitions_list and
// busy_root_shared_list); with title, only that one (a partition first).
func (m *Master) instanceTrees(tx *txn, title string) ([]map[string]any, error) {
	where, args := `slap_state='busy' AND requested_by=''`, []any{}
	if title != "" {
		where += ` AND partition_reference=?`
		args = append(args, title)
	}
	parts, err := queryPartitions(tx, where, args...)
	if err != nil {
		return nil, err
	}
	out := []map[string]any{}
	for _, p := range parts {
		out = append(out, map[string]any{
			"title": p.Title.String, "url_string": p.SoftwareRelease.String, "reference": p.Reference,
			"computer_reference": p.Computer, "slap_state": p.RequestedState,
			"relative_url": "/hateoas/partitions/" + url.PathEscape(p.Title.String),
		})
	}
	if title != "" && len(out) > 0 {
		return out, nil
	}
	shared, err := rootShared(tx, title)
	if err != nil {
		return nil, err
	}
	for _, s := range shared {
		out = append(out, map[string]any{
			"title": s.title, "url_string": s.host.SoftwareRelease.String,
			"relative_url": "/hateoas/shared/" + url.PathEscape(s.title),
		})
	}
	return out, nil
}

type sharedRoot struct {
	title      string
	host       *partitionRow
	entry      map[string]any
	connection sql.NullString
}

// rootShared lists the shared instances requested by users (not by an
// instance) that a partition still hosts.
func rootShared(tx *txn, title string) ([]sharedRoot, error) {
	where, args := `asked_by=''`, []any{}
	if title != "" {
		where += ` AND reference=?`
		args = append(args, "_"+title)
	}
	rows, err := tx.Query(`SELECT reference, computer_reference, hosted_by, connection_xml FROM slave WHERE `+where+` ORDER BY rowid`, args...)
	if err != nil {
		return nil, err
	}
	type row struct {
		ref, computer string
		host          sql.NullString
		conn          sql.NullString
	}
	var list []row
	for rows.Next() {
		var x row
		if err := rows.Scan(&x.ref, &x.computer, &x.host, &x.conn); err != nil {
			rows.Close()
			return nil, err
		}
		list = append(list, x)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var out []sharedRoot
	for _, x := range list {
		host, err := queryPartition(tx, `reference=? AND computer_reference=? AND slap_state='busy'`, x.host.String, x.computer)
		if err != nil {
			return nil, err
		}
		if host == nil {
			continue
		}
		slaves, err := host.slaves()
		if err != nil {
			return nil, err
		}
		for _, s := range slaves {
			if e, ok := s.(map[string]any); ok && e["slave_reference"] == x.ref {
				out = append(out, sharedRoot{title: strings.TrimPrefix(x.ref, "_"), host: host, entry: e, connection: x.conn})
				break
			}
		}
	}
	return out, nil
}

func computerRows(tx *txn, reference string) ([]map[string]any, error) {
	where, args := `1`, []any{}
	if reference != "" {
		where, args = `c.reference=?`, []any{reference}
	}
	rows, err := tx.Query(`SELECT c.reference, c.address, c.netmask, COALESCE(r.title, '') FROM computer c
		LEFT JOIN registration r ON r.computer_reference=c.reference WHERE `+where+` ORDER BY c.rowid`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []map[string]any{}
	for rows.Next() {
		var ref, addr, mask, title string
		if err := rows.Scan(&ref, &addr, &mask, &title); err != nil {
			return nil, err
		}
		if title == "" {
			title = ref
		}
		out = append(out, map[string]any{"reference": ref, "title": title, "address": addr, "netmask": mask,
			"relative_url": "/hateoas/computers/" + url.PathEscape(ref)})
	}
	return out, rows.Err()
}

// hateoasDoc serves one document.
func (m *Master) hateoasDoc(get func(tx *txn, r *http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := authorizeAdmin(r); err != nil {
			writeStatusError(w, err)
			return
		}
		var doc any
		err := m.tx(r.Context(), func(tx *txn) (err error) {
			doc, err = get(tx, r)
			return err
		})
		if err != nil {
			writeStatusError(w, err)
			return
		}
		writeJSON(w, doc)
	}
}

func field3(typ, key string, def any) map[string]any {
	return map[string]any{"type": typ, "key": key, "default": def}
}

// serviceDocument is an instance tree as SlapOS's client reads it
// (my_slap_state is the requested state).
func serviceDocument(reference, state string, xml, connection any, software, softwareType string, shared int) map[string]any {
	return map[string]any{
		"_embedded": map[string]any{"_view": map[string]any{
			"form_id":                      field3("StringField", "form_id", "InstanceTree_viewAsHateoas"),
			"my_reference":                 field3("StringField", "field_my_reference", reference),
			"my_slap_state":                field3("StringField", "field_my_slap_state", state),
			"my_text_content":              field3("StringField", "field_my_text_content", xml),
			"my_connection_parameter_list": field3("StringField", "field_my_connection_parameter_list", connection),
			"my_url_string":                field3("StringField", "field_my_url_string", software),
			"my_source_reference":          field3("StringField", "field_my_source_reference", softwareType),
			"my_root_slave":                field3("IntegerField", "field_my_root_slave", shared),
		}},
		"_links": map[string]any{"type": map[string]string{"name": "Instance Tree"}},
	}
}

func nullable(s sql.NullString) any {
	if !s.Valid {
		return nil
	}
	return s.String
}

func (m *Master) hateoasPartition(tx *txn, r *http.Request) (any, error) {
	title := r.PathValue("title")
	// A root of that title first, as the tree it names.
	p, err := queryPartition(tx, `slap_state='busy' AND partition_reference=? AND requested_by=''`, title)
	if err == nil && p == nil {
		p, err = queryPartition(tx, `slap_state='busy' AND partition_reference=?`, title)
	}
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, errorf(http.StatusNotFound, "no instance named %q", title)
	}
	return serviceDocument(title, p.RequestedState, nullable(p.XML), nullable(p.Connection), p.SoftwareRelease.String, p.SoftwareType.String, 0), nil
}

func (m *Master) hateoasShared(tx *txn, r *http.Request) (any, error) {
	title := r.PathValue("title")
	list, err := rootShared(tx, title)
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, errorf(http.StatusNotFound, "no shared instance named %q", title)
	}
	s := list[0]
	params := map[string]any{}
	for k, v := range s.entry {
		if k != "slave_title" && k != "slave_reference" && k != "slap_software_type" {
			params[k] = v
		}
	}
	xml, err := slap.DictToXML(params)
	if err != nil {
		return nil, err
	}
	typ, _ := s.entry["slap_software_type"].(string)
	return serviceDocument(title, "unused", xml, nullable(s.connection), s.host.SoftwareRelease.String, typ, 1), nil
}

func (m *Master) hateoasComputer(tx *txn, r *http.Request) (any, error) {
	ref := r.PathValue("reference")
	rows, err := computerRows(tx, ref)
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, errorf(http.StatusNotFound, "no computer %q", ref)
	}
	return map[string]any{
		"_embedded": map[string]any{"_view": map[string]any{
			"form_id":      field3("StringField", "computer", ref),
			"my_reference": field3("StringField", "reference", ref),
			"my_title":     field3("StringField", "reference", rows[0]["title"]),
		}},
		"_links": map[string]any{"type": map[string]string{"name": "Computer"}},
	}, nil
}
