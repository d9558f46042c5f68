package schema

import (
	"path/filepath"
	"testing"
)

// benchCases are typical SlapOS request schemas with realistic parameters:
// caucase (flat, defaults), rapidspace-vps (allOf + $ref into a sibling
// software + unevaluatedProperties), wendelin (large, nested).
var benchCases = []struct {
	name, descriptor, params string
}{
	{"caucase", "software/caucase/software.cfg.json", `{"base-port": 8009, "key-length": 4096, "user-auto-approve-amount": 2}`},
	{"vps", "software/rapidspace-vps/software.cfg.json", `{"boot-image-url-select": "Debian Bookworm 12 netinst x86_64", "enable-novnc-server": false}`},
	{"wendelin", "software/wendelin/software-py3.cfg.json", `{"zodb": [{"type": "zeo", "server": {}}], "mariadb": {"max-connection-count": 500, "relaxed-writes": true}, "zope-partition-dict": {"default": {"family": "default", "thread-amount": 4, "instance-count": 2}}}`},
}

// BenchmarkValidate measures validations per second of a schema compiled
// once (defaults applied, violations none). Figures: docs/benchmarks.md.
func BenchmarkValidate(b *testing.B) {
	for _, c := range benchCases {
		d, err := LoadDescriptor(filepath.Join(corpusDir(b), c.descriptor))
		if err != nil {
			b.Fatal(err)
		}
		v, err := d.Validator("default", false, Options{})
		if err != nil {
			b.Fatal(err)
		}
		params := decode(b, c.params)
		if _, err := v.Validate(params); err != nil {
			b.Fatalf("%s: %v", c.name, err)
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Validate(params); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "validations/s")
		})
	}
}

// BenchmarkValidateInvalid measures the error path: an invalid document
// whose report needs the unevaluatedProperties noise filter.
func BenchmarkValidateInvalid(b *testing.B) {
	d, err := LoadDescriptor(filepath.Join(corpusDir(b), "software/rapidspace-vps/software.cfg.json"))
	if err != nil {
		b.Fatal(err)
	}
	v, err := d.Validator("default", false, Options{})
	if err != nil {
		b.Fatal(err)
	}
	params := decode(b, `{"boot-image-url-select": "nope", "enable-novnc-server": "yes", "bogus": 1}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Validate(params); err == nil {
			b.Fatal("accepted")
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "validations/s")
}

// BenchmarkCompile measures compiling a descriptor's request schema.
func BenchmarkCompile(b *testing.B) {
	d, err := LoadDescriptor(filepath.Join(corpusDir(b), "software/wendelin/software-py3.cfg.json"))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := d.Validator("default", false, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
