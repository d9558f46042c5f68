package format

import (
	"testing"
)

// BenchmarkFormat100 measures formatting a node of 100 partitions from
// nothing ("first"), and the no-op re-run that finds everything in place
// ("noop"). "rootless" creates directories and the state only; "root" also
// creates 101 users in /etc, 100 cgroups with limits (cgroup v1 + v2 here)
// and the bridge, 100 taps, 200 addresses and 200 routes, in a network
// namespace the benchmark creates.
func BenchmarkFormat100(b *testing.B) {
	for _, mode := range []string{"rootless", "root"} {
		rootless := mode == "rootless"
		setup := func(b *testing.B) (string, func() Options) {
			b.Helper()
			var src string
			if rootless {
				src = "partitions {\n  count = 100\n}\n"
			} else {
				needRoot(b)
				src = rootConfig(100, newNS(b))
			}
			root := nodeRoot(b)
			return root, func() Options {
				return Options{Config: parse(b, root, src), Rootless: rootless}
			}
		}
		b.Run(mode+"/first", func(b *testing.B) {
			_, opts := setup(b)
			for b.Loop() {
				res, err := Format(opts())
				if err != nil {
					b.Fatal(err)
				}
				if len(res.Changes) < 100 {
					b.Fatalf("only %d changes", len(res.Changes))
				}
				b.StopTimer()
				o := opts()
				o.Purge = true
				if _, err := Unformat(o); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
		b.Run(mode+"/noop", func(b *testing.B) {
			_, opts := setup(b)
			if _, err := Format(opts()); err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() {
				o := opts()
				o.Purge = true
				if _, err := Unformat(o); err != nil {
					b.Error(err)
				}
			})
			for b.Loop() {
				res, err := Format(opts())
				if err != nil {
					b.Fatal(err)
				}
				if len(res.Changes) != 0 {
					b.Fatalf("re-run changed %q", res.Changes)
				}
			}
		})
	}
}
