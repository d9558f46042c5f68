package local

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestInstanceRequestsAChild: the stack example's instance requests a
// helloweb instance; the child runs in its own partition and its URL comes
// back as the parent's connection parameter; destroying the parent destroys
// the child first.
func TestInstanceRequestsAChild(t *testing.T) {
	n := openNode(t)
	svc, sup := inProcessServices(t, n.Root)
	ctx := context.Background()
	o := ApplyOptions{Params: map[string]any{"front-port": 18495, "greeting": "child says hi"}, Services: svc, PromiseWait: 20 * time.Second}
	res, err := n.Apply(ctx, "../../examples/stack/software.hcl", o)
	if err != nil {
		t.Fatal(err)
	}
	url, _ := res.Instance.Connection["front-url"].(string)
	if !strings.HasSuffix(url, ":18495/") {
		t.Fatalf("parent's connection parameters: %v", res.Instance.Connection)
	}
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "child says hi") {
		t.Fatalf("child's page: %s", body)
	}
	insts, _ := n.Instances()
	if len(insts) != 2 || insts[1].Name != "stack/front" || insts[0].Partition == insts[1].Partition {
		t.Fatalf("instances: %+v %+v", insts[0], insts[1])
	}
	// Applying again changes nothing in either.
	if res, err = n.Apply(ctx, "../../examples/stack/software.hcl", o); err != nil || res.Instance.Report.Counts["install"]+res.Instance.Report.Counts["reinstall"] != 0 {
		t.Fatalf("second apply: %v %v", err, res.Instance.Report)
	}
	o.State = StateDestroyed
	if _, err := n.Apply(ctx, "../../examples/stack/software.hcl", o); err != nil {
		t.Fatal(err)
	}
	if insts, _ := n.Instances(); len(insts) != 0 {
		t.Fatalf("instances left after destroy: %+v", insts)
	}
	if len(sup.Status()) != 0 {
		t.Fatalf("services left: %+v", sup.Status())
	}
	if _, err := http.Get(url); err == nil {
		t.Fatal("child still answers")
	}
}
