package wasmhost

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"
)

type execRequest struct {
	Argv      []string          `json:"argv"`
	Dir       string            `json:"dir"`
	Env       map[string]string `json:"env"`
	TimeoutMs int64             `json:"timeout_ms"`
}

type execResponse struct {
	ExitCode int    `json:"exit_code"`
	Output   string `json:"output"`
	Error    string `json:"error"`
}

// lookPath finds a granted command in the host's PATH directories only (the
// guest never chooses where a command comes from).
func (h *Host) lookPath(name string) (string, error) {
	isExec := func(p string) bool {
		fi, err := os.Stat(p)
		return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
	}
	if filepath.IsAbs(name) {
		if isExec(name) {
			return name, nil
		}
		return "", fmt.Errorf("%s is not an executable file", name)
	}
	for _, d := range h.cfg.PathDirs {
		if p := filepath.Join(d, name); isExec(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("command %q not found in %s", name, strings.Join(h.cfg.PathDirs, ":"))
}

func (h *Host) exec(ctx context.Context, st *callState, req []byte) any {
	var r execRequest
	if err := decode(req, &r); err != nil {
		return execResponse{ExitCode: -1, Error: fmt.Sprintf("exec: bad request: %v", err)}
	}
	if len(r.Argv) == 0 || r.Argv[0] == "" {
		return execResponse{ExitCode: -1, Error: "exec: argv is empty"}
	}
	name := r.Argv[0]
	path, err := h.resolveCommand(st.m, name)
	if err != nil {
		return execResponse{ExitCode: -1, Error: "exec: " + err.Error()}
	}
	s := st.s
	dir := r.Dir
	if dir == "" {
		dir = s.home()
	} else if !filepath.IsAbs(dir) || !s.inMounts(dir) {
		return execResponse{ExitCode: -1, Error: fmt.Sprintf("exec: dir %q is not inside a directory granted to this call", dir)}
	}
	// Only allowlisted variables (execenv.go): the host's PATH and the
	// session's HOME first, then what the guest may set, sorted.
	env := []string{"PATH=" + strings.Join(h.cfg.PathDirs, ":"), "HOME=" + s.home(), "LANG=C.UTF-8"}
	keys := make([]string, 0, len(r.Env))
	for k := range r.Env {
		if why := s.checkEnv(st.m, k, r.Env[k]); why != "" {
			return execResponse{ExitCode: -1, Error: "exec " + name + ": " + why}
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k == "HOME" || k == "LANG" {
			// Replace the defaults rather than duplicate them: which of
			// two entries a program reads is the program's choice.
			env = slices.DeleteFunc(env, func(e string) bool { return strings.HasPrefix(e, k+"=") })
		}
		env = append(env, k+"="+r.Env[k])
	}

	timeout := msTimeout(r.TimeoutMs, DefaultTimeout)
	ectx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ectx, path, r.Argv[1:]...)
	cmd.Args[0] = name
	cmd.Dir = dir
	cmd.Env = env
	// Own process group so a timeout kills the command's children too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: s.cfg.Credential}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	out := &execOutput{st: st, tail: tailBuffer{max: execOutputTail}}
	out.lines = &lineWriter{r: &router{}, level: 1}
	out.lines.r.cur.Store(st)
	cmd.Stdout = out
	cmd.Stderr = out
	if s.cfg.ExecHook != nil {
		if err := s.cfg.ExecHook(cmd); err != nil {
			return execResponse{ExitCode: -1, Error: fmt.Sprintf("exec %s: refused by the node: %v", name, err)}
		}
	}
	if err := cmd.Start(); err != nil {
		return execResponse{ExitCode: -1, Error: fmt.Sprintf("exec %s: %v", name, err)}
	}
	if s.cfg.ExecStarted != nil {
		if err := s.cfg.ExecStarted(cmd.Process.Pid); err != nil {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			cmd.Wait()
			return execResponse{ExitCode: -1, Error: fmt.Sprintf("exec %s: refused by the node: %v", name, err)}
		}
	}
	err = cmd.Wait()
	out.lines.flush()
	resp := execResponse{ExitCode: cmd.ProcessState.ExitCode(), Output: string(out.tail.Bytes())}
	switch {
	case errors.Is(ectx.Err(), context.DeadlineExceeded):
		resp.Error = fmt.Sprintf("%s timed out after %s and was killed", name, timeout)
	case ctx.Err() != nil:
		resp.Error = fmt.Sprintf("%s was killed: the call ended (%v)", name, ctx.Err())
	case err != nil:
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			resp.Error = fmt.Sprintf("%s: %v", name, err)
		} else if resp.ExitCode < 0 {
			resp.Error = fmt.Sprintf("%s: %v", name, ee.ProcessState)
		}
	}
	return resp
}

// execOutput streams a command's output to the log and keeps its tail.
type execOutput struct {
	st    *callState
	tail  tailBuffer
	lines *lineWriter
}

func (o *execOutput) Write(p []byte) (int, error) {
	o.tail.Write(p)
	return o.lines.Write(p)
}
