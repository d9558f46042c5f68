package slap

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/slapnode/slapnode/node/slap/slaptest"
)

// marshalled returns every xml_marshaller document of the capture: form
// fields and response bodies.
func marshalled(t testing.TB) map[string]string {
	t.Helper()
	samples, err := slaptest.Load()
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string]string{}
	for _, s := range samples {
		for k, v := range s.Form {
			if strings.HasPrefix(v, "<marshal>") {
				docs[v] = "#" + strconv.Itoa(s.Seq) + " form " + k
			}
		}
		if strings.HasPrefix(s.ResponseBody, "<marshal>") {
			docs[s.ResponseBody] = "#" + strconv.Itoa(s.Seq) + " response"
		}
	}
	if len(docs) < 40 {
		t.Fatalf("only %d marshalled documents in the samples", len(docs))
	}
	return docs
}

// Every document slapos.util.dumps produced in the capture decodes and
// encodes back to the same bytes.
func TestRoundTripSamples(t *testing.T) {
	for doc, where := range marshalled(t) {
		v, err := Unmarshal([]byte(doc))
		if err != nil {
			t.Errorf("%s: %v", where, err)
			continue
		}
		out, err := Marshal(v)
		if err != nil {
			t.Errorf("%s: %v", where, err)
			continue
		}
		if string(out) != doc {
			t.Errorf("%s: re-encoded differently:\n got %s\nwant %s", where, out, doc)
		}
	}
}

func TestMarshalScalars(t *testing.T) {
	for _, c := range []struct {
		v    any
		want string
	}{
		{nil, "<none/>"},
		{"", "<string></string>"},
		{"a&<b", "<string>a&amp;amp;&amp;lt;b</string>"},
		{"h\u00e9llo \u20ac <&>", "<string>h&#233;llo &#8364; &amp;lt;&amp;amp;&amp;gt;</string>"},
		{"\U0001F600", "<string>&#128512;</string>"},
		{"a\rb\tc\n", "<string>a&#13;b\tc\n</string>"},
		{true, "<bool>1</bool>"},
		{false, "<bool>0</bool>"},
		{3, "<int>3</int>"},
		{int64(-7), "<int>-7</int>"},
		{1.5, "<float>1.5</float>"},
		{Tuple{}, "<tuple/>"},
		{Tuple{"a", 1}, "<tuple><string>a</string><int>1</int></tuple>"},
		{[]any{}, `<list id="i2"/>`},
		{map[string]any{}, `<dictionary id="i2"/>`},
		{map[string]any{"b": []any{}, "a": map[string]any{}}, `<dictionary id="i2"><string>a</string><dictionary id="i3"/><string>b</string><list id="i4"/></dictionary>`},
		{Set{"x"}, `<set id="i2"><string>x</string></set>`},
	} {
		got, err := Marshal(c.v)
		if err != nil {
			t.Errorf("Marshal(%#v): %v", c.v, err)
			continue
		}
		if want := "<marshal>" + c.want + "</marshal>"; string(got) != want {
			t.Errorf("Marshal(%#v) = %s, want %s", c.v, got, want)
		}
	}
}

func TestMarshalRefuses(t *testing.T) {
	for _, v := range []any{"nul\x00", "bad\xff", struct{}{}, &Object{Class: "Evil"}, map[string]any{"k": 1i}} {
		if _, err := Marshal(v); err == nil {
			t.Errorf("Marshal(%#v) succeeded", v)
		}
	}
}

func TestUnmarshal(t *testing.T) {
	v, err := Unmarshal([]byte(`<marshal><dictionary id="i2"><string>l</string><list id="i3"><unicode>x&amp;amp;y</unicode><long>12</long></list><string>r</string><reference id="i3"/><string>f</string><float>2.5</float><string>b</string><bool>1</bool></dictionary></marshal>`))
	if err != nil {
		t.Fatal(err)
	}
	m := v.(map[string]any)
	l := m["l"].([]any)
	if l[0] != "x&y" || l[1] != 12 || m["f"] != 2.5 || m["b"] != true {
		t.Errorf("decoded %#v", m)
	}
	if r := m["r"].([]any); len(r) != 2 || r[0] != "x&y" {
		t.Errorf("reference resolved to %#v", m["r"])
	}
}

func TestUnmarshalRefuses(t *testing.T) {
	for _, doc := range []string{
		``,
		`<marshal>`,
		`<other><none/></other>`,
		`<marshal></marshal>`,
		`<marshal><object id="i2" module="os" class="system"><tuple/><dictionary id="i3"/></object></marshal>`,
		`<marshal><object id="i2" module="slapos.slap.slap" class="Token"><tuple/><dictionary id="i3"/></object></marshal>`,
		`<marshal><int>x</int></marshal>`,
		`<marshal><bool>2</bool></marshal>`,
		`<marshal><dictionary id="i2"><int>1</int><none/></dictionary></marshal>`,
		`<marshal><dictionary id="i2"><string>k</string></dictionary></marshal>`,
		`<marshal><reference id="i9"/></marshal>`,
		`<marshal><frobnicate/></marshal>`,
		`<marshal><string>a<b/></string></marshal>`,
		`<marshal>` + strings.Repeat(`<list id="i2">`, 300) + strings.Repeat(`</list>`, 300) + `</marshal>`,
	} {
		if _, err := Unmarshal([]byte(doc)); !errors.Is(err, ErrSyntax) {
			t.Errorf("Unmarshal(%.60q) = %v, want ErrSyntax", doc, err)
		}
	}
}

func TestPyFloat(t *testing.T) {
	for f, want := range map[float64]string{
		1795302566.8295193: "1795302566.8295193",
		1795302567.0937831: "1795302567.0937831",
		3:                  "3.0",
		0.1:                "0.1",
		1e16:               "1e+16",
		1.5e-05:            "1.5e-05",
		0.0001:             "0.0001",
		123456789012345.6:  "123456789012345.6",
		-2.5:               "-2.5",
	} {
		if got := PyFloat(f); got != want {
			t.Errorf("PyFloat(%v) = %s, want %s", f, got, want)
		}
	}
}

func TestPyRepr(t *testing.T) {
	for _, c := range []struct {
		v    any
		want string
	}{
		{"https://x/y.cfg", "'https://x/y.cfg'"},
		{"it's", `"it's"`},
		{`it's "q"`, `'it\'s "q"'`},
		{"a\nb\\", `'a\nb\\'`},
		{[]any{1, "a", nil, true}, "[1, 'a', None, True]"},
		{map[string]any{"b": 1.0, "a": Tuple{"x"}}, "{'a': ('x',), 'b': 1.0}"},
		{"h\u00e9", "'h\u00e9'"},
	} {
		if got := PyRepr(c.v); got != c.want {
			t.Errorf("PyRepr(%#v) = %s, want %s", c.v, got, c.want)
		}
	}
}

// The connection_xml of sample #18 is dict2xml of the connection
// parameters published in #16.
func TestDictToXMLSample(t *testing.T) {
	samples, err := slaptest.Load()
	if err != nil {
		t.Fatal(err)
	}
	answer, err := Unmarshal([]byte(samples[17].ResponseBody))
	if err != nil {
		t.Fatal(err)
	}
	want := answer.(*Object).Dict["connection_xml"].(string)
	params, err := Unmarshal([]byte(samples[15].Form["connection_xml"]))
	if err != nil {
		t.Fatal(err)
	}
	got, err := DictToXML(params.(map[string]any))
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("DictToXML:\n got %q\nwant %q", got, want)
	}
	back, err := XMLToDict(got)
	if err != nil {
		t.Fatal(err)
	}
	if back["password"] != "p4ss w0rd&<>" || back["url"] != "http://[fd00::2]:8080/" {
		t.Errorf("XMLToDict = %#v", back)
	}
}

func TestDictToXML(t *testing.T) {
	got, err := DictToXML(map[string]any{"n": 3, "b": true, "e": "", "z": nil, "l": []any{"a"}, `q"<`: "\u00e9"})
	if err != nil {
		t.Fatal(err)
	}
	want := "<?xml version='1.0' encoding='utf-8'?>\n<instance>\n" +
		"  <parameter id=\"b\">True</parameter>\n" +
		"  <parameter id=\"e\"></parameter>\n" +
		"  <parameter id=\"l\">['a']</parameter>\n" +
		"  <parameter id=\"n\">3</parameter>\n" +
		"  <parameter id=\"q&quot;&lt;\">\u00e9</parameter>\n" +
		"  <parameter id=\"z\">None</parameter>\n" +
		"</instance>\n"
	if got != want {
		t.Errorf("DictToXML:\n got %q\nwant %q", got, want)
	}
	back, err := XMLToDict(got)
	if err != nil {
		t.Fatal(err)
	}
	if back["n"] != "3" || back["e"] != nil || back[`q"<`] != "\u00e9" {
		t.Errorf("XMLToDict = %#v", back)
	}
	empty, _ := DictToXML(nil)
	if empty != "<?xml version='1.0' encoding='utf-8'?>\n<instance/>\n" {
		t.Errorf("empty: %q", empty)
	}
	dup, err := XMLToDict(`<instance><parameter id="a">x</parameter><parameter id="a">y</parameter></instance>`)
	if err != nil || dup["a"] != "x y" {
		t.Errorf("duplicate ids: %#v, %v", dup, err)
	}
	if _, err := XMLToDict("<instance><parameter"); err == nil {
		t.Error("XMLToDict accepted broken XML")
	}
}

func FuzzUnmarshal(f *testing.F) {
	for doc := range marshalled(f) {
		f.Add([]byte(doc))
	}
	f.Add([]byte(`<marshal><reference id="i2"/></marshal>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := Unmarshal(data)
		if err != nil {
			return
		}
		m1, err := Marshal(v)
		if err != nil {
			return // e.g. a decoded float NaN is fine, but strings XML cannot carry are refused
		}
		v2, err := Unmarshal(m1)
		if err != nil {
			t.Fatalf("re-decoding %q: %v", m1, err)
		}
		m2, err := Marshal(v2)
		if err != nil || !bytes.Equal(m1, m2) {
			t.Fatalf("not stable: %q then %q (%v)", m1, m2, err)
		}
	})
}

func FuzzXMLToDict(f *testing.F) {
	f.Add("<?xml version='1.0' encoding='utf-8'?>\n<instance>\n  <parameter id=\"a\">b</parameter>\n</instance>\n")
	f.Fuzz(func(t *testing.T, doc string) {
		m, err := XMLToDict(doc)
		if err != nil {
			return
		}
		x, err := DictToXML(m)
		if err != nil {
			return
		}
		m2, err := XMLToDict(x)
		if err != nil {
			t.Fatalf("re-reading %q: %v", x, err)
		}
		for k, v := range m {
			w := m2[k]
			if v == nil {
				v = "None"
			}
			if w != v {
				t.Fatalf("%q: %#v became %#v", k, v, w)
			}
		}
	})
}
