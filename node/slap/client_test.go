package slap

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/slapnode/slapnode/node/slap/slaptest"
)

// TestClientAgainstSamples makes the client repeat every call of the
// capture against a server that answers as slapproxy did: each request must
// be the bytes slapos.slap sent, and each answer must parse into types that
// marshal back to the exact answer.
func TestClientAgainstSamples(t *testing.T) {
	samples, err := slaptest.Load()
	if err != nil {
		t.Fatal(err)
	}
	var cur slaptest.Sample
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method != cur.Method || r.URL.Path != cur.Path {
			t.Errorf("#%d: client called %s %s, want %s %s", cur.Seq, r.Method, r.URL.Path, cur.Method, cur.Path)
		}
		if string(body) != cur.RequestBodyRaw {
			t.Errorf("#%d: request body\n got %s\nwant %s", cur.Seq, body, cur.RequestBodyRaw)
		}
		for k, v := range cur.Query {
			if got := r.URL.Query().Get(k); got != v {
				t.Errorf("#%d: query %s=%q, want %q", cur.Seq, k, got, v)
			}
		}
		if ua := r.Header.Get("User-Agent"); ua != UserAgent {
			t.Errorf("#%d: User-Agent %q", cur.Seq, ua)
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(cur.Status)
		io.WriteString(w, cur.ResponseBody)
	}))
	defer srv.Close()
	c, err := NewClient(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	dict := func(s string) map[string]any {
		v, err := Unmarshal([]byte(s))
		if err != nil {
			t.Fatalf("#%d: %v", cur.Seq, err)
		}
		if v == nil {
			return nil
		}
		return v.(map[string]any)
	}
	// same checks that a parsed answer marshals back to the bytes received.
	same := func(o *Object) {
		if got := string(MustMarshal(o)); got != cur.ResponseBody {
			t.Errorf("#%d: parsed answer marshals differently:\n got %s\nwant %s", cur.Seq, got, cur.ResponseBody)
		}
	}
	calls := 0
	for _, s := range samples {
		cur = s
		f := s.Form
		var err error
		switch s.Path {
		case "/getHateoasUrl":
			continue // the HATEOAS navigator is not part of this client
		case "/loadComputerConfigurationFromXML":
			var cfg *ComputerConfiguration
			if cfg, err = ParseComputerConfiguration(dict(f["xml"])); err == nil {
				err = c.LoadComputerConfiguration(ctx, cfg)
			}
		case "/getFullComputerInformation":
			var comp *Computer
			if comp, err = c.FullComputerInformation(ctx, s.Query["computer_id"]); err == nil {
				same(comp.Object())
			}
		case "/registerComputerPartition":
			var p *ComputerPartition
			p, err = c.RegisterComputerPartition(ctx, s.Query["computer_reference"], s.Query["computer_partition_reference"])
			if err == nil {
				same(p.Object())
			} else if s.Status == 500 {
				var he *HTTPError
				if !errors.As(err, &he) || he.Status != 500 {
					t.Errorf("#%d: %v, want an HTTPError 500", s.Seq, err)
				}
				err = nil
			}
		case "/getComputerPartitionCertificate":
			_, _, err = c.Certificate(ctx, s.Query["computer_id"], s.Query["computer_partition_id"])
		case "/supplySupply":
			err = c.Supply(ctx, f["url"], f["computer_id"], f["state"])
		case "/buildingSoftwareRelease":
			err = c.BuildingSoftwareRelease(ctx, f["url"], f["computer_id"])
		case "/availableSoftwareRelease":
			err = c.AvailableSoftwareRelease(ctx, f["url"], f["computer_id"])
		case "/destroyedSoftwareRelease":
			err = c.DestroyedSoftwareRelease(ctx, f["url"], f["computer_id"])
		case "/softwareReleaseError":
			err = c.SoftwareReleaseError(ctx, f["url"], f["computer_id"], f["error_log"])
		case "/startedComputerPartition":
			err = c.Started(ctx, f["computer_id"], f["computer_partition_id"])
		case "/stoppedComputerPartition":
			err = c.Stopped(ctx, f["computer_id"], f["computer_partition_id"])
		case "/destroyedComputerPartition":
			var msg string
			if msg, err = c.Destroyed(ctx, f["computer_id"], f["computer_partition_id"]); err == nil && msg != s.ResponseBody {
				t.Errorf("#%d: Destroyed returned %q", s.Seq, msg)
			}
		case "/softwareInstanceError":
			err = c.InstanceError(ctx, f["computer_id"], f["computer_partition_id"], f["error_log"], "")
		case "/setComputerPartitionConnectionXml":
			ref := f["slave_reference"]
			if ref == "None" {
				ref = ""
			}
			err = c.SetConnectionParameters(ctx, f["computer_id"], f["computer_partition_id"], ref, dict(f["connection_xml"]))
		case "/softwareInstanceBang":
			err = c.Bang(ctx, f["computer_id"], f["computer_partition_id"], f["message"])
		case "/useComputer":
			err = c.UseComputer(ctx, f["computer_id"], f["use_string"])
		case "/computerBang":
			err = c.ComputerBang(ctx, f["computer_id"], f["message"])
		case "/getSoftwareReleaseListFromSoftwareProduct":
			var l []string
			if l, err = c.SoftwareReleaseList(ctx, s.Query["software_product_reference"]); err == nil && len(l) != 0 {
				t.Errorf("#%d: %v", s.Seq, l)
			}
		case "/requestComputerPartition":
			req := Request{ComputerID: f["computer_id"], PartitionID: f["computer_partition_id"], SoftwareURL: f["software_release"],
				SoftwareType: f["software_type"], Reference: f["partition_reference"], Shared: f["shared_xml"] == "<marshal><bool>1</bool></marshal>",
				Parameters: dict(f["partition_parameter_xml"]), Filter: dict(f["filter_xml"])}
			if st, _ := Unmarshal([]byte(f["state"])); st != nil {
				req.State = st.(string)
			}
			var inst *SoftwareInstance
			inst, err = c.Request(ctx, req)
			if err == nil {
				same(inst.Object())
			} else if s.Status == 404 {
				if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "No free computer partition found for: ") {
					t.Errorf("#%d: %v, want ErrNotFound with slapproxy's message", s.Seq, err)
				}
				err = nil
			}
		default:
			t.Fatalf("#%d: no client call for %s", s.Seq, s.Path)
		}
		calls++
		if err != nil {
			t.Errorf("#%d %s: %v", s.Seq, s.Path, err)
		}
	}
	if calls != 65 {
		t.Errorf("%d calls, want 65", calls)
	}
}

func TestParsedComputer(t *testing.T) {
	samples, err := slaptest.Load()
	if err != nil {
		t.Fatal(err)
	}
	v, err := Unmarshal([]byte(samples[22].ResponseBody)) // #23: root, child and a shared instance
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseComputer(v)
	if err != nil {
		t.Fatal(err)
	}
	if c.ID != "COMP-PEER" || len(c.Partitions) != 3 || len(c.SoftwareReleases) != 1 || c.SoftwareReleases[0].RequestedState != StateAvailable {
		t.Fatalf("computer %+v", c)
	}
	root, child, free := c.Partitions[0], c.Partitions[1], c.Partitions[2]
	if root.RequestedState != StateStarted || root.SoftwareType() != "default" || root.InstanceTitle() != "root-9a2fd816" || root.Timestamp() == "" {
		t.Errorf("root %+v", root)
	}
	if p := root.InstanceParameters(); p["count"] != "3" || p["utf8"] != "h\u00e9llo \u20ac <&>" || len(p) != 4 {
		t.Errorf("root parameters %#v", p)
	}
	if ips := root.IPList(); len(ips) != 2 || ips[0] != [2]string{"slaptap0", "10.0.0.2"} {
		t.Errorf("ip list %v", ips)
	}
	sh := root.SharedInstances()
	if len(sh) != 1 || sh[0].Reference != "_shared-9a2fd816" || sh[0].Parameters["slave_param"] != "x" || sh[0].SoftwareType != "default" {
		t.Errorf("shared instances %+v", sh)
	}
	if child.SoftwareType() != "child" || child.RootInstanceTitle() != "root-9a2fd816" {
		t.Errorf("child %+v", child)
	}
	if free.RequestedState != StateDestroyed || free.SoftwareRelease != nil || free.ParameterDict != nil || free.NeedModification {
		t.Errorf("free partition %+v", free)
	}
	if got := string(MustMarshal(c.Object())); got != samples[22].ResponseBody {
		t.Errorf("re-marshalled differently")
	}
}

func TestClientErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/requestComputerPartition":
			w.WriteHeader(http.StatusRequestTimeout)
		case "/getFullComputerInformation":
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, "<p>a computer credential may not &amp; so on</p>")
		default:
			io.WriteString(w, "<marshal><string>not a computer</string></marshal>")
		}
	}))
	defer srv.Close()
	c, _ := NewClient(srv.URL+"/", WithToken("t"))
	ctx := context.Background()
	if _, err := c.Request(ctx, Request{Reference: "x"}); !errors.Is(err, ErrNotReady) {
		t.Errorf("408: %v", err)
	}
	_, err := c.FullComputerInformation(ctx, "C")
	if !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), "may not & so on") {
		t.Errorf("403: %v", err)
	}
	if _, err := c.RegisterComputerPartition(ctx, "C", "p"); err == nil || !strings.Contains(err.Error(), "expected a ComputerPartition object, got a string") {
		t.Errorf("wrong type: %v", err)
	}
	if _, err := NewClient("ftp://x"); err == nil {
		t.Error("NewClient accepted ftp://")
	}
	if _, err := NewClient("http://127.0.0.1:1"); err != nil {
		t.Fatal(err)
	}
	c2, _ := NewClient("http://127.0.0.1:1")
	if err := c2.Ping(ctx); err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Errorf("unreachable master: %v", err)
	}
}

// A node polls the same computer document every pass: the client decodes
// it once while it does not change, and each caller still gets a Computer
// of its own.
func TestFullComputerInformationReusesAnUnchangedDocument(t *testing.T) {
	doc := func(value string) string {
		c := &Computer{ID: "C", Partitions: []*ComputerPartition{{ComputerID: "C", PartitionID: "p0", RequestedState: StateStarted,
			SoftwareRelease: &SoftwareRelease{URL: "sr", ComputerID: "C"},
			ParameterDict:   map[string]any{"k": value, "nested": map[string]any{"x": "1"}}, ConnectionDict: map[string]any{}}}}
		return string(MustMarshal(c.Object()))
	}
	answer := doc("v1")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, answer) }))
	defer srv.Close()
	c, err := NewClient(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	first, err := c.FullComputerInformation(ctx, "C")
	if err != nil {
		t.Fatal(err)
	}
	// What a caller does to its copy does not reach the next one.
	first.Partitions[0].ParameterDict["k"] = "changed by the caller"
	first.Partitions[0].ParameterDict["nested"].(map[string]any)["x"] = "changed"
	again, err := c.FullComputerInformation(ctx, "C")
	if err != nil {
		t.Fatal(err)
	}
	if p := again.Partitions[0].ParameterDict; p["k"] != "v1" || p["nested"].(map[string]any)["x"] != "1" {
		t.Fatalf("second read of the same document: %v", p)
	}
	// A changed document is read anew.
	answer = doc("v2")
	third, err := c.FullComputerInformation(ctx, "C")
	if err != nil {
		t.Fatal(err)
	}
	if v := third.Partitions[0].ParameterDict["k"]; v != "v2" {
		t.Fatalf("changed document read as %v", v)
	}
}
