#!/usr/bin/python3
"""Generate the resolution goldens of slapnode's buildout package with
Debian's zc.buildout 2.13.2 (python3-zc.buildout), so that slapnode's
resolver (buildout.Load + Config.Resolve) is checked against buildout itself.

Usage: /usr/bin/python3 hcl/buildout/buildout-goldens.py CORPUS_DIR OUT_DIR

For every file of CORPUS_DIR/MANIFEST.tsv whose class is `buildout` or
`buildout+inline-jinja` and whose extends closure is `complete` or `none`,
it writes OUT_DIR/<path with / replaced by __>.json:

  {"file": PATH, "sections": {NAME: {"options": {...}} | {"error": MSG}}}

How the values are computed (each step calls zc.buildout's own code):
* the closure is merged with a copy of zc.buildout.buildout._open that
  (a) memoizes included files, as the corpus study did (SlapOS closures are
  diamonds: without it stack/slapos.cfg costs thousands of parses; the
  result is the same because a file merges the same way whoever includes
  it; paths are normalized with os.path.normpath), and (b) adds `_profile_base_location_` to the sections of a
  file that use `${:_profile_base_location_}` in that file, as SlapOS's
  buildout fork does in its _open (slapos.buildout 2.5.2+slapos010; upstream
  does not know it);
* then the steps of Buildout.__init__ that shape the data are applied
  ([buildout] defaults with directory=/srv/buildout and
  executable=/usr/bin/python3, default [versions] pins, absolute standard
  directories) without its side effects (no directory creation, no chdir);
* then each section is initialised by zc.buildout's Options class (macros,
  substitution) in a fresh buildout object, with recipe loading disabled,
  and its options read with Options.get.
The corpus directory is written as @CORPUS@ so goldens do not depend on
where the corpus lives.
"""
import collections, collections.abc, copy, json, os, sys
collections.MutableMapping = collections.abc.MutableMapping  # 2.13.2 on Python >= 3.10

import zc.buildout
import zc.buildout.buildout as bo
import zc.buildout.configparser

DIRECTORY = '/srv/buildout'
EXECUTABLE = '/usr/bin/python3'
PROFILE_BASE = '_profile_base_location_'


def make_open():
    memo = {}

    def _open(base, filename, seen):
        if bo._isurl(filename) or bo._isurl(base):
            raise zc.buildout.UserError('URL extends are not used by the goldens: %s' % filename)
        # normpath: buildout keeps `a/../b` as the include path made it;
        # the same file then has one spelling whoever includes it.
        filename = os.path.normpath(os.path.join(base, filename))
        if filename in seen:
            raise zc.buildout.UserError("Recursive file include", seen, filename)
        if seen and filename in memo:
            return copy.deepcopy(memo[filename])
        with open(filename) as fp:
            base = os.path.dirname(filename)
            root = not seen
            seen.append(filename)
            result = zc.buildout.configparser.parse(fp, filename, bo._default_globals)
        # SlapOS's buildout fork (slapos.buildout 2.5.2+slapos010, _open):
        # a section gets _profile_base_location_ = this file's directory
        # when one of its values, in this file, uses the reference.
        for section in result.values():
            for v in section.values():
                if '${:%s}' % PROFILE_BASE in v:
                    section[PROFILE_BASE] = base
                    break
        options = result.get('buildout', {})
        extends = options.pop('extends', None)
        if 'extended-by' in options:
            raise zc.buildout.UserError('extended-by in %s' % filename)
        result = bo._annotate(result, filename)
        if extends:
            extends = extends.split()
            eresult = _open(base, extends.pop(0), seen)
            for fname in extends:
                bo._update(eresult, _open(base, fname, seen))
            result = bo._update(eresult, result)
        seen.pop()
        memo[filename] = copy.deepcopy(result)
        return result
    return _open


def load(path):
    defaults = copy.deepcopy(bo._buildout_default_options)
    defaults['executable'] = bo.SectionKey(EXECUTABLE, 'DEFAULT_VALUE')
    data = dict(buildout=defaults)
    data['buildout']['directory'] = bo.SectionKey(DIRECTORY, 'COMPUTED_VALUE')
    bo._update(data, make_open()(os.path.dirname(path), path, []))
    if 'versions' not in data['buildout']:
        data['buildout']['versions'] = bo.SectionKey('versions', 'DEFAULT_VALUE')
        if 'versions' not in data:
            data['versions'] = {}
    vname = data['buildout']['versions'].value
    if vname:
        versions = data.setdefault(vname, {})
        for k, v in (('zc.buildout', '>=2.13.2'), ('zc.recipe.egg', '>=2.0.6')):
            if k not in versions:
                versions[k] = bo.SectionKey(v, 'DEFAULT_VALUE')
    for name in ('download-cache', 'eggs-directory', 'extends-cache'):
        if name in data['buildout']:
            sk = data['buildout'][name]
            origdir, src = sk.value, sk.source
            if '${' in origdir or os.path.isabs(origdir):
                continue
            if src in ('DEFAULT_VALUE', 'COMPUTED_VALUE', 'COMMAND_LINE_VALUE'):
                basedir = data['buildout']['directory'].value
            else:
                basedir = os.path.dirname(src)
            absdir = os.path.abspath(os.path.join(basedir, os.path.expanduser(origdir)))
            sk.setDirectory(absdir)
    raw = bo._unannotate(data)
    b = raw['buildout']
    for name in ('bin', 'parts', 'eggs', 'develop-eggs'):
        d = b[name + '-directory']
        if '${' not in d:
            b[name + '-directory'] = os.path.join(b['directory'], d)
    return raw


class NoRecipeOptions(bo.Options):
    def initialize(self):
        pass  # resolution only: recipes are not loaded


class FakeBuildout(dict):
    def __init__(self, raw):
        self._raw = raw
        self._data = {}
        self._parts = []

    def __getitem__(self, section):
        try:
            return self._data[section]
        except KeyError:
            pass
        try:
            data = self._raw[section]
        except KeyError:
            raise bo.MissingSection(section)
        options = NoRecipeOptions(self, section, copy.deepcopy(data))
        self._data[section] = options
        options._initialize()
        return options


def resolve(raw):
    out = {}
    for name in sorted(raw):
        try:
            opts = FakeBuildout(raw)[name]
            out[name] = {'options': {k: opts.get(k) for k in sorted(opts._raw)}}
        except Exception as e:  # the section fails when used, as in buildout
            out[name] = {'error': '%s: %s' % (type(e).__name__, str(e).replace('\n', ' '))}
    return out


def main():
    corpus, outdir = os.path.abspath(sys.argv[1]), sys.argv[2]
    os.makedirs(outdir, exist_ok=True)
    n = 0
    with open(os.path.join(corpus, 'MANIFEST.tsv')) as f:
        rows = [l.rstrip('\n').split('\t') for l in f][1:]
    for path, cls, closure in rows:
        if cls not in ('buildout', 'buildout+inline-jinja') or closure not in ('complete', 'none'):
            continue
        try:
            res = {'file': path, 'sections': resolve(load(os.path.join(corpus, path)))}
        except Exception as e:
            res = {'file': path, 'error': '%s: %s' % (type(e).__name__, e)}
        text = json.dumps(res, indent=1, sort_keys=True, ensure_ascii=False).replace(corpus, '@CORPUS@')
        with open(os.path.join(outdir, path.replace('/', '__') + '.json'), 'w') as o:
            o.write(text + '\n')
        n += 1
    print('%d goldens written to %s' % (n, outdir))


if __name__ == '__main__':
    main()
