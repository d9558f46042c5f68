# stack: a software release whose instance requests another instance — a
# helloweb "front" — and publishes its URL, as SlapOS stacks build clusters
# from several software releases.
#
#   slapnode apply examples/stack/software.hcl
software "stack" {
  version     = "1.0.0"
  description = "An instance that requests a helloweb instance and publishes its URL."
}

instance "default" {
  profile    = "instance.hcl"
  parameters = "schema/instance-input.json"
}
