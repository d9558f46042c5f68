package buildout

import (
	"testing"

	"github.com/hashicorp/hcl/v2/hclsyntax"
)

func TestMangleName(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"dirs", "dirs"},
		{"slap-connection", "slap-connection"},
		{"instance.cfg", "instance__2ecfg"},
		{"python2.7", "python2__2e7"},
		{"ZEO/scripts", "ZEO__2fscripts"},
		{"3proxy", "__33proxy"},
		{"a__b", "a__5f5fb"},
		{"<part-dependencies>", "__3cpart-dependencies__3e"},
		{"_.x", "___2ex"},
	} {
		if got := MangleName(c.in); got != c.want {
			t.Errorf("MangleName(%q) = %q, want %q", c.in, got, c.want)
		}
		back, err := UnmangleName(c.want)
		if err != nil || back != c.in {
			t.Errorf("UnmangleName(%q) = %q, %v; want %q", c.want, back, err, c.in)
		}
	}
	if _, err := UnmangleName("a__2Ex"); err == nil {
		t.Error("UnmangleName accepted an uppercase escape MangleName never writes")
	}
}

func FuzzMangleRoundTrip(f *testing.F) {
	for _, s := range []string{"a", "a.b", "__", "___", "_.", "9x", "-x", "é", "a__5f5f", "x_5f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if s == "" {
			return
		}
		m := MangleName(s)
		if !hclsyntax.ValidIdentifier(m) {
			t.Fatalf("MangleName(%q) = %q is not an HCL identifier", s, m)
		}
		back, err := UnmangleName(m)
		if err != nil || back != s {
			t.Fatalf("round trip %q -> %q -> %q (%v)", s, m, back, err)
		}
	})
}
