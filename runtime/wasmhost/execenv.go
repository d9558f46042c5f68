package wasmhost

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
)

// The environment of a granted command (docs/wasm-abi.md §6).
//
// A variable reaches the command only when its name is in defaultEnv or
// granted by the module's allow_env, and never when it is a loader or
// interpreter hook (hookEnv) unless allow_env names it exactly: such a
// variable makes even `true` run code of the guest's choosing
// (LD_PRELOAD=<a file the guest wrote>), so granting one is granting an
// interpreter. PATH is the host's: the guest cannot set it.

// defaultEnv are the names any module may pass: what builds read
// (compilers, flags, pkg-config, make, locale, time zone, scratch and home
// directories) and the variables the cookbook's build recipes set.
// An entry ending in * is a prefix.
var defaultEnv = []string{
	"CC", "CXX", "CPP", "CFLAGS", "CXXFLAGS", "CPPFLAGS", "LDFLAGS", "LDLIBS",
	"PKG_CONFIG_PATH", "MAKEFLAGS", "SOURCE_DATE_EPOCH",
	"LANG", "LANGUAGE", "LC_*", "TZ", "HOME", "TMPDIR",
	"location", "SLAPNODE_*",
}

// pathEnv are default variables whose value is a directory the command
// writes or reads its configuration from: they must lie inside the call's
// mounts, as the command's dir must.
var pathEnv = map[string]bool{"HOME": true, "TMPDIR": true}

// hookEnv are variables that make a program load or run code named by
// their value, or change how a shell parses its input: the dynamic loader
// (LD_*, GCONV_PATH, LOCPATH, NLSPATH, HOSTALIASES, RESOLV_HOST_CONF,
// MALLOC_*, GLIBC_TUNABLES), shells (BASH_ENV, ENV, BASH_FUNC_*,
// SHELLOPTS, PS4, IFS, …), interpreters (PYTHON*, PERL*, RUBY*, NODE_*,
// LUA_*, JAVA_TOOL_OPTIONS, …), compiler drivers (GCC_EXEC_PREFIX,
// COMPILER_PATH, CCC_OVERRIDE_OPTIONS) and programs that name programs to
// run (GIT_*, PAGER, EDITOR, …). An entry ending in * is a prefix.
var hookEnv = []string{
	// glibc's list of variables unsafe for setuid programs (but TMPDIR,
	// which is checked like HOME), and the loader's other hooks.
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

// switchEnv are variables of a hook family that only switch a behaviour
// on or off: any module may pass them with a boolean value (git's prompt
// for credentials, which a build must never wait on; Python's bytecode
// files and buffering).
var switchEnv = map[string]bool{"GIT_TERMINAL_PROMPT": true, "PYTHONDONTWRITEBYTECODE": true, "PYTHONUNBUFFERED": true}

func isSwitchValue(v string) bool {
	switch strings.ToLower(v) {
	case "0", "1", "true", "false", "yes", "no":
		return true
	}
	return false
}

// envPattern is one allow_env (or defaultEnv) entry.
type envPattern struct {
	name   string // the name, or the prefix of a pattern
	prefix bool
}

func parseEnvPattern(s string) (envPattern, error) {
	name, prefix := strings.CutSuffix(s, "*")
	if name == "" && !prefix {
		return envPattern{}, fmt.Errorf("allow_env entry %q is empty", s)
	}
	if strings.Contains(name, "*") || (name != "" && !validEnvName(name, prefix)) {
		return envPattern{}, fmt.Errorf("allow_env entry %q must be a variable name (letters, digits, _) or a prefix followed by one *, e.g. \"FOO\" or \"BAR_*\"", s)
	}
	p := envPattern{name: name, prefix: prefix}
	if !prefix && name == "PATH" {
		return envPattern{}, fmt.Errorf("allow_env cannot grant PATH: the host sets it (docs/wasm-abi.md §6); a command that needs another PATH runs through a granted sh")
	}
	if prefix && coveredByHooks(p) {
		return envPattern{}, fmt.Errorf("allow_env pattern %q matches only variables that let a command load code, which a pattern never grants: name each one you need, e.g. %q (docs/wasm-abi.md §6)", s, exampleHook(p))
	}
	return p, nil
}

func (p envPattern) matches(name string) bool {
	if p.prefix {
		return strings.HasPrefix(name, p.name)
	}
	return name == p.name
}

// validEnvName: a shell variable name. A prefix may be empty or end
// anywhere, but starts like a name.
func validEnvName(s string, prefix bool) bool {
	for i, r := range s {
		switch {
		case r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z'):
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return s != "" || prefix
}

var (
	defaultEnvPatterns = mustPatterns(defaultEnv)
	hookEnvPatterns    = mustPatterns(hookEnv)
)

func mustPatterns(list []string) []envPattern {
	out := make([]envPattern, len(list))
	for i, s := range list {
		name, prefix := strings.CutSuffix(s, "*")
		out[i] = envPattern{name: name, prefix: prefix}
	}
	return out
}

func isHook(name string) bool {
	return slices.ContainsFunc(hookEnvPatterns, func(p envPattern) bool { return p.matches(name) })
}

// coveredByHooks reports whether every name a prefix pattern matches is a
// hook (the pattern lies inside a hook prefix).
func coveredByHooks(p envPattern) bool {
	return slices.ContainsFunc(hookEnvPatterns, func(h envPattern) bool { return h.prefix && strings.HasPrefix(p.name, h.name) })
}

func exampleHook(p envPattern) string {
	for _, n := range []string{"LD_LIBRARY_PATH", "PYTHONPATH", "PERL5LIB", "NODE_PATH", "GIT_DIR"} {
		if p.matches(n) {
			return n
		}
	}
	return p.name + "NAME"
}

// checkEnv decides whether a module may pass variable name=value to a
// command. It returns "" when it may, else why not.
func (s *Session) checkEnv(m *Module, name, value string) string {
	where := fmt.Sprintf("module %q", m.Name)
	switch {
	case !validEnvName(name, false):
		return fmt.Sprintf("environment variable %q is not a valid name (letters, digits and _, not starting with a digit)", name)
	case strings.ContainsRune(value, 0):
		return fmt.Sprintf("environment variable %s contains a NUL byte", name)
	case name == "PATH":
		return "PATH is set by the host (the directories granted commands are looked up in); a command that needs another PATH runs through a granted sh (docs/wasm-abi.md §6)"
	}
	if switchEnv[name] && isSwitchValue(value) {
		return ""
	}
	if isHook(name) {
		// Only an exact grant: a pattern never lets a hook through.
		if slices.Contains(m.Grants.Env, name) {
			return ""
		}
		return fmt.Sprintf("environment variable %s is not granted to %s: it makes a command load or run code of the caller's choosing, so only allow_env = [%q] in its module block grants it, and that grants as much as an interpreter (docs/wasm-abi.md §6)", name, where, name)
	}
	if slices.ContainsFunc(defaultEnvPatterns, func(p envPattern) bool { return p.matches(name) }) {
		if pathEnv[name] && (!filepath.IsAbs(value) || !s.inMounts(value)) {
			return fmt.Sprintf("environment variable %s=%q is not inside a directory granted to this call", name, value)
		}
		return ""
	}
	if slices.ContainsFunc(m.env, func(p envPattern) bool { return p.matches(name) }) {
		return ""
	}
	return fmt.Sprintf("environment variable %s is not granted to %s: add it to allow_env in its module block (docs/wasm-abi.md §6)", name, where)
}

// resolveCommand finds the executable of argv[0]: a granted command name
// looked up in the host's PATH directories, a granted absolute path, or an
// absolute path that is where a granted name resolves. The guest never
// chooses where a command comes from.
func (h *Host) resolveCommand(m *Module, name string) (string, error) {
	notGranted := fmt.Errorf("exec of %q is not granted to module %q: add it to allow_exec", name, m.Name)
	if !strings.Contains(name, "/") {
		if !slices.Contains(m.Grants.Exec, name) {
			return "", notGranted
		}
		return h.lookPath(name)
	}
	if !filepath.IsAbs(name) {
		return "", fmt.Errorf("exec of %q: a command given as a path must be absolute and granted (a relative one, such as ./configure, runs through a granted sh)", name)
	}
	clean := filepath.Clean(name)
	for _, g := range m.Grants.Exec {
		if filepath.IsAbs(g) {
			if filepath.Clean(g) == clean {
				return h.lookPath(clean)
			}
			continue
		}
		if p, err := h.lookPath(g); err == nil && p == clean {
			return p, nil
		}
	}
	return "", notGranted
}
