package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/slapnode/slapnode/node/slap"
)

// The master benchmark: `slapnode master` and, when it can be run,
// slapos.core's slapproxy, each a process of its own serving SLAP over
// loopback HTTP, driven by the same client from this process (rawhttp.go:
// requests prepared once as bytes, answers read whole; the first answer of
// every phase is decoded and checked). Each engine's database holds one computer of
// masterPartitions partitions, every one of them busy with an instance of
// five parameters and three connection parameters, as a node converging
// its partitions leaves it.

// masterPartitions is the size of the computer getFullComputerInformation
// answers for (the figure: 50 partitions).
const masterPartitions = 50

const (
	masterComputer = "slapbench-computer"
	masterSR       = "https://lab.example.invalid/software/slapbench/software.cfg"
)

// masterPhase is one kind of call at one concurrency, over the repetitions.
type masterPhase struct {
	Name    string `json:"name"`    // request, request-change, computer
	Clients int    `json:"clients"` // concurrent clients, each with its own connection
	// Per repetition: calls per second, and the server process's CPU
	// (user+system, /proc/PID/stat) per call in microseconds.
	Rates     []float64 `json:"rates"`
	ServerCPU []float64 `json:"server_cpu_us"`
	Calls     []int     `json:"calls"`
	Bytes     int       `json:"answer_bytes"` // size of one answer
}

// masterRun is one engine's figures.
type masterRun struct {
	Engine   string        `json:"engine"` // slapnode, slapproxy
	Version  string        `json:"version,omitempty"`
	Command  string        `json:"command"`
	Skipped  string        `json:"skipped,omitempty"`
	Phases   []masterPhase `json:"phases,omitempty"`
	StartRSS int           `json:"start_rss_kib,omitempty"` // VmRSS after start, before any call
	PeakRSS  int           `json:"peak_rss_kib,omitempty"`  // VmHWM at the end
	EndRSS   int           `json:"end_rss_kib,omitempty"`   // VmRSS at the end
	// The end's VmRSS in two: anonymous memory (heap, stacks, the
	// database's page cache) and pages of mapped files (the program's
	// code and read-only data, shared libraries).
	EndAnon    int     `json:"end_rss_anon_kib,omitempty"`
	EndFile    int     `json:"end_rss_file_kib,omitempty"`
	SetupSecs  float64 `json:"setup_seconds,omitempty"` // format + 50 requests + 50 connection publications
	Partitions int     `json:"partitions"`
}

// masterBench is the whole master comparison.
type masterBench struct {
	Seconds float64     `json:"seconds_per_phase"`
	Repeat  int         `json:"repeat"`
	Runs    []masterRun `json:"runs"`
}

// masterPhaseSpecs are the phases, in the order they run in each
// repetition (each engine in turn).
var masterPhaseSpecs = []struct {
	name    string
	clients int
}{
	{"request", 1}, {"request", 8}, {"request-change", 1}, {"computer", 1}, {"computer", 8},
}

// masterServer is a running master process.
type masterServer struct {
	run  *masterRun
	cmd  *exec.Cmd
	base string // http://127.0.0.1:PORT/
	hc   *http.Client
	log  string
}

func runMasterBench(c *config, slapnode string) (*masterBench, error) {
	dir := filepath.Join(c.work, "master")
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	mb := &masterBench{Seconds: c.masterSeconds.Seconds(), Repeat: c.masterRepeat}
	var servers []*masterServer
	defer func() {
		for _, s := range servers {
			s.stop()
		}
	}()
	sn, err := startSlapnodeMaster(slapnode, filepath.Join(dir, "slapnode"))
	if err != nil {
		return nil, err
	}
	servers = append(servers, sn)
	px, why := startSlapproxy(c.slapos, filepath.Join(dir, "slapproxy"))
	if px != nil {
		servers = append(servers, px)
	} else {
		logf("master: slapproxy not measured: %s", why)
	}
	for _, s := range servers {
		start := time.Now()
		if err := s.setup(); err != nil {
			return nil, fmt.Errorf("%s: setting up %d partitions: %w (log: %s)", s.run.Engine, masterPartitions, err, s.log)
		}
		s.run.SetupSecs = time.Since(start).Seconds()
		for _, p := range masterPhaseSpecs {
			s.run.Phases = append(s.run.Phases, masterPhase{Name: p.name, Clients: p.clients})
		}
	}
	for rep := 0; rep < c.masterRepeat; rep++ {
		for i, p := range masterPhaseSpecs {
			for _, s := range servers {
				ph := &s.run.Phases[i]
				rate, cpu, calls, size, err := s.measure(p.name, p.clients, c.masterSeconds, rep)
				if err != nil {
					return nil, fmt.Errorf("%s %s ×%d: %w (log: %s)", s.run.Engine, p.name, p.clients, err, s.log)
				}
				ph.Rates = append(ph.Rates, rate)
				ph.ServerCPU = append(ph.ServerCPU, cpu)
				ph.Calls = append(ph.Calls, calls)
				ph.Bytes = size
				logf("master: %s %s ×%d: %.0f calls/s, %.0f µs server CPU per call", s.run.Engine, p.name, p.clients, rate, cpu)
			}
		}
	}
	for _, s := range servers {
		s.run.PeakRSS = procStatusKiB(s.cmd.Process.Pid, "VmHWM")
		s.run.EndRSS = procStatusKiB(s.cmd.Process.Pid, "VmRSS")
		s.run.EndAnon = procStatusKiB(s.cmd.Process.Pid, "RssAnon")
		s.run.EndFile = procStatusKiB(s.cmd.Process.Pid, "RssFile")
		// Where the memory is, for whoever reads the figures.
		os.WriteFile(filepath.Join(filepath.Dir(s.log), "smaps.txt"), []byte(readFile(fmt.Sprintf("/proc/%d/smaps", s.cmd.Process.Pid))), 0o644)
		mb.Runs = append(mb.Runs, *s.run)
	}
	if px == nil {
		mb.Runs = append(mb.Runs, masterRun{Engine: "slapproxy", Skipped: why})
	}
	return mb, nil
}

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func startSlapnodeMaster(slapnode, dir string) (*masterServer, error) {
	return startSlapnodeMasterFor(slapnode, dir, masterComputer)
}

func startSlapnodeMasterFor(slapnode, dir, computer string) (*masterServer, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	args := []string{"master", "--db", filepath.Join(dir, "master.db"), "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--computer-id", computer}
	run := &masterRun{Engine: "slapnode", Version: firstLine(output("", slapnode, "version")), Partitions: masterPartitions,
		Command: "slapnode " + strings.Join(args, " ")}
	return startMasterProcess(run, exec.Command(slapnode, args...), dir, port)
}

// startSlapproxy starts slapos.core's slapproxy (`slapos proxy start`)
// when a `slapos` command is there: the -slapos flag, or `slapos` on PATH.
// It returns nil and why when it is not.
func startSlapproxy(slapos, dir string) (*masterServer, string) {
	if slapos == "" {
		p, err := exec.LookPath("slapos")
		if err != nil {
			return nil, "slapos.core (which provides slapproxy, `slapos proxy start`) is not installed on this machine; give its `slapos` command with -slapos"
		}
		slapos = p
	}
	port, err := freePort()
	if err != nil {
		return nil, err.Error()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err.Error()
	}
	cfg := filepath.Join(dir, "slapos-proxy.cfg")
	conf := fmt.Sprintf("[slapos]\ncomputer_id = %s\nmaster_url = http://127.0.0.1:%d\n\n[slapproxy]\nhost = 127.0.0.1\nport = %d\ndatabase_uri = %s\n",
		masterComputer, port, port, filepath.Join(dir, "proxy.db"))
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		return nil, err.Error()
	}
	version := firstLine(output("", slapos, "--version"))
	run := &masterRun{Engine: "slapproxy", Version: version, Partitions: masterPartitions,
		Command: "slapos proxy start --cfg slapos-proxy.cfg ([slapproxy] host = 127.0.0.1, port, database_uri; [slapos] computer_id)"}
	s, err := startMasterProcess(run, exec.Command(slapos, "proxy", "start", "--cfg", cfg), dir, port)
	if err != nil {
		return nil, "slapproxy did not start: " + err.Error()
	}
	return s, ""
}

func startMasterProcess(run *masterRun, cmd *exec.Cmd, dir string, port int) (*masterServer, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	log := filepath.Join(dir, "server.log")
	f, err := os.Create(log)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd.Stdout, cmd.Stderr = f, f
	// Its own process group, so that stopping it stops what it started.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &masterServer{run: run, cmd: cmd, base: fmt.Sprintf("http://127.0.0.1:%d/", port), log: log,
		hc: &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := s.hc.Get(s.base + "getSoftwareReleaseListFromSoftwareProduct?software_product_reference=slapbench")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("not answering on %s after 30 s (log: %s)", s.base, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
	run.StartRSS = procStatusKiB(cmd.Process.Pid, "VmRSS")
	return s, nil
}

func (s *masterServer) stop() {
	if s.cmd.Process == nil || s.cmd.ProcessState != nil {
		return
	}
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

// client is a slap.Client of the server, for the setup and the checks.
func (s *masterServer) client() *slap.Client {
	c, err := slap.NewClient(s.base, slap.WithHTTPClient(s.hc))
	if err != nil {
		panic(err) // s.base is ours
	}
	return c
}

func instanceParams(i int, change int) map[string]any {
	return map[string]any{
		"name": fmt.Sprintf("instance-%d", i), "port": strconv.Itoa(8000 + i), "replicas": "3",
		"monitor": "true", "generation": strconv.Itoa(change),
	}
}

// setup formats the computer, supplies the release, requests one instance
// per partition and publishes each one's connection parameters — what a
// converged node of 50 instances leaves in the master.
func (s *masterServer) setup() error {
	ctx := context.Background()
	c := s.client()
	cfg := &slap.ComputerConfiguration{Reference: masterComputer, Address: "10.0.0.1", Netmask: "255.255.255.0"}
	for i := 0; i < masterPartitions; i++ {
		cfg.Partitions = append(cfg.Partitions, slap.PartitionConfiguration{
			Reference: fmt.Sprintf("slappart%d", i), TapName: fmt.Sprintf("slaptap%d", i),
			Addresses: []slap.Address{
				{Addr: fmt.Sprintf("10.0.1.%d", i+2), Netmask: "255.255.255.0"},
				{Addr: fmt.Sprintf("fd00::%x", i+2), Netmask: "ffff:ffff:ffff:ffff::"},
			},
		})
	}
	if err := c.LoadComputerConfiguration(ctx, cfg); err != nil {
		return err
	}
	if err := c.Supply(ctx, masterSR, masterComputer, ""); err != nil {
		return err
	}
	for i := 0; i < masterPartitions; i++ {
		inst, err := c.Request(ctx, slap.Request{SoftwareURL: masterSR, Reference: fmt.Sprintf("instance-%d", i),
			Parameters: instanceParams(i, 0), Filter: map[string]any{"computer_guid": masterComputer}})
		if err != nil {
			return err
		}
		if err := c.SetConnectionParameters(ctx, inst.ComputerID, inst.PartitionID, "", map[string]any{
			"url": fmt.Sprintf("https://[fd00::%x]:%d/", i+2, 8000+i), "user": "admin", "password": fmt.Sprintf("secret-%d", i),
		}); err != nil {
			return err
		}
	}
	return nil
}

// call is one prepared SLAP call.
type call struct {
	method, path string
	body         []byte // form, for POST
}

// requestCall is the requestComputerPartition slapos.slap's
// OpenOrder.request sends (the fields in its order, as slap.Client sends
// them), for instance i with parameters of generation change.
func requestCall(i, change int) call {
	pxml := slap.MustMarshal(instanceParams(i, change))
	fxml := slap.MustMarshal(map[string]any{"computer_guid": masterComputer})
	form := []string{
		"software_release", masterSR, "partition_reference", fmt.Sprintf("instance-%d", i),
		"partition_parameter_xml", string(pxml), "filter_xml", string(fxml), "software_type", "default",
		"state", string(slap.MustMarshal(nil)), "shared_xml", string(slap.MustMarshal(false)),
	}
	var b strings.Builder
	for j := 0; j < len(form); j += 2 {
		if j > 0 {
			b.WriteByte('&')
		}
		b.WriteString(url.QueryEscape(form[j]) + "=" + url.QueryEscape(form[j+1]))
	}
	return call{method: http.MethodPost, path: "requestComputerPartition", body: []byte(b.String())}
}

func computerCall() call {
	return call{method: http.MethodGet, path: "getFullComputerInformation?computer_id=" + url.QueryEscape(masterComputer)}
}

// check decodes one answer of a phase and checks it is what was asked.
func check(phase string, i int, answer []byte) error {
	v, err := slap.Unmarshal(answer)
	if err != nil {
		return err
	}
	switch phase {
	case "computer":
		c, err := slap.ParseComputer(v)
		if err != nil {
			return err
		}
		busy := 0
		for _, p := range c.Partitions {
			if p.SoftwareRelease != nil && p.SoftwareRelease.URL == masterSR && len(p.ConnectionDict) == 3 {
				busy++
			}
		}
		if busy != masterPartitions {
			return fmt.Errorf("getFullComputerInformation: %d of %d partitions with their instance and connection parameters", busy, masterPartitions)
		}
	default:
		inst, err := slap.ParseSoftwareInstance(v)
		if err != nil {
			return err
		}
		if inst.ParameterDict["name"] != fmt.Sprintf("instance-%d", i) || len(inst.ConnectionDict) != 3 {
			return fmt.Errorf("requestComputerPartition of instance-%d answered %v / %v", i, inst.ParameterDict, inst.ConnectionDict)
		}
	}
	return nil
}

// measure runs one phase for d with n clients and returns the calls per
// second, the server's CPU per call (µs), the number of calls and the size
// of an answer.
func (s *masterServer) measure(phase string, n int, d time.Duration, rep int) (rate, cpuUS float64, calls, size int, err error) {
	pid := s.cmd.Process.Pid
	var total atomic.Int64
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var sizeSeen atomic.Int64
	cpu0 := procCPU(pid)
	start := time.Now()
	for w := 0; w < n; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			inst := w % masterPartitions
			host := strings.TrimSuffix(strings.TrimPrefix(s.base, "http://"), "/")
			rc := &rawConn{addr: host}
			defer rc.close()
			cl := computerCall()
			if phase == "request" {
				cl = requestCall(inst, 0)
			}
			req := rawRequest(host, cl)
			for k := 0; ; k++ {
				select {
				case <-stop:
					return
				default:
				}
				if phase == "request-change" {
					// A new parameter value each call: one committed write.
					req = rawRequest(host, requestCall(inst, 1+rep*1_000_000+k))
				}
				b, err := rc.do(req)
				if err == nil && k == 0 {
					err = check(phase, inst, b)
				}
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
				sizeSeen.Store(int64(len(b)))
				total.Add(1)
			}
		}(w)
	}
	timer := time.NewTimer(d)
	<-timer.C
	close(stop)
	wg.Wait()
	elapsed := time.Since(start)
	cpu1 := procCPU(pid)
	if firstErr != nil {
		return 0, 0, 0, 0, firstErr
	}
	calls = int(total.Load())
	if calls == 0 {
		return 0, 0, 0, 0, errors.New("no call completed")
	}
	return float64(calls) / elapsed.Seconds(), (cpu1 - cpu0).Seconds() * 1e6 / float64(calls), calls, int(sizeSeen.Load()), nil
}

// procCPU is a process's user+system CPU time (/proc/PID/stat), its
// threads included.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / clockTicks
}

// clockTicks is USER_HZ, 100 on every Linux architecture Go supports.
const clockTicks = 100

// procStatusKiB reads a kB field of /proc/PID/status (VmRSS, VmHWM).
func procStatusKiB(pid int, field string) int {
	for _, line := range strings.Split(readFile(fmt.Sprintf("/proc/%d/status", pid)), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	return 0
}
