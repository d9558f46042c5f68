package master

import (
	"net"
	"os"
	"testing"
)

// BenchmarkPeerUID: naming the user of a loopback connection, by an exact
// sock_diag request (what the master does) and by reading /proc/net/tcp
// (its fallback; the kernel walks the whole TCP hash for it).
func BenchmarkPeerUID(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	acc := make(chan net.Conn, 1)
	go func() { c, _ := ln.Accept(); acc <- c }()
	cc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer cc.Close()
	sc := <-acc
	defer sc.Close()
	la, ra := sc.LocalAddr().(*net.TCPAddr), sc.RemoteAddr().(*net.TCPAddr)
	for name, f := range map[string]func(l, r *net.TCPAddr) (uint32, error){"sock_diag": diagUID, "proc": procNetUID} {
		b.Run(name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				uid, err := f(ra, la)
				if err != nil || uid != uint32(os.Geteuid()) {
					b.Fatal(uid, err)
				}
			}
		})
	}
}
