// Package users creates, updates and removes the system users and groups of
// a node (slapuserN, slapsoft) by editing /etc/passwd, /etc/group,
// /etc/shadow and /etc/gshadow directly, the way shadow-utils does: under
// the lckpwdf(3) lock (/etc/.pwd.lock), keeping every line it does not own
// byte for byte, a "file-" backup of the previous content, and an atomic
// replacement that preserves each file's mode and owner.
//
// Editing the files, rather than running useradd/usermod/passwd once per
// user, makes formatting 100 partitions one read and one write of four
// files, and lets the same code run on a copy of the files in tests
// without root.
package users

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/slapnode/slapnode/internal/atomicfile"
)

// ErrNoFreeID is returned when the system id range is full.
var ErrNoFreeID = errors.New("no free system uid/gid")

// ErrLocked is returned when another program holds the password database
// lock for too long.
var ErrLocked = errors.New("user database locked")

// LockTimeout is how long Begin waits for the lckpwdf lock (glibc waits 15s).
var LockTimeout = 15 * time.Second

// User is one /etc/passwd entry, with the names of its supplementary groups.
type User struct {
	Name        string
	Uid, Gid    uint32
	Home, Shell string
	Groups      []string // supplementary groups (from /etc/group member lists)
}

// Spec is what EnsureUser makes true.
type Spec struct {
	Name  string
	Home  string
	Shell string // default /bin/sh, like slapformat
	// Groups are supplementary groups, which must exist. The user's own
	// group, named after it, is created by EnsureUser.
	Groups []string
}

// table is one colon-separated file kept as lines, so that comments and
// entries we do not own are written back unchanged.
type table struct {
	path   string
	lines  []string
	exists bool
	edits  int // changes since read or last write
	mode   os.FileMode
	uid    int
	gid    int
}

func readTable(path string, mode os.FileMode) (*table, error) {
	t := &table{path: path, mode: mode, uid: 0, gid: 0}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return t, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	t.exists, t.mode = true, st.Mode().Perm()
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		t.uid, t.gid = int(s.Uid), int(s.Gid)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		t.lines = append(t.lines, sc.Text())
	}
	return t, sc.Err()
}

// find returns the index of the entry called name, -1 if none.
func (t *table) find(name string) int {
	for i, l := range t.lines {
		if n, _, ok := strings.Cut(l, ":"); ok && n == name {
			return i
		}
	}
	return -1
}

func (t *table) fields(i int) []string { return strings.Split(t.lines[i], ":") }

func (t *table) set(i int, f []string) {
	l := strings.Join(f, ":")
	if t.lines[i] != l {
		t.lines[i] = l
		t.edits++
	}
}

func (t *table) add(f []string) {
	t.lines = append(t.lines, strings.Join(f, ":"))
	t.edits++
}

func (t *table) remove(name string) bool {
	i := t.find(name)
	if i < 0 {
		return false
	}
	t.lines = slices.Delete(t.lines, i, i+1)
	t.edits++
	return true
}

// write replaces the file atomically, keeping mode and owner, and leaves
// the previous content in path- as shadow-utils does.
func (t *table) write() error {
	if t.edits == 0 {
		return nil
	}
	var buf bytes.Buffer
	for _, l := range t.lines {
		buf.WriteString(l)
		buf.WriteByte('\n')
	}
	if t.exists {
		if old, err := os.ReadFile(t.path); err == nil {
			if err := atomicfile.WriteOwned(t.path+"-", old, t.mode, t.uid, t.gid); err != nil {
				return err
			}
		}
	}
	if err := atomicfile.WriteOwned(t.path, buf.Bytes(), t.mode, t.uid, t.gid); err != nil {
		return err
	}
	t.edits = 0
	return nil
}

// Tx is an open edit of the user database of one directory (normally
// /etc). Nothing is written before Commit.
type Tx struct {
	dir                          string
	passwd, group, shadow, gshad *table
	lock                         *os.File
	sysMin, sysMax               uint32
	days                         int64 // today, in days since 1970, for shadow's lastchg
}

// Begin locks the database in dir with lckpwdf's lock and reads it. Close
// (or Commit) releases the lock.
func Begin(dir string) (*Tx, error) {
	lock, err := lockDB(dir)
	if err != nil {
		return nil, err
	}
	tx := &Tx{dir: dir, lock: lock, sysMin: 100, sysMax: 999, days: time.Now().Unix() / 86400}
	ok := false
	defer func() {
		if !ok {
			tx.Close()
		}
	}()
	if tx.passwd, err = readTable(filepath.Join(dir, "passwd"), 0o644); err != nil {
		return nil, err
	}
	if !tx.passwd.exists {
		return nil, fmt.Errorf("%s does not exist: not a user database directory", tx.passwd.path)
	}
	if tx.group, err = readTable(filepath.Join(dir, "group"), 0o644); err != nil {
		return nil, err
	}
	if tx.shadow, err = readTable(filepath.Join(dir, "shadow"), 0o640); err != nil {
		return nil, err
	}
	if tx.gshad, err = readTable(filepath.Join(dir, "gshadow"), 0o640); err != nil {
		return nil, err
	}
	tx.readLoginDefs()
	ok = true
	return tx, nil
}

// lockDB takes the lock lckpwdf(3) takes (and shadow-utils with it): a
// write lock on <dir>/.pwd.lock.
func lockDB(dir string) (*os.File, error) {
	p := filepath.Join(dir, ".pwd.lock")
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("locking the user database: %w", err)
	}
	deadline := time.Now().Add(LockTimeout)
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0}
	for {
		err := unix.FcntlFlock(f.Fd(), unix.F_SETLK, &lk)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EACCES) {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", p, err)
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("%w: %s is held by another program (useradd, vipw…) for more than %s; retry when it is done", ErrLocked, p, LockTimeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// readLoginDefs takes the system id range from login.defs, as useradd -r.
func (tx *Tx) readLoginDefs() {
	b, err := os.ReadFile(filepath.Join(tx.dir, "login.defs"))
	if err != nil {
		return
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) != 2 {
			continue
		}
		v, err := strconv.ParseUint(f[1], 10, 32)
		if err != nil {
			continue
		}
		switch f[0] {
		case "SYS_UID_MIN":
			tx.sysMin = max(tx.sysMin, uint32(v))
		case "SYS_UID_MAX":
			tx.sysMax = uint32(v)
		}
	}
}

// Close releases the lock without writing anything.
func (tx *Tx) Close() error {
	if tx.lock == nil {
		return nil
	}
	err := tx.lock.Close() // closing the descriptor drops the fcntl lock
	tx.lock = nil
	return err
}

// Changed says whether Commit would write anything.
func (tx *Tx) Changed() bool {
	return tx.edits() > 0
}

func (tx *Tx) edits() int {
	return tx.passwd.edits + tx.group.edits + tx.shadow.edits + tx.gshad.edits
}

// Commit writes the changed files (group files first, so that a crash in
// between never leaves a user whose primary group is missing) and unlocks.
func (tx *Tx) Commit() error {
	defer tx.Close()
	for _, t := range []*table{tx.group, tx.gshad, tx.passwd, tx.shadow} {
		// A missing shadow file stays missing: the system does not use it.
		if !t.exists && t != tx.passwd && t != tx.group {
			continue
		}
		if err := t.write(); err != nil {
			return err
		}
	}
	return nil
}

// LookupUser returns the user called name.
func (tx *Tx) LookupUser(name string) (User, bool) {
	i := tx.passwd.find(name)
	if i < 0 {
		return User{}, false
	}
	f := tx.passwd.fields(i)
	if len(f) < 7 {
		return User{}, false
	}
	uid, err1 := strconv.ParseUint(f[2], 10, 32)
	gid, err2 := strconv.ParseUint(f[3], 10, 32)
	if err1 != nil || err2 != nil {
		return User{}, false
	}
	u := User{Name: name, Uid: uint32(uid), Gid: uint32(gid), Home: f[5], Shell: f[6]}
	for _, l := range tx.group.lines {
		g := strings.Split(l, ":")
		if len(g) >= 4 && slices.Contains(strings.Split(g[3], ","), name) {
			u.Groups = append(u.Groups, g[0])
		}
	}
	return u, true
}

// LookupGroup returns the gid of group name.
func (tx *Tx) LookupGroup(name string) (uint32, bool) {
	i := tx.group.find(name)
	if i < 0 {
		return 0, false
	}
	f := tx.group.fields(i)
	if len(f) < 3 {
		return 0, false
	}
	gid, err := strconv.ParseUint(f[2], 10, 32)
	return uint32(gid), err == nil
}

func usedIDs(t *table) map[uint32]bool {
	used := map[uint32]bool{}
	for _, l := range t.lines {
		f := strings.Split(l, ":")
		if len(f) >= 3 {
			if id, err := strconv.ParseUint(f[2], 10, 32); err == nil {
				used[uint32(id)] = true
			}
		}
	}
	return used
}

// freeID picks the highest id of the system range free in every given set,
// counting down like useradd -r.
func (tx *Tx) freeID(sets ...map[uint32]bool) (uint32, bool) {
	for id := tx.sysMax; id >= tx.sysMin && id > 0; id-- {
		free := true
		for _, s := range sets {
			if s[id] {
				free = false
				break
			}
		}
		if free {
			return id, true
		}
	}
	return 0, false
}

// EnsureGroup creates group name if it does not exist, preferring gid
// prefer when it is free (0: any free system gid).
func (tx *Tx) EnsureGroup(name string, prefer uint32) (gid uint32, created bool, err error) {
	if gid, ok := tx.LookupGroup(name); ok {
		return gid, false, nil
	}
	used := usedIDs(tx.group)
	if prefer == 0 || used[prefer] {
		var ok bool
		if prefer, ok = tx.freeID(used); !ok {
			return 0, false, fmt.Errorf("%w: creating group %s: every gid of %d–%d is taken (SYS_UID_MIN/MAX in %s)", ErrNoFreeID, name, tx.sysMin, tx.sysMax, filepath.Join(tx.dir, "login.defs"))
		}
	}
	tx.group.add([]string{name, "x", strconv.FormatUint(uint64(prefer), 10), ""})
	if tx.gshad.exists {
		tx.gshad.remove(name)
		tx.gshad.add([]string{name, "!", "", ""})
	}
	return prefer, true, nil
}

// EnsureUser makes user sp.Name exist with its own group (same name), home,
// shell, supplementary groups and a locked password. It creates what is
// missing and corrects what differs; changed says whether anything did.
func (tx *Tx) EnsureUser(sp Spec) (u User, changed bool, err error) {
	if sp.Shell == "" {
		sp.Shell = "/bin/sh"
	}
	for _, g := range sp.Groups {
		if _, ok := tx.LookupGroup(g); !ok {
			return User{}, false, fmt.Errorf("user %s: supplementary group %s does not exist (create it first)", sp.Name, g)
		}
	}
	before := tx.edits()
	defer func() { changed = err == nil && tx.edits() > before }()
	cur, exists := tx.LookupUser(sp.Name)
	var uid uint32
	if exists {
		uid = cur.Uid
	} else {
		var ok bool
		if uid, ok = tx.freeID(usedIDs(tx.passwd), usedIDs(tx.group)); !ok {
			if uid, ok = tx.freeID(usedIDs(tx.passwd)); !ok {
				return User{}, false, fmt.Errorf("%w: creating user %s: every uid of %d–%d is taken (SYS_UID_MIN/MAX in %s)", ErrNoFreeID, sp.Name, tx.sysMin, tx.sysMax, filepath.Join(tx.dir, "login.defs"))
			}
		}
	}
	gid, _, err := tx.EnsureGroup(sp.Name, uid)
	if err != nil {
		return User{}, false, err
	}
	entry := []string{sp.Name, "x", strconv.FormatUint(uint64(uid), 10), strconv.FormatUint(uint64(gid), 10), "slapnode partition user", sp.Home, sp.Shell}
	if i := tx.passwd.find(sp.Name); i >= 0 {
		f := tx.passwd.fields(i)
		if len(f) == 7 {
			entry[4] = f[4] // keep a GECOS someone set
		}
		tx.passwd.set(i, entry)
	} else {
		tx.passwd.add(entry)
	}
	if tx.shadow.exists {
		if i := tx.shadow.find(sp.Name); i >= 0 {
			f := tx.shadow.fields(i)
			// Lock the password the way passwd -l does: a leading '!'.
			if len(f) >= 2 && !strings.HasPrefix(f[1], "!") {
				f[1] = "!" + f[1]
				tx.shadow.set(i, f)
			}
		} else {
			tx.shadow.add([]string{sp.Name, "!", strconv.FormatInt(tx.days, 10), "0", "99999", "7", "", "", ""})
		}
	}
	for _, g := range sp.Groups {
		tx.addMember(g, sp.Name)
	}
	u, _ = tx.LookupUser(sp.Name)
	return u, false, nil
}

// addMember adds user to the member list of group (and of its gshadow
// entry).
func (tx *Tx) addMember(group, user string) {
	for _, t := range []*table{tx.group, tx.gshad} {
		i := t.find(group)
		if i < 0 {
			continue
		}
		f := t.fields(i)
		if len(f) < 4 {
			continue
		}
		members := splitList(f[3])
		if !slices.Contains(members, user) {
			f[3] = strings.Join(append(members, user), ",")
			t.set(i, f)
		}
	}
}

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// RemoveUser deletes user name from passwd and shadow and from every
// group's member list. Its own group is left to RemoveGroup. It reports
// whether the user existed.
func (tx *Tx) RemoveUser(name string) bool {
	found := tx.passwd.remove(name)
	tx.shadow.remove(name)
	for _, t := range []*table{tx.group, tx.gshad} {
		for i := range t.lines {
			f := t.fields(i)
			if len(f) < 4 {
				continue
			}
			members := splitList(f[3])
			if j := slices.Index(members, name); j >= 0 {
				f[3] = strings.Join(slices.Delete(members, j, j+1), ",")
				t.set(i, f)
			}
		}
	}
	return found
}

// RemoveGroup deletes group name; it refuses while a user has it as
// primary group.
func (tx *Tx) RemoveGroup(name string) (bool, error) {
	gid, ok := tx.LookupGroup(name)
	if !ok {
		return false, nil
	}
	for _, l := range tx.passwd.lines {
		f := strings.Split(l, ":")
		if len(f) >= 4 && f[3] == strconv.FormatUint(uint64(gid), 10) {
			return false, fmt.Errorf("group %s is the primary group of user %s: remove the user first", name, f[0])
		}
	}
	tx.group.remove(name)
	tx.gshad.remove(name)
	return true, nil
}

// Names lists the users whose name starts with prefix (to sweep leftovers).
func (tx *Tx) Names(prefix string) (users, groups []string) {
	for _, l := range tx.passwd.lines {
		if n, _, ok := strings.Cut(l, ":"); ok && strings.HasPrefix(n, prefix) {
			users = append(users, n)
		}
	}
	for _, l := range tx.group.lines {
		if n, _, ok := strings.Cut(l, ":"); ok && strings.HasPrefix(n, prefix) {
			groups = append(groups, n)
		}
	}
	return users, groups
}
