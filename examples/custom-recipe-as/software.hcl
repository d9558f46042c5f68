# custom-recipe-as: a software release that uses a recipe written in AssemblyScript
# (motd.ts, with the SDK in recipes-wasm/sdk/assemblyscript). `make wasm` compiles it to
# motd.wasm next to this file; the module block below loads it from there
# (a relative source is relative to the profile).
#
#   make wasm && slapnode apply examples/custom-recipe-as/software.hcl
#   slapnode apply examples/custom-recipe-as/software.hcl --param message="Bonjour"
software "motd-as" {
  version     = "1.0.0"
  description = "A message of the day, written by a recipe in AssemblyScript."
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
  message = "${software.name} ${software.url}: a recipe written in AssemblyScript installed this file."
}

instance "default" {
  title       = "Message of the day"
  description = "Writes etc/motd in the partition and checks it stays there."
  profile     = "instance.hcl"
  parameters  = "schema/instance-input.json"
  connection  = "schema/instance-output.json"
}
