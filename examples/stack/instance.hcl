# The stack's instance: it needs a web front, so it requests one.
request "front" {
  software = "../helloweb/software.hcl"
  parameters = {
    greeting = parameter.greeting
    port     = parameter.front-port
  }
}

publish {
  front-url = request.front.connection.url
}
