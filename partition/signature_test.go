package partition

import (
	"math/big"
	"testing"

	"github.com/zclconf/go-cty/cty"
)

// signatureCases are options of every shape a profile can give a recipe.
// Their canonical JSON and signatures below were computed by the engine
// that wrote the journals of released versions: a part's signature must
// never change for the same options and module, or every part of every
// node would be reinstalled after an upgrade.
var signatureCases = []struct {
	name string
	opts map[string]cty.Value
	json string
	sig  string
}{
	{"empty", map[string]cty.Value{}, `{}`, "c98f8f2716c711819f80be209eaf3c660f7f5c442935160edf6bce590537cdbc"},
	{"strings", map[string]cty.Value{
		"path":   cty.StringVal("/srv/slapgrid/slappart0/etc"),
		"inline": cty.StringVal("<a href=\"x\">&amp;</a>\n\ttab \\ back\u2028sep\u2029é\x01"),
		"z":      cty.StringVal(""),
		"a b/c~": cty.StringVal("ключ"),
	}, "{\"a b/c~\":\"ключ\",\"inline\":\"\\u003ca href=\\\"x\\\"\\u003e\\u0026amp;\\u003c/a\\u003e\\n\\ttab \\\\ back\\u2028sep\\u2029é\\u0001\",\"path\":\"/srv/slapgrid/slappart0/etc\",\"z\":\"\"}",
		"9a52092acec681adc626db721c1bdc0f75814088fdfa748ea146fa93c437d758"},
	{"numbers", map[string]cty.Value{
		"int":   cty.NumberIntVal(42),
		"neg":   cty.NumberIntVal(-7),
		"float": cty.NumberFloatVal(0.1),
		"big":   cty.NumberVal(new(big.Float).SetPrec(512).SetInt64(1).SetMantExp(big.NewFloat(1), 200)),
		"zero":  cty.Zero,
		"mode":  cty.StringVal("0755"),
	}, "{\"big\":1606938044258990300000000000000000000000000000000000000000000,\"float\":0.1,\"int\":42,\"mode\":\"0755\",\"neg\":-7,\"zero\":0}",
		"c9962443d9bc4da959f6a2467333cbca8d73406ccb856f52e9c51c8568bd509a"},
	{"bools and nulls", map[string]cty.Value{
		"t": cty.True, "f": cty.False,
		"nullstr": cty.NullVal(cty.String),
		"nulldyn": cty.NullVal(cty.DynamicPseudoType),
	}, "{\"f\":false,\"nulldyn\":null,\"nullstr\":null,\"t\":true}",
		"37ceab133062b19ab893ddb9e21a0e7adbd3c9314269ac4334481052e69ea4b7"},
	{"collections", map[string]cty.Value{
		"list":   cty.ListVal([]cty.Value{cty.StringVal("b"), cty.StringVal("a")}),
		"empty":  cty.ListValEmpty(cty.String),
		"set":    cty.SetVal([]cty.Value{cty.StringVal("z"), cty.StringVal("y"), cty.StringVal("x")}),
		"tuple":  cty.TupleVal([]cty.Value{cty.StringVal("a"), cty.NumberIntVal(1), cty.True, cty.EmptyObjectVal}),
		"map":    cty.MapVal(map[string]cty.Value{"k2": cty.StringVal("v2"), "k1": cty.StringVal("v1")}),
		"object": cty.ObjectVal(map[string]cty.Value{"prev": cty.StringVal("/d0"), "n": cty.NumberIntVal(3), "nested": cty.ObjectVal(map[string]cty.Value{"l": cty.ListVal([]cty.Value{cty.NumberFloatVal(2.5)})})}),
	}, "{\"empty\":[],\"list\":[\"b\",\"a\"],\"map\":{\"k1\":\"v1\",\"k2\":\"v2\"},\"object\":{\"n\":3,\"nested\":{\"l\":[2.5]},\"prev\":\"/d0\"},\"set\":[\"x\",\"y\",\"z\"],\"tuple\":[\"a\",1,true,{}]}",
		"d7949e33d4c09b8f2f5629c36de440574184a820e6d59f2aacbdb4604f22e3a1"},
}

// TestSignatureStable checks that the canonical JSON of a part's options
// and its signature are those older versions computed.
func TestSignatureStable(t *testing.T) {
	const digest = "5d7b6a125b9002b0474f83123a28f7cb8ad1717deacf65997497c0402a6e4c03"
	for _, c := range signatureCases {
		got, err := toJSON(c.opts)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		sig := signature("cookbook:template", digest, got)
		if string(got) != c.json {
			t.Errorf("%s: canonical JSON\n got %s\nwant %s", c.name, got, c.json)
		}
		if sig != c.sig {
			t.Errorf("%s: signature %s, want %s", c.name, sig, c.sig)
		}
	}
}
