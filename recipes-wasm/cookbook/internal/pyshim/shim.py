# slapnode's Python shim: runs the Python code of SlapOS buildout profiles
# with the host's python3, outside the WebAssembly sandbox. It is written
# by slapnode's cookbook next to the part and started through the granted
# exec host function:
#
#     python3 shim.py INPUT.json OUTPUT.json
#
# Modes (INPUT "mode"):
#   build  the init/install/update code of slapos.recipe.build
#   hook   a hook of slapos.recipe.cmmi (pre-configure-hook, pre-make-hook,
#          post-make-hook): FILE:FUNCTION called with (options, buildout,
#          environ)
#
# It offers the documented API of those recipes (docs/recipes.md, "build"):
# options, buildout, location, self.download, self.extract, self.copyTree,
# self.applyPatchList, self.failIfPathExists, self.pipeCommand,
# self.environ, call, guessworkdir, is_true. The resulting options are
# written to OUTPUT as JSON: they become the part's outputs.
import hashlib
import json
import logging
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import traceback
import types
import urllib.parse
import urllib.request

TRUE_VALUES = ('y', 'yes', '1', 'true', 'on')


def is_true(value, default=False):
    if value is None:
        return default
    return str(value).strip().lower() in TRUE_VALUES


class UserError(Exception):
    """A user error, reported without a traceback (zc.buildout.UserError)."""


def _user_error_class():
    # Code written for buildout raises zc.buildout.UserError: use the real
    # one when zc.buildout is installed, else offer the class under that
    # name so that `from zc.buildout import UserError` works.
    try:
        import zc.buildout
        return zc.buildout.UserError
    except ImportError:
        pass
    zc = sys.modules.get('zc') or types.ModuleType('zc')
    zc.__path__ = []
    mod = types.ModuleType('zc.buildout')
    mod.UserError = UserError
    mod.__path__ = []
    zc.buildout = mod
    sys.modules['zc'] = zc
    sys.modules['zc.buildout'] = mod
    return UserError


def call(*args, **kwargs):
    """subprocess call with stdin closed; raises on a non-zero status."""
    kwargs.setdefault('stdin', subprocess.DEVNULL)
    kwargs.setdefault('close_fds', True)
    returncode = subprocess.call(*args, **kwargs)
    if returncode:
        cmd = args[0] if args else kwargs.get('args')
        raise subprocess.CalledProcessError(
            returncode, cmd if isinstance(cmd, str) else ' '.join(cmd))


def guessworkdir(path):
    entries = os.listdir(path)
    return os.path.join(path, *entries) if len(entries) == 1 else path


def rmtree(path):
    if os.path.islink(path) or not os.path.isdir(path):
        os.remove(path)
    else:
        shutil.rmtree(path)


class Options(dict):
    """A section's options, as SlapOS's buildout Options: strings, or the
    values its dumps serialises (a dict, a list, a number...)."""

    def barrier(self):
        # slapos' zc.buildout: a point past which option values are final.
        pass

    def __setitem__(self, key, value):
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            raise TypeError('option %s: a %s cannot be an option value '
                            '(strings, numbers, lists and dicts can)'
                            % (key, type(value).__name__))
        dict.__setitem__(self, key, value)


class MissingSection(KeyError):
    def __str__(self):
        return self.args[0]


class Buildout(dict):
    """The sections this part may read, as slapnode passes them."""

    def __missing__(self, key):
        raise MissingSection(
            'section %r was not passed to this part: slapnode passes the '
            'sections the code names literally (self.buildout[%r]); list it '
            'in the part\'s "buildout" option' % (key, key))

    def parse(self, *args, **kw):
        raise UserError('buildout.parse (adding sections at run time) has no '
                        'slapnode equivalent: declare the sections in the '
                        'profile')


def environment_of(value, buildout, base):
    """slapos.recipe.build's environment option: NAME=VALUE lines, or the
    name of a section holding them; values %-formatted with base."""
    if isinstance(value, dict):
        items = value.items()
    else:
        value = (value or '').strip()
        if not value:
            return {}
        if '=' in value:
            items = []
            seen = set()
            for line in value.splitlines():
                line = line.strip()
                if not line:
                    continue
                if '=' not in line:
                    raise UserError('Line %r in environment is incorrect' % line)
                k, v = line.split('=', 1)
                k = k.strip()
                if k in seen:
                    raise UserError('Key %r is repeated' % k)
                seen.add(k)
                items.append((k, v))
        else:
            items = buildout[value].items()
    return {k: v.strip() % base for k, v in items}


class Recipe(object):
    """The `self` of slapos.recipe.build code."""

    def __init__(self, name, options, buildout, environment):
        self.name = name
        self.options = options
        self.buildout = buildout
        self.logger = logging.getLogger(name)
        self.cleanup_list = []
        self._environment = environment
        self.keep_on_error = is_true(options.get('keep-on-error'))

    cleanup_dir_list = cleanup_file_list = property(
        lambda self: self.cleanup_list)

    @property
    def environ(self):
        env = dict(os.environ)
        extra = environment_of(self._environment, self.buildout, os.environ)
        for k, v in sorted(extra.items()):
            self.logger.info('[ENV] %s = %s', k, v)
        env.update(extra)
        return env

    def download(self, *args, **kw):
        """Fetch a URL (or a local path) into a temporary file, checking its
        md5sum when given; returns the path."""
        if not (args or 'url' in kw):
            args = (self.options['url'], self.options.get('md5sum') or None)
        url = kw.pop('url', None) or args[0]
        md5sum = kw.pop('md5sum', None)
        if md5sum is None and len(args) > 1:
            md5sum = args[1]
        kw.pop('offline', None)
        kw.pop('alternate_url', None)
        parsed = urllib.parse.urlparse(url)
        if parsed.scheme in ('', 'file'):
            path = parsed.path if parsed.scheme else url
            if md5sum:
                _check_md5(path, md5sum, url)
            return path
        fd, path = tempfile.mkstemp(prefix=self.name + '-download-')
        os.close(fd)
        self.cleanup_list.append(path)
        self.logger.info('Downloading %s', url)
        with urllib.request.urlopen(url) as r, open(path, 'wb') as f:
            shutil.copyfileobj(r, f)
        if md5sum:
            _check_md5(path, md5sum, url)
        return path

    def extract(self, path):
        extract_dir = tempfile.mkdtemp(self.name)
        self.cleanup_list.append(extract_dir)
        _unpack(path, extract_dir)
        return extract_dir

    def copyTree(self, origin, destination, ignore_dir_list=()):
        if os.path.exists(destination):
            raise shutil.Error('Destination already exists: %s' % destination)
        self.logger.info('Copying %r to %r', origin, destination)
        try:
            shutil.copytree(origin, destination, symlinks=True,
                            ignore=lambda src, names: ignore_dir_list)
        except BaseException:
            self.cleanup_list.append(destination)
            raise

    def failIfPathExists(self, path):
        if os.path.lexists(path):
            raise UserError('%r exists but is not expected' % path)

    def pipeCommand(self, command_list_list, *args, **kwargs):
        processes = []
        previous = None
        kwargs['stdout'] = subprocess.PIPE
        for command in command_list_list:
            if previous is not None:
                kwargs['stdin'] = previous.stdout
            p = subprocess.Popen(command, *args, **kwargs)
            if previous is not None:
                previous.stdout.close()
            processes.append((p, ' '.join(command)))
            previous = p
        failed = [c for p, c in reversed(processes) if p.wait()]
        if failed:
            raise UserError('Failed while running:\n  ' + '\n  '.join(failed))

    def applyPatchList(self, patch_string, patch_options=None,
                       patch_binary=None, cwd=None):
        if patch_string is None:
            return
        options = shlex.split(patch_options) if patch_options else []
        binary = (patch_binary or 'patch').strip()
        for line in patch_string.splitlines():
            line = line.strip()
            if not line:
                continue
            md5sum = None
            these = options
            if ' ' in line:
                line, md5sum = line.split(' ', 1)
                md5sum = md5sum.strip()
                if ' ' in md5sum:
                    md5sum, extra = md5sum.split(' ', 1)
                    these = extra.split(' ')
                if md5sum.lower() == 'unknown':
                    md5sum = None
            elif '#' in line:
                line, md5sum = line.rsplit('#', 1)
            self.logger.info('Applying patch %r', line)
            with open(self.download(line, md5sum)) as stdin:
                subprocess.check_call([binary] + list(these), stdin=stdin,
                                      cwd=cwd)

    def _check_promise(self, location):
        text = self.options.get('slapos_promise')
        if not text:
            return
        problems = []
        for promise in text.splitlines():
            promise = promise.strip()
            if not promise:
                continue
            kind, _, rest = promise.partition(':')
            path = rest.split()[0] if rest.split() else ''
            full = os.path.join(location, path)
            if kind in ('file', 'statlib', 'dynlib'):
                if not os.path.exists(full):
                    problems.append('%s promise not met for %r' % (kind, path))
            elif kind == 'directory':
                if not os.path.isdir(full):
                    problems.append('Directory promise not met for %r' % path)
            else:
                raise UserError('Unknown promise %r' % promise)
        if problems:
            raise UserError('Promise not met, found issues:\n  %s'
                            % '\n  '.join(problems))


def _check_md5(path, md5sum, url):
    h = hashlib.md5()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    if h.hexdigest() != md5sum.strip().lower():
        raise UserError('MD5 checksum mismatch for %s: expected %s, got %s'
                        % (url, md5sum, h.hexdigest()))


def _unpack(path, dest):
    try:
        shutil.unpack_archive(path, dest)
    except (shutil.ReadError, ValueError):
        # Formats shutil does not know by name (.tar.lz…): GNU tar guesses.
        subprocess.check_call(['tar', '-xf', path, '-C', dest])


def _exec(script, name, g):
    # Tracebacks show the profile's lines, under the part's name.
    import linecache
    linecache.cache[name] = (len(script), None, script.splitlines(True), name)
    code = compile(script, name, 'exec')
    exec(code, g)


def run_build(req):
    UserErr = _user_error_class()
    name = req['name']
    options = Options(req.get('options') or {})
    buildout = Buildout({k: Options(v) for k, v in
                         (req.get('buildout') or {}).items()})
    recipe = Recipe(name, options, buildout, options.get('environment'))
    init, install, update = (options.get(k) or '' for k in
                             ('init', 'install', 'update'))
    if not (init or install or update):
        raise UserErr('at least one of the following option is required: '
                      'init, install, update')

    def globals_():
        g = {'self': recipe, 'options': options, 'call': call,
             'guessworkdir': guessworkdir, 'is_true': is_true,
             '__name__': '__slapnode_build__'}
        if 'location' in options:
            g['location'] = options['location']
        return g

    if install and not options.get('location'):
        options['location'] = req['default_location']
    if init:
        _exec(init, name, globals_())
    if install:
        location = options['location']
        try:
            if location and os.path.lexists(location):
                rmtree(location)
            if location:
                # buildout makes the parts directory before any part
                # runs; made here, it is the user's the code runs as.
                parent = os.path.dirname(location)
                if not os.path.isdir(parent):
                    os.makedirs(parent)
            _exec(install, name, globals_())
            if location:
                recipe._check_promise(location)
        except BaseException:
            if location:
                recipe.cleanup_list.append(location)
            raise
        finally:
            for path in recipe.cleanup_list:
                if os.path.lexists(path) and not recipe.keep_on_error:
                    rmtree(path)
        if location and not os.path.exists(location):
            raise UserErr('%r was not created' % location)
    elif update:
        try:
            _exec(update, name, globals_())
        finally:
            for path in recipe.cleanup_list:
                if os.path.lexists(path):
                    rmtree(path)
    return {'options': dict(options)}


def run_hook(req):
    _user_error_class()
    path, function = req['script'], req['function']
    spec_name = '_slapnode_hook'
    import importlib.util
    spec = importlib.util.spec_from_file_location(spec_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec_name] = module
    spec.loader.exec_module(module)
    hook = getattr(module, function.strip())
    options = Options(req.get('options') or {})
    buildout = Buildout({k: Options(v) for k, v in
                         (req.get('buildout') or {}).items()})
    environ = dict(os.environ)
    environ.update(environment_of(req.get('environment'), buildout,
                                  os.environ))
    import inspect
    try:
        params = inspect.signature(hook).parameters.values()
        positional = [p for p in params if p.kind in (
            p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)]
        takes_env = len(positional) >= 3 or any(
            p.kind == p.VAR_POSITIONAL for p in positional)
    except (TypeError, ValueError):
        takes_env = True
    if takes_env:
        hook(options, buildout, environ)
    else:
        hook(options, buildout)
    return {'options': dict(options)}


def main(argv):
    if len(argv) != 3:
        sys.stderr.write('usage: shim.py INPUT.json OUTPUT.json\n')
        return 2
    logging.basicConfig(level=logging.INFO, format='%(name)s: %(message)s')
    with open(argv[1]) as f:
        req = json.load(f)
    mode = req.get('mode')
    try:
        if mode == 'build':
            result = run_build(req)
        elif mode == 'hook':
            result = run_hook(req)
        else:
            raise ValueError('unknown mode %r' % mode)
    except SystemExit:
        raise
    except BaseException as e:
        user = isinstance(e, UserError) or type(e).__name__ == 'UserError'
        if not user:
            _print_traceback(e)
        result = {'error': '%s: %s' % (type(e).__name__, e) if not user
                  else str(e)}
        _write(argv[2], result)
        return 1
    _write(argv[2], result)
    return 0


def _print_traceback(e):
    # The frames of the profile's code, not the shim's own.
    frames = [f for f in traceback.extract_tb(e.__traceback__)
              if os.path.abspath(f.filename) != os.path.abspath(__file__)]
    sys.stderr.write('Traceback (most recent call last):\n')
    sys.stderr.write(''.join(traceback.format_list(frames)))
    sys.stderr.write(''.join(traceback.format_exception_only(type(e), e)))


def _write(path, result):
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(result, f)
    os.rename(tmp, path)


if __name__ == '__main__':
    sys.exit(main(sys.argv))
