package recipe

import (
	"fmt"
	"os"
	"sort"
	"strconv"
)

// chmodRequest is the request of slapnode.chmod, as Chmod writes it.
type chmodRequest struct {
	Path string `json:"path"`
	Mode uint32 `json:"mode"`
}

// Chmod sets the permission bits of paths to mode.
//
// WASI preview 1 has no chmod (os.Chmod does nothing there, and the files a
// guest creates get mode 0600, directories 0700), so the host does it:
// slapnode.chmod, inside the recipe's writable directories only, needs no
// grant. The setuid, setgid and sticky bits are refused.
func (c Context) Chmod(mode os.FileMode, paths ...string) error {
	if mode&(os.ModeSetuid|os.ModeSetgid|os.ModeSticky) != 0 {
		return fmt.Errorf("mode %v: recipes may only set permission bits (0777)", mode)
	}
	for _, p := range paths {
		// Written and read without encoding/json: a template part sets
		// a mode on every file it writes
		// (docs/adr/0014-guest-json-without-reflection.md).
		req := append(appendString(append(make([]byte, 0, 32+len(p)), `{"path":`...), p), `,"mode":`...)
		req = append(strconv.AppendUint(req, uint64(mode.Perm()), 10), '}')
		raw, err := c.callRaw("chmod", platformChmod, req)
		if err == nil {
			var msg string
			if msg, err = decodeHostError(raw); err != nil {
				err = fmt.Errorf("host function chmod answered malformed JSON (%v): %.200s", err, raw)
			} else if msg != "" {
				return fmt.Errorf("setting mode %04o on %s: %s", mode.Perm(), p, msg)
			}
		}
		if err != nil {
			return fmt.Errorf("setting mode %04o on %s: %w", mode.Perm(), p, err)
		}
	}
	return nil
}

// ChmodGroups applies Chmod to each mode's paths, in a stable order.
func (c Context) ChmodGroups(groups map[os.FileMode][]string) error {
	modes := make([]os.FileMode, 0, len(groups))
	for m := range groups {
		modes = append(modes, m)
	}
	sort.Slice(modes, func(i, j int) bool { return modes[i] < modes[j] })
	for _, m := range modes {
		if err := c.Chmod(m, groups[m]...); err != nil {
			return err
		}
	}
	return nil
}
