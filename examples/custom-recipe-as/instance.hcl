# The instance profile of custom-recipe-as, evaluated in each partition.
# It loads the same module as the software profile (motd.wasm next to this
# file) and uses both its recipe and its promise.
module "motd" {
  source  = "motd.wasm"
  memory  = "16MiB"
  timeout = "30s"
}

part "etc" {
  recipe = "cookbook:mkdirectory"
  etc    = "${partition.path}/etc"
}

part "motd" {
  recipe    = "motd:motd"
  path      = "${part.etc.etc}/motd"
  message   = parameter.message
  signature = "${software.name} on node ${node.id}"
  banner    = parameter.banner
}

promise "motd-present" {
  check    = "motd:motd_present"
  path     = part.motd.path
  contains = parameter.message
}

publish {
  motd  = part.motd.path
  lines = part.motd.lines
}
