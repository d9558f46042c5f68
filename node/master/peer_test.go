package master

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/slapnode/slapnode/node/slap"
)

// curlAs runs curl as uid (nobody when 65534) and returns the HTTP status
// it got and the body.
func curlAs(t *testing.T, uid uint32, args ...string) (string, string) {
	t.Helper()
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl is not installed")
	}
	cmd := exec.Command(curl, append([]string{"-s", "-w", "\n%{http_code}"}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
	cmd.Dir = "/"
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("curl as %d: %v", uid, err)
	}
	i := strings.LastIndex(string(out), "\n")
	return string(out[i+1:]), string(out[:max(i, 0)])
}

// TestLoopbackNeedsACredentialFromOtherUsers: on loopback without --auth,
// the master's own user and root need no credential, but any other local
// user — a partition's user — is refused, reads and writes alike; with a
// partition token it may only touch its own partition (issue 18 #10: any
// local user could publish another partition's connection parameters).
func TestLoopbackNeedsACredentialFromOtherUsers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("running curl as another user needs root")
	}
	m := openTest(t, Options{DefaultComputer: comp})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Serve(ctx, ln, nil) }()
	defer func() { cancel(); <-done }()
	base := "http://" + ln.Addr().String()

	// The master's own user (this test, root) needs no credential.
	c, _ := slap.NewClient(base)
	if err := c.LoadComputerConfiguration(ctx, formatConfig(2)); err != nil {
		t.Fatal(err)
	}
	for _, title := range []string{"a", "b"} {
		if _, err := c.Request(ctx, slap.Request{SoftwareURL: sr, Reference: title}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.SetConnectionParameters(ctx, comp, "slappart1", "", map[string]any{"url": "https://b.example/"}); err != nil {
		t.Fatal(err)
	}

	xml, _ := slap.Marshal(map[string]any{"url": "https://evil.example/"})
	form := url.Values{"computer_id": {comp}, "computer_partition_id": {"slappart1"},
		"connection_xml": {string(xml)}, "slave_reference": {"None"}}.Encode()
	const nobody = 65534
	code, body := curlAs(t, nobody, "-X", "POST", "--data", form, base+"/setComputerPartitionConnectionXml")
	if code != "401" || !strings.Contains(body, "local user 65534 has no credential") {
		t.Errorf("another local user publishing connection parameters: %s %s, want 401 saying it has no credential", code, body)
	}
	if code, _ := curlAs(t, nobody, base+"/getFullComputerInformation?computer_id="+comp); code != "401" {
		t.Errorf("another local user reading the computer: %s, want 401", code)
	}
	// A partition credential only reaches its own partition.
	tok, err := m.CreateCredential(ctx, ScopePartition, comp, "slappart0")
	if err != nil {
		t.Fatal(err)
	}
	if code, body := curlAs(t, nobody, "-H", "Authorization: Bearer "+tok, "-X", "POST", "--data", form, base+"/setComputerPartitionConnectionXml"); code != "403" {
		t.Errorf("slappart0's credential publishing for slappart1: %s %s, want 403", code, body)
	}
	own := strings.Replace(form, "slappart1", "slappart0", 1)
	if code, body := curlAs(t, nobody, "-H", "Authorization: Bearer "+tok, "-X", "POST", "--data", own, base+"/setComputerPartitionConnectionXml"); code != "200" {
		t.Errorf("slappart0's credential publishing for itself: %s %s, want 200", code, body)
	}
	cp, err := c.RegisterComputerPartition(ctx, comp, "slappart1")
	if err != nil {
		t.Fatal(err)
	}
	if got := cp.ConnectionDict["url"]; got != "https://b.example/" {
		t.Errorf("slappart1's connection parameters became %v", cp.ConnectionDict)
	}
	// Root, as the master's operator, still needs nothing.
	if code, body := curlAs(t, 0, base+"/getFullComputerInformation?computer_id="+comp); code != "200" {
		t.Errorf("root reading: %s %s", code, body)
	}
}

// TestPeerUIDOfThisProcess: the kernel names this process's user as the
// owner of its own loopback connections, by sock_diag and by /proc/net.
func TestPeerUIDOfThisProcess(t *testing.T) {
	var got []uint32
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		uid, err := peerUID(r)
		if err != nil {
			t.Errorf("peerUID: %v", err)
		}
		local := r.Context().Value(http.LocalAddrContextKey).(net.Addr).(*net.TCPAddr)
		remote, _ := net.ResolveTCPAddr("tcp", r.RemoteAddr)
		puid, err := procNetUID(remote, local)
		if err != nil {
			t.Errorf("procNetUID: %v", err)
		}
		got = append(got, uid, puid)
	})}
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0"} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Logf("%s: %v", addr, err)
			continue
		}
		go srv.Serve(ln)
		resp, err := http.Get("http://" + ln.Addr().String() + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		ln.Close()
	}
	if len(got) == 0 {
		t.Fatal("no request served")
	}
	for _, uid := range got {
		if uid != uint32(os.Geteuid()) {
			t.Errorf("peer uid %d, want %d", uid, os.Geteuid())
		}
	}
}
