package schema

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v5"

	"github.com/slapnode/slapnode/internal/testcorpus"
)

// corpusDir is shared/corpus/schema beside the repository (or a skip).
func corpusDir(t testing.TB) string {
	t.Helper()
	return testcorpus.Dir(t, "schema")
}

func corpusDescriptors(t testing.TB) []string {
	root := corpusDir(t)
	var out []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if !d.IsDir() && strings.HasPrefix(name, "software") && strings.HasSuffix(name, ".cfg.json") {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatalf("no software*.cfg.json under %s", root)
	}
	return out
}

// TestCorpusDescriptors loads every descriptor of the corpus and compiles
// every request and response schema it names.
func TestCorpusDescriptors(t *testing.T) {
	types := 0
	for _, path := range corpusDescriptors(t) {
		d, err := LoadDescriptor(path)
		if err != nil {
			t.Errorf("LoadDescriptor(%s): %v", path, err)
			continue
		}
		if d.Name == "" {
			t.Errorf("%s: no name", path)
		}
		for _, st := range d.List() {
			types++
			if _, err := d.Validator(st.TypeName(), st.Shared, Options{}); err != nil {
				t.Errorf("%s: %v", path, err)
			}
			if _, err := d.ResponseValidator(st.TypeName(), st.Shared, Options{}); err != nil {
				t.Errorf("%s: %v", path, err)
			}
		}
	}
	if types < 20 {
		t.Errorf("only %d software types found in the corpus", types)
	}
}

// TestCorpusSchemasCompile compiles every JSON file of the corpus that is a
// schema (not a descriptor), including those only reached through $ref.
func TestCorpusSchemasCompile(t *testing.T) {
	root := corpusDir(t)
	n := 0
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".json") || strings.HasSuffix(p, ".cfg.json") {
			return err
		}
		n++
		if _, err := Compile(p, Options{}); err != nil {
			t.Errorf("Compile(%s): %v", p, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 50 {
		t.Errorf("only %d schema files in the corpus", n)
	}
}

// TestCorpusExamples validates every "examples" value of the corpus
// schemas against the subschema that declares it (the corpus has no
// separate example parameter files), and checks that an empty request
// gets the defaults of every software type whose schema requires nothing.
func TestCorpusExamples(t *testing.T) {
	checked := 0
	for _, path := range corpusDescriptors(t) {
		d, err := LoadDescriptor(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range d.List() {
			v, err := d.Validator(st.TypeName(), st.Shared, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if v.Schema() == nil {
				continue
			}
			walkSchemas(v.Schema(), func(s *jsonschema.Schema) {
				for i, ex := range s.Examples {
					checked++
					err := s.Validate(ex)
					if reason, bad := knownBadExample(s.Location, i); bad {
						if err == nil {
							t.Errorf("%s: example %d of %s was known invalid (%s) but now validates: update knownBadExamples", path, i, s.Location, reason)
						}
						continue
					}
					if err != nil {
						t.Errorf("%s: example %d of %s does not validate: %v", path, i, s.Location, err)
					}
				}
			})
			res, err := v.Validate(map[string]any{})
			if err != nil {
				var ve *ValidationError
				if !errors.As(err, &ve) {
					t.Errorf("%s type %s: %v", path, st.TypeName(), err)
					continue
				}
				for _, viol := range ve.Violations {
					if viol.Keyword != "required" {
						t.Errorf("%s type %s: empty parameters: unexpected violation %s", path, st.TypeName(), viol.Message)
					}
				}
				continue
			}
			b, err := json.Marshal(res.Params)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Defaults) > 0 && string(b) == "{}" {
				t.Errorf("%s type %s: defaults %v reported but params empty", path, st.TypeName(), res.Defaults)
			}
		}
	}
	if checked == 0 {
		t.Error("no examples found in the corpus")
	}
}

// knownBadExamples are examples of the upstream corpus that contradict
// their own schema; they must keep failing so that the list stays true.
var knownBadExamples = map[string]string{
	"grafana/instance-agent-input-schema.json#/properties/applications/items/oneOf/0/properties/partitions/items 2": "the Theia example lacks the required \"reference\"",
}

func knownBadExample(loc string, i int) (string, bool) {
	for k, reason := range knownBadExamples {
		if strings.HasSuffix(loc+" "+strconv.Itoa(i), k) {
			return reason, true
		}
	}
	return "", false
}
