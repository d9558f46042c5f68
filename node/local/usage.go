package local

import (
	"encoding/xml"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/slapnode/slapnode/partition"
)

// PartitionUsage is what one partition consumes.
type PartitionUsage struct {
	Partition  string
	CPUSeconds float64 // CPU time of its processes (cgroup); -1 unknown (rootless)
	MemoryMB   float64 // memory in use now (cgroup); -1 unknown
	DiskMB     float64 // size of the partition directory
}

// Usage measures every partition that holds an instance: CPU time and
// memory from its cgroup (a formatted node), disk use from its directory.
func (n *Node) Usage() ([]PartitionUsage, error) {
	entries, err := os.ReadDir(filepath.Join(n.Root, "instance"))
	if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	var out []PartitionUsage
	for _, ent := range entries {
		if !ent.IsDir() || !strings.HasPrefix(ent.Name(), "slappart") {
			continue
		}
		p, err := n.Partition(ent.Name())
		if err != nil {
			continue
		}
		if !used(p) {
			continue // free: nothing instantiated
		}
		u := PartitionUsage{Partition: p.ID, CPUSeconds: -1, MemoryMB: -1, DiskMB: float64(diskUsage(p.Path)) / (1 << 20)}
		for _, dir := range append([]string{p.Cgroup}, p.ExtraCgroups...) {
			if dir == "" {
				continue
			}
			if v, ok := readCgroupNumber(dir, "cpuacct.usage"); ok { // v1, nanoseconds
				u.CPUSeconds = v / 1e9
			}
			if v, ok := readCgroupStat(dir, "cpu.stat", "usage_usec"); ok && u.CPUSeconds < 0 { // v2
				u.CPUSeconds = v / 1e6
			}
			if v, ok := readCgroupNumber(dir, "memory.usage_in_bytes"); ok { // v1
				u.MemoryMB = v / (1 << 20)
			}
			if v, ok := readCgroupNumber(dir, "memory.current"); ok && u.MemoryMB < 0 { // v2
				u.MemoryMB = v / (1 << 20)
			}
		}
		out = append(out, u)
	}
	return out, nil
}

// used reports whether an instance was applied in p: the engine has its
// journal (or an older version left its state in the partition).
func used(p partition.Partition) bool {
	if _, err := os.Stat(filepath.Join(p.StateDir, "parts.journal")); err == nil {
		return true
	}
	_, err := os.Lstat(filepath.Join(p.Path, ".slapnode"))
	return err == nil
}

func readCgroupNumber(dir, file string) (float64, bool) {
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return 0, false
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(string(b)), 64)
	return v, err == nil
}

func readCgroupStat(dir, file, key string) (float64, bool) {
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == key {
			v, err := strconv.ParseFloat(f[1], 64)
			return v, err == nil
		}
	}
	return 0, false
}

// diskUsage is the space a tree occupies (allocated blocks), not following
// symlinks.
func diskUsage(dir string) int64 {
	var total int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if info, err := d.Info(); err == nil {
			if st, ok := info.Sys().(*syscall.Stat_t); ok {
				total += st.Blocks * 512
			}
		}
		return nil
	})
	return total
}

// UsageXML is SlapOS's consumption report (the journal `slapos node report`
// posts to useComputer): one Sale Packing List whose movements give each
// partition's CPU time, memory and disk use.
func UsageXML(computerID string, usage []PartitionUsage, from, to time.Time) ([]byte, error) {
	type movement struct {
		Resource  string `xml:"resource"`
		Title     string `xml:"title"`
		Reference string `xml:"reference"`
		Quantity  string `xml:"quantity"`
		Unit      string `xml:"unit"`
		Price     string `xml:"price"`
		VAT       string `xml:"VAT"`
		Category  string `xml:"category"`
	}
	type transaction struct {
		Type      string     `xml:"type,attr"`
		Title     string     `xml:"title"`
		StartDate string     `xml:"start_date"`
		StopDate  string     `xml:"stop_date"`
		Reference string     `xml:"reference"`
		Currency  string     `xml:"currency"`
		Payment   string     `xml:"payment_mode"`
		Category  string     `xml:"category"`
		Movements []movement `xml:"movement"`
	}
	type journal struct {
		XMLName      xml.Name      `xml:"journal"`
		Transactions []transaction `xml:"transaction"`
	}
	t := transaction{Type: "Sale Packing List", Title: "Resource consumptions", Reference: computerID,
		StartDate: from.UTC().Format("2006-01-02 15:04:05"), StopDate: to.UTC().Format("2006-01-02 15:04:05")}
	add := func(p, res, unit string, q float64) {
		t.Movements = append(t.Movements, movement{Resource: res, Title: res, Reference: p,
			Quantity: strconv.FormatFloat(q, 'f', 3, 64), Unit: unit, Price: "0.00", VAT: "None", Category: "None"})
	}
	for _, u := range usage {
		if u.CPUSeconds >= 0 {
			add(u.Partition, "CPU Consumption", "second", u.CPUSeconds)
		}
		if u.MemoryMB >= 0 {
			add(u.Partition, "Memory Consumption", "MB", u.MemoryMB)
		}
		add(u.Partition, "Disk Usage", "MB", u.DiskMB)
	}
	b, err := xml.MarshalIndent(journal{Transactions: []transaction{t}}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("usage report: %w", err)
	}
	return append([]byte(xml.Header), b...), nil
}
