package partition

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/slapnode/slapnode/internal/benchprofile"
)

// benchProfile is the shape of the side-by-side benchmark's buildout
// profiles: half directories, half templates, references chained across
// parts.
func benchProfile(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		if i%2 == 0 {
			fmt.Fprintf(&b, "part \"dir%d\" {\n  recipe = \"cookbook:mkdirectory\"\n  path = \"${software.path}/d%d\"\n}\n", i, i)
			continue
		}
		fmt.Fprintf(&b, "part \"tpl%d\" {\n  recipe = \"cookbook:template\"\n  output = \"${part.dir%d.path}/f%d.txt\"\n  inline = \"part %d after {{ prev }}\\n\"\n  context = { prev = part.dir%d.path }\n}\n", i, i-1, i, i, i-1)
	}
	return b.String()
}

// BenchmarkApply measures a first apply and a no-op re-apply of generated
// profiles of 100 and 1000 parts.
func BenchmarkApply(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("parts=%d/first", n), func(b *testing.B) {
			e := newEngine(b)
			path := writeProfile(b, b.TempDir(), benchProfile(n))
			s, err := e.LoadSoftware(path)
			if err != nil {
				b.Fatal(err)
			}
			install(b, e, path) // warm the module cache
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				os.RemoveAll(s.Path)
				b.StartTimer()
				s, _ := e.LoadSoftware(path)
				if err := e.InstallSoftware(context.Background(), s, false, false); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("parts=%d/noop", n), func(b *testing.B) {
			e := newEngine(b)
			path := writeProfile(b, b.TempDir(), benchProfile(n))
			install(b, e, path)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				s, err := e.LoadSoftware(path)
				if err != nil {
					b.Fatal(err)
				}
				// Bypass the release's completion marker: every part is
				// compared with the state, as an instance re-apply does.
				os.Remove(filepath.Join(s.Path, ".completed"))
				if err := e.InstallSoftware(context.Background(), s, false, false); err != nil {
					b.Fatal(err)
				}
				if s.Report.Counts[Unchanged] != n {
					b.Fatalf("not a no-op: %s", s.Report.Summary())
				}
			}
		})
	}
}

// BenchmarkFirstApply measures a first install of the converted buildout
// benchmark profile with the real cookbook: the profile loaded, every part
// evaluated, validated, signed, installed by its recipe and journaled
// (issue 21). The module is compiled before the timer starts, as on a
// machine where slapnode was installed.
func BenchmarkFirstApply(b *testing.B) {
	for _, n := range []int{1000} {
		b.Run(fmt.Sprintf("parts=%d", n), func(b *testing.B) {
			e := newEngine(b)
			path := writeProfile(b, b.TempDir(), benchprofile.Converted(n))
			s := install(b, e, path)
			if s.Report.Counts[Install] != n {
				b.Fatalf("not a first install: %s", s.Report.Summary())
			}
			b.ReportAllocs()
			b.ResetTimer()
			var user, sys int64
			for range b.N {
				b.StopTimer()
				os.RemoveAll(s.Path)
				u, s0 := rusage()
				b.StartTimer()
				s, err := e.LoadSoftware(path)
				if err != nil {
					b.Fatal(err)
				}
				if err := e.InstallSoftware(context.Background(), s, false, false); err != nil {
					b.Fatal(err)
				}
				if s.Report.Counts[Install] != n {
					b.Fatalf("not a first install: %s", s.Report.Summary())
				}
				b.StopTimer()
				u1, s1 := rusage()
				user, sys = user+u1-u, sys+s1-s0
				b.StartTimer()
			}
			// User CPU is the engine's and the guest's work; system CPU
			// is mostly the file system's, which varies with the disk.
			b.ReportMetric(float64(user)/float64(b.N), "user-ns/op")
			b.ReportMetric(float64(sys)/float64(b.N), "sys-ns/op")
		})
	}
}

// rusage is the process's user and system CPU time in nanoseconds.
func rusage() (user, sys int64) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, 0
	}
	return ru.Utime.Nano(), ru.Stime.Nano()
}

// BenchmarkJournalOpen measures what every apply pays for its state: open
// a journal of 1000 parts, replay it (checking each line's HMAC), close it.
func BenchmarkJournalOpen(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "s")
	j, err := openJournal(testSpec(dir))
	if err != nil {
		b.Fatal(err)
	}
	for i := range 1000 {
		opts := fmt.Sprintf(`{"output":"/srv/slapnode/instance/slappart0/etc/f%d.txt","inline":"part %d after {{ prev }}\n","context":{"prev":"/srv/slapnode/instance/slappart0/d%d"}}`, i, i, i)
		j.set(fmt.Sprint("part", i), &PartRecord{Recipe: "cookbook:template", Module: strings.Repeat("a", 64), Signature: strings.Repeat("b", 64),
			Options: json.RawMessage(opts), Outputs: json.RawMessage(opts), Installed: []string{"/srv/slapnode/instance/slappart0/etc/f.txt"}})
	}
	j.close()
	b.ResetTimer()
	for range b.N {
		j, err := openJournal(testSpec(dir))
		if err != nil || len(j.parts) != 1000 {
			b.Fatal(err)
		}
		j.close()
	}
}

// BenchmarkRecheck measures `apply --recheck` of a complete, unchanged
// 1000-part release: answered from the recheck cache (cached), and with
// the profile parsed and evaluated (full, the cache removed each time).
func BenchmarkRecheck(b *testing.B) {
	const n = 1000
	e := newEngine(b)
	path := writeProfile(b, b.TempDir(), benchProfile(n))
	s := install(b, e, path)
	b.Run(fmt.Sprintf("parts=%d/cached", n), func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			sw := e.RecheckUnchanged(path)
			if sw == nil || sw.Report.Counts[Unchanged] != n {
				b.Fatal("the recheck cache did not answer")
			}
		}
	})
	b.Run(fmt.Sprintf("parts=%d/full", n), func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			os.Remove(e.recheckPath(s.URL))
			sw, err := e.LoadSoftware(path)
			if err != nil {
				b.Fatal(err)
			}
			sw.Recheck = true
			if err := e.InstallSoftware(context.Background(), sw, false, false); err != nil {
				b.Fatal(err)
			}
			if sw.Report.Counts[Unchanged] != n {
				b.Fatalf("not a no-op: %s", sw.Report.Summary())
			}
		}
	})
}
