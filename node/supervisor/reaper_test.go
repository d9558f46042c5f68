package supervisor

import (
	"os/exec"
	"testing"
	"time"
)

// zombieChild sees a dead child without reaping it: the code that started
// it still gets its exit status.
func TestZombieChild(t *testing.T) {
	cmd := exec.Command("sh", "-c", "exit 3")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, ok := readStat(cmd.Process.Pid)
		if ok && st.zombie {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the child did not exit")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !zombieChild() {
		t.Fatal("a dead child waiting to be reaped was not seen")
	}
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 {
		t.Fatalf("the child's exit status was taken: %v", err)
	}
}
