package partition

import (
	"context"
	"fmt"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/slapnode/slapnode/hcl/profile"
)

// ChildRequest is an instance profile's `request` block: another instance
// this one needs (SlapOS's slapos.cookbook:request, how stacks build
// clusters).
type ChildRequest struct {
	Name         string
	Software     string // profile path (made absolute against the requesting profile) or URL
	SoftwareType string
	Parameters   map[string]any
	Shared       bool
	State        string // started (default), stopped, destroyed
	Node         string // computer to allocate on ("" = the master decides)
}

// Requester makes child requests on behalf of a partition: the master
// (converging nodes) or the local node (slapnode apply).
type Requester interface {
	// Request requests the child and returns its connection parameters as
	// far as they are published (maybe none yet).
	Request(ctx context.Context, parent string, r ChildRequest) (map[string]any, error)
}

// request makes one request block's request (not in a plan) and publishes
// request.NAME = { connection = {…}, name = … } to the blocks that read it.
func (r *run) request(ctx context.Context, n *profile.Node) error {
	b := n.Block
	if r.plan {
		r.report.add(Action{Part: "request." + n.Name, Kind: Unchanged, Reason: "requests are made at apply"})
		r.ev.SetRequest(n.Name, cty.DynamicVal)
		return nil
	}
	var cr ChildRequest
	cr.Name = n.Name
	params := map[string]any{}
	diags, unk := decode(r.ev, b, map[string]any{"software": &cr.Software, "software_type": &cr.SoftwareType,
		"shared": &cr.Shared, "state": &cr.State, "node": &cr.Node})
	if len(unk) > 0 {
		diags = append(diags, unknownDiag(b, unk))
	}
	if a := b.Attrs["parameters"]; a != nil {
		v, d := r.ev.EvalAttr(a)
		diags = append(diags, d...)
		if !d.HasErrors() && !v.IsNull() {
			g, err := ctyToGo(v)
			m, ok := g.(map[string]any)
			if err != nil || !ok {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid parameters",
					Detail: "parameters is an object of the child's instance parameters.", Subject: a.Expr.Range().Ptr()})
			} else {
				params = m
			}
		}
	}
	if cr.Software == "" {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Missing software",
			Detail: `A request needs software = "path/to/software.hcl" (or a URL).`, Subject: b.DefRange.Ptr()})
	}
	if err := r.p.Err(diags); err != nil {
		return err
	}
	cr.Parameters = params
	if !strings.Contains(cr.Software, "://") && !strings.HasPrefix(cr.Software, "/") {
		cr.Software = r.p.Dir + "/" + cr.Software
	}
	if r.t.Requester == nil {
		return &PartError{Part: "request." + n.Name, Recipe: "request", Range: b.DefRange,
			Err: fmt.Errorf("this node cannot request instances here")}
	}
	conn, err := r.t.Requester.Request(ctx, r.t.Name, cr)
	if err != nil {
		return &PartError{Part: "request." + n.Name, Recipe: "request", Range: b.DefRange, Err: err}
	}
	cv, err := jsonToCty(conn)
	if err != nil || !cv.Type().IsObjectType() {
		cv = cty.EmptyObjectVal
	}
	r.ev.SetRequest(n.Name, cty.ObjectVal(map[string]cty.Value{"connection": cv, "name": cty.StringVal(n.Name)}))
	return nil
}
