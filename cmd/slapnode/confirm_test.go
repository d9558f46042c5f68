package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/slapnode/slapnode/node/format"
	"github.com/slapnode/slapnode/node/master"
)

// openPTY opens a pseudo-terminal: the test writes the user's answer to
// its master side, the command reads it from the terminal side.
func openPTY(t *testing.T) (ptm, tty *os.File) {
	t.Helper()
	ptm, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal here: %v", err)
	}
	t.Cleanup(func() { ptm.Close() })
	if err := unix.IoctlSetPointerInt(int(ptm.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(ptm.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	tty, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tty.Close() })
	// The terminal's echo is not read by anyone: turn it off.
	if tio, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS); err == nil {
		tio.Lflag &^= unix.ECHO
		unix.IoctlSetTermios(int(tty.Fd()), unix.TCSETS, tio)
	}
	return ptm, tty
}

// runOnTerminal runs the command with a terminal as standard input, the
// user typing answer.
func runOnTerminal(t *testing.T, answer string, args ...string) (int, string, string) {
	t.Helper()
	ptm, tty := openPTY(t)
	if _, err := ptm.WriteString(answer + "\n"); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := run(args, tty, &out, &errb)
	return code, out.String(), errb.String()
}

// TestDestroyAsksOnATerminal: destroying an instance — apply --state
// destroyed on the node, destroy NAME on a master — asks on a terminal,
// does nothing unless the answer is "yes", and -auto-approve skips the
// question (issue 19).
func TestDestroyAsksOnATerminal(t *testing.T) {
	t.Setenv(format.LoopbackEnv, t.TempDir())
	root, dir := t.TempDir(), t.TempDir()
	serveDaemon(t, root)
	os.WriteFile(filepath.Join(dir, "software.hcl"), []byte("software \"sleeper\" {\n  version = \"1\"\n}\n\ninstance \"default\" {\n  profile = \"instance.hcl\"\n}\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "instance.hcl"), []byte("service \"sleep\" {\n  command = [\"/bin/sleep\", \"1000\"]\n}\n"), 0o644)
	profile := filepath.Join(dir, "software.hcl")
	if code, out, errs := runCLI(t, "", "apply", profile, "--root", root, "--name", "sleeper", "--settle", "0"); code != exitOK {
		t.Fatalf("apply: %d %s %s", code, out, errs)
	}
	running := func() bool {
		_, out, _ := runCLI(t, "", "status", "sleeper", "--root", root)
		return strings.Contains(out, "RUNNING")
	}
	for _, answer := range []string{"no", "", "y"} {
		code, _, errs := runOnTerminal(t, answer, "apply", profile, "--root", root, "--name", "sleeper", "--state", "destroyed")
		if code != exitFailure || !strings.Contains(errs, "Destroy sleeper? Its services stop") || !strings.Contains(errs, "destroy cancelled: nothing was changed") {
			t.Errorf("answer %q: %d %s", answer, code, errs)
		}
	}
	if !running() {
		t.Fatal("a cancelled destroy stopped the service")
	}
	code, out, errs := runOnTerminal(t, "yes", "apply", profile, "--root", root, "--name", "sleeper", "--state", "destroyed")
	if code != exitOK || running() {
		t.Errorf("destroy confirmed with yes: %d %s %s", code, out, errs)
	}

	// On a master: destroy NAME asks the same way.
	url, node := testMaster(t)
	sw := writeSoftware(t, "xml")
	if code, _, errs := runCLI(t, "", "request", "web", sw, "--master", url); code != exitOK {
		t.Fatalf("request: %s", errs)
	}
	state := func() string {
		info, err := node.FullComputerInformation(context.Background(), master.DefaultComputer)
		if err != nil || len(info.Partitions) == 0 {
			t.Fatalf("computer: %v", err)
		}
		return info.Partitions[0].RequestedState
	}
	code, _, errs = runOnTerminal(t, "no", "destroy", "web", "--master", url)
	if code != exitFailure || !strings.Contains(errs, "Destroy instance web?") || state() == "destroyed" {
		t.Errorf("destroy answered no: %d %s (state %s)", code, errs, state())
	}
	code, out, errs = runOnTerminal(t, "yes", "destroy", "web", "--master", url)
	if code != exitOK || !strings.Contains(out, "requested destroyed") || state() != "destroyed" {
		t.Errorf("destroy answered yes: %d %s %s", code, out, errs)
	}
}
