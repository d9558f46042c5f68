package buildout

import (
	"os"
	"path/filepath"
	"testing"
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
