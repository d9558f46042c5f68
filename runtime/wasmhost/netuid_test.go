package wasmhost

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
)

// tcpOwner is the uid /proc/net/tcp gives the socket bound to local port.
func tcpOwner(t *testing.T, port int) string {
	t.Helper()
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 7 && strings.HasSuffix(f[1], fmt.Sprintf(":%04X", port)) {
			return f[7]
		}
	}
	t.Fatalf("no socket on port %d", port)
	return ""
}

// TestDialAsPartitionUser: the host's network calls for a session with a
// credential (tcp_probe, http_get, download) come from a socket the
// partition user owns, so that the master on loopback, which trusts root
// as its operator, does not take a hostile recipe's request for root's.
func TestDialAsPartitionUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("giving a socket to another user needs root")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	for _, tc := range []struct {
		cred *syscall.Credential
		want string
	}{{&syscall.Credential{Uid: 65534, Gid: 65534}, "65534"}, {nil, "0"}} {
		s := &Session{cfg: SessionConfig{Credential: tc.cred}}
		c, err := s.dial(context.Background(), "tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		if got := tcpOwner(t, c.LocalAddr().(*net.TCPAddr).Port); got != tc.want {
			t.Errorf("credential %v: the socket is uid %s's, want %s", tc.cred, got, tc.want)
		}
		c.Close()
	}
}
