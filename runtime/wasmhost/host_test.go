package wasmhost

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestReactorDescribeAndInstanceReuse(t *testing.T) {
	h, rec := newHost(t)
	m := load(t, h, "ctest", "reactor", allGrants)
	d := m.Description
	if d.ABI != 1 || d.Module != "ctest" || d.Version != "1.0.0" || m.Command || !m.Described {
		t.Fatalf("description: %+v", m)
	}
	if _, ok := d.Recipes["echo"]; !ok || len(d.Recipes) != 2 || len(d.Promises) != 1 {
		t.Fatalf("recipes/promises: %+v", d)
	}
	if !json.Valid(d.Recipes["write"].Options) || d.Recipes["echo"].Outputs[0] != "calls" {
		t.Fatalf("entry: %+v", d.Recipes)
	}
	if !m.Has("recipe_install") || m.Has("recipe_update") || !m.Has("promise_check") {
		t.Fatal("Has disagrees with the exports")
	}
	if want := []string{"chmod", "download", "exec", "http_get", "log", "mkdir", "response", "tcp_probe", "write_file"}; strings.Join(m.Imports, ",") != strings.Join(want, ",") {
		t.Fatalf("imports %v", m.Imports)
	}

	var logBuf bytes.Buffer
	s := newSession(t, h, SessionConfig{Log: &logBuf})
	for want := 1.0; want <= 3; want++ {
		r := call(t, s, m, "echo", map[string]any{})
		if r.Outputs["calls"] != want {
			t.Fatalf("call %v: outputs %v: the session must keep one instance", want, r.Outputs)
		}
	}
	// Another session (another partition) never shares the instance.
	s2 := newSession(t, h, SessionConfig{})
	if r := call(t, s2, m, "echo", map[string]any{}); r.Outputs["calls"] != 1.0 {
		t.Fatalf("second session saw calls=%v", r.Outputs["calls"])
	}
	if !rec.has("echo called") || !rec.has("stdout line from echo") {
		t.Fatalf("logger missed guest lines: %+v", rec.lines)
	}
	if !strings.Contains(logBuf.String(), "INFO ctest/p-echo: echo called") {
		t.Fatalf("session log: %q", logBuf.String())
	}
	if r := call(t, s, m, "fail", nil); r.Error != "asked to fail" {
		t.Fatalf("error field: %+v", r)
	}
	if _, err := s.Call(context.Background(), m, "recipe_update", input("echo", nil)); err == nil || !strings.Contains(err.Error(), "does not export recipe_update") {
		t.Fatalf("missing entry: %v", err)
	}
}

func TestLoadRefusals(t *testing.T) {
	h, _ := newHost(t)
	ctx := context.Background()
	for _, tc := range []struct {
		file string
		g    Grants
		want string
	}{
		{"ungranted", Grants{}, `module "x" imports slapnode.exec but its module block grants no exec: add allow_exec`},
		{"reactor", Grants{Net: []string{"tcp://127.0.0.1:1"}}, "imports slapnode.exec but its module block grants no exec"},
		{"reactor", Grants{Exec: []string{"echo"}}, "imports slapnode.download but its module block grants no network"},
		{"unknown", Grants{Trusted: true}, "imports slapnode.format_disk, which this host does not provide"},
		{"abi2", Grants{}, "abi_version() returned 2 but this host implements ABI 1"},
		{"reactor", Grants{Trusted: true, Net: []string{"ftp://x"}}, `allow_net: "ftp://x": scheme "ftp"`},
		{"reactor", Grants{Trusted: true, Exec: []string{"bin/make"}}, "must be a command name or an absolute path"},
		{"reactor", Grants{Trusted: true, MemoryBytes: 64 << 10}, "over limit"},
	} {
		_, err := h.Load(ctx, "x", module(t, tc.file), tc.g)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %+v: got %v, want %q", tc.file, tc.g, err, tc.want)
		}
	}
	if _, err := h.Load(ctx, "x", []byte("not wasm"), Grants{}); err == nil || !strings.Contains(err.Error(), "compile") {
		t.Errorf("garbage: %v", err)
	}
	// Trusted modules are not checked at load.
	if _, err := h.Load(ctx, "cookbook", module(t, "reactor"), Grants{Trusted: true}); err != nil {
		t.Fatal(err)
	}
}

func TestCommandModule(t *testing.T) {
	h, rec := newHost(t)
	m := load(t, h, "ccmd", "command", Grants{})
	if !m.Command || !m.Described || m.Description.Recipes["hello"].Description != "Say hello." {
		t.Fatalf("%+v", m)
	}
	s := newSession(t, h, SessionConfig{})
	for i := 0; i < 2; i++ {
		r := call(t, s, m, "hello", map[string]any{"a": 1})
		if r.Outputs["entry"] != "recipe_install" || r.Outputs["argv0"] != "ccmd" || r.Outputs["input_bytes"].(float64) < 10 {
			t.Fatalf("outputs %v", r.Outputs)
		}
	}
	if !rec.has("command got") {
		t.Fatal("stderr of the command was not logged")
	}
	_, err := s.Call(context.Background(), m, "recipe_install", input("crash", nil))
	if err == nil || !strings.Contains(err.Error(), "exited with code 7: ") || !strings.Contains(err.Error(), "crashing as asked") {
		t.Fatalf("crash: %v", err)
	}

	u := load(t, h, "blank", "cmdfail", Grants{})
	if !u.Command || u.Described || !u.Has("recipe_anything") {
		t.Fatalf("undescribed command: %+v", u)
	}
	_, err = s.Call(context.Background(), u, "recipe_install", input("x", nil))
	if err == nil || !strings.Contains(err.Error(), "exited with code 3: no entry points here") {
		t.Fatalf("cmdfail: %v", err)
	}
}

func TestConcurrentLoadsCompileOnce(t *testing.T) {
	h, _ := newHost(t)
	var wg sync.WaitGroup
	mods := make([]*Module, 4)
	for i := range mods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m, err := h.Load(context.Background(), "ctest", module(t, "reactor"), allGrants)
			if err != nil {
				t.Error(err)
				return
			}
			mods[i] = m
		}()
	}
	wg.Wait()
	for _, m := range mods[1:] {
		if m == nil || m.cm != mods[0].cm {
			t.Fatal("the same digest must share one compiled module")
		}
	}
	if ents, err := os.ReadDir(h.cfg.CacheDir); err != nil || len(ents) == 0 {
		t.Fatalf("compilation cache dir is empty: %v", err)
	}
}

func TestLogCapAndConcurrentCalls(t *testing.T) {
	h, rec := newHost(t)
	m := load(t, h, "ctest", "reactor", allGrants)
	s := newSession(t, h, SessionConfig{})
	call(t, s, m, "log_flood", nil)
	total := 0
	for _, l := range rec.lines {
		if l.part == "p-log_flood" {
			total += len(l.msg)
		}
	}
	if total > MaxLogPerCall+MaxLogPerMessage || !rec.has("log cap of 1 MiB reached") {
		t.Fatalf("%d bytes logged by one call, cap message present: %v", total, rec.has("log cap"))
	}
	// The cap is per call: the next call logs again.
	rec.lines = nil
	call(t, s, m, "echo", nil)
	if !rec.has("echo called") {
		t.Fatal("log cap leaked into the next call")
	}

	// Parts of one apply may call one module concurrently: the session
	// serialises them on its single instance.
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.Call(context.Background(), m, "recipe_install", input("echo", nil)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if r := call(t, s, m, "echo", nil); r.Outputs["calls"] != 11.0 {
		t.Fatalf("calls = %v, want 11 on one instance", r.Outputs["calls"])
	}

	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.Close(context.Background()))
	if _, err := s.Call(context.Background(), m, "recipe_install", input("echo", nil)); err == nil || !strings.Contains(err.Error(), "session is closed") {
		t.Fatalf("call after Close: %v", err)
	}
	must(h.Close(context.Background()))
	if _, err := h.Load(context.Background(), "y", module(t, "reactor"), Grants{Trusted: true, MemoryBytes: 32 << 20}); err == nil || !strings.Contains(err.Error(), "host is closed") {
		t.Fatalf("load after Close: %v", err)
	}
}

// TestCloseWaitsForLoads: a host closed while a load is compiling (a
// background preload when the process ends) waits for it instead of
// freeing the runtime under it; a load after Close is refused.
func TestCloseWaitsForLoads(t *testing.T) {
	ctx := context.Background()
	wasm := module(t, "reactor")
	for i := range 30 {
		h, err := New(ctx, Config{})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			_, err := h.Load(ctx, "reactor", wasm, allGrants)
			done <- err
		}()
		if i%2 == 1 {
			time.Sleep(time.Millisecond) // also once the compilation is under way
		}
		if err := h.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil && !strings.Contains(err.Error(), "host is closed") {
			t.Fatalf("load during Close: %v", err)
		}
		if _, err := h.Load(ctx, "reactor", wasm, allGrants); err == nil || !strings.Contains(err.Error(), "host is closed") {
			t.Fatalf("load after Close: %v", err)
		}
	}
}

// CallPart is Call with the part named by the caller: the guest gets the
// same input, the logs and errors name the part as Call's do, and a
// promise check still gets the network its options grant.
func TestCallPartNamesThePart(t *testing.T) {
	h, rec := newHost(t)
	m := load(t, h, "ctest", "reactor", allGrants)
	var logBuf bytes.Buffer
	s := newSession(t, h, SessionConfig{Log: &logBuf})
	ctx := context.Background()
	in := input("echo", map[string]any{})
	out, err := s.CallPart(ctx, m, "recipe_install", "p-echo", in)
	if err != nil || !json.Valid(out) {
		t.Fatalf("CallPart: %s %v", out, err)
	}
	if !strings.Contains(logBuf.String(), "INFO ctest/p-echo: echo called") {
		t.Fatalf("session log: %q", logBuf.String())
	}
	rec.mu.Lock()
	last := rec.lines[len(rec.lines)-1]
	rec.mu.Unlock()
	if last.part != "p-echo" {
		t.Errorf("logger's part %q", last.part)
	}
	_, err1 := s.Call(ctx, m, "recipe_update", in)
	_, err2 := s.CallPart(ctx, m, "recipe_update", "p-echo", in)
	if err1 == nil || err2 == nil || err1.Error() != err2.Error() || !strings.Contains(err2.Error(), `(part "p-echo")`) {
		t.Fatalf("errors: Call %v, CallPart %v", err1, err2)
	}
	// A promise's host and port grant it the probe (reactor.c probes
	// them): refused without them.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	mp := load(t, h, "cnonet", "reactor", Grants{Exec: allGrants.Exec, Net: []string{"https://example.invalid"}, Timeout: time.Minute})
	pin, _ := json.Marshal(map[string]any{"part": "probe", "options": map[string]any{"host": "127.0.0.1", "port": port}})
	out, err = s.CallPart(ctx, mp, "promise_check", "probe", pin)
	if err != nil || !strings.Contains(string(out), `"ok":true`) {
		t.Fatalf("promise_check through CallPart: %s %v", out, err)
	}
}

// CallPartInto decodes the result where the guest wrote it: the value
// json.Unmarshal gives of CallPart's bytes; CallPart's errors for a
// result that is not JSON, out of bounds or too large (the instance
// discarded); json.Unmarshal's error, as a *ResultError, for JSON the
// caller's type cannot hold (the instance kept).
func TestCallPartInto(t *testing.T) {
	h, _ := newHost(t)
	ctx := context.Background()
	good := load(t, h, "ctest", "reactor", allGrants)
	hm := load(t, h, "hostile", "hostile", Grants{MemoryBytes: 16 << 20, Timeout: time.Minute})
	s := newSession(t, h, SessionConfig{})

	var got recipeOut
	if err := s.CallPartInto(ctx, good, "recipe_install", "p-echo", input("echo", nil), &got); err != nil || got.Outputs["calls"] != 1.0 {
		t.Fatalf("echo: %+v %v", got, err)
	}
	// JSON the caller's type cannot hold: json.Unmarshal's own error.
	var wrong struct {
		Outputs string `json:"outputs"`
	}
	err := s.CallPartInto(ctx, good, "recipe_install", "p-echo", input("echo", nil), &wrong)
	var rerr *ResultError
	if !errors.As(err, &rerr) {
		t.Fatalf("wrong type: %v", err)
	}
	raw, err2 := s.CallPart(ctx, good, "recipe_install", "p-echo", input("echo", nil))
	if err2 != nil {
		t.Fatal(err2)
	}
	if want := json.Unmarshal(raw, &wrong); want == nil || rerr.Error() != want.Error() || rerr.Err.Error() != want.Error() {
		t.Errorf("ResultError %q, json.Unmarshal says %v", rerr, want)
	}
	// The instance answered well: it was kept (calls 1, 2, 3, now 4).
	if err := s.CallPartInto(ctx, good, "recipe_install", "p-echo", input("echo", nil), &got); err != nil || got.Outputs["calls"] != 4.0 {
		t.Fatalf("after a result of the wrong type: %+v %v", got, err)
	}

	for _, recipe := range []string{"badjson", "badptr", "huge", "badlog"} {
		_, want := s.CallPart(ctx, hm, "recipe_install", "p-"+recipe, input(recipe, nil))
		var v recipeOut
		err := s.CallPartInto(ctx, hm, "recipe_install", "p-"+recipe, input(recipe, nil), &v)
		if want == nil || err == nil || err.Error() != want.Error() || errors.As(err, &rerr) {
			t.Errorf("%s: CallPartInto %v, CallPart %v", recipe, err, want)
		}
	}
	// Each failed instance was discarded, as after CallPart's.
	if err := s.CallPartInto(ctx, good, "recipe_install", "p-echo", input("echo", nil), &got); err != nil || got.Outputs["calls"] != 5.0 {
		t.Fatalf("the good module's instance: %+v %v", got, err)
	}
	s2 := newSession(t, h, SessionConfig{})
	if err := s2.CallPartInto(ctx, hm, "recipe_install", "p-badjson", input("badjson", nil), &got); err == nil {
		t.Fatal("badjson accepted")
	}
	s2.mu.Lock()
	sl := s2.slots[hm]
	s2.mu.Unlock()
	if sl == nil || sl.inst != nil {
		t.Error("the instance that answered a result that is not JSON was kept")
	}
}
