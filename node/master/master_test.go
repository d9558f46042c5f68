package master

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/slapnode/slapnode/node/slap"
)

const comp = "COMP-T"

// startMaster serves m on a loopback listener and returns a client for
// it.
func startMaster(t testing.TB, m *Master, opts ...slap.ClientOption) (*slap.Client, *httptest.Server) {
	t.Helper()
	srv := httptest.NewUnstartedServer(m.Handler())
	srv.Config.ConnContext = withConnPeer // as Serve does
	srv.Start()
	t.Cleanup(srv.Close)
	c, err := slap.NewClient(srv.URL, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c, srv
}

func formatConfig(n int) *slap.ComputerConfiguration {
	cfg := &slap.ComputerConfiguration{Reference: comp, Address: "10.0.0.1", Netmask: "255.255.255.0"}
	for i := 0; i < n; i++ {
		cfg.Partitions = append(cfg.Partitions, slap.PartitionConfiguration{
			Reference: fmt.Sprintf("slappart%d", i), TapName: fmt.Sprintf("tap%d", i),
			Addresses: []slap.Address{{Addr: fmt.Sprintf("10.0.1.%d", i+2), Netmask: "255.255.255.0"}},
		})
	}
	return cfg
}

const sr = "https://example.invalid/software.cfg"

func TestLifecycle(t *testing.T) {
	m := openTest(t, Options{DefaultComputer: comp})
	c, _ := startMaster(t, m)
	ctx := context.Background()
	if err := c.LoadComputerConfiguration(ctx, formatConfig(4)); err != nil {
		t.Fatal(err)
	}
	if err := c.Supply(ctx, sr, comp, ""); err != nil {
		t.Fatal(err)
	}
	root, err := c.Request(ctx, slap.Request{SoftwareURL: sr, Reference: "root", Parameters: map[string]any{"n": 3, "b": true}})
	if err != nil {
		t.Fatal(err)
	}
	if root.PartitionID != "slappart0" || root.ParameterDict["n"] != "3" || root.ParameterDict["b"] != "True" || root.RequestedState != "started" {
		t.Fatalf("root %+v", root)
	}
	// The node reads it, publishes connection parameters; the requester sees them.
	info, err := c.FullComputerInformation(ctx, comp)
	if err != nil {
		t.Fatal(err)
	}
	if p := info.Partitions[0]; p.InstanceTitle() != "root" || p.IPList()[0] != [2]string{"tap0", "10.0.1.2"} || info.SoftwareReleases[0].URL != sr {
		t.Fatalf("node view %+v", p)
	}
	if err := c.SetConnectionParameters(ctx, comp, "slappart0", "", map[string]any{"url": "http://x/"}); err != nil {
		t.Fatal(err)
	}
	again, err := c.Request(ctx, slap.Request{SoftwareURL: sr, Reference: "root", Parameters: map[string]any{"n": 3, "b": true}})
	if err != nil {
		t.Fatal(err)
	}
	if again.ConnectionDict["url"] != "http://x/" || again.ParameterDict["timestamp"] != root.ParameterDict["timestamp"] {
		t.Errorf("re-request %+v", again)
	}
	// A child, requested by the root's partition, and a grandchild.
	child, err := c.Request(ctx, slap.Request{ComputerID: comp, PartitionID: "slappart0", SoftwareURL: sr, SoftwareType: "child", Reference: "kid"})
	if err != nil {
		t.Fatal(err)
	}
	grand, err := c.Request(ctx, slap.Request{ComputerID: comp, PartitionID: child.PartitionID, SoftwareURL: sr, Reference: "grandkid"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.RegisterComputerPartition(ctx, comp, grand.PartitionID)
	if err != nil {
		t.Fatal(err)
	}
	if p.RootInstanceTitle() != "root" {
		t.Errorf("grandchild's root is %q", p.RootInstanceTitle())
	}
	// Renaming the root carries its tree along.
	if err := c.Rename(ctx, comp, "slappart0", "root2"); err != nil {
		t.Fatal(err)
	}
	if p, _ = c.RegisterComputerPartition(ctx, comp, child.PartitionID); p.RootInstanceTitle() != "root2" {
		t.Errorf("after rename, child's root is %q", p.RootInstanceTitle())
	}
	var he *slap.HTTPError
	if err := c.Rename(ctx, comp, child.PartitionID, "grandkid"); !errors.As(err, &he) || he.Status != http.StatusConflict {
		t.Errorf("rename onto an existing title: %v", err)
	}
	// Shared instance, hosted by the root only when its guid is asked for.
	if _, err := c.Request(ctx, slap.Request{SoftwareURL: sr, SoftwareType: "default", Reference: "front", Shared: true,
		Filter: map[string]any{"instance_guid": comp + "-slappart3"}}); !errors.Is(err, slap.ErrNotFound) {
		t.Errorf("shared request on a free partition: %v", err)
	}
	sh, err := c.Request(ctx, slap.Request{SoftwareURL: sr, SoftwareType: "default", Reference: "front", Shared: true,
		Parameters: map[string]any{"port": 8080}, Filter: map[string]any{"instance_guid": comp + "-slappart0"}})
	if err != nil {
		t.Fatal(err)
	}
	if !sh.Shared || sh.PartitionID != "slappart0" || sh.ParameterDict["port"] != 8080 {
		t.Errorf("shared %+v", sh)
	}
	if err := c.SetConnectionParameters(ctx, comp, "slappart0", "_front", map[string]any{"u": "v"}); err != nil {
		t.Fatal(err)
	}
	if err := c.SetConnectionParameters(ctx, comp, "slappart0", "_nothing", map[string]any{"u": "v"}); !errors.Is(err, slap.ErrNotFound) {
		t.Errorf("unknown shared reference: %v", err)
	}
	// Destroying the root waits for its children.
	if _, err := c.Request(ctx, slap.Request{SoftwareURL: sr, Reference: "root2", State: "destroyed", Parameters: map[string]any{"n": 3, "b": true}}); err != nil {
		t.Fatal(err)
	}
	msg, err := c.Destroyed(ctx, comp, "slappart0")
	if err != nil || msg != "Not destroying yet because this partition has child partitions: kid, grandkid" {
		t.Fatalf("destroying the root first: %q %v", msg, err)
	}
	for _, pid := range []string{child.PartitionID, grand.PartitionID, "slappart0"} {
		if msg, err := c.Destroyed(ctx, comp, pid); err != nil || msg != "OK" {
			t.Fatalf("destroying %s: %q %v", pid, msg, err)
		}
	}
	info, _ = c.FullComputerInformation(ctx, comp)
	for _, p := range info.Partitions {
		if p.SoftwareRelease != nil {
			t.Errorf("%s still busy", p.PartitionID)
		}
	}
	// Reformatting with fewer partitions drops the others.
	if err := c.LoadComputerConfiguration(ctx, formatConfig(2)); err != nil {
		t.Fatal(err)
	}
	if info, _ = c.FullComputerInformation(ctx, comp); len(info.Partitions) != 2 {
		t.Errorf("%d partitions after reformat", len(info.Partitions))
	}
}

// Bad input gets a 4xx that says what is wrong: never a 500.
func TestBadRequests(t *testing.T) {
	m := openTest(t, Options{DefaultComputer: comp})
	_, srv := startMaster(t, m)
	c, _ := slap.NewClient(srv.URL)
	if err := c.LoadComputerConfiguration(context.Background(), formatConfig(1)); err != nil {
		t.Fatal(err)
	}
	post := func(path string, form url.Values) (int, string) {
		resp, err := http.PostForm(srv.URL+path, form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, c := range []struct {
		path string
		form url.Values
		want int
		msg  string
	}{
		{"/requestComputerPartition", url.Values{}, 400, "missing field &#34;software_release&#34;"},
		{"/requestComputerPartition", url.Values{"software_release": {sr}, "partition_reference": {"x"}, "partition_parameter_xml": {"<marshal><dictionary"}}, 400, "partition_parameter_xml"},
		{"/requestComputerPartition", url.Values{"software_release": {sr}, "partition_reference": {"x"}, "state": {"<marshal><string>running</string></marshal>"}}, 400, "started, stopped or destroyed"},
		{"/requestComputerPartition", url.Values{"software_release": {sr}, "partition_reference": {"x"}, "partition_parameter_xml": {"<marshal><list id=\"i2\"/></marshal>"}}, 400, "expected a marshalled dictionary"},
		{"/requestComputerPartition", url.Values{"software_release": {sr}, "partition_reference": {"x"}, "computer_id": {comp}, "computer_partition_id": {"slappart9"}}, 404, "hosts no instance"},
		{"/loadComputerConfigurationFromXML", url.Values{"xml": {"<marshal><string>x</string></marshal>"}}, 400, "expected a dictionary"},
		{"/loadComputerConfigurationFromXML", url.Values{"xml": {`<marshal><object id="i2" module="os" class="system"><tuple/></object></marshal>`}}, 400, "refusing an object"},
		{"/supplySupply", url.Values{"url": {sr}, "computer_id": {comp}, "state": {"installed"}}, 400, "available or destroyed"},
		{"/setComputerPartitionConnectionXml", url.Values{"computer_id": {comp}, "computer_partition_id": {"nope"}, "connection_xml": {"<marshal><dictionary id=\"i2\"/></marshal>"}, "slave_reference": {"None"}}, 404, "unknown partition"},
		{"/softwareInstanceBang", url.Values{"computer_id": {comp}, "computer_partition_id": {"slappart0"}}, 404, "hosts no instance"},
		{"/softwareInstanceRename", url.Values{"computer_id": {comp}, "computer_partition_id": {"slappart0"}}, 400, "new_name"},
		{"/getFullComputerInformation", url.Values{"computer_id": {"NOPE"}}, 405, "method is not allowed"},
		{"/no/such/endpoint", url.Values{}, 404, "not found on the server"},
	} {
		code, body := post(c.path, c.form)
		if code != c.want || !strings.Contains(body, c.msg) {
			t.Errorf("%s %v: %d %q, want %d with %q", c.path, c.form, code, body, c.want, c.msg)
		}
	}
	resp, err := http.Get(srv.URL + "/getFullComputerInformation?computer_id=NOPE")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("unknown computer: %d", resp.StatusCode)
	}
	// Garbage in every field of every endpoint: 4xx or 200, never 500.
	garbage := []string{"", "None", "x", "<marshal>", "<marshal><none/></marshal>", "<marshal><int>1</int></marshal>", "<marshal><dictionary id=\"i2\"><string>computer_guid</string><int>3</int></dictionary></marshal>"}
	fields := []string{"computer_id", "computer_partition_id", "url", "state", "xml", "software_release", "partition_reference", "partition_parameter_xml", "filter_xml", "shared_xml", "connection_xml", "slave_reference", "new_name", "software_type"}
	for _, path := range []string{"/requestComputerPartition", "/loadComputerConfigurationFromXML", "/supplySupply", "/setComputerPartitionConnectionXml", "/softwareInstanceBang", "/softwareInstanceRename", "/destroyedComputerPartition", "/destroyedSoftwareRelease", "/startedComputerPartition", "/softwareReleaseError"} {
		for i, g := range garbage {
			form := url.Values{}
			for j, f := range fields {
				form.Set(f, garbage[(i+j)%len(garbage)])
			}
			form.Set("computer_id", comp)
			if i%2 == 0 {
				form.Set(fields[i%len(fields)], g)
			}
			if code, body := post(path, form); code >= 500 {
				t.Errorf("%s %v: %d %s", path, form, code, body)
			}
		}
	}
}

func TestAuth(t *testing.T) {
	m := openTest(t, Options{DefaultComputer: comp, RequireAuth: true})
	ctx := context.Background()
	admin, _ := m.CreateCredential(ctx, ScopeAdmin, "", "")
	node, _ := m.CreateCredential(ctx, ScopeComputer, comp, "")
	other, _ := m.CreateCredential(ctx, ScopeComputer, "OTHER", "")
	part0, _ := m.CreateCredential(ctx, ScopePartition, comp, "slappart0")
	if _, err := m.CreateCredential(ctx, ScopePartition, comp, ""); err == nil {
		t.Error("a partition credential without a partition was made")
	}
	_, srv := startMaster(t, m)
	as := func(tok string) *slap.Client {
		c, _ := slap.NewClient(srv.URL, slap.WithToken(tok))
		return c
	}
	if _, err := as("").FullComputerInformation(ctx, comp); !errors.Is(err, slap.ErrAuth) {
		t.Errorf("no credential: %v", err)
	}
	if _, err := as("forged").FullComputerInformation(ctx, comp); !errors.Is(err, slap.ErrAuth) {
		t.Errorf("unknown credential: %v", err)
	}
	if err := as(other).LoadComputerConfiguration(ctx, formatConfig(2)); !errors.Is(err, slap.ErrAuth) {
		t.Errorf("another node formatting this computer: %v", err)
	}
	if err := as(node).LoadComputerConfiguration(ctx, formatConfig(2)); err != nil {
		t.Fatal(err)
	}
	if err := as(node).Supply(ctx, sr, comp, ""); !errors.Is(err, slap.ErrAuth) {
		t.Errorf("a node supplying: %v", err)
	}
	if _, err := as(node).Request(ctx, slap.Request{SoftwareURL: sr, Reference: "r"}); !errors.Is(err, slap.ErrAuth) {
		t.Errorf("a node requesting as a user: %v", err)
	}
	for _, ref := range []string{"a", "b"} {
		if _, err := as(admin).Request(ctx, slap.Request{SoftwareURL: sr, Reference: ref}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := as(admin).Request(ctx, slap.Request{SoftwareURL: sr, Reference: "s", Shared: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := as(other).FullComputerInformation(ctx, comp); !errors.Is(err, slap.ErrAuth) {
		t.Errorf("another node reading: %v", err)
	}
	if _, err := as(node).FullComputerInformation(ctx, comp); err != nil {
		t.Errorf("the node reading: %v", err)
	}
	// A partition publishes and bangs only for itself.
	pc := as(part0)
	if err := pc.SetConnectionParameters(ctx, comp, "slappart0", "", map[string]any{"k": "v"}); err != nil {
		t.Errorf("own connection parameters: %v", err)
	}
	if err := pc.SetConnectionParameters(ctx, comp, "slappart1", "", map[string]any{"k": "v"}); !errors.Is(err, slap.ErrAuth) {
		t.Errorf("another partition's connection parameters: %v", err)
	}
	if err := pc.Bang(ctx, comp, "slappart0", "m"); err != nil {
		t.Errorf("bang itself: %v", err)
	}
	if err := pc.Bang(ctx, comp, "slappart1", "m"); !errors.Is(err, slap.ErrAuth) {
		t.Errorf("bang another: %v", err)
	}
	if _, err := pc.FullComputerInformation(ctx, comp); !errors.Is(err, slap.ErrAuth) {
		t.Errorf("a partition reading the whole computer: %v", err)
	}
	// slappart0 hosts the shared instance; slappart1 may not publish for it.
	if err := as(node).SetConnectionParameters(ctx, comp, "slappart1", "_s", map[string]any{"k": "v"}); !errors.Is(err, slap.ErrNotFound) {
		t.Errorf("publishing for a shared instance hosted elsewhere: %v", err)
	}
	if err := pc.SetConnectionParameters(ctx, comp, "slappart0", "_s", map[string]any{"k": "v"}); err != nil {
		t.Errorf("host publishing for its shared instance: %v", err)
	}
	// The JSON API is for admins.
	for tok, want := range map[string]int{admin: 200, node: 403, "": 401} {
		req, _ := http.NewRequest("GET", srv.URL+"/api/v1/instances", nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("JSON API with %q: %d, want %d", tok, resp.StatusCode, want)
		}
	}
	if n, err := m.RevokeCredentials(ctx, ScopeComputer, comp, ""); err != nil || n != 1 {
		t.Errorf("revoke: %d %v", n, err)
	}
	if _, err := as(node).FullComputerInformation(ctx, comp); !errors.Is(err, slap.ErrAuth) {
		t.Errorf("revoked credential: %v", err)
	}
}

func TestCheckListen(t *testing.T) {
	for addr, want := range map[string]bool{"127.0.0.1:80": true, "[::1]:80": true, "localhost:1": true, "0.0.0.0:80": false, "10.1.2.3:80": false, ":80": false} {
		if got := CheckListen(addr, false, false) == nil; got != want {
			t.Errorf("CheckListen(%s) allowed=%v, want %v", addr, got, want)
		}
		if err := CheckListen(addr, true, true); err != nil {
			t.Errorf("CheckListen(%s, tls, auth): %v", addr, err)
		}
	}
	if err := CheckListen("0.0.0.0:80", true, false); !errors.Is(err, ErrInsecureListen) {
		t.Errorf("TLS without auth: %v", err)
	}
}

func apiCall(t *testing.T, srv *httptest.Server, method, path string, body any, out any) int {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, srv.URL+path, r)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
	}
	return resp.StatusCode
}

func TestJSONAPI(t *testing.T) {
	m := openTest(t, Options{DefaultComputer: comp})
	c, srv := startMaster(t, m)
	ctx := context.Background()
	if err := c.LoadComputerConfiguration(ctx, formatConfig(3)); err != nil {
		t.Fatal(err)
	}
	var sw Software
	if code := apiCall(t, srv, "POST", "/api/v1/supply", SupplyBody{SoftwareURL: sr}, &sw); code != 200 || sw.Computer != comp {
		t.Fatalf("supply: %d %+v", code, sw)
	}
	var inst Instance
	code := apiCall(t, srv, "POST", "/api/v1/request", map[string]any{"title": "web", "software_url": sr, "parameters": map[string]any{"port": 8080, "ratio": 0.5, "name": "x"}}, &inst)
	if code != 200 || inst.Partition != "slappart0" || inst.Parameters["port"] != "8080" || inst.Parameters["ratio"] != "0.5" {
		t.Fatalf("request: %d %+v", code, inst)
	}
	c.SetConnectionParameters(ctx, comp, "slappart0", "", map[string]any{"url": "http://web/"})
	c.Request(ctx, slap.Request{ComputerID: comp, PartitionID: "slappart0", SoftwareURL: sr, Reference: "db"})
	c.Request(ctx, slap.Request{SoftwareURL: sr, Reference: "front", Shared: true})
	c.Started(ctx, comp, "slappart0")
	var list []Instance
	if code := apiCall(t, srv, "GET", "/api/v1/instances", nil, &list); code != 200 || len(list) != 3 {
		t.Fatalf("list: %d %+v", code, list)
	}
	if list[0].Title != "web" || len(list[0].Children) != 1 || list[0].SharedInstances[0] != "_front" || list[0].ReportedState != "started" || !list[2].Shared || list[2].Title != "front" {
		t.Errorf("list %+v", list)
	}
	var info Instance
	if code := apiCall(t, srv, "GET", "/api/v1/instances/web", nil, &info); code != 200 || info.Connection["url"] != "http://web/" {
		t.Errorf("info: %d %+v", code, info)
	}
	var e map[string]string
	if code := apiCall(t, srv, "GET", "/api/v1/instances/nope", nil, &e); code != 404 || !strings.Contains(e["error"], "no instance named") {
		t.Errorf("info of unknown: %d %v", code, e)
	}
	if code := apiCall(t, srv, "POST", "/api/v1/request", map[string]any{"title": "x"}, &e); code != 400 {
		t.Errorf("bad request: %d %v", code, e)
	}
	if code := apiCall(t, srv, "POST", "/api/v1/request", map[string]any{"title": "x", "software_url": sr, "bogus": 1}, &e); code != 400 {
		t.Errorf("unknown field: %d %v", code, e)
	}
	for _, title := range []string{"db", "front", "web"} {
		if code := apiCall(t, srv, "DELETE", "/api/v1/instances/"+title, nil, &inst); code != 200 || inst.RequestedState != "destroyed" {
			t.Errorf("remove %s: %d %+v", title, code, inst)
		}
	}
	info2, _ := c.FullComputerInformation(ctx, comp)
	if info2.Partitions[0].RequestedState != "destroyed" || info2.Partitions[1].RequestedState != "destroyed" || len(info2.Partitions[0].SharedInstances()) != 0 {
		t.Errorf("after remove: %+v %+v", info2.Partitions[0], info2.Partitions[1])
	}
	var st Status
	if code := apiCall(t, srv, "GET", "/api/v1/status", nil, &st); code != 200 || len(st.Computers) != 1 || st.Computers[0].Partitions != 3 || len(st.Software) != 1 {
		t.Errorf("status %d %+v", code, st)
	}
}

// FuzzRequest sends arbitrary marshalled fields to requestComputerPartition:
// the master answers 200 or a 4xx, never a 500.
func FuzzRequest(f *testing.F) {
	f.Add("<marshal><dictionary id=\"i2\"><string>a</string><int>1</int></dictionary></marshal>", "<marshal><none/></marshal>", "<marshal><bool>0</bool></marshal>", "x")
	f.Add("<marshal><dictionary id=\"i2\"/></marshal>", "<marshal><string>stopped</string></marshal>", "<marshal><bool>1</bool></marshal>", "")
	m := openTest(f, Options{DefaultComputer: comp})
	h := m.Handler()
	ctx := context.Background()
	if err := m.tx(ctx, func(tx *txn) error { return formatComputer(tx, formatConfig(3)) }); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, params, state, shared, title string) {
		form := url.Values{"software_release": {sr}, "partition_reference": {title}, "partition_parameter_xml": {params},
			"state": {state}, "shared_xml": {shared}, "filter_xml": {"<marshal><dictionary id=\"i2\"/></marshal>"}}
		r := httptest.NewRequest("POST", "/requestComputerPartition", strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Code >= 500 {
			t.Fatalf("%v: %d %s", form, rec.Code, rec.Body)
		}
	})
}

// A child follows its stopped or destroyed root when re-requested, but a
// child being destroyed under a stopped root stays destroyed.
func TestStatePropagation(t *testing.T) {
	m := openTest(t, Options{DefaultComputer: comp})
	c, _ := startMaster(t, m)
	ctx := context.Background()
	c.LoadComputerConfiguration(ctx, formatConfig(3))
	root := slap.Request{SoftwareURL: sr, Reference: "root"}
	if _, err := c.Request(ctx, root); err != nil {
		t.Fatal(err)
	}
	kid := slap.Request{ComputerID: comp, PartitionID: "slappart0", SoftwareURL: sr, Reference: "kid"}
	state := func(r slap.Request) string {
		t.Helper()
		i, err := c.Request(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		return i.RequestedState
	}
	if s := state(kid); s != "started" {
		t.Fatalf("kid %s", s)
	}
	root.State = "stopped"
	state(root)
	if s := state(kid); s != "stopped" {
		t.Errorf("kid under a stopped root: %s", s)
	}
	kid.State = "destroyed"
	if s := state(kid); s != "destroyed" {
		t.Errorf("kid destroyed under a stopped root: %s", s)
	}
	kid.State = "started"
	root.State = "destroyed"
	state(root)
	if s := state(kid); s != "destroyed" {
		t.Errorf("kid under a destroyed root: %s", s)
	}
}

// Timestamps strictly increase even when the clock does not move, so that
// two changes are never mistaken for one by a node.
func TestTimestampsIncrease(t *testing.T) {
	frozen := time.Unix(1795302566, 829519300)
	m := openTest(t, Options{DefaultComputer: comp, Now: func() time.Time { return frozen }})
	c, _ := startMaster(t, m)
	ctx := context.Background()
	c.LoadComputerConfiguration(ctx, formatConfig(3))
	seen := map[string]bool{}
	for i := 0; i < 3; i++ {
		inst, err := c.Request(ctx, slap.Request{SoftwareURL: sr, Reference: fmt.Sprint("i", i)})
		if err != nil {
			t.Fatal(err)
		}
		ts := inst.ParameterDict["timestamp"].(string)
		if seen[ts] {
			t.Errorf("timestamp %s handed out twice", ts)
		}
		seen[ts] = true
	}
	if !seen["1795302566.8295193"] {
		t.Errorf("first timestamp is not str(time.time()): %v", seen)
	}
}
