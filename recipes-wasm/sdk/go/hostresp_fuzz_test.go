package recipe

import (
	"encoding/json"
	"testing"
)

// FuzzHostResponses: the answers of slapnode.write_file and slapnode.mkdir
// as the host encodes them (encoding/json) read back as they were, with a
// field the SDK does not know among them; and any bytes at all read
// without a panic.
func FuzzHostResponses(f *testing.F) {
	f.Add("", false, int64(0), "x", []byte(`{}`))
	f.Add("write_file /a: \"quoted\" \u00e9\n", true, int64(3), "", []byte(`{"error":"x","missing_dir":tru`))
	f.Add("\x00\xff", false, int64(1<<40), "later", []byte(`{"created":-1}`))
	f.Fuzz(func(t *testing.T, msg string, flag bool, created int64, extra string, raw []byte) {
		decodeWriteFileResponse(raw)
		decodeMkdirResponse(raw)
		if created < 0 {
			created = -created
		}
		if created < 0 || int64(int(created)) != created {
			return
		}
		b, err := json.Marshal(map[string]any{"error": msg, "missing_dir": flag, "fallback": flag, "created": created, "later": extra})
		if err != nil {
			t.Fatal(err)
		}
		var want struct{ Error string }
		json.Unmarshal(b, &want) // invalid UTF-8 in msg comes back as U+FFFD
		gotMsg, gotMissing, err := decodeWriteFileResponse(b)
		if err != nil || gotMsg != want.Error || gotMissing != flag {
			t.Fatalf("write_file %s: %q %v %v", b, gotMsg, gotMissing, err)
		}
		gotN, gotMsg, gotFallback, err := decodeMkdirResponse(b)
		if err != nil || gotN != int(created) || gotMsg != want.Error || gotFallback != flag {
			t.Fatalf("mkdir %s: %d %q %v %v", b, gotN, gotMsg, gotFallback, err)
		}
	})
}
