package wasmhost

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/slapnode/slapnode/internal/nsexec"
)

// dial connects from the session's network namespace (SessionConfig.NetNS):
// a partition formatted into a namespace listens on addresses that exist
// only there, so its promises must probe from there. The socket is created
// by a thread that entered the namespace; that thread is never given back
// to the Go scheduler, so no other goroutine runs in the wrong namespace.
//
// The socket belongs to the session's credential, the partition user
// (fchown of a socket sets the owner the kernel reports for it, which is
// what sock_diag and /proc/net/tcp show): a loopback service that trusts
// its callers by uid — the master, which takes root as its operator (docs/adr/0007-loopback-peer-by-sock-diag.md) —
// must see a recipe's or a promise's request as the partition's, not as
// the root process that makes it on the guest's behalf.
func (s *Session) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	if s != nil && s.cfg.Credential != nil && os.Geteuid() == 0 {
		uid, gid := int(s.cfg.Credential.Uid), int(s.cfg.Credential.Gid)
		d.Control = func(_, _ string, c syscall.RawConn) error {
			var err error
			if cerr := c.Control(func(fd uintptr) { err = unix.Fchown(int(fd), uid, gid) }); cerr != nil {
				return cerr
			}
			if err != nil {
				return fmt.Errorf("giving the socket to uid %d: %w", uid, err)
			}
			return nil
		}
	}
	if s == nil || s.cfg.NetNS == "" {
		return d.DialContext(ctx, network, addr)
	}
	type result struct {
		c   net.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		// Never unlocked: the thread ends with this goroutine.
		fd, err := unix.Open(nsexec.Path(s.cfg.NetNS), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			done <- result{err: fmt.Errorf("network namespace %s: %w", s.cfg.NetNS, err)}
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			done <- result{err: fmt.Errorf("entering network namespace %s: %w", s.cfg.NetNS, err)}
			return
		}
		c, err := d.DialContext(ctx, network, addr)
		done <- result{c, err}
	}()
	r := <-done
	return r.c, r.err
}
