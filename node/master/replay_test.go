package master

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/slapnode/slapnode/node/slap/slaptest"
)

// captureComputer is the computer_id slapproxy was configured with in the
// capture (the client's computer, COMP-PEER, registered itself).
const captureComputer = "local_computer"

func openTest(t testing.TB, opts Options) *Master {
	t.Helper()
	if opts.DefaultComputer == "" {
		opts.DefaultComputer = captureComputer
	}
	m, err := Open(filepath.Join(t.TempDir(), "master.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// timestamps renames every timestamp of a stream of answers to its rank of
// first appearance, so that two runs compare equal exactly when their
// timestamps changed at the same moments and were shared by the same
// partitions.
type timestamps struct {
	seen map[string]string
}

var timestampRe = regexp.MustCompile(`<string>timestamp</string><string>([0-9]+\.[0-9]+)</string>`)

func (n *timestamps) normalise(body string) string {
	if n.seen == nil {
		n.seen = map[string]string{}
	}
	return timestampRe.ReplaceAllStringFunc(body, func(s string) string {
		v := timestampRe.FindStringSubmatch(s)[1]
		id, ok := n.seen[v]
		if !ok {
			id = "T" + strconv.Itoa(len(n.seen)+1)
			n.seen[v] = id
		}
		return "<string>timestamp</string><string>" + id + "</string>"
	})
}

func sampleRequest(s slaptest.Sample) *http.Request {
	target := s.Path
	if len(s.Query) > 0 {
		q := url.Values{}
		for k, v := range s.Query {
			q.Set(k, v)
		}
		target += "?" + q.Encode()
	}
	var r *http.Request
	if s.Method == http.MethodPost {
		r = httptest.NewRequest(s.Method, target, strings.NewReader(s.RequestBodyRaw))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		r = httptest.NewRequest(s.Method, target, nil)
	}
	r.Header.Set("User-Agent", "slapos.core/1.24.0")
	return r
}

// deviations are the answers slapnode's master gives on purpose
// differently from slapproxy: slapproxy answers an unknown partition with
// Flask's bare 500; slapnode says what is unknown, with a 404.
var deviations = map[int]func(t *testing.T, rec *httptest.ResponseRecorder){
	63: func(t *testing.T, rec *httptest.ResponseRecorder) {
		if rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), "<p>unknown partition &#34;slappart99&#34; on computer &#34;COMP-PEER&#34;</p>") {
			t.Errorf("#63: got %d %q, want a 404 naming the partition", rec.Code, rec.Body.String())
		}
	},
}

// TestReplaySamples replays every captured exchange against the master and
// compares each answer with slapproxy's byte for byte (timestamps renamed
// by rank, since their values depend on the clock).
func TestReplaySamples(t *testing.T) {
	samples, err := slaptest.Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(samples) != 66 {
		t.Fatalf("%d samples, want 66", len(samples))
	}
	m := openTest(t, Options{})
	h := m.Handler()
	var want, got timestamps
	compared := 0
	for _, s := range samples {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, sampleRequest(s))
		where := fmt.Sprintf("#%d %s %s (%s)", s.Seq, s.Method, s.Path, s.Step)
		if d, ok := deviations[s.Seq]; ok {
			d(t, rec)
			continue
		}
		if rec.Code != s.Status {
			t.Errorf("%s: status %d, want %d; body %q", where, rec.Code, s.Status, rec.Body.String())
			continue
		}
		for _, h := range []string{"Content-Type", "Content-Length"} {
			if g, w := rec.Header().Get(h), s.ResponseHeaders[h]; g != w && !timestampRe.MatchString(s.ResponseBody) {
				t.Errorf("%s: %s %q, want %q", where, h, g, w)
			}
		}
		compared++
		w, g := want.normalise(s.ResponseBody), got.normalise(rec.Body.String())
		if g != w {
			t.Errorf("%s: answer differs\n got %s\nwant %s", where, g, w)
		}
	}
	if compared != len(samples)-len(deviations) {
		t.Errorf("compared %d answers, want %d", compared, len(samples)-len(deviations))
	}
	t.Logf("%d answers identical to slapproxy's, %d distinct timestamps", compared, len(got.seen))
	if len(want.seen) != len(got.seen) || len(want.seen) < 10 {
		t.Errorf("slapproxy used %d distinct timestamps, slapnode %d", len(want.seen), len(got.seen))
	}
}
