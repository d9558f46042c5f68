package nsexec

import (
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

func TestWrap(t *testing.T) {
	exe, argv, cred, err := Wrap("", "/bin/echo", []string{"hi"}, &syscall.Credential{Uid: 1})
	if err != nil || exe != "/bin/echo" || strings.Join(argv, " ") != "/bin/echo hi" || cred == nil {
		t.Fatalf("no namespace: %s %v %v %v", exe, argv, cred, err)
	}
	if _, err := exec.LookPath("nsenter"); err != nil {
		t.Skip("nsenter (util-linux) is not installed")
	}
	exe, argv, cred, err = Wrap("test-ns", "/bin/echo", []string{"hi"}, &syscall.Credential{Uid: 1000, Gid: 1001})
	want := "--net=/run/netns/test-ns --setgid 1001 --setuid 1000 -- /bin/echo hi"
	if err != nil || cred != nil || !strings.HasSuffix(strings.Join(argv, " "), want) || !strings.HasSuffix(exe, "nsenter") {
		t.Fatalf("namespace: %s %v %v %v", exe, argv, cred, err)
	}
	if os.Geteuid() != 0 {
		t.Skip("entering a namespace needs root")
	}
	// The wrapped command really runs in the namespace of the given path
	// (our own, here) as the given user.
	exe, argv, _, err = Wrap("/proc/self/ns/net", "/usr/bin/id", []string{"-u"}, &syscall.Credential{Uid: 65534, Gid: 65534})
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(exe, argv[1:]...).Output()
	if err != nil || strings.TrimSpace(string(out)) != "65534" {
		t.Fatalf("id -u through nsenter: %q %v", out, err)
	}
}
