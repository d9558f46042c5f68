# custom-recipe-go: a software release that uses a recipe written in Go
# (recipes-wasm/examples/hello-go, with the SDK in recipes-wasm/sdk/go).
# `make wasm` compiles it to hello.wasm next to this file; the module block
# below loads it from there (a relative source is relative to the profile).
#
#   make wasm && slapnode apply examples/custom-recipe-go/software.hcl
#   slapnode apply examples/custom-recipe-go/software.hcl --param name="Alice"
software "hello-go" {
  version     = "1.0.0"
  description = "A greeting, written by a recipe in Go."
}

# The recipe only writes files inside its grants: no exec, no network, so the
# module block grants nothing beyond the defaults. Go guests need a few MiB
# of memory more than C ones (at least 64 pages).
module "hello" {
  source  = "hello.wasm"
  memory  = "64MiB"
  timeout = "30s"
}

part "share" {
  recipe = "cookbook:mkdirectory"
  share  = "${software.path}/share"
  mode   = "0755"
}

# Outputs: part.about.location, part.about.greeting.
part "about" {
  recipe = "hello:greet"
  output = "${part.share.share}/greeting"
  name   = software.name
}

instance "default" {
  title       = "Greeting"
  description = "Writes etc/greeting in the partition and checks it stays there."
  profile     = "instance.hcl"
  parameters  = "schema/instance-input.json"
  connection  = "schema/instance-output.json"
}
