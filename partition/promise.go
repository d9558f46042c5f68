package partition

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/slapnode/slapnode/runtime/wasmhost"
)

// PromiseResult is one sense of a promise.
type PromiseResult struct {
	Name     string        `json:"name"`
	OK       bool          `json:"ok"`
	Message  string        `json:"message"`
	Duration time.Duration `json:"duration_ns"`
}

// CheckSession opens a session for running a partition's promises: they
// read the partition and the software (read-only) and reach only the
// destinations their options name.
func (e *Engine) CheckSession(s *Software, part *Partition) *wasmhost.Session {
	return e.Host.NewSession(wasmhost.SessionConfig{
		Mounts:     []wasmhost.Mount{{HostPath: part.Path, ReadOnly: true}, {HostPath: s.Path, ReadOnly: true}},
		Credential: part.Credential, ExecStarted: part.ExecHook, Home: part.Path, Log: e.logWriter(),
	})
}

// CheckPromise senses one promise: a promise_check call with the check's
// options and the partition context. A call that fails (trap, timeout) is a
// failed result whose message says why, as SlapOS reports a crashed promise.
func (e *Engine) CheckPromise(ctx context.Context, sess *wasmhost.Session, ps *PromiseSpec, pctx map[string]any) PromiseResult {
	start := time.Now()
	res := PromiseResult{Name: ps.Name}
	_, check, _ := strings.Cut(ps.Check, ":")
	in, err := json.Marshal(map[string]any{"promise": check, "name": ps.Name, "options": ps.Options, "context": pctx})
	if err != nil {
		res.Message = err.Error()
		return res
	}
	cctx, cancel := context.WithTimeout(ctx, ps.Timeout)
	defer cancel()
	raw, err := sess.Call(cctx, ps.Module, "promise_check", in)
	res.Duration = time.Since(start)
	if err != nil {
		if cctx.Err() == context.DeadlineExceeded {
			res.Message = fmt.Sprintf("Promise timed out after %d seconds", int(ps.Timeout.Seconds()))
		} else {
			res.Message = err.Error()
		}
		return res
	}
	var out struct {
		OK      bool   `json:"ok"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		res.Message = fmt.Sprintf("malformed promise result: %v", err)
		return res
	}
	res.OK, res.Message = out.OK, out.Message
	return res
}
