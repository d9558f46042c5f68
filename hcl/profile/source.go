package profile

import (
	"path/filepath"

	"github.com/hashicorp/hcl/v2"
)

// LoadSource loads a profile whose root file is given in memory, as if it
// were at path: relative paths (extends, file functions, the profile
// directory) resolve against path's directory, and diagnostics name path.
// It is how a profile converted on the fly (a buildout .cfg release applied
// as it is) is loaded without writing the conversion anywhere.
func LoadSource(path string, src []byte, kind Kind) (*Profile, hcl.Diagnostics) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid profile path", Detail: err.Error()}}
	}
	return load(abs, kind, map[string][]byte{abs: src}, LoadOptions{})
}
