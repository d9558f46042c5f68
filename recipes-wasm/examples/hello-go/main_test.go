package main

import (
	"testing"

	"github.com/slapnode/slapnode/recipes-wasm/sdk/go/recipetest"
)

func TestGreet(t *testing.T) {
	e := recipetest.New(t)
	out := e.MustInstall("hello", "greet", map[string]any{"output": "etc/greeting", "name": "slapnode"})
	p := e.Path("etc", "greeting")
	if e.ReadFile(p) != "Hello, slapnode!\n" || out.Outputs["greeting"] != "Hello, slapnode!" || out.Installed[0] != p {
		t.Fatalf("greet: %+v", out)
	}
	if c := e.Check("greeting_present", map[string]any{"path": p}); !c.OK {
		t.Fatalf("promise: %+v", c)
	}
	e.WriteFile(p, "Bye")
	if c := e.Check("greeting_present", map[string]any{"path": p}); c.OK {
		t.Fatal("promise passed on a file that does not greet")
	}
	e.MustFail("bad", "greet", map[string]any{}, `option "output" is required`)
}
