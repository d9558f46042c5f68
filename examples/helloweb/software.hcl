# helloweb: a software release whose server is built from the C source
# shipped next to this profile, instantiated as one web service per partition.
#
#   slapnode apply examples/helloweb/software.hcl
#   slapnode apply examples/helloweb/software.hcl --param greeting="Bonjour"
software "helloweb" {
  version     = "1.0.0"
  description = "A tiny web server built from source, one instance per partition."
}

# The built-in cookbook; building the server needs the C compiler.
module "cookbook" {
  source     = "builtin:cookbook"
  allow_exec = ["cc"]
}

# Builds the server into <software>/parts/server (the part's location).
part "server" {
  recipe   = "cookbook:build"
  location = "${software.path}/parts/server"
  commands = [["cc", "-O2", "-o", "${software.path}/parts/server/helloweb", "${profile.dir}/src/helloweb.c"]]
}

instance "default" {
  title       = "Web page"
  description = "One web server serving a greeting page."
  profile     = "instance.hcl"
  parameters  = "schema/instance-input.json"
  connection  = "schema/instance-output.json"
  # Shared instances (a page under this server's URL) hosted by it.
  shared_parameters = "schema/shared-input.json"
}
