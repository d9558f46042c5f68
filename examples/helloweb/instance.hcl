# The instance profile of helloweb, evaluated in each partition.
locals {
  url = "http://${partition.ipv4}:${parameter.port}/"
}

part "dirs" {
  recipe = "cookbook:mkdirectory"
  etc    = "${partition.path}/etc"
  log    = "${partition.path}/var/log"
}

part "page" {
  recipe = "cookbook:template"
  output = "${part.dirs.etc}/index.html"
  inline = file("templates/index.html.jinja2")
  context = {
    greeting  = parameter.greeting
    partition = partition.id
    software  = software.name
  }
}

service "web" {
  command = ["${software.path}/parts/server/helloweb", "-l", partition.ipv4, "-p", parameter.port, "-f", part.page.output]
}

promise "web-answers" {
  check = "cookbook:check_url_available"
  url   = local.url
}

publish {
  url = local.url
}

# Shared (slave) instances hosted by this one get their own URL.
publish_shared {
  connections = { for s in shared : s.reference => { url = "${local.url}${s.title}" } }
}
