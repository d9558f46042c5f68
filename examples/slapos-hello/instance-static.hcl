# Software type "static" (instance-static.cfg.in).
part "www" {
  recipe = "cookbook:mkdirectory"
  www    = "${partition.path}/srv/www"
}

# The run-once wrapper of etc/run wrote the file; a file recipe does it
# without a program.
part "greeting" {
  recipe  = "cookbook:write-file"
  output  = "${part.www.www}/index.txt"
  content = "Hello ${parameter.name}!\n"
}

promise "greeting-written" {
  check = "cookbook:check_file_state"
  path  = part.greeting.output
  state = "not-empty"
}

publish {
  file          = part.greeting.output
  software-type = software_type
}
