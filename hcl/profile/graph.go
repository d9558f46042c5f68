package profile

import (
	"container/heap"
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// Node is a vertex of the evaluation graph: a part, a local value or a
// request for another instance.
type Node struct {
	Kind  string // "part", "local" or "request"
	Name  string
	Block *Block // for parts
	Attr  *Attr  // for locals
	Deps  []string
}

// ID is the node's reference root form: "part.NAME", "local.NAME" or
// "request.NAME".
func (n *Node) ID() string { return n.Kind + "." + n.Name }

// Graph is the ordered set of parts and locals to evaluate.
type Graph struct {
	Order []*Node          // topological order: dependencies first
	Nodes map[string]*Node // by ID
}

// refs collects the part.X and local.X references of an attribute, including
// those made through base.NAME in an overriding definition.
func refs(a *Attr, b *Block, out map[string]hcl.Range, diags *hcl.Diagnostics, seen map[*Attr]bool) {
	if seen[a] {
		return
	}
	seen[a] = true
	for _, t := range a.Expr.Variables() {
		root := t.RootName()
		switch root {
		case "part", "local", "request":
			if len(t) < 2 {
				*diags = append(*diags, &hcl.Diagnostic{
					Severity: hcl.DiagError, Summary: "Invalid reference",
					Detail:  fmt.Sprintf("A reference to a %s needs its name, e.g. %s.NAME.", root, root),
					Subject: t.SourceRange().Ptr(),
				})
				continue
			}
			name, ok := traverserName(t[1])
			if !ok {
				*diags = append(*diags, &hcl.Diagnostic{
					Severity: hcl.DiagError, Summary: "Invalid reference",
					Detail:  fmt.Sprintf("Write %s.NAME, with NAME an identifier.", root),
					Subject: t.SourceRange().Ptr(),
				})
				continue
			}
			id := root + "." + name
			if _, dup := out[id]; !dup {
				out[id] = t.SourceRange()
			}
		case "base":
			if len(t) < 2 {
				continue
			}
			name, ok := traverserName(t[1])
			if ok && a.Base != nil && a.Base[name] != nil {
				refs(a.Base[name], b, out, diags, seen)
			}
		case "self":
			// self.NAME depends on what the block's attribute NAME reads.
			if len(t) < 2 || b == nil {
				continue
			}
			if name, ok := traverserName(t[1]); ok && b.Attrs[name] != nil {
				refs(b.Attrs[name], b, out, diags, seen)
			}
		}
	}
}

func traverserName(t hcl.Traverser) (string, bool) {
	switch tt := t.(type) {
	case hcl.TraverseAttr:
		return tt.Name, true
	case hcl.TraverseIndex:
		if s := tt.Key; s.Type().FriendlyName() == "string" && !s.IsNull() {
			return s.AsString(), true
		}
	}
	return "", false
}

// References returns the parts and locals a block refers to, with the
// position of the first reference to each.
func (p *Profile) References(b *Block) (map[string]hcl.Range, hcl.Diagnostics) {
	out := map[string]hcl.Range{}
	var diags hcl.Diagnostics
	seen := map[*Attr]bool{}
	for _, n := range b.AttrNames() {
		refs(b.Attrs[n], b, out, &diags, seen)
	}
	return out, diags
}

// Graph builds the dependency graph of the parts and locals to evaluate and
// sorts it. Roots are the parts to install: the `parts` selection when the
// profile has one, else every part; the blocks in extra (services, promises,
// publish…) add their references as roots too. A reference to an unknown part
// or local, and every cycle, is reported at its position.
func (p *Profile) Graph(extra []*Block) (*Graph, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	g := &Graph{Nodes: map[string]*Node{}}
	ranges := map[string]map[string]hcl.Range{}
	add := func(n *Node, r map[string]hcl.Range) {
		g.Nodes[n.ID()] = n
		ranges[n.ID()] = r
	}
	for _, b := range p.Parts {
		r, d := p.References(b)
		diags = append(diags, d...)
		if dep, ok := b.Attrs["depends_on"]; ok {
			for _, t := range dep.Expr.Variables() {
				if t.RootName() == "part" && len(t) >= 2 {
					if name, ok := traverserName(t[1]); ok {
						if _, dup := r["part."+name]; !dup {
							r["part."+name] = t.SourceRange()
						}
					}
				}
			}
		}
		add(&Node{Kind: "part", Name: b.Name(), Block: b}, r)
	}
	for _, b := range p.BlocksOf("request") {
		r, d := p.References(b)
		diags = append(diags, d...)
		add(&Node{Kind: "request", Name: b.Name(), Block: b}, r)
	}
	localNames := make([]string, 0, len(p.Locals))
	for n := range p.Locals {
		localNames = append(localNames, n)
	}
	sort.Strings(localNames)
	for _, n := range localNames {
		r := map[string]hcl.Range{}
		refs(p.Locals[n], nil, r, &diags, map[*Attr]bool{})
		add(&Node{Kind: "local", Name: n, Attr: p.Locals[n]}, r)
	}
	// Check every reference, from nodes and extra blocks alike.
	check := func(r map[string]hcl.Range) []string {
		ids := make([]string, 0, len(r))
		for id := range r {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		var ok []string
		for _, id := range ids {
			if g.Nodes[id] == nil {
				kind, name, _ := strings.Cut(id, ".")
				var known []string
				for _, n := range g.Nodes {
					if n.Kind == kind {
						known = append(known, n.Name)
					}
				}
				rng := r[id]
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError, Summary: "Reference to undeclared " + kind,
					Detail:  fmt.Sprintf("No %s named %q is defined in this profile or the ones it extends.%s", kind, name, suggest(name, known)),
					Subject: &rng,
				})
				continue
			}
			ok = append(ok, id)
		}
		return ok
	}
	for _, id := range sortedKeys(g.Nodes) {
		g.Nodes[id].Deps = check(ranges[id])
	}
	roots := map[string]bool{}
	if p.Selected != nil {
		for _, s := range p.Selected {
			roots["part."+s] = true
		}
	} else {
		for _, b := range p.Parts {
			roots["part."+b.Name()] = true
		}
	}
	for _, b := range extra {
		r, d := p.References(b)
		diags = append(diags, d...)
		for _, id := range check(r) {
			roots[id] = true
		}
	}
	// Keep what the roots need.
	keep := map[string]bool{}
	var visit func(id string)
	visit = func(id string) {
		if keep[id] || g.Nodes[id] == nil {
			return
		}
		keep[id] = true
		for _, d := range g.Nodes[id].Deps {
			visit(d)
		}
	}
	for _, id := range sortedKeys(roots) {
		visit(id)
	}
	// Locals are cheap and may be used by blocks we do not see here: keep
	// all. Requests are always made (a request is its own effect).
	for id, n := range g.Nodes {
		if n.Kind == "local" || n.Kind == "request" {
			visit(id)
		}
	}
	for id := range g.Nodes {
		if !keep[id] {
			delete(g.Nodes, id)
		}
	}
	order, cyc := p.sortNodes(g.Nodes, ranges)
	diags = append(diags, cyc...)
	g.Order = order
	return g, diags
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// sortNodes orders nodes dependencies-first, deterministic (definition order
// breaks ties), and reports each cycle once, naming all its members.
func (p *Profile) sortNodes(nodes map[string]*Node, ranges map[string]map[string]hcl.Range) ([]*Node, hcl.Diagnostics) {
	rank := func(n *Node) int {
		if n.Block != nil {
			return n.Block.order
		}
		return 1 << 30
	}
	ids := sortedKeys(nodes)
	sort.SliceStable(ids, func(i, j int) bool { return rank(nodes[ids[i]]) < rank(nodes[ids[j]]) })

	// Tarjan's strongly connected components find every cycle.
	index, low := map[string]int{}, map[string]int{}
	onStack := map[string]bool{}
	var stack []string
	var sccs [][]string
	next := 0
	var strong func(id string)
	strong = func(id string) {
		index[id], low[id] = next, next
		next++
		stack = append(stack, id)
		onStack[id] = true
		for _, d := range nodes[id].Deps {
			if nodes[d] == nil {
				continue
			}
			if _, seen := index[d]; !seen {
				strong(d)
				low[id] = min(low[id], low[d])
			} else if onStack[d] {
				low[id] = min(low[id], index[d])
			}
		}
		if low[id] == index[id] {
			var comp []string
			for {
				top := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				onStack[top] = false
				comp = append(comp, top)
				if top == id {
					break
				}
			}
			sccs = append(sccs, comp)
		}
	}
	for _, id := range ids {
		if _, seen := index[id]; !seen {
			strong(id)
		}
	}
	var diags hcl.Diagnostics
	inCycle := map[string]bool{}
	for _, comp := range sccs {
		self := len(comp) == 1 && containsStr(nodes[comp[0]].Deps, comp[0])
		if len(comp) < 2 && !self {
			continue
		}
		sort.Strings(comp)
		for _, id := range comp {
			inCycle[id] = true
		}
		// Point at a reference that closes the cycle.
		var subject *hcl.Range
		for _, d := range nodes[comp[0]].Deps {
			if containsStr(comp, d) {
				r := ranges[comp[0]][d]
				subject = &r
				break
			}
		}
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError, Summary: "Reference cycle",
			Detail:  fmt.Sprintf("These refer to each other in a cycle, so none can be evaluated first: %s. Break the cycle by removing one of the references.", strings.Join(comp, ", ")),
			Subject: subject,
		})
	}
	// Kahn's algorithm in rank order.
	indeg := map[string]int{}
	users := map[string][]string{}
	for _, id := range ids {
		for _, d := range nodes[id].Deps {
			if nodes[d] != nil && d != id {
				indeg[id]++
				users[d] = append(users[d], id)
			}
		}
	}
	pos := map[string]int{}
	for i, id := range ids {
		pos[id] = i
	}
	ready := &intHeap{}
	for _, id := range ids {
		if indeg[id] == 0 {
			heap.Push(ready, pos[id])
		}
	}
	var order []*Node
	for ready.Len() > 0 {
		id := ids[heap.Pop(ready).(int)]
		order = append(order, nodes[id])
		for _, u := range users[id] {
			indeg[u]--
			if indeg[u] == 0 {
				heap.Push(ready, pos[u])
			}
		}
	}
	return order, diags
}

func containsStr(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// intHeap is a min-heap of positions: the ready node defined first goes first.
type intHeap []int

func (h intHeap) Len() int           { return len(h) }
func (h intHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h intHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *intHeap) Push(x any)        { *h = append(*h, x.(int)) }
func (h *intHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
