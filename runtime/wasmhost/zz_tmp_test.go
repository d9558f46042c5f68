package wasmhost

import (
	"bytes"
	"context"
	"os"
	"testing"
	"time"
)

func BenchmarkTmpParts(b *testing.B) {
	ctx := context.Background()
	h, _ := newHost(b)
	for _, f := range []string{"/tmp/perf/p.wasm", "reactor"} {
		w, _ := os.ReadFile(f)
		if f == "reactor" {
			w = module(b, "reactor")
		}
		m, err := h.Load(ctx, "p", w, Grants{Trusted: true})
		if err != nil {
			b.Fatal(err)
		}
		s := h.NewSession(SessionConfig{})
		s.Call(ctx, m, "recipe_install", input("nothing", nil))
		inst := s.slots[m].inst
		st := &callState{h: h, s: s, m: m}
		for _, r := range []string{"nothing", "fail", "echo"} {
			b.Run(f[len(f)-5:]+"/"+r, func(b *testing.B) {
				in := bytes.Replace(benchInput, []byte(`"recipe":"echo"`), []byte(`"recipe":"`+r+`"`), 1)
				for b.Loop() {
					if _, err := inst.callEntry(ctx, st, time.Minute, "recipe_install", in); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
