package profile

import (
	"testing"

	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// chomp must answer what go-cty's own chomp answers, on every mix of
// trailing line ends.
func TestChompAsStdlib(t *testing.T) {
	for _, in := range []string{"", "a", "a\n", "a\r\n", "a\r", "a\n\r", "a\r\r\n\n", "\n", "\r\n\r\n", "a\nb", "a\nb\n\n", "é\n", "a \n", "a\n "} {
		want, err := stdlib.ChompFunc.Call([]cty.Value{cty.StringVal(in)})
		if err != nil {
			t.Fatal(err)
		}
		got, err := chompFunc.Call([]cty.Value{cty.StringVal(in)})
		if err != nil {
			t.Fatal(err)
		}
		if !got.RawEquals(want) {
			t.Errorf("chomp(%q) = %#v, go-cty's = %#v", in, got, want)
		}
	}
	u, err := chompFunc.Call([]cty.Value{cty.UnknownVal(cty.String)})
	w, _ := stdlib.ChompFunc.Call([]cty.Value{cty.UnknownVal(cty.String)})
	if err != nil || u.IsKnown() || !u.RawEquals(w) {
		t.Errorf("chomp(unknown) = %#v, %v; go-cty's = %#v", u, err, w)
	}
}
