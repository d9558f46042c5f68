# slapnode's promise plugin shim: senses one SlapOS promise plugin
# (PARTITION/etc/plugin/NAME.py) with the host's python3, for plugins
# slapnode does not run natively. It offers the API plugins are written
# against -- slapos.grid.promise's GenericPromise and interface,
# zope.interface's implementer -- without slapos.core, runs the plugin's
# sense() and reports: one line per message it logged, exit status 0 when
# it logged no error, 1 when it did. slapnode keeps the history and decides
# test and anomaly results as for any promise.
#
# usage: python3 -I plugin_shim.py CONFIG_JSON
import importlib.abc
import importlib.machinery
import importlib.util
import json
import logging
import os
import random
import re
import sys
import time
import types

conf = json.loads(sys.argv[1])
plugin = conf['path']
title = os.path.splitext(os.path.basename(plugin))[0]


class GenericPromise(object):
  """What slapos.grid.promise.generic.GenericPromise offers a plugin."""

  def __init__(self, config):
    config = dict(config)
    self.__log_folder = config.pop('log-folder', None)
    self.__partition_folder = config.pop('partition-folder', None)
    config.pop('debug', None)
    self.__name = config.pop('name')
    self.__path = config.pop('path')
    self.__periodicity = config.pop('periodicity', 2)
    self.__bang = config.pop('bang-on-failure', False)
    self.__config = config
    self.__title = os.path.splitext(self.__name)[0]
    self.__tested = True
    self.__anomaly = True
    self.__transaction_id = '%s-%s' % (int(time.time()), random.randint(100, 999))
    self.__log_file = None
    if self.__log_folder:
      self.__log_file = os.path.join(self.__log_folder, '%s.log' % self.__title)
    self.logger = logging.getLogger('slapnode.plugin.' + self.__title)
    self.logger.propagate = False
    self.logger.setLevel(logging.DEBUG)
    self.logger.handlers = [_records]

  def getConfig(self, key, default=None):
    return self.__config.get(key, default)

  def setConfig(self, key, value):
    self.__config[key] = value

  def getTitle(self):
    return self.__title

  def getName(self):
    return self.__name

  def getPromiseFile(self):
    return self.__path

  def getPartitionFolder(self):
    return self.__partition_folder

  def getLogFolder(self):
    return self.__log_folder

  def getLogFile(self):
    return self.__log_file

  def setPeriodicity(self, minute):
    if minute <= 0:
      raise ValueError("Cannot set promise periodicity to a value less than 1")
    self.__periodicity = minute

  def getPeriodicity(self):
    return self.__periodicity

  def setTestLess(self):
    self.__tested = False

  def isTested(self):
    return self.__tested

  def setAnomalyLess(self):
    self.__anomaly = False

  def isAnomalyDetected(self):
    return self.__anomaly

  def allowBang(self, allow=True):
    self.__bang = allow

  def getLastPromiseResultList(self, latest_minute=0, result_count=1, only_failure=False):
    """The messages of the latest senses in the promise's log, newest
    first, grouped by sense: [[{'date', 'status', 'message'}...]...]."""
    if not self.__log_file or not os.path.exists(self.__log_file):
      return []
    line_re = re.compile(r'(\d{4}-\d{2}-\d{2}\s+\d{2}:\d{2}:\d{2})\s+\-?\s*(\w+)\s+\-?\s+(\d+\-\d{3})\s+\-?\s*(.*)')
    since = time.time() - latest_minute * 60 if latest_minute > 0 else None
    groups, order = {}, []
    with open(self.__log_file) as f:
      for line in f:
        m = line_re.match(line)
        if not m:
          continue
        date, status, tid, message = m.groups()
        if since is not None and time.mktime(time.strptime(date, '%Y-%m-%d %H:%M:%S')) < since:
          continue
        if only_failure and status not in ('ERROR', 'CRITICAL'):
          continue
        if tid not in groups:
          groups[tid] = []
          order.append(tid)
        groups[tid].append({'date': date, 'status': status, 'message': message})
    return [groups[t] for t in reversed(order)][:result_count]

  def sense(self):
    raise NotImplementedError


class _Records(logging.Handler):
  def __init__(self):
    logging.Handler.__init__(self)
    self.records = []

  def emit(self, record):
    try:
      self.records.append((record.levelno, record.getMessage()))
    except Exception as e:
      self.records.append((logging.ERROR, 'cannot format a log message: %s' % e))


_records = _Records()


def implementer(*interfaces):
  return lambda cls: cls


class Interface(object):
  pass


def _module(name, **attrs):
  m = types.ModuleType(name)
  m.__dict__.update(attrs)
  return m


# The modules a plugin imports, made on demand: a plugin file drops every
# cached "slapos" module before importing its own (see promise.plugin), so
# they must come back whenever it asks.
_provided = {
  'slapos.grid': lambda: _module('slapos.grid', __path__=[]),
  'slapos.grid.promise': lambda: _module('slapos.grid.promise', __path__=[], PromiseError=Exception, GenericPromise=GenericPromise),
  'slapos.grid.promise.generic': lambda: _module('slapos.grid.promise.generic', GenericPromise=GenericPromise),
  'slapos.grid.promise.interface': lambda: _module('slapos.grid.promise.interface', IPromise=_ipromise()),
}


def _ipromise():
  # A real interface when zope.interface is installed: its implementer
  # checks what it is given.
  try:
    from zope.interface import Interface as ZopeInterface
  except ImportError:
    return Interface
  return type(ZopeInterface)('IPromise', (ZopeInterface,), {'__module__': 'slapos.grid.promise.interface'})
_zope = {
  'zope': lambda: _module('zope', __path__=[]),
  'zope.interface': lambda: _module('zope.interface', implementer=implementer, Interface=Interface, implements=lambda *a: None),
}


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
  def _others(self, fullname, path, target):
    for f in sys.meta_path:
      if f is self or not hasattr(f, 'find_spec'):
        continue
      spec = f.find_spec(fullname, path, target)
      if spec is not None:
        return spec
    return None

  def find_spec(self, fullname, path=None, target=None):
    if fullname in _provided:
      return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
    if fullname in _zope or fullname == 'slapos':
      # The real ones when they are installed.
      spec = self._others(fullname, path, target)
      if spec is not None:
        return spec
      return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
    return None

  def create_module(self, spec):
    name = spec.name
    if name == 'slapos':
      return _module('slapos', __path__=[])
    return (_provided.get(name) or _zope[name])()

  def exec_module(self, module):
    pass


sys.meta_path.insert(0, _Finder())


def main():
  sys.path.insert(0, os.path.dirname(plugin))
  try:
    spec = importlib.util.spec_from_file_location(title, plugin)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cls = getattr(module, 'RunPromise', None)
    if cls is None:
      print('ERROR %s defines no RunPromise class' % plugin)
      return 1
    config = {
      'log-folder': conf.get('log-folder'),
      'partition-folder': conf.get('partition-folder'),
      'name': os.path.basename(plugin),
      'path': plugin,
      'promise-timeout': conf.get('promise-timeout', 20),
      'partition-id': conf.get('partition-id', ''),
      'computer-id': conf.get('computer-id', ''),
      'master-url': conf.get('master-url', ''),
      'partition-cert': conf.get('partition-cert', ''),
      'partition-key': conf.get('partition-key', ''),
      'slapgrid-version': 'slapnode',
    }
    for k, v in getattr(module, 'extra_config_dict', {}).items():
      if k in config:
        raise ValueError('extra_config_dict key %r is reserved' % k)
      config[k] = v
    promise = cls(config)
    promise.sense()
  except Exception as e:
    _records.records.append((logging.ERROR, '%s: %s' % (type(e).__name__, e)))
  failed = False
  for level, message in _records.records:
    failed = failed or level >= logging.ERROR
    print(message)
  return 1 if failed else 0


sys.exit(main())
