package supervisor

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/slapnode/slapnode/partition/service"
)

// ErrSpec is wrapped by every error about an invalid ServiceSpec.
var ErrSpec = errors.New("invalid service spec")

// Credential is the identity a service runs as (see package service).
type Credential = service.Credential

// ServiceSpec is what an instance declares for one service or scheduled
// job (see package service).
type ServiceSpec = service.Spec

// DefaultStopGrace is SlapOS's supervisord stopwaitsecs.
const DefaultStopGrace = 60 * time.Second

// validName keeps partition and service names usable as file and cgroup
// names.
func validName(s string) bool {
	if s == "" || s == "." || s == ".." || len(s) > 200 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-@+", r)) {
			return false
		}
	}
	return true
}

// check validates sp; partition is the partition it is applied to.
func specCheck(sp ServiceSpec, partition string) error {
	where := fmt.Sprintf("service %q of partition %q", sp.Name, partition)
	switch {
	case sp.Partition != "" && sp.Partition != partition:
		return fmt.Errorf("%w: %s says it belongs to partition %q", ErrSpec, where, sp.Partition)
	case !validName(sp.Name):
		return fmt.Errorf("%w: %s: a name is letters, digits and . _ - @ +", ErrSpec, where)
	case len(sp.Command) == 0 || sp.Command[0] == "":
		return fmt.Errorf("%w: %s has no command", ErrSpec, where)
	case sp.Dir == "" || !filepath.IsAbs(sp.Dir):
		return fmt.Errorf("%w: %s: dir %q must be an absolute path (the partition directory)", ErrSpec, where, sp.Dir)
	case sp.StopGrace < 0:
		return fmt.Errorf("%w: %s: negative stop grace %s", ErrSpec, where, sp.StopGrace)
	case sp.Cgroup == "" && len(sp.ExtraCgroups) > 0:
		return fmt.Errorf("%w: %s: extra cgroups given without a main cgroup", ErrSpec, where)
	}
	if sp.Schedule != "" {
		if _, err := ParseCron(sp.Schedule); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
	}
	return nil
}

// hash identifies the spec's content: Apply restarts a service whose hash
// changed. encoding/json sorts map keys, so the hash is stable.
func specHash(sp ServiceSpec) string {
	b, _ := json.Marshal(sp)
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:8])
}

func specGrace(sp ServiceSpec) time.Duration {
	if sp.StopGrace == 0 {
		return DefaultStopGrace
	}
	return sp.StopGrace
}

func specLogPath(sp ServiceSpec) string {
	if sp.LogFile != "" {
		return sp.LogFile
	}
	dir := sp.LogDir
	if dir == "" {
		dir = filepath.Join(sp.Dir, "var", "log")
	}
	return filepath.Join(dir, sp.Name+".log")
}

const defaultPath = "/usr/local/bin:/usr/bin:/bin"

// environ builds the clean environment of a service: the identity variables
// SlapOS's supervisord sets (USER, LOGNAME, HOME), a default PATH, then what
// the profile sets, then the marker the supervisor uses to find the
// service's processes that escaped its process group.
func specEnviron(sp ServiceSpec, marker string) []string {
	env := map[string]string{"PATH": defaultPath}
	uid := os.Getuid()
	if sp.Credential != nil {
		uid = int(sp.Credential.Uid)
	}
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		env["USER"], env["LOGNAME"], env["HOME"] = u.Username, u.Username, u.HomeDir
	} else {
		env["HOME"] = sp.Dir
	}
	for k, v := range sp.Env {
		env[k] = v
	}
	env[markerVar] = marker
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// executable resolves the command's program the way a shell would, but with
// the service's PATH, not the daemon's.
func specExecutable(sp ServiceSpec) (string, error) {
	name := sp.Command[0]
	if strings.Contains(name, "/") {
		if !filepath.IsAbs(name) {
			name = filepath.Join(sp.Dir, name)
		}
		return name, nil
	}
	path := defaultPath
	if p, ok := sp.Env["PATH"]; ok {
		path = p
	}
	for _, d := range filepath.SplitList(path) {
		if d == "" {
			continue
		}
		f := filepath.Join(d, name)
		if st, err := os.Stat(f); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return f, nil
		}
	}
	return "", fmt.Errorf("service %s/%s: %q not found in PATH %s", sp.Partition, sp.Name, name, path)
}

// ScanRunDirs returns the specs of the executables that recipes placed in
// the SlapOS directories of a partition: <dir>/etc/service (services, watched)
// and <dir>/etc/run (run once). Each takes base's fields (credential,
// cgroup, env, grace), is named after its file, and logs where SlapOS's
// supervisord would: <dir>/.<partition>_<name>.log. Missing directories are
// not an error. When the supervisor is root and base has a credential, the
// directories are read as that user: the partition user owns them and may
// have made them links to places it cannot read itself.
func ScanRunDirs(dir string, base ServiceSpec) (specs []ServiceSpec, err error) {
	uid, gid, groups := -1, -1, []int(nil)
	if c := base.Credential; c != nil && os.Geteuid() == 0 {
		uid, gid = int(c.Uid), int(c.Gid)
		for _, g := range c.Groups {
			groups = append(groups, int(g))
		}
	}
	err = asUser(uid, gid, groups, func() error {
		specs, err = scanRunDirs(dir, base)
		return err
	})
	return specs, err
}

func scanRunDirs(dir string, base ServiceSpec) ([]ServiceSpec, error) {
	var specs []ServiceSpec
	for _, d := range []struct {
		sub   string
		watch bool
	}{{"etc/service", true}, {"etc/run", false}} {
		entries, err := os.ReadDir(filepath.Join(dir, d.sub))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("scanning %s for services: %w", filepath.Join(dir, d.sub), err)
		}
		for _, e := range entries {
			p := filepath.Join(dir, d.sub, e.Name())
			st, err := os.Stat(p)
			if err != nil || !st.Mode().IsRegular() || st.Mode()&0o111 == 0 || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			sp := base
			sp.Name = e.Name()
			sp.Command = []string{p}
			sp.Dir = dir
			sp.Watch = d.watch
			sp.Schedule = ""
			sp.LogFile = filepath.Join(dir, "."+base.Partition+"_"+e.Name()+".log")
			specs = append(specs, sp)
		}
	}
	return specs, nil
}
