package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// machine records where and with what the figures were measured: the page
// prints it above every table, since ratios only hold on one machine.
type machine struct {
	Cores      int    `json:"cores"`
	CPU        string `json:"cpu"`
	Kernel     string `json:"kernel"`
	MemTotal   string `json:"mem_total"`
	Go         string `json:"go"`
	Slapnode   string `json:"slapnode"`
	Wazero     string `json:"wazero"`
	Buildout   string `json:"zc_buildout"`
	Setuptools string `json:"setuptools"`
	Python     string `json:"python"`
	Root       bool   `json:"root"`
	LoadStart  string `json:"load_start"`
	LoadEnd    string `json:"load_end"`
	Date       string `json:"date"`
}

func describeMachine(c *config, slapnode string) machine {
	m := machine{
		Cores:      runtime.NumCPU(),
		CPU:        cpuInfo("model name"),
		Kernel:     strings.TrimSpace(readFile("/proc/sys/kernel/osrelease")),
		MemTotal:   meminfo("MemTotal"),
		Go:         firstLine(output(c.repo, "go", "version")),
		Slapnode:   firstLine(output(c.repo, slapnode, "version")),
		Wazero:     goModVersion(c.repo, "github.com/tetratelabs/wazero"),
		Buildout:   output("", "dpkg-query", "-W", "-f", "${Version}", "python3-zc.buildout"),
		Setuptools: output("", "dpkg-query", "-W", "-f", "${Version}", "python3-setuptools"),
		Python:     strings.TrimPrefix(firstLine(output("", pythonBin, "--version")), "Python "),
		Root:       os.Geteuid() == 0,
		LoadStart:  loadAverage(),
		Date:       time.Now().UTC().Format("2006-01-02 15:04 UTC"),
	}
	return m
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// output runs a command and returns its trimmed output, or "unknown": a
// missing version string must not stop the benchmark.
func output(dir, name string, args ...string) string {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	b, err := cmd.CombinedOutput()
	if err != nil && len(b) == 0 {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

func cpuInfo(key string) string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// meminfo returns a /proc/meminfo size in GiB.
func meminfo(key string) string {
	for _, l := range strings.Split(readFile("/proc/meminfo"), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && k == key {
			var kb float64
			if _, err := fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(v), " kB"), &kb); err == nil {
				return fmt.Sprintf("%.1f GiB", kb/(1<<20))
			}
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func loadAverage() string {
	f := strings.Fields(readFile("/proc/loadavg"))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// goModVersion is the version of module mod required by the repository's
// go.mod.
func goModVersion(repo, mod string) string {
	for _, l := range strings.Split(readFile(repo+"/go.mod"), "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && f[0] == mod {
			return f[1]
		}
		if len(f) >= 3 && f[0] == "require" && f[1] == mod {
			return f[2]
		}
	}
	return "unknown"
}
