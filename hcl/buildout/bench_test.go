package buildout

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/slapnode/slapnode/hcl/profile"
)

// BenchmarkConvertCorpus converts every file of the public corpus (307
// cfg-like files, templates and other formats included) one by one, as
// `slapnode convert` does: read, parse, convert, format, check it parses.
func BenchmarkConvertCorpus(b *testing.B) {
	corpus := corpusDir(b)
	rows := readManifest(b, corpus)
	srcs := make([][]byte, len(rows))
	for i, r := range rows {
		var err error
		if srcs[i], err = os.ReadFile(filepath.Join(corpus, r.Path)); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for range b.N {
		for i, r := range rows {
			ConvertFile(r.Path, srcs[i], ConvertOptions{})
		}
	}
	b.ReportMetric(float64(len(rows)), "files/op")
}

// BenchmarkResolveStackSlapos loads and resolves stack/slapos.cfg, the
// largest closure of the public corpus (61 files).
func BenchmarkResolveStackSlapos(b *testing.B) {
	root := filepath.Join(corpusDir(b), "stack", "slapos.cfg")
	for range b.N {
		cfg, err := Load(root, LoadOptions{})
		if err != nil {
			b.Fatal(err)
		}
		cfg.Resolve()
	}
}

// BenchmarkConvertReleaseStackSlapos converts stack/slapos.cfg as a
// release: its 61 files, each to its own HCL, knowing the closure.
func BenchmarkConvertReleaseStackSlapos(b *testing.B) {
	root := filepath.Join(corpusDir(b), "stack", "slapos.cfg")
	for range b.N {
		if _, err := ConvertRelease([]string{root}, ConvertOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoadGraphStackSlapos loads the converted stack/slapos.cfg (61
// HCL files) and builds its option-level graph, as plan and apply do first.
func BenchmarkLoadGraphStackSlapos(b *testing.B) {
	rel, err := ConvertRelease([]string{filepath.Join(corpusDir(b), "stack", "slapos.cfg")}, ConvertOptions{})
	if err != nil {
		b.Fatal(err)
	}
	root := writeRelease(b, rel, b.TempDir(), filepath.Join(corpusDir(b), "stack", "slapos.cfg"))
	b.ResetTimer()
	for range b.N {
		p, diags := profile.Load(root, profile.Software)
		if diags.HasErrors() {
			b.Fatal(diags)
		}
		if _, diags := p.Graph(nil); diags.HasErrors() {
			b.Fatal(diags)
		}
	}
}
