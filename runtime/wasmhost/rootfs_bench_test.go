package wasmhost

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkRootMkdir: what confinement costs a recipe's mkdir. A guest's
// path goes through the mount's os.Root, which resolves it component by
// component (openat with O_NOFOLLOW each); a directory handle kept per part
// would resolve from nearer. Measured against a plain mkdir of the same
// depth, each new directory four levels below the mount, as the cookbook's
// mkdirectory makes them under a software directory.
func BenchmarkRootMkdir(b *testing.B) {
	for _, mode := range []string{"plain", "root", "handle"} {
		b.Run(mode, func(b *testing.B) {
			dir := b.TempDir()
			const sub = "software/0123456789abcdef/work"
			deep := filepath.Join(dir, sub)
			if err := os.MkdirAll(deep, 0o755); err != nil {
				b.Fatal(err)
			}
			r, err := os.OpenRoot(dir)
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			h, err := r.OpenRoot(sub)
			if err != nil {
				b.Fatal(err)
			}
			defer h.Close()
			i := 0
			for b.Loop() {
				n := fmt.Sprintf("d%07d", i)
				i++
				switch mode {
				case "plain":
					err = os.Mkdir(filepath.Join(deep, n), 0o755)
				case "root":
					err = r.Mkdir(sub+"/"+n, 0o755)
				case "handle":
					err = h.Mkdir(n, 0o755)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
