package profile

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// DiffSplitParse parses src whole and, when the nesting scan cuts it
// (every bytes at least between cuts) and every piece parses cleanly, in
// pieces as Load does. It reports whether the pieces were used and how
// their tree differs from the whole file's ("" when it does not).
func DiffSplitParse(src []byte, filename string, every int) (split bool, diff string) {
	s := nestScan{cutEvery: every}
	if s.run(src, false, MaxNesting) > MaxNesting {
		return false, ""
	}
	f := parseSplit(src, filename, s.cuts, 0)
	if f == nil {
		return false, ""
	}
	// On one core (LoadOptions.Cores), the pieces are parsed in order on
	// the caller's goroutine: the same tree.
	if one := parseSplit(src, filename, s.cuts, 1); !reflect.DeepEqual(one, f) {
		return true, "the pieces parsed on one core give another tree than on all cores"
	}
	whole, diags := hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	if len(diags) > 0 {
		return true, fmt.Sprintf("the pieces parse cleanly, the whole file does not: %v", diags)
	}
	if reflect.DeepEqual(whole, f) {
		return true, ""
	}
	wb, sb := whole.Body.(*hclsyntax.Body), f.Body.(*hclsyntax.Body)
	switch {
	case len(wb.Blocks) != len(sb.Blocks):
		return true, fmt.Sprintf("%d blocks, %d in pieces", len(wb.Blocks), len(sb.Blocks))
	case !reflect.DeepEqual(wb.Attributes, sb.Attributes):
		return true, "the top-level attributes differ"
	case wb.SrcRange != sb.SrcRange || wb.EndRange != sb.EndRange:
		return true, fmt.Sprintf("body ranges %v %v, %v %v in pieces", wb.SrcRange, wb.EndRange, sb.SrcRange, sb.EndRange)
	}
	for i := range wb.Blocks {
		if !reflect.DeepEqual(wb.Blocks[i], sb.Blocks[i]) {
			return true, fmt.Sprintf("block %d (%s) differs", i, wb.Blocks[i].DefRange())
		}
	}
	return true, "the files differ"
}

// DiffCheck runs Check and the Check of commit 1e2e54a (check_old_test.go)
// on p, and returns both renderings when they differ ("" otherwise).
func DiffCheck(p *Profile, o CheckOptions) string {
	render := func(diags hcl.Diagnostics) string {
		var b strings.Builder
		WriteDiagnostics(&b, diags, p.Sources())
		return b.String()
	}
	got, want := render(p.Check(o)), render(p.oldCheck(o))
	if got == want {
		return ""
	}
	return "Check:\n" + got + "\nbefore:\n" + want
}
