// Package instance holds the cookbook's instance-side recipes of
// slapos.cookbook that need nothing from the engine: cron-entry (cron.d),
// free-port (free_port), userinfo, promise-plugin (promise.plugin), and the
// promise executables port-check (check_port_listening), url-check
// (check_url_available) and param-check (check_parameter).
package instance

import (
	recipe "github.com/slapnode/slapnode/recipes-wasm/sdk/go"
)

// Register adds the recipes of this package to g.
func Register(g *recipe.Registry) {
	g.Register("cron-entry", recipe.Recipe{
		Description: "Write one cron entry into a cron.d-style directory (slapos.cookbook:cron.d).",
		Schema: `{"additionalProperties":false,"type":"object","required":["name","command","cron-entries"],"properties":{
			"name":{"type":"string","description":"file name of the entry"},
			"command":{"type":"string","description":"the command line"},
			"cron-entries":{"type":"string","description":"the directory of entries"},
			"frequency":{"type":"string","description":"crontab schedule: MIN HOUR DAY MONTH WEEKDAY"},
			"time":{"type":"string","description":"a systemd.time(7) calendar spec (daily, hourly, Mon *-*-* 02:30…), used when frequency is not set"}
		},"anyOf":[{"required":["frequency"]},{"required":["time"]}]}`,
		Outputs: []string{"location"},
		Install: cronEntry,
	})
	g.Register("free-port", recipe.Recipe{
		Description: "Pick a TCP port nothing listens on, kept across applies (slapos.cookbook:free_port).",
		Schema: `{"additionalProperties":false,"type":"object","properties":{
			"ip":{"type":"string","description":"the address the port is for; not an IP address: port 0"},
			"minimum":{"type":["integer","string"],"description":"first port tried (default 1024)"},
			"maximum":{"type":["integer","string"],"description":"end of the range, excluded (default 49151)"}
		}}`,
		Outputs: []string{"port"},
		Install: freePort,
	})
	g.Register("userinfo", recipe.Recipe{
		Description: "The partition user's name, ids, home and shell (slapos.cookbook:userinfo).",
		Schema:      `{"additionalProperties":false,"type":"object"}`,
		Outputs:     []string{"pw-name", "pw-uid", "pw-gid", "pw-dir", "pw-shell", "gr-name", "gr-gid"},
		Install:     userinfo,
	})
	g.Register("promise-plugin", recipe.Recipe{
		Description: "Write a SlapOS promise plugin file (slapos.cookbook:promise.plugin).",
		Schema: `{"type":"object","required":["output"],"properties":{
			"output":{"type":"string","description":"the plugin file (etc/plugin/NAME.py)"},
			"module":{"type":"string","description":"the Python module providing RunPromise (slapos.promise.plugin.check_…)"},
			"file":{"type":"string","description":"or a Python file providing it"},
			"class":{"type":"string","description":"the class to use instead of RunPromise"},
			"eggs":{"type":["string","array"],"items":{"type":"string"},"description":"the eggs the plugin needs (SlapOS puts their paths on sys.path; see python-path)"},
			"python-path":{"type":["string","array"],"items":{"type":"string"},"description":"directories put on the plugin's sys.path (an egg part's python-path output)"},
			"mode":{"type":["string","integer"],"description":"default 0644"}
		},"oneOf":[{"required":["module"]},{"required":["file"]}]}`,
		Outputs: []string{"location", "output"},
		Install: promisePlugin,
	})
	registerChecks(g)
	registerCA(g)
	g.Register("port-check", recipe.Recipe{
		Description: "Write an executable promise that fails when a TCP port does not listen (slapos.cookbook:check_port_listening).",
		Schema: `{"additionalProperties":false,"type":"object","required":["path","hostname","port"],"properties":{
			"path":{"type":"string","description":"the promise executable (etc/promise/NAME)"},
			"hostname":{"type":"string"},
			"port":{"type":["integer","string"]}
		}}`,
		Outputs: []string{"location"},
		Install: portCheck,
	})
}
