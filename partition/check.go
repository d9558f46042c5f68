package partition

import (
	"context"
	"sort"

	"github.com/hashicorp/hcl/v2"

	"github.com/slapnode/slapnode/hcl/profile"
)

// Check finds the mistakes of a software release's profiles before
// anything is installed — the software profile and the instance profile of
// every software type, all at once, each with its file:line:col: options
// a recipe or a check does not take, values of the wrong type, unknown
// recipes, references that resolve to nothing. Recipes and checks are
// described by their modules (the built-in cookbook's description is
// cached per node). A buildout release's instance profiles are rendered
// at apply: only its software profile is checked.
func (e *Engine) Check(ctx context.Context, s *Software) error {
	var diags hcl.Diagnostics
	files := map[string]*hcl.File{}
	check := func(p *profile.Profile, ev *profile.Evaluator) {
		specs, _ := p.Modules(ev)
		entry := func(mod string) *modRef {
			m, err := e.module(ctx, specs, mod, nil)
			if err != nil || !m.Described {
				return nil
			}
			return m
		}
		o := profile.CheckOptions{
			Recipe: func(mod, name string) (*profile.OptionSpec, bool) {
				if m := entry(mod); m != nil {
					return optionSpec(m, false, name)
				}
				return nil, false
			},
			Check: func(mod, name string) (*profile.OptionSpec, bool) {
				if m := entry(mod); m != nil {
					return optionSpec(m, true, name)
				}
				return nil, false
			},
			Names: func(mod string, promise bool) ([]string, bool) {
				m := entry(mod)
				if m == nil {
					return nil, false
				}
				set := m.Description.Recipes
				if promise {
					set = m.Description.Promises
				}
				names := make([]string, 0, len(set))
				for n := range set {
					names = append(names, n)
				}
				sort.Strings(names)
				return names, true
			},
		}
		diags = append(diags, p.Check(o)...)
		for k, f := range p.Sources() {
			files[k] = f
		}
	}
	check(s.Profile, s.Profile.Evaluator(e.softwareVars(s)))
	if s.Legacy == nil {
		seen := map[string]bool{}
		names := make([]string, 0, len(s.Types))
		for n := range s.Types {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			it := s.Types[n]
			if seen[it.Profile] {
				continue
			}
			seen[it.Profile] = true
			p, d := profile.Load(it.Profile, profile.Instance)
			diags = append(diags, d...)
			if p == nil || len(p.Files) == 0 {
				continue
			}
			for k, f := range p.Sources() {
				files[k] = f
			}
			check(p, p.Evaluator(e.softwareVars(s)))
		}
	}
	if !diags.HasErrors() {
		return nil
	}
	return profile.JoinErrors(&profile.Error{Diags: diags, Files: files})
}

// optionSpec is what a described recipe or check takes.
func optionSpec(m *modRef, promise bool, name string) (*profile.OptionSpec, bool) {
	set, ok := m.optionSet(promise, name)
	if !ok {
		return nil, false
	}
	return &profile.OptionSpec{Known: set.Known, Open: set.Open}, true
}
