package buildout_test

import (
	"fmt"

	"github.com/slapnode/slapnode/hcl/buildout"
)

func ExampleConvertFile() {
	src := []byte(`[buildout]
parts = dirs

[dirs]
recipe = slapos.cookbook:mkdirectory
etc = ${buildout:directory}/etc
log = ${:etc}/log
`)
	r, err := buildout.ConvertFile("software.cfg", src, buildout.ConvertOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Print(string(r.HCL))
	// Output:
	// # Converted from software.cfg by slapnode convert (software profile).
	// parts = ["dirs"]
	//
	// part "dirs" {
	//   recipe = "cookbook:mkdirectory"
	//   etc    = "${software.path}/etc"
	//   log    = "${self.etc}/log"
	// }
}
