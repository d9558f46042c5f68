package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/slapnode/slapnode/node/supervisor"
)

// Client talks to the daemon of a node root.
type Client struct {
	root string
	hc   *http.Client
}

// Dial connects to the daemon of root. The error wraps ErrNotRunning when
// no daemon answers.
func Dial(root string) (*Client, error) {
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("node root: %w", err)
	}
	sock := SocketPath(root)
	c := &Client{root: root, hc: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
		MaxIdleConns: 2,
	}}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Info(ctx); err != nil {
		c.Close()
		if errors.Is(err, syscall.EACCES) {
			return nil, fmt.Errorf("the slapnode daemon of %s belongs to another user (socket %s is mode 0600): run this command as that user, or with sudo: %w", root, sock, err)
		}
		var op *net.OpError
		if errors.As(err, &op) || errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w for node root %s (no answer on %s; start it with 'slapnode node run --root %s')", ErrNotRunning, root, sock, root)
		}
		return nil, err
	}
	return c, nil
}

// Root is the node root of the daemon.
func (c *Client) Root() string { return c.root }

// Close releases idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

// call sends a request; in (if not nil) is the JSON body, out (if not nil)
// receives the JSON answer. Errors reported by the daemon wrap the
// supervisor's sentinel errors again, so errors.Is works across the socket.
func (c *Client) call(ctx context.Context, method, path string, in, out any) error {
	var body *bytes.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	} else {
		body = bytes.NewReader(nil)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://slapnode"+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("slapnode daemon of %s: %w", c.root, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var ae apiError
		if err := json.NewDecoder(resp.Body).Decode(&ae); err != nil || ae.Error == "" {
			return fmt.Errorf("slapnode daemon of %s: %s", c.root, resp.Status)
		}
		var kind error
		switch ae.Kind {
		case "not_found":
			kind = supervisor.ErrNotFound
		case "invalid":
			kind = supervisor.ErrSpec
		case "closed":
			kind = supervisor.ErrClosed
		}
		if kind != nil {
			return &remoteError{msg: ae.Error, kind: kind}
		}
		return errors.New(ae.Error)
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("slapnode daemon of %s: decoding answer to %s: %w", c.root, path, err)
	}
	return nil
}

// remoteError carries the daemon's message and the sentinel it wrapped.
type remoteError struct {
	msg  string
	kind error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.kind }

// Info returns the daemon's pid, root and start time.
func (c *Client) Info(ctx context.Context) (Info, error) {
	var i Info
	err := c.call(ctx, http.MethodGet, "/v1/info", nil, &i)
	return i, err
}

// Apply converges a partition's services (see supervisor.Apply).
func (c *Client) Apply(ctx context.Context, partition string, specs []supervisor.ServiceSpec) (supervisor.Changes, error) {
	return c.ApplyState(ctx, partition, specs, supervisor.PartitionStarted)
}

// ApplyState records a partition's services with its requested state,
// started or stopped (see supervisor.ApplyState).
func (c *Client) ApplyState(ctx context.Context, partition string, specs []supervisor.ServiceSpec, requested string) (supervisor.Changes, error) {
	var ch supervisor.Changes
	err := c.call(ctx, http.MethodPost, "/v1/apply", applyRequest{Partition: partition, Specs: specs, Requested: requested}, &ch)
	return ch, err
}

// Status lists every service of the node.
func (c *Client) Status(ctx context.Context) ([]supervisor.ServiceStatus, error) {
	var st []supervisor.ServiceStatus
	err := c.call(ctx, http.MethodGet, "/v1/status", nil, &st)
	return st, err
}

// Start starts a service, or every service of the partition if service is "".
func (c *Client) Start(ctx context.Context, partition, service string) error {
	return c.call(ctx, http.MethodPost, "/v1/start", targetRequest{partition, service}, nil)
}

// Stop stops a service, or the whole partition if service is "".
func (c *Client) Stop(ctx context.Context, partition, service string) error {
	return c.call(ctx, http.MethodPost, "/v1/stop", targetRequest{partition, service}, nil)
}

// Restart restarts a service, or every service of the partition.
func (c *Client) Restart(ctx context.Context, partition, service string) error {
	return c.call(ctx, http.MethodPost, "/v1/restart", targetRequest{partition, service}, nil)
}

// StopPartition stops every service of the partition and records it stopped.
func (c *Client) StopPartition(ctx context.Context, partition string) error {
	return c.call(ctx, http.MethodPost, "/v1/stop-partition", targetRequest{Partition: partition}, nil)
}

// Remove stops the partition's services and forgets it.
func (c *Client) Remove(ctx context.Context, partition string) error {
	return c.call(ctx, http.MethodPost, "/v1/remove", targetRequest{Partition: partition}, nil)
}

// LogPaths returns the log file of a service, or of all of the partition's.
func (c *Client) LogPaths(ctx context.Context, partition, service string) ([]string, error) {
	var p []string
	q := url.Values{"partition": {partition}, "service": {service}}
	err := c.call(ctx, http.MethodGet, "/v1/logs?"+q.Encode(), nil, &p)
	return p, err
}

// RecordBuild tells the daemon's metrics about a software release build a
// command did (slapnode apply builds in its own process).
func (c *Client) RecordBuild(ctx context.Context, url string, d time.Duration, buildErr error) error {
	req := buildRequest{URL: url, Seconds: d.Seconds()}
	if buildErr != nil {
		req.Error = buildErr.Error()
	}
	return c.call(ctx, http.MethodPost, "/v1/builds", req, nil)
}

// Shutdown stops every service gracefully, then the daemon, and waits until
// the daemon process is gone.
func (c *Client) Shutdown(ctx context.Context) error {
	info, err := c.Info(ctx)
	if err != nil {
		return err
	}
	if err := c.call(ctx, http.MethodPost, "/v1/shutdown", nil, nil); err != nil {
		return err
	}
	c.Close()
	for {
		if err := syscall.Kill(info.Pid, 0); errors.Is(err, syscall.ESRCH) || !lockHeld(c.root) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("daemon pid %d still running after its services stopped: %w", info.Pid, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Ensure returns a client of the daemon of root, starting one in the
// background when none runs: exe node run --root ROOT, in a new session,
// output appended to LogPath(root). It waits for the socket to answer. A
// daemon that is starting (it holds the lock) is waited for, not doubled.
func Ensure(root, exe string) (*Client, error) {
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("node root: %w", err)
	}
	if c, err := Dial(root); err == nil {
		if !stale(c, exe) {
			return c, nil
		}
		// The daemon runs an older slapnode (the binary was rebuilt or
		// upgraded since it started): its API may not match this client.
		// Stop it — services stop gracefully and their state is kept — and
		// start the current one, which restores them.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		err := c.Shutdown(ctx)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("restart the daemon of %s on the current slapnode: %w", root, err)
		}
	} else if !errors.Is(err, ErrNotRunning) {
		return nil, err
	}
	var exited chan error
	spawned, pid := 0, 0
	end := time.Now().Add(30 * time.Second)
	for {
		// The lock holder may be a daemon starting up (wait for it) or one
		// that is dying (a killed process keeps its files until its last
		// thread is gone): spawn as soon as the lock is free.
		if exited == nil && !lockHeld(root) {
			if pid, exited, err = spawn(root, exe); err != nil {
				return nil, err
			}
			spawned++
		}
		c, err := Dial(root)
		if err == nil {
			if exited != nil {
				// Ours lost the race to another command's daemon: let it
				// finish exiting, or it could take over the root later.
				if info, err := c.Info(context.Background()); err == nil && info.Pid != pid {
					select {
					case <-exited:
					case <-time.After(10 * time.Second):
					}
				}
			}
			return c, nil
		}
		select {
		case werr := <-exited:
			exited = nil
			// It may have met the lock of a daemon that was still dying
			// (then try again, a few times), or of one started at the same
			// moment by another command (then that one is waited for).
			if spawned >= 3 {
				return nil, fmt.Errorf("the slapnode daemon exited at start (%v): %s", werr, logTail(root))
			}
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(end) {
			return nil, fmt.Errorf("the slapnode daemon of %s does not answer on %s after 30s: %w; see %s", root, SocketPath(root), err, LogPath(root))
		}
	}
}

func spawn(root, exe string) (int, chan error, error) {
	for _, d := range []string{filepath.Dir(LogPath(root)), filepath.Dir(SocketPath(root))} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return 0, nil, fmt.Errorf("preparing node root %s: %w", root, err)
		}
	}
	logf, err := os.OpenFile(LogPath(root), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return 0, nil, fmt.Errorf("opening daemon log: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(exe, "node", "run", "--root", root)
	cmd.Stdout, cmd.Stderr = logf, logf
	// A command run by a systemd unit must not lend the unit's notify
	// socket and watchdog to the daemon it starts: the daemon is not the
	// unit's main process.
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool {
		for _, k := range []string{"NOTIFY_SOCKET=", "WATCHDOG_USEC=", "WATCHDOG_PID=", "JOURNAL_STREAM="} {
			if strings.HasPrefix(kv, k) {
				return true
			}
		}
		return false
	})
	// A session of its own: the daemon must not die with the terminal
	// (SIGHUP) or with Ctrl-C sent to the command that started it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Dir = "/"
	if err := cmd.Start(); err != nil {
		return 0, nil, fmt.Errorf("starting the slapnode daemon (%s node run --root %s): %w", exe, root, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	return cmd.Process.Pid, exited, nil
}

// logTail returns the last lines of the daemon log, to explain a failed start.
func logTail(root string) string {
	b, err := os.ReadFile(LogPath(root))
	if err != nil {
		return "see " + LogPath(root)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return strings.Join(lines, "\n")
}

// stale reports whether the daemon behind c runs another binary than exe:
// its /proc/PID/exe is gone ("(deleted)": the file was replaced) or is a
// different file. When it cannot tell (another user's daemon), it is not.
func stale(c *Client, exe string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info, err := c.Info(ctx)
	if err != nil || info.Pid <= 0 {
		return false
	}
	link, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", info.Pid))
	if err != nil {
		return false
	}
	if strings.HasSuffix(link, " (deleted)") {
		return true
	}
	a, err1 := os.Stat(link)
	b, err2 := os.Stat(exe)
	return err1 == nil && err2 == nil && !os.SameFile(a, b)
}
