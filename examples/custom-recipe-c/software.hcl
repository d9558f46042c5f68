# custom-recipe-c: a software release that uses a recipe written in C
# (motd.c, with the SDK in recipes-wasm/sdk/c). `make wasm` compiles it to
# motd.wasm next to this file; the module block below loads it from there
# (a relative source is relative to the profile).
#
#   make wasm && slapnode apply examples/custom-recipe-c/software.hcl
#   slapnode apply examples/custom-recipe-c/software.hcl --param message="Bonjour"
software "motd-c" {
  version     = "1.0.0"
  description = "A message of the day, written by a recipe in C."
}

# The recipe only writes files inside its grants: no exec, no network, so the
# module block grants nothing beyond the defaults.
module "motd" {
  source  = "motd.wasm"
  memory  = "16MiB"
  timeout = "30s"
}

part "share" {
  recipe = "cookbook:mkdirectory"
  share  = "${software.path}/share"
}

# Outputs: part.about.path, part.about.bytes, part.about.lines.
part "about" {
  recipe  = "motd:motd"
  path    = "${part.share.share}/motd"
  message = "${software.name} ${software.url}: a recipe written in C installed this file."
}

instance "default" {
  title       = "Message of the day"
  description = "Writes etc/motd in the partition and checks it stays there."
  profile     = "instance.hcl"
  parameters  = "schema/instance-input.json"
  connection  = "schema/instance-output.json"
}
