package master

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/slapnode/slapnode/node/slap"
)

// expand is RFC 6570 simple expansion, as the uritemplate package SlapOS's
// client uses does it (lists joined with commas).
func expand(tmpl string, vars map[string]string) string {
	for k, v := range vars {
		tmpl = strings.ReplaceAll(tmpl, "{"+k+"}", strings.ReplaceAll(url.QueryEscape(v), "+", "%20"))
	}
	return tmpl
}

func getJSON(t *testing.T, u string, out any) int {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == 200 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s: %v in %s", u, err, b)
		}
	}
	return resp.StatusCode
}

// TestHATEOAS walks the documents as slapos service list / service info
// and computer list / computer info do (slapos/slap/hateoas.py): the root
// document's search and traverse templates, the four queries, the
// redirection to a document and its _embedded._view fields.
func TestHATEOAS(t *testing.T) {
	m := openTest(t, Options{DefaultComputer: comp, AdvertiseHATEOAS: true})
	c, srv := startMaster(t, m)
	ctx := context.Background()
	c.LoadComputerConfiguration(ctx, formatConfig(3))
	if _, err := c.Request(ctx, slap.Request{SoftwareURL: sr, Reference: "web", SoftwareType: "front", Parameters: map[string]any{"port": 8080}}); err != nil {
		t.Fatal(err)
	}
	c.SetConnectionParameters(ctx, comp, "slappart0", "", map[string]any{"url": "http://x/"})
	if _, err := c.Request(ctx, slap.Request{SoftwareURL: sr, Reference: "site", SoftwareType: "front", Shared: true, Parameters: map[string]any{"domain": "a.example"}}); err != nil {
		t.Fatal(err)
	}
	// A child is not an instance tree.
	if _, err := c.Request(ctx, slap.Request{ComputerID: comp, PartitionID: "slappart0", SoftwareURL: sr, Reference: "db"}); err != nil {
		t.Fatal(err)
	}

	resp, err := http.Get(srv.URL + "/getHateoasUrl")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != srv.URL+"/hateoas/" {
		t.Fatalf("getHateoasUrl: %d %q", resp.StatusCode, b)
	}
	var root struct {
		Links map[string]struct{ Href string } `json:"_links"`
	}
	getJSON(t, string(b), &root)
	search, traverse := root.Links["raw_search"].Href, root.Links["traverse"].Href
	if search == "" || traverse == "" {
		t.Fatalf("root document: %+v", root)
	}
	type rows struct {
		Embedded struct {
			Contents []map[string]any `json:"contents"`
		} `json:"_embedded"`
	}
	find := func(q string) []map[string]any {
		var r rows
		if code := getJSON(t, expand(search, map[string]string{"query": q, "select_list": "title,url_string"}), &r); code != 200 {
			t.Fatalf("search %q: %d", q, code)
		}
		return r.Embedded.Contents
	}
	list := find(queryServiceList)
	if len(list) != 2 || list[0]["title"] != "web" || list[1]["title"] != "site" || list[0]["url_string"] != sr {
		t.Fatalf("service list: %v", list)
	}
	view := func(relURL string) (map[string]map[string]any, string) {
		var doc struct {
			Embedded struct {
				View map[string]map[string]any `json:"_view"`
			} `json:"_embedded"`
			Links struct{ Type struct{ Name string } } `json:"_links"`
		}
		if code := getJSON(t, expand(traverse, map[string]string{"relative_url": relURL, "view": "slaposjs_view"}), &doc); code != 200 {
			t.Fatalf("traverse %s: %d", relURL, code)
		}
		return doc.Embedded.View, doc.Links.Type.Name
	}
	info := find(queryServiceInfo + `"web"`)
	if len(info) != 1 {
		t.Fatalf("service info web: %v", info)
	}
	v, typ := view(info[0]["relative_url"].(string))
	if typ != "Instance Tree" || v["my_slap_state"]["default"] != "started" || v["my_source_reference"]["default"] != "front" ||
		v["my_root_slave"]["default"] != float64(0) || !strings.Contains(v["my_text_content"]["default"].(string), `<parameter id="port">8080</parameter>`) ||
		!strings.Contains(v["my_connection_parameter_list"]["default"].(string), "http://x/") || v["form_id"]["key"] == nil {
		t.Errorf("web's document: %v", v)
	}
	shared := find(queryServiceInfo + `"site"`)
	if len(shared) != 1 {
		t.Fatalf("service info site: %v", shared)
	}
	v, _ = view(shared[0]["relative_url"].(string))
	if v["my_root_slave"]["default"] != float64(1) || !strings.Contains(v["my_text_content"]["default"].(string), "a.example") || v["my_slap_state"]["default"] != "unused" {
		t.Errorf("site's document: %v", v)
	}
	if got := find(queryServiceInfo + `"nothing"`); len(got) != 0 {
		t.Errorf("service info of an unknown title: %v", got)
	}
	comps := find(queryComputerList)
	if len(comps) != 1 || comps[0]["reference"] != comp || comps[0]["title"] != comp {
		t.Fatalf("computer list: %v", comps)
	}
	ci := find(queryComputerInfo + `"` + comp + `"`)
	v, typ = view(ci[0]["relative_url"].(string))
	if typ != "Computer" || v["my_reference"]["default"] != comp {
		t.Errorf("computer document: %v", v)
	}
	var bad rows
	if code := getJSON(t, expand(search, map[string]string{"query": "portal_type:Person"}), &bad); code != 400 {
		t.Errorf("unhandled query: %d, want 400", code)
	}
	if code := getJSON(t, srv.URL+"/hateoas/?mode=traverse&relative_url=https://evil.example/", &bad); code != 400 {
		t.Errorf("traversal out of /hateoas/: %d, want 400", code)
	}
}

// TestGetHateoasUrlNotAdvertised: without AdvertiseHATEOAS, getHateoasUrl
// stays slapproxy's 404 (the replay test checks its exact page).
func TestGetHateoasUrlNotAdvertised(t *testing.T) {
	_, srv := startMaster(t, openTest(t, Options{}))
	resp, err := http.Get(srv.URL + "/getHateoasUrl")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("getHateoasUrl: %d, want 404", resp.StatusCode)
	}
}
