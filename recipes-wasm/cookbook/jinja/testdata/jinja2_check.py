#!/usr/bin/env python3
"""Checks testdata/cases.json against Python's Jinja2 (the reference).

Each case renders with the environment slapos.recipe.template:jinja2 uses
(StrictUndefined, trailing newline kept, jinja2.ext.do and loopcontrols)
plus the Python builtins it puts in the context. Run it after adding a
case:  python3 testdata/jinja2_check.py        (checks every "want")
       python3 testdata/jinja2_check.py --fill (writes the missing ones)
"""
import builtins
import json
import sys

import jinja2

PATH = __file__.rsplit("/", 1)[0] + "/cases.json"
BUILTINS = {n: getattr(builtins, n) for n in (
    "abs all any bin bool chr dict divmod enumerate filter float format hex int isinstance iter "
    "len list map max min next oct ord pow repr reversed round set sorted str sum tuple zip").split()}


def render(case):
    env = jinja2.Environment(
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
        extensions=["jinja2.ext.do", "jinja2.ext.loopcontrols"],
        loader=jinja2.DictLoader(case.get("templates", {})))
    ctx = dict(BUILTINS)
    ctx.update(case.get("vars", {}))
    return env.from_string(case["tpl"]).render(ctx)


def main():
    fill = "--fill" in sys.argv
    cases = json.load(open(PATH))
    bad = 0
    for c in cases:
        got = render(c)
        if c.get("want") is None and fill:
            c["want"] = got
        elif got != c.get("want"):
            bad += 1
            print("MISMATCH %s:\n  jinja2: %r\n  case:   %r" % (c["name"], got, c.get("want")))
    if fill:
        with open(PATH, "w") as f:
            json.dump(cases, f, indent=1, ensure_ascii=False)
            f.write("\n")
    print("%d cases, %d mismatches (Jinja2 %s)" % (len(cases), bad, jinja2.__version__))
    sys.exit(1 if bad else 0)


main()
