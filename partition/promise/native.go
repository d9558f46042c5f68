package promise

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"

	"github.com/slapnode/slapnode/internal/nsexec"
	"github.com/slapnode/slapnode/partition/service"
)

// Services is what check_service_running asks: the node's supervisor, in
// process (*supervisor.Supervisor, through a small adapter) or through the daemon (*daemon.Client).
type Services interface {
	Status(ctx context.Context) ([]service.Status, error)
}

// nativeCheck is a host check: it senses like a promise_check call.
type nativeCheck func(ctx context.Context, r *Runner, p *PartitionRef, opts json.RawMessage) (ok bool, message string)

// nativeChecks are the checks the built-in module declares (their option
// schemas live in the cookbook, recipes-wasm/cookbook/promises/host.go, and
// are enforced at apply) but which only the host can run.
var nativeChecks = map[string]nativeCheck{
	"check_command":         checkCommand,
	"check_service_running": checkServiceRunning,
	"check_free_disk_space": checkFreeDiskSpace,
}

// native returns the host implementation of s's check, if it has one: a
// check of the built-in module (declared as "promises" or "cookbook").
func native(s *Spec) (nativeCheck, bool) {
	mod, name, _ := strings.Cut(s.Check, ":")
	builtin := strings.HasPrefix(s.Module.Source, "builtin:") || (s.Module.Source == "" && s.live == nil && (mod == "promises" || mod == "cookbook"))
	if s.live != nil {
		builtin = s.live.Grants.Trusted
	}
	if !builtin {
		return nil, false
	}
	c, ok := nativeChecks[name]
	return c, ok
}

// cleanPath is the PATH of commands run by check_command.
const cleanPath = "/usr/local/bin:/usr/bin:/bin"

// checkCommand runs an executable of the partition as the partition user,
// in the partition, with a clean environment; exit 0 is success. The
// promise's timeout (the context) kills its whole process group.
func checkCommand(ctx context.Context, r *Runner, p *PartitionRef, raw json.RawMessage) (bool, string) {
	var o struct {
		Command json.RawMessage   `json:"command"`
		Env     map[string]string `json:"env"`
	}
	if err := json.Unmarshal(raw, &o); err != nil {
		return false, fmt.Sprintf("options: %v", err)
	}
	var argv []string
	var one string
	if json.Unmarshal(o.Command, &one) == nil {
		argv = []string{one}
	} else if err := json.Unmarshal(o.Command, &argv); err != nil || len(argv) == 0 {
		return false, `option "command" is required: a path relative to the partition, or an argv list`
	}
	if argv[0] == "" {
		return false, `option "command" is empty`
	}
	exe := argv[0]
	switch {
	case filepath.IsAbs(exe):
	case strings.Contains(exe, "/"):
		exe = filepath.Join(p.Path, exe)
	default:
		// A bare name is a system command, found in the clean PATH.
		for _, d := range filepath.SplitList(cleanPath) {
			if st, err := os.Stat(filepath.Join(d, exe)); err == nil && st.Mode().IsRegular() {
				exe = filepath.Join(d, exe)
				break
			}
		}
	}
	cmd := exec.CommandContext(ctx, exe, argv[1:]...)
	cmd.Dir = p.Path
	cmd.Env = []string{"PATH=" + cleanPath, "HOME=" + p.Path, "LANG=C.UTF-8"}
	for k, v := range o.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out := &tail{max: 64 << 10}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: p.Credential}
	// A promise's children go with it (SlapOS kills the whole tree).
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	// In the partition's cgroups, network namespace (where its addresses
	// are) and user from the first instruction: through the exec shim,
	// which takes the environment above to the program only (an
	// LD_PRELOAD there never reaches a process running as root, as it
	// did when nsenter started the command).
	started := func(int) error { return nil }
	var shim *nsexec.Shim
	switch {
	case p.Exec != nil:
		if err := p.Exec.Hook(cmd); err != nil {
			return false, fmt.Sprintf("cannot confine %s to its partition: %v", exe, err)
		}
		started = p.Exec.Started
	case p.NetNS != "":
		var err error
		if shim, err = nsexec.ThroughShim(cmd, nsexec.Confine{NetNS: p.NetNS}, true); err != nil {
			return false, fmt.Sprintf("cannot confine %s to its partition: %v", exe, err)
		}
		defer shim.Close()
		started = func(int) error { return shim.Started() }
	}
	if err := cmd.Start(); err != nil {
		return false, fmt.Sprintf("cannot run %s: %v", exe, err)
	}
	if err := started(cmd.Process.Pid); err != nil {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
		return false, fmt.Sprintf("cannot confine %s to its partition: %v", exe, err)
	}
	err := cmd.Wait()
	msg := strings.TrimSpace(out.String())
	if err != nil {
		if ctx.Err() != nil {
			return false, ctx.Err().Error()
		}
		if msg == "" {
			msg = fmt.Sprintf("%s failed: %v", argv[0], err)
		}
		return false, msg
	}
	if msg == "" {
		msg = argv[0] + " succeeded"
	}
	return true, msg
}

// tail keeps the last max bytes written.
type tail struct {
	max int
	b   []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}
func (t *tail) String() string { return string(t.b) }

// checkServiceRunning asks the supervisor for the state of a service.
func checkServiceRunning(ctx context.Context, r *Runner, p *PartitionRef, raw json.RawMessage) (bool, string) {
	var o struct {
		Service   string `json:"service"`
		Partition string `json:"partition"`
	}
	if err := json.Unmarshal(raw, &o); err != nil || o.Service == "" {
		return false, `option "service" is required: the name of a service of the partition`
	}
	if o.Partition == "" {
		o.Partition = p.ID
	}
	if r.Services == nil {
		return false, "no supervisor to ask: the node daemon is not running (start it with 'slapnode node run')"
	}
	all, err := r.Services.Status(ctx)
	if err != nil {
		return false, fmt.Sprintf("cannot ask the supervisor: %v", err)
	}
	for _, s := range all {
		if s.Partition != o.Partition || s.Name != o.Service {
			continue
		}
		if s.Up() {
			return true, fmt.Sprintf("service %s of %s is %s (pid %d)", s.Name, s.Partition, s.State, s.Pid)
		}
		msg := fmt.Sprintf("service %s of %s is %s", s.Name, s.Partition, s.State)
		if s.LastExit != "" {
			msg += " (last exit: " + s.LastExit + ")"
		}
		return false, msg
	}
	return false, fmt.Sprintf("service %s of %s is not known to the supervisor", o.Service, o.Partition)
}

// checkFreeDiskSpace compares the space available to unprivileged users on
// the file system of a path with a threshold.
func checkFreeDiskSpace(_ context.Context, _ *Runner, p *PartitionRef, raw json.RawMessage) (bool, string) {
	var o struct {
		Path           string          `json:"path"`
		MinFree        json.RawMessage `json:"min_free"`
		MinFreePercent json.RawMessage `json:"min_free_percent"`
	}
	if err := json.Unmarshal(raw, &o); err != nil {
		return false, fmt.Sprintf("options: %v", err)
	}
	path := o.Path
	if path == "" {
		path = p.Path
	} else if !filepath.IsAbs(path) {
		path = filepath.Join(p.Path, path)
	}
	minFree := uint64(1 << 30)
	if len(o.MinFree) > 0 {
		v, err := parseSize(o.MinFree)
		if err != nil {
			return false, fmt.Sprintf("option min_free: %v", err)
		}
		minFree = v
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return false, fmt.Sprintf("cannot measure the free space of %s: %v", path, err)
	}
	free := st.Bavail * uint64(st.Bsize)
	total := st.Blocks * uint64(st.Bsize)
	pct := 100.0
	if total > 0 {
		pct = 100 * float64(free) / float64(total)
	}
	desc := fmt.Sprintf("%s free on the file system of %s (%.1f%% of %s)", human(free), path, pct, human(total))
	if free < minFree {
		return false, fmt.Sprintf("only %s, below the %s required", desc, human(minFree))
	}
	if len(o.MinFreePercent) > 0 {
		var want float64
		var s string
		if json.Unmarshal(o.MinFreePercent, &want) != nil {
			if json.Unmarshal(o.MinFreePercent, &s) != nil {
				return false, "option min_free_percent: not a number"
			}
			v, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(s), "%"), 64)
			if err != nil {
				return false, fmt.Sprintf("option min_free_percent: %v", err)
			}
			want = v
		}
		if pct < want {
			return false, fmt.Sprintf("only %s, below the %g%% required", desc, want)
		}
	}
	return true, desc
}

// parseSize reads a byte count: a number, or a string such as "500MiB",
// "2G" (powers of 1024 for K/M/G/T with or without "iB", 1000 for "KB"…).
func parseSize(raw json.RawMessage) (uint64, error) {
	var n float64
	if json.Unmarshal(raw, &n) == nil {
		if n < 0 {
			return 0, errors.New("negative size")
		}
		return uint64(n), nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return 0, errors.New(`want bytes or a size such as "500MiB"`)
	}
	s = strings.TrimSpace(s)
	i := strings.IndexFunc(s, func(r rune) bool { return !unicode.IsDigit(r) && r != '.' })
	num, unit := s, ""
	if i >= 0 {
		num, unit = s[:i], strings.TrimSpace(s[i:])
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("%q is not a size such as \"500MiB\"", s)
	}
	mult := map[string]float64{"": 1, "B": 1,
		"K": 1 << 10, "KIB": 1 << 10, "KB": 1e3, "M": 1 << 20, "MIB": 1 << 20, "MB": 1e6,
		"G": 1 << 30, "GIB": 1 << 30, "GB": 1e9, "T": 1 << 40, "TIB": 1 << 40, "TB": 1e12}[strings.ToUpper(unit)]
	if mult == 0 {
		return 0, fmt.Errorf("%q: unknown unit %q (use B, KiB, MiB, GiB, TiB, KB, MB, GB, TB)", s, unit)
	}
	return uint64(v * mult), nil
}

func human(n uint64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
	f := float64(n)
	i := 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%d B", n)
	}
	return fmt.Sprintf("%.1f %s", f, units[i])
}
