package schema_test

import (
	"errors"
	"fmt"
	"strings"

	"github.com/slapnode/slapnode/schema"
)

func ExampleValidator_Validate() {
	v, err := schema.CompileJSON("instance-input-schema.json", []byte(`{
		"$schema": "https://json-schema.org/draft/2020-12/schema",
		"type": "object",
		"properties": {
			"nbd-port": {"type": "integer", "minimum": 1, "default": 10809},
			"nbd-host": {"type": "string"}
		},
		"additionalProperties": false
	}`), schema.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	params, _ := schema.ParseKeyValues([]string{"nbd-port:=0", "nbd-hots=[::1]"})
	_, err = v.Validate(params)
	var ve *schema.ValidationError
	if errors.As(err, &ve) {
		for _, vi := range ve.Violations {
			fmt.Printf("%s  [%s]\n", vi.Message, vi.Keyword)
		}
	}

	res, err := v.Validate(map[string]any{"nbd-host": "[::1]"})
	fmt.Println(res.Params["nbd-port"], res.Defaults, err)
	// Output:
	// /nbd-hots: is not a parameter of this schema; did you mean "nbd-host"?  [additionalProperties]
	// /nbd-port: must be >= 1 but is 0  [minimum]
	// 10809 [/nbd-port] <nil>
}

func ExampleParseInstanceXML() {
	params, serialisation, err := schema.ParseInstanceXML(strings.NewReader(
		`<instance><parameter id="_">{"ram-size": 4096}</parameter></instance>`))
	fmt.Println(params, serialisation, err)
	// Output: map[ram-size:4096] json-in-xml <nil>
}
