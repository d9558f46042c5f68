package profile

import (
	"container/heap"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// Node is a vertex of the evaluation graph: a part, a local value or a
// request for another instance.
type Node struct {
	Kind  string // "part", "local" or "request"
	Name  string
	Block *Block // for parts
	Attr  *Attr  // for locals
	Deps  []string
	// firstDeps are the dependencies in the order buildout meets them:
	// options by name, references in each from left to right.
	firstDeps []string
}

// ID is the node's reference root form: "part.NAME", "local.NAME" or
// "request.NAME".
func (n *Node) ID() string { return n.Kind + "." + n.Name }

// Graph is the ordered set of parts and locals to evaluate.
type Graph struct {
	Order []*Node          // topological order: dependencies first
	Nodes map[string]*Node // by ID
	// travs are the traversals of the attributes the graph read, for the
	// evaluators of the profile. Read-only once built.
	travs travMemo
}

// travMemo memoises Expression.Variables, which walks an expression's
// syntax tree and allocates at each node: building the graph asked four
// times per attribute (references, buildout's order, the option graph,
// depends_on), and the evaluator asked again. nil: no memo.
type travMemo map[*Attr][]hcl.Traversal

func (m travMemo) of(a *Attr) []hcl.Traversal {
	if m == nil || a.varsSet {
		return a.Variables() // a loaded profile's attributes have theirs
	}
	if t, ok := m[a]; ok {
		return t
	}
	t := a.Expr.Variables()
	m[a] = t
	return t
}

// refs collects the part.X and local.X references of an attribute, including
// those made through base.NAME in an overriding definition.
func refs(m travMemo, a *Attr, b *Block, out map[string]hcl.Range, diags *hcl.Diagnostics, seen map[*Attr]bool) {
	if seen[a] {
		return
	}
	seen[a] = true
	for _, t := range m.of(a) {
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
				refs(m, a.Base[name], b, out, diags, seen)
			}
		case "self":
			// self.NAME depends on what the block's attribute NAME reads.
			if len(t) < 2 || b == nil {
				continue
			}
			if name, ok := traverserName(t[1]); ok && b.Attrs[name] != nil {
				refs(m, b.Attrs[name], b, out, diags, seen)
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
	return p.references(nil, b)
}

func (p *Profile) references(m travMemo, b *Block) (map[string]hcl.Range, hcl.Diagnostics) {
	out := map[string]hcl.Range{}
	var diags hcl.Diagnostics
	seen := map[*Attr]bool{}
	for _, n := range b.AttrNames() {
		refs(m, b.Attrs[n], b, out, &diags, seen)
	}
	return out, diags
}

// firstRefs lists the parts, locals and requests a block refers to in the
// order buildout initialises them: its options sorted by name, the
// references of each from left to right.
func firstRefs(m travMemo, b *Block) []string {
	var out []string
	seen := map[string]bool{}
	done := map[*Attr]bool{}
	var walk func(a *Attr)
	walk = func(a *Attr) {
		if done[a] {
			return
		}
		done[a] = true
		for _, t := range m.of(a) {
			if len(t) < 2 {
				continue
			}
			name, ok := traverserName(t[1])
			if !ok {
				continue
			}
			switch root := t.RootName(); root {
			case "part", "local", "request":
				if id := root + "." + name; !seen[id] {
					seen[id] = true
					out = append(out, id)
				}
			case "base":
				if a.Base != nil && a.Base[name] != nil {
					walk(a.Base[name])
				}
			case "self":
				if b.Attrs[name] != nil {
					walk(b.Attrs[name])
				}
			}
		}
	}
	for _, n := range b.AttrNames() {
		walk(b.Attrs[n])
	}
	return out
}

// graphVars stand for the context variables while the graph is built: a
// computed parts list may not depend on them.
func graphVars(p *Profile) map[string]cty.Value {
	return map[string]cty.Value{
		"software": cty.DynamicVal, "node": cty.DynamicVal, "partition": cty.DynamicVal,
		"parameter": cty.DynamicVal, "software_type": cty.DynamicVal, "shared": cty.DynamicVal,
		"profile": cty.ObjectVal(map[string]cty.Value{"dir": cty.StringVal(p.Dir)}),
	}
}

// computedParts evaluates a parts list computed from the options of parts
// (buildout's `parts = ${section:list}`): those options are read on demand,
// nothing is installed for it.
func (p *Profile) computedParts() ([]string, hcl.Diagnostics) {
	// Not p.Evaluator, which reads the graph memo: Graph holds its lock.
	v, diags := p.newEvaluator(graphVars(p), nil).EvalAttr(p.PartsAttr)
	if diags.HasErrors() {
		return nil, diags
	}
	if !v.IsWhollyKnown() {
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid parts",
			Detail:  "parts may read the options of parts, but not values known only on a node (software.path, node.id, parameters…) or after an install.",
			Subject: p.PartsAttr.Expr.Range().Ptr()}}
	}
	names, diags := partsList(v, p.PartsAttr)
	for i, s := range names {
		// A computed list holds buildout's section names, written as
		// they are in the options it reads: instance.json is the part
		// labelled instance__2ejson (§1.7).
		if p.Part[s] == nil {
			if e := EncodeName(s); p.Part[e] != nil {
				names[i] = e
			}
		}
	}
	return names, diags
}

// Graph builds the dependency graph of the parts and locals to evaluate and
// sorts it. Roots are the parts to install: the `parts` selection when the
// profile has one, else every part; the blocks in extra (services, promises,
// publish…) add their references as roots too. A reference to an unknown part
// or local is reported at its position. Parts may refer to each other as
// long as no option depends on itself (buildout substitutes option by
// option): every option cycle is reported, naming its members.
func (p *Profile) Graph(extra []*Block) (*Graph, hcl.Diagnostics) {
	// A profile does not change once loaded: the graph of the same extra
	// blocks is the same graph. Callers only read it.
	p.graphMu.Lock()
	defer p.graphMu.Unlock()
	if m := p.graph; m != nil && slices.Equal(m.extra, extra) {
		return m.g, m.diags
	}
	g, diags := p.buildGraph(extra)
	p.graph = &graphMemo{extra: slices.Clone(extra), g: g, diags: diags}
	return g, diags
}

func (p *Profile) buildGraph(extra []*Block) (*Graph, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	travs := travMemo{}
	g := &Graph{Nodes: map[string]*Node{}, travs: travs}
	ranges := map[string]map[string]hcl.Range{}
	add := func(n *Node, r map[string]hcl.Range) {
		g.Nodes[n.ID()] = n
		ranges[n.ID()] = r
	}
	for _, b := range p.Parts {
		r, d := p.references(travs, b)
		diags = append(diags, d...)
		if dep, ok := b.Attrs["depends_on"]; ok {
			for _, t := range travs.of(dep) {
				if t.RootName() == "part" && len(t) >= 2 {
					if name, ok := traverserName(t[1]); ok {
						if _, dup := r["part."+name]; !dup {
							r["part."+name] = t.SourceRange()
						}
					}
				}
			}
		}
		add(&Node{Kind: "part", Name: b.Name(), Block: b, firstDeps: firstRefs(travs, b)}, r)
	}
	for _, b := range p.BlocksOf("request") {
		r, d := p.references(travs, b)
		diags = append(diags, d...)
		add(&Node{Kind: "request", Name: b.Name(), Block: b, firstDeps: firstRefs(travs, b)}, r)
	}
	localNames := make([]string, 0, len(p.Locals))
	for n := range p.Locals {
		localNames = append(localNames, n)
	}
	sort.Strings(localNames)
	for _, n := range localNames {
		r := map[string]hcl.Range{}
		refs(travs, p.Locals[n], nil, r, &diags, map[*Attr]bool{})
		add(&Node{Kind: "local", Name: n, Attr: p.Locals[n], firstDeps: sortedKeys(r)}, r)
	}
	// Check every reference, from nodes and extra blocks alike. Only those
	// of the nodes kept are reported: as buildout, a part nobody uses may
	// name what does not exist.
	var undeclared map[string]hcl.Diagnostics // node ID -> its diagnostics
	checking := ""
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
				d := &hcl.Diagnostic{
					Severity: hcl.DiagError, Summary: "Reference to undeclared " + kind,
					Detail:  fmt.Sprintf("No %s named %q is defined in this profile or the ones it extends.%s", kind, name, suggest(name, known)),
					Subject: &rng,
				}
				if undeclared != nil {
					undeclared[checking] = append(undeclared[checking], d)
				} else {
					diags = append(diags, d)
				}
				continue
			}
			ok = append(ok, id)
		}
		return ok
	}
	undeclared = map[string]hcl.Diagnostics{}
	for _, id := range sortedKeys(g.Nodes) {
		checking = id
		g.Nodes[id].Deps = check(ranges[id])
	}
	pending := undeclared
	undeclared, checking = nil, ""
	roots := map[string]bool{}
	var rootOrder []string
	addRoot := func(id string) {
		if !roots[id] {
			roots[id] = true
			rootOrder = append(rootOrder, id)
		}
	}
	selected := p.Selected
	var readByParts []string
	if p.partsComputed {
		names, d := p.computedParts()
		diags = append(diags, d...)
		selected = names
		if names == nil {
			selected = []string{}
		}
		for _, s := range names {
			if p.Part[s] == nil {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError, Summary: "Unknown part in parts",
					Detail:  fmt.Sprintf("parts lists %q, but no part of that name is defined.%s", s, suggest(s, p.partNames())),
					Subject: p.SelectedRange,
				})
			}
		}
		// A part whose options the list reads is initialised by buildout,
		// and installed when it has a recipe.
		r := map[string]hcl.Range{}
		refs(travs, p.PartsAttr, nil, r, &diags, map[*Attr]bool{})
		for _, id := range check(r) {
			if n := g.Nodes[id]; n != nil && n.Block != nil && n.Block.Attrs["recipe"] != nil {
				readByParts = append(readByParts, id)
			}
		}
	}
	if selected != nil {
		for _, s := range selected {
			addRoot("part." + s)
		}
	} else {
		for _, b := range p.Parts {
			addRoot("part." + b.Name())
		}
	}
	for _, id := range readByParts {
		addRoot(id)
	}
	for _, b := range extra {
		r, d := p.references(travs, b)
		diags = append(diags, d...)
		for _, id := range check(r) {
			addRoot(id)
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
			addRoot(id)
		}
	}
	for _, id := range sortedKeys(g.Nodes) {
		if !keep[id] {
			delete(g.Nodes, id)
			continue
		}
		diags = append(diags, pending[id]...)
		if b := g.Nodes[id].Block; b != nil {
			diags = append(diags, b.deferred...)
		}
	}
	ag := p.optionGraph(travs, g.Nodes)
	diags = append(diags, ag.cycles()...)
	var dfsRoots []string
	for _, id := range rootOrder {
		if g.Nodes[id] != nil {
			dfsRoots = append(dfsRoots, id)
		}
	}
	g.Order = p.sortNodes(g.Nodes, ag, dfsRoots)
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

// optGraph is the graph of values at the level buildout substitutes them:
// one vertex per option of a part (or request), per local, and per part's
// value as a whole (what its install yields). An option reading
// part.X.OPTION depends on that option only; one reading an output of X
// (or X as a whole) depends on X's value, which depends on all of X's
// options.
type optGraph struct {
	ids   map[string]int
	names []string
	value []bool // the vertex is a part's, request's or local's value
	edges [][]optEdge
}

type optEdge struct {
	to  int
	rng hcl.Range
}

func (ag *optGraph) id(name string, value bool) int {
	if i, ok := ag.ids[name]; ok {
		return i
	}
	i := len(ag.names)
	ag.ids[name] = i
	ag.names = append(ag.names, name)
	ag.value = append(ag.value, value)
	ag.edges = append(ag.edges, nil)
	return i
}

func (ag *optGraph) edge(from, to int, rng hcl.Range) {
	ag.edges[from] = append(ag.edges[from], optEdge{to, rng})
}

// optionGraph builds the option-level graph of the kept nodes.
func (p *Profile) optionGraph(travs travMemo, nodes map[string]*Node) *optGraph {
	ag := &optGraph{ids: map[string]int{}}
	ids := sortedKeys(nodes)
	for _, id := range ids {
		n := nodes[id]
		v := ag.id(id, true)
		if n.Block != nil {
			for _, an := range n.Block.AttrNames() {
				ag.edge(v, ag.id(id+"."+an, false), n.Block.Attrs[an].Range)
			}
		}
	}
	for _, id := range ids {
		n := nodes[id]
		v := ag.ids[id]
		if n.Block == nil {
			ag.walk(travs, nodes, v, n.Attr, nil, "", nil)
			continue
		}
		// The value's edges, added above, go to its options in
		// AttrNames order (no other edge leaves a block's value).
		for i, an := range n.Block.AttrNames() {
			ag.walk(travs, nodes, ag.edges[v][i].to, n.Block.Attrs[an], n.Block, id, nil)
		}
	}
	return ag
}

// walk adds the edges of vertex from, whose value is attribute a of block b
// (blockID "part.NAME"), following base.NAME into earlier definitions.
// seen are the attributes walked from this vertex, made when it follows a
// base (nil before).
func (ag *optGraph) walk(travs travMemo, nodes map[string]*Node, from int, a *Attr, b *Block, blockID string, seen map[*Attr]bool) {
	if seen[a] {
		return
	}
	if seen != nil {
		seen[a] = true
	}
	for _, t := range travs.of(a) {
		if len(t) < 2 {
			continue
		}
		name, ok := traverserName(t[1])
		if !ok {
			continue
		}
		switch root := t.RootName(); root {
		case "part", "request":
			target := nodes[root+"."+name]
			if target == nil {
				continue // reported as undeclared
			}
			to := ag.ids[root+"."+name]
			if root == "part" && len(t) >= 3 {
				if opt, ok := traverserName(t[2]); ok && target.Block.Attrs[opt] != nil {
					to = ag.ids[root+"."+name+"."+opt]
				}
			}
			ag.edge(from, to, t.SourceRange())
		case "local":
			if nodes["local."+name] != nil {
				ag.edge(from, ag.ids["local."+name], t.SourceRange())
			}
		case "self":
			if b != nil && b.Attrs[name] != nil {
				ag.edge(from, ag.ids[blockID+"."+name], t.SourceRange())
			}
		case "base":
			if a.Base != nil && a.Base[name] != nil {
				if seen == nil {
					seen = map[*Attr]bool{a: true}
				}
				ag.walk(travs, nodes, from, a.Base[name], b, blockID, seen)
			}
		}
	}
}

// sccs returns the strongly connected components of the option graph
// (Tarjan's algorithm, iterative: a converted release has tens of
// thousands of options).
func (ag *optGraph) sccs() [][]int {
	n := len(ag.names)
	index := make([]int, n)
	low := make([]int, n)
	onStack := make([]bool, n)
	for i := range index {
		index[i] = -1
	}
	var comps [][]int
	var sstack []int
	next := 0
	type frame struct{ v, e int }
	for root := 0; root < n; root++ {
		if index[root] >= 0 {
			continue
		}
		call := []frame{{root, 0}}
		index[root], low[root] = next, next
		next++
		sstack = append(sstack, root)
		onStack[root] = true
		for len(call) > 0 {
			f := &call[len(call)-1]
			if f.e < len(ag.edges[f.v]) {
				w := ag.edges[f.v][f.e].to
				f.e++
				if index[w] < 0 {
					index[w], low[w] = next, next
					next++
					sstack = append(sstack, w)
					onStack[w] = true
					call = append(call, frame{w, 0})
				} else if onStack[w] {
					low[f.v] = min(low[f.v], index[w])
				}
				continue
			}
			v := f.v
			call = call[:len(call)-1]
			if len(call) > 0 {
				u := call[len(call)-1].v
				low[u] = min(low[u], low[v])
			}
			if low[v] == index[v] {
				var comp []int
				for {
					w := sstack[len(sstack)-1]
					sstack = sstack[:len(sstack)-1]
					onStack[w] = false
					comp = append(comp, w)
					if w == v {
						break
					}
				}
				comps = append(comps, comp)
			}
		}
	}
	return comps
}

// cycles reports every option that depends on itself, one diagnostic per
// cycle, naming the blocks and the options in it.
func (ag *optGraph) cycles() hcl.Diagnostics {
	var diags hcl.Diagnostics
	for _, comp := range ag.sccs() {
		in := map[int]bool{}
		for _, v := range comp {
			in[v] = true
		}
		if len(comp) == 1 {
			self := false
			for _, e := range ag.edges[comp[0]] {
				self = self || e.to == comp[0]
			}
			if !self {
				continue
			}
		}
		sort.Slice(comp, func(i, j int) bool { return ag.names[comp[i]] < ag.names[comp[j]] })
		owners := map[string]bool{}
		var opts []string
		for _, v := range comp {
			name := ag.names[v]
			owners[ownerOf(name)] = true
			if !ag.value[v] {
				opts = append(opts, name)
			}
		}
		// Point at a reference that closes the cycle, from an option.
		first := comp[0]
		for _, v := range comp {
			if !ag.value[v] {
				first = v
				break
			}
		}
		var subject *hcl.Range
		for _, e := range ag.edges[first] {
			if in[e.to] {
				r := e.rng
				subject = &r
				break
			}
		}
		detail := fmt.Sprintf("These refer to each other in a cycle, so none can be evaluated first: %s", strings.Join(sortedKeys(owners), ", "))
		if len(opts) > 0 {
			detail += " (through " + strings.Join(opts, ", ") + ")"
		}
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError, Summary: "Reference cycle",
			Detail:  detail + ". Break the cycle by removing one of the references.",
			Subject: subject,
		})
	}
	return diags
}

// ownerOf is the block of a vertex name: "part.a.x" → "part.a".
func ownerOf(name string) string {
	kind, rest, _ := strings.Cut(name, ".")
	block, _, _ := strings.Cut(rest, ".")
	return kind + "." + block
}

// mustPrecede returns, for node id, the nodes whose value must be set
// before it is evaluated: those it reads as a whole or through an output,
// directly or through the options it reads, and every local.
func (ag *optGraph) mustPrecede(id string) []string {
	start, ok := ag.ids[id]
	if !ok {
		return nil
	}
	seen := map[int]bool{start: true}
	queue := []int{start}
	var out []string
	for len(queue) > 0 {
		v := queue[0]
		queue = queue[1:]
		for _, e := range ag.edges[v] {
			if seen[e.to] {
				continue
			}
			seen[e.to] = true
			if ag.value[e.to] {
				out = append(out, ag.names[e.to])
				continue
			}
			queue = append(queue, e.to)
		}
	}
	return out
}

// sortNodes orders nodes dependencies-first. Without parts that refer to
// each other it is deterministic with definition order breaking ties.
// When some do (buildout accepts it when no option depends on itself),
// the order is buildout's: depth first from the roots, each node after
// what it refers to unless that refers back to it; a node still comes
// after every node whose value (not only options) it needs.
func (p *Profile) sortNodes(nodes map[string]*Node, ag *optGraph, roots []string) []*Node {
	rank := func(n *Node) int {
		if n.Block != nil {
			return n.Block.order
		}
		return 1 << 30
	}
	ids := sortedKeys(nodes)
	sort.SliceStable(ids, func(i, j int) bool { return rank(nodes[ids[i]]) < rank(nodes[ids[j]]) })

	comp := nodeSCCs(nodes, ids)
	cyclic := false
	for _, c := range comp {
		cyclic = cyclic || c.size > 1
	}
	after := map[string][]string{} // id -> what must come before it
	if !cyclic {
		for _, id := range ids {
			for _, d := range nodes[id].Deps {
				if nodes[d] != nil && d != id {
					after[id] = append(after[id], d)
				}
			}
		}
		return kahn(nodes, ids, after)
	}
	// buildout's order: depth first from the roots.
	var order []string
	visited := map[string]bool{}
	var visit func(id string)
	visit = func(id string) {
		if visited[id] || nodes[id] == nil {
			return
		}
		visited[id] = true
		deps := nodes[id].firstDeps
		for _, d := range nodes[id].Deps {
			if !containsStr(deps, d) {
				deps = append(deps, d)
			}
		}
		for _, d := range deps {
			visit(d)
		}
		order = append(order, id)
	}
	for _, id := range roots {
		visit(id)
	}
	for _, id := range ids {
		visit(id)
	}
	for _, id := range order {
		for _, d := range nodes[id].Deps {
			if nodes[d] == nil || d == id {
				continue
			}
			if comp[d] != comp[id] || comp[id].size == 1 {
				after[id] = append(after[id], d)
			}
		}
		if comp[id].size > 1 {
			for _, d := range ag.mustPrecede(id) {
				if d != id && nodes[d] != nil && comp[d] == comp[id] {
					after[id] = append(after[id], d)
				}
			}
		}
	}
	return kahn(nodes, order, after)
}

type sccInfo struct{ size int }

// nodeSCCs maps each node to its strongly connected component.
func nodeSCCs(nodes map[string]*Node, ids []string) map[string]*sccInfo {
	ag := &optGraph{ids: map[string]int{}}
	for _, id := range ids {
		ag.id(id, true)
	}
	for _, id := range ids {
		for _, d := range nodes[id].Deps {
			if to, ok := ag.ids[d]; ok {
				ag.edge(ag.ids[id], to, hcl.Range{})
			}
		}
	}
	out := map[string]*sccInfo{}
	for _, c := range ag.sccs() {
		info := &sccInfo{size: len(c)}
		for _, v := range c {
			out[ag.names[v]] = info
		}
	}
	return out
}

// kahn sorts ids so that every node comes after the nodes in after[id],
// the ready node earliest in ids first. Nodes left in a cycle (reported
// by the option graph) are left out.
func kahn(nodes map[string]*Node, ids []string, after map[string][]string) []*Node {
	pos := map[string]int{}
	for i, id := range ids {
		pos[id] = i
	}
	indeg := map[string]int{}
	users := map[string][]string{}
	for _, id := range ids {
		seen := map[string]bool{}
		for _, d := range after[id] {
			if _, ok := pos[d]; !ok || seen[d] {
				continue
			}
			seen[d] = true
			indeg[id]++
			users[d] = append(users[d], id)
		}
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
	return order
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
