package buildout

import "github.com/slapnode/slapnode/hcl/profile"

// MangleName turns a buildout section or option name into an HCL
// identifier with the reversible encoding of docs/profiles.md §1.7
// (profile.EncodeName): ASCII letters, digits, `_` and `-` are kept; every
// other byte becomes `__XX` (lowercase hex); a leading digit or `-` is
// encoded the same way; a literal `__` is written `__5f5f` so that `__`
// always starts an escape.
func MangleName(name string) string { return profile.EncodeName(name) }

// UnmangleName reverses MangleName (profile.DecodeName). It fails on text
// MangleName cannot produce, so a hand-written name is never decoded to
// something else silently.
func UnmangleName(id string) (string, error) { return profile.DecodeName(id) }

// IsIdentifier reports whether name can be written as an HCL identifier
// as is (and is left unchanged by MangleName).
func IsIdentifier(name string) bool { return name != "" && MangleName(name) == name }
