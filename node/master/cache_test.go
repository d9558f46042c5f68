package master

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slapnode/slapnode/node/slap"
)

// readCalls are the calls whose answers the master caches, with the
// arguments a scenario uses: every computer and partition document and
// the re-request of every instance requested so far, as it was last sent.
type readCalls struct {
	partitions []string
	requests   []slap.Request
}

// raw sends one SLAP call and returns its status and body as they are.
func raw(t *testing.T, srv *httptest.Server, method, path string, form url.Values) (int, string) {
	t.Helper()
	var req *http.Request
	var err error
	if method == http.MethodGet {
		req, err = http.NewRequest(method, srv.URL+path+"?"+form.Encode(), nil)
	} else {
		req, err = http.NewRequest(method, srv.URL+path, strings.NewReader(form.Encode()))
		if req != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func requestForm(r slap.Request) url.Values {
	typ := r.SoftwareType
	if typ == "" {
		typ = "default"
	}
	params := r.Parameters
	if params == nil {
		params = map[string]any{}
	}
	filter := r.Filter
	if filter == nil {
		filter = map[string]any{}
	}
	var state any
	if r.State != "" {
		state = r.State
	}
	f := url.Values{
		"software_release": {r.SoftwareURL}, "partition_reference": {r.Reference}, "software_type": {typ},
		"partition_parameter_xml": {string(slap.MustMarshal(params))}, "filter_xml": {string(slap.MustMarshal(filter))},
		"state": {string(slap.MustMarshal(state))}, "shared_xml": {string(slap.MustMarshal(r.Shared))},
	}
	if r.ComputerID != "" || r.PartitionID != "" {
		f.Set("computer_id", r.ComputerID)
		f.Set("computer_partition_id", r.PartitionID)
	}
	return f
}

// calls returns every cached call, each returning its status and answer.
func (rc *readCalls) calls(t *testing.T, srv *httptest.Server) []func() string {
	t.Helper()
	do := func(method, path string, form url.Values) func() string {
		return func() string {
			status, body := raw(t, srv, method, path, form)
			return fmt.Sprintf("%s %d %s", path, status, body)
		}
	}
	out := []func() string{do(http.MethodGet, "/getFullComputerInformation", url.Values{"computer_id": {comp}})}
	for _, p := range rc.partitions {
		out = append(out, do(http.MethodGet, "/registerComputerPartition", url.Values{"computer_reference": {comp}, "computer_partition_reference": {p}}))
	}
	for _, r := range rc.requests {
		out = append(out, do(http.MethodPost, "/requestComputerPartition", requestForm(r)))
	}
	return out
}

func (rc *readCalls) request(r slap.Request) {
	for i, q := range rc.requests {
		if q.Reference == r.Reference && q.PartitionID == r.PartitionID && q.Shared == r.Shared {
			rc.requests[i] = r
			return
		}
	}
	rc.requests = append(rc.requests, r)
}

// TestAnswerCacheMatchesDatabase runs a whole life — format, supply,
// requests of roots, children and shared instances, connection parameters,
// reports, bang, rename, usage, destruction, reformatting, a token made by
// another connection — and after each step checks that every answer the
// master may have cached is the answer it computes afresh from the
// database.
func TestAnswerCacheMatchesDatabase(t *testing.T) {
	m := openTest(t, Options{DefaultComputer: comp})
	m.versionEvery = 0 // every call asks (TestAnswerCacheSeesOtherWritersInTime tests the delay)
	c, srv := startMaster(t, m)
	ctx := context.Background()
	rc := &readCalls{partitions: []string{"slappart0", "slappart1", "slappart2", "slappart3"}}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	req := func(r slap.Request) {
		t.Helper()
		_, err := c.Request(ctx, r)
		must(err)
		rc.request(r)
	}
	steps := []struct {
		name string
		do   func()
	}{
		{"format", func() { must(c.LoadComputerConfiguration(ctx, formatConfig(4))) }},
		{"supply", func() { must(c.Supply(ctx, sr, comp, "")) }},
		{"request root", func() { req(slap.Request{SoftwareURL: sr, Reference: "root", Parameters: map[string]any{"n": 1}}) }},
		{"connection parameters", func() {
			must(c.SetConnectionParameters(ctx, comp, "slappart0", "", map[string]any{"url": "http://x/"}))
		}},
		{"started", func() { must(c.Started(ctx, comp, "slappart0")) }},
		{"instance error", func() { must(c.InstanceError(ctx, comp, "slappart0", "boom", "")) }},
		{"software available", func() { must(c.AvailableSoftwareRelease(ctx, sr, comp)) }},
		{"change root", func() { req(slap.Request{SoftwareURL: sr, Reference: "root", Parameters: map[string]any{"n": 2}}) }},
		{"request child", func() {
			req(slap.Request{ComputerID: comp, PartitionID: "slappart0", SoftwareURL: sr, SoftwareType: "kid", Reference: "child"})
		}},
		{"stop root", func() {
			req(slap.Request{SoftwareURL: sr, Reference: "root", State: "stopped", Parameters: map[string]any{"n": 2}})
		}},
		{"re-request child under a stopped root", func() {
			req(slap.Request{ComputerID: comp, PartitionID: "slappart0", SoftwareURL: sr, SoftwareType: "kid", Reference: "child"})
		}},
		{"shared", func() {
			req(slap.Request{SoftwareURL: sr, SoftwareType: "default", Reference: "front", Shared: true,
				Parameters: map[string]any{"p": "1"}, Filter: map[string]any{"instance_guid": comp + "-slappart0"}})
		}},
		{"shared connection", func() {
			must(c.SetConnectionParameters(ctx, comp, "slappart0", "_front", map[string]any{"u": "v"}))
		}},
		{"bang", func() { must(c.Bang(ctx, comp, "slappart1", "again")) }},
		{"rename", func() { must(c.Rename(ctx, comp, "slappart0", "root2")) }},
		{"usage", func() {
			must(c.UseComputer(ctx, comp, `<?xml version='1.0' encoding='utf-8'?><journal><transaction type="Sale Packing List"><title>u</title><start_date>a</start_date><stop_date>b</stop_date><reference>slappart0</reference><currency/><payment_mode/><category/><arrow type="Destination"/><movement><resource>CPU Consumption</resource><title>cpu</title><reference>slappart0</reference><quantity>1.5</quantity><price>0</price><VAT/><category/></movement></transaction></journal>`))
		}},
		{"token from another connection", func() {
			// As `slapnode master token` does while the master runs.
			other, err := sql.Open("sqlite", "file:"+dbPath(t, m))
			must(err)
			defer other.Close()
			_, err = other.Exec(`INSERT INTO credential (token_hash, scope, created) VALUES ('x', 'admin', 'now')`)
			must(err)
		}},
		{"parameters changed by another connection", func() {
			other, err := sql.Open("sqlite", "file:"+dbPath(t, m))
			must(err)
			defer other.Close()
			_, err = other.Exec(`UPDATE partition SET xml=? WHERE reference='slappart1'`, "<?xml version='1.0' encoding='utf-8'?>\n<instance>\n  <parameter id=\"edited\">yes</parameter>\n</instance>\n")
			must(err)
		}},
		{"destroy child", func() {
			_, err := c.Destroyed(ctx, comp, "slappart1")
			must(err)
			// Requesting it again would allocate it anew: a change, not
			// a read.
			rc.requests = slices.DeleteFunc(rc.requests, func(r slap.Request) bool { return r.Reference == "child" })
		}},
		{"reformat", func() {
			must(c.LoadComputerConfiguration(ctx, formatConfig(3)))
			rc.partitions = rc.partitions[:3]
		}},
	}
	for _, st := range steps {
		for _, call := range rc.calls(t, srv) {
			call() // fills the cache with what the step may change
		}
		st.do()
		// Each answer, as served, against the same call made again with
		// the cache emptied just before. A re-request may itself change
		// the database (a child follows its stopped root): made fresh the
		// first time, it changes nothing the second time and both answers
		// agree; served stale the first time, the second one differs.
		for _, call := range rc.calls(t, srv) {
			got := call()
			m.mu.Lock()
			m.cache.invalidate()
			m.mu.Unlock()
			if want := call(); got != want {
				t.Fatalf("after %q, an answer was served from a stale cache:\n got %s\nwant %s", st.name, got, want)
			}
		}
	}
	// The cache was used at all: the same reads, twice, hit it.
	m.mu.Lock()
	n := len(m.cache.answers)
	m.mu.Unlock()
	if n == 0 {
		t.Error("nothing cached")
	}
}

func dbPath(t *testing.T, m *Master) string {
	var seq int
	var name, file string
	if err := m.db.QueryRow(`PRAGMA database_list`).Scan(&seq, &name, &file); err != nil {
		t.Fatal(err)
	}
	return file
}

// A node registering again what it registered before writes nothing and
// keeps the cached answers; any difference is written.
func TestReformatUnchangedWritesNothing(t *testing.T) {
	m := openTest(t, Options{DefaultComputer: comp})
	c, _ := startMaster(t, m)
	ctx := context.Background()
	if err := c.LoadComputerConfiguration(ctx, formatConfig(3)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.FullComputerInformation(ctx, comp); err != nil {
		t.Fatal(err)
	}
	cached := func() int {
		m.mu.Lock()
		defer m.mu.Unlock()
		return len(m.cache.answers)
	}
	if cached() != 1 {
		t.Fatalf("%d answers cached, want the computer's", cached())
	}
	if err := c.LoadComputerConfiguration(ctx, formatConfig(3)); err != nil {
		t.Fatal(err)
	}
	if cached() != 1 {
		t.Error("registering the same configuration again emptied the cache")
	}
	cfg := formatConfig(3)
	cfg.Partitions[1].Addresses[0].Addr = "10.0.9.9"
	if err := c.LoadComputerConfiguration(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if cached() != 0 {
		t.Error("a changed configuration kept the cached answers")
	}
	var addr string
	if err := m.db.QueryRow(`SELECT address FROM partition_network WHERE partition_reference='slappart1'`).Scan(&addr); err != nil || addr != "10.0.9.9" {
		t.Errorf("changed address not registered: %q %v", addr, err)
	}
}

// Another process's commit is seen within dataVersionEvery.
func TestAnswerCacheSeesOtherWritersInTime(t *testing.T) {
	m := openTest(t, Options{DefaultComputer: comp})
	c, _ := startMaster(t, m)
	ctx := context.Background()
	if err := c.LoadComputerConfiguration(ctx, formatConfig(2)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Request(ctx, slap.Request{SoftwareURL: sr, Reference: "a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.FullComputerInformation(ctx, comp); err != nil {
		t.Fatal(err)
	}
	other, err := sql.Open("sqlite", "file:"+dbPath(t, m))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.Exec(`UPDATE partition SET xml=? WHERE reference='slappart0'`, "<?xml version='1.0' encoding='utf-8'?>\n<instance>\n  <parameter id=\"edited\">yes</parameter>\n</instance>\n"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(dataVersionEvery + 100*time.Millisecond)
	info, err := c.FullComputerInformation(ctx, comp)
	if err != nil {
		t.Fatal(err)
	}
	if v := info.Partitions[0].ParameterDict["edited"]; v != "yes" {
		t.Fatalf("%s after another connection's commit, the cached document is still served (edited = %v)", dataVersionEvery, v)
	}
}

// A re-request found in the cache by its body is authorised as the parsed
// form would be: the same bytes sent with another partition's credential
// are refused, although the operator's identical call was cached.
func TestCachedRequestKeepsAuthorisation(t *testing.T) {
	m := openTest(t, Options{DefaultComputer: comp})
	_, srv := startMaster(t, m)
	ctx := context.Background()
	admin, _ := startMaster(t, m)
	if err := admin.LoadComputerConfiguration(ctx, formatConfig(3)); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Request(ctx, slap.Request{SoftwareURL: sr, Reference: "root"}); err != nil {
		t.Fatal(err)
	}
	child := requestForm(slap.Request{ComputerID: comp, PartitionID: "slappart0", SoftwareURL: sr, Reference: "kid"})
	body := child.Encode()
	send := func(token string) (int, string) {
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/requestComputerPartition", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// The operator (this process's user) requests the child twice: the
	// second answer is the cached one.
	for i := 0; i < 2; i++ {
		if status, b := send(""); status != http.StatusOK {
			t.Fatalf("operator's request: %d %s", status, b)
		}
	}
	// Making credentials keeps the cache: they are in no answer.
	other, err := m.CreateCredential(ctx, ScopePartition, comp, "slappart2")
	if err != nil {
		t.Fatal(err)
	}
	own, err := m.CreateCredential(ctx, ScopePartition, comp, "slappart0")
	if err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	cached := len(m.cache.answers)
	m.mu.Unlock()
	if cached == 0 {
		t.Fatal("the operator's re-request was not cached, or making a credential emptied the cache")
	}
	if status, b := send(other); status != http.StatusForbidden {
		t.Fatalf("another partition's credential, same body as a cached request: %d %s", status, b)
	}
	if status, b := send(own); status != http.StatusOK {
		t.Fatalf("the requesting partition's own credential: %d %s", status, b)
	}
}
