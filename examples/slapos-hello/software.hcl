# slapos-hello in HCL: the release of software.cfg, ported by hand
# (docs/porting.md walks through it).
#
#   slapnode apply examples/slapos-hello/software.hcl
#   slapnode apply examples/slapos-hello/software.hcl --type static
software "slapos-hello" {
  version     = "1.0.0"
  description = "The hello server built with configure && make, as a greeting or a static file."
}

# configure runs through sh; the build needs make (and the C compiler,
# which make runs).
module "cookbook" {
  source     = "builtin:cookbook"
  allow_exec = ["sh", "make"]
}

# [hello] of software.cfg: slapos.recipe.cmmi from the tarball.
part "hello" {
  recipe = "cookbook:cmmi"
  url    = "${profile.dir}/hello-1.0.tar.gz"
  md5sum = "7b226510b0a58885f0eb74d2c9a66642"
}

# switch-softwaretype's two software types, each its own profile; the
# parameters slap-configuration read are declared, with their defaults.
instance "default" {
  title       = "Greeting"
  description = "The hello server and a status server."
  profile     = "instance-default.hcl"
  parameters  = "schema/default-input.json"
}

instance "static" {
  title       = "Static greeting"
  description = "A greeting written once to a file."
  profile     = "instance-static.hcl"
  parameters  = "schema/static-input.json"
}
