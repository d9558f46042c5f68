package recipetest

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
)

// The exec environment rule of slapnode's host (docs/wasm-abi.md §6), so
// that a recipe test fails where the node would refuse the command. The
// lists are the host's (runtime/wasmhost/execenv.go); a test of the host,
// TestRecipetestEnvRuleInSync, reads this file and fails when they differ.

// defaultEnv are the names any module may pass; an entry ending in * is a
// prefix.
var defaultEnv = []string{
	"CC", "CXX", "CPP", "CFLAGS", "CXXFLAGS", "CPPFLAGS", "LDFLAGS", "LDLIBS",
	"PKG_CONFIG_PATH", "MAKEFLAGS", "SOURCE_DATE_EPOCH",
	"LANG", "LANGUAGE", "LC_*", "TZ", "HOME", "TMPDIR",
	"location", "SLAPNODE_*",
}

// pathEnv are default variables whose value must be a directory inside
// the call's mounts.
var pathEnv = map[string]bool{"HOME": true, "TMPDIR": true}

// hookEnv are variables that make a program load or run code: only an
// exact allow_env entry grants one.
var hookEnv = []string{
	"LD_*", "DYLD_*", "GCONV_*", "GETCONF_DIR", "GLIBC_TUNABLES", "HOSTALIASES", "LOCALDOMAIN", "LOCPATH",
	"MALLOC_*", "NIS_PATH", "NLSPATH", "RESOLV_HOST_CONF", "RES_OPTIONS", "TZDIR", "GMON_OUT_PREFIX",
	"TERMINFO", "TERMINFO_DIRS",
	"BASH_*", "ENV", "SHELLOPTS", "BASHOPTS", "PS4", "PROMPT_COMMAND", "IFS", "CDPATH", "SHELL",
	"PYTHON*", "PERL*", "RUBY*", "GEM_*", "NODE_*", "NPM_CONFIG_*", "npm_config_*", "LUA_*", "TCLLIBPATH",
	"JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "JDK_JAVA_OPTIONS", "CLASSPATH",
	"GCC_EXEC_PREFIX", "COMPILER_PATH", "CCC_OVERRIDE_OPTIONS", "GOFLAGS", "RUSTC_WRAPPER", "RUSTC",
	"OPENSSL_CONF", "OPENSSL_ENGINES", "OPENSSL_MODULES",
	"GIT_*", "PAGER", "EDITOR", "VISUAL", "BROWSER",
}

// switchEnv are hook-family variables any module may pass with a boolean
// value.
var switchEnv = map[string]bool{"GIT_TERMINAL_PROMPT": true, "PYTHONDONTWRITEBYTECODE": true, "PYTHONUNBUFFERED": true}

func matches(pattern, name string) bool {
	if p, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(name, p)
	}
	return name == pattern
}

func matchesAny(list []string, name string) bool {
	return slices.ContainsFunc(list, func(p string) bool { return matches(p, name) })
}

func validEnvName(s string) bool {
	for i, r := range s {
		switch {
		case r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z'):
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return s != ""
}

func isSwitchValue(v string) bool {
	switch strings.ToLower(v) {
	case "0", "1", "true", "false", "yes", "no":
		return true
	}
	return false
}

// checkEnv is the host's decision on passing name=value to a command: ""
// when it may, else why not (the host's wording).
func (h *Host) checkEnv(name, value string) string {
	switch {
	case !validEnvName(name):
		return fmt.Sprintf("environment variable %q is not a valid name (letters, digits and _, not starting with a digit)", name)
	case strings.ContainsRune(value, 0):
		return fmt.Sprintf("environment variable %s contains a NUL byte", name)
	case name == "PATH":
		return "PATH is set by the host (the directories granted commands are looked up in); a command that needs another PATH runs through a granted sh (docs/wasm-abi.md §6)"
	}
	if switchEnv[name] && isSwitchValue(value) {
		return ""
	}
	if matchesAny(hookEnv, name) {
		if slices.Contains(h.AllowEnv, name) {
			return ""
		}
		return fmt.Sprintf("environment variable %s is not granted: it makes a command load or run code of the caller's choosing, so only allow_env = [%q] in its module block grants it, and that grants as much as an interpreter (docs/wasm-abi.md §6)", name, name)
	}
	if matchesAny(defaultEnv, name) {
		if pathEnv[name] && h.Mounts != nil && (!filepath.IsAbs(value) || !within(h.Mounts, value)) {
			return fmt.Sprintf("environment variable %s=%q is not inside a directory granted to this call", name, value)
		}
		return ""
	}
	// allow_env patterns never grant a hook (handled above).
	if matchesAny(h.AllowEnv, name) {
		return ""
	}
	return fmt.Sprintf("environment variable %s is not granted: add it to allow_env in its module block (docs/wasm-abi.md §6)", name)
}

// within reports whether p is one of dirs or below it, lexically.
func within(dirs []string, p string) bool {
	for _, d := range dirs {
		rel, err := filepath.Rel(filepath.Clean(d), filepath.Clean(p))
		if err == nil && filepath.IsLocal(rel) {
			return true
		}
	}
	return false
}
