# Software type "default" (instance-default.cfg.in): the jinja2 macro and
# loop over the servers become a map and for expressions.
locals {
  servers = {
    hello  = { port = parameter.port, message = "Hello ${parameter.name}!" }
    status = { port = parameter.status-port, message = "OK" }
  }
}

# slapos.cookbook:wrapper + etc/service: a service block per server.
service "hello" {
  command = ["${part.hello-bin.location}/bin/hello", partition.ipv4, local.servers.hello.port, local.servers.hello.message]
}

service "status" {
  command = ["${part.hello-bin.location}/bin/hello", partition.ipv4, local.servers.status.port, local.servers.status.message]
}

# A data part naming the software's build, so that the profile says where
# the binary comes from in one place.
part "hello-bin" {
  location = "${software.path}/parts/hello"
}

# The check_socket_listening plugins: the cookbook's port check.
promise "hello-listening" {
  check = "cookbook:check_port_listening"
  host  = partition.ipv4
  port  = local.servers.hello.port
}

promise "status-listening" {
  check = "cookbook:check_port_listening"
  host  = partition.ipv4
  port  = local.servers.status.port
}

# slapos.cookbook:publish.
publish {
  name       = parameter.name
  url-hello  = "http://${partition.ipv4}:${local.servers.hello.port}/"
  url-status = "http://${partition.ipv4}:${local.servers.status.port}/"
}
