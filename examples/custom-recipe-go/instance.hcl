# The instance profile of custom-recipe-go, evaluated in each partition.
# It loads the same module as the software profile (hello.wasm next to this
# file) and uses both its recipe and its promise.
module "hello" {
  source  = "hello.wasm"
  memory  = "64MiB"
  timeout = "30s"
}

part "etc" {
  recipe = "cookbook:mkdirectory"
  etc    = "${partition.path}/etc"
}

part "greeting" {
  recipe = "hello:greet"
  output = "${part.etc.etc}/greeting"
  name   = parameter.name
}

promise "greeting-present" {
  check = "hello:greeting_present"
  path  = part.greeting.location
}

publish {
  greeting = part.greeting.greeting
  file     = part.greeting.location
}
