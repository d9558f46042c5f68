// fs.ts — files for AssemblyScript recipes, on WASI preview 1.
//
// AssemblyScript has no file API of its own. The host mounts every granted
// directory at its host path (docs/wasm-abi.md §4.1, §7) as a WASI preopen, so
// an absolute path from the input is resolved here against the preopen whose
// name is its longest prefix, exactly as wasi-libc does for C. Every function
// returns "" on success or an error "OP PATH: reason".

// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "fd_prestat_get")
declare function fd_prestat_get(fd: u32, buf: usize): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "fd_prestat_dir_name")
declare function fd_prestat_dir_name(fd: u32, path: usize, len: usize): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "path_open")
declare function path_open(
  fd: u32, dirflags: u32, path: usize, pathLen: usize, oflags: u16,
  rightsBase: u64, rightsInheriting: u64, fdflags: u16, fdOut: usize,
): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "fd_write")
declare function fd_write(fd: u32, iovs: usize, iovsLen: usize, nwritten: usize): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "fd_read")
declare function fd_read(fd: u32, iovs: usize, iovsLen: usize, nread: usize): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "fd_close")
declare function fd_close(fd: u32): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "path_rename")
declare function path_rename(fd: u32, old: usize, oldLen: usize, newFd: u32, nw: usize, newLen: usize): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "path_unlink_file")
declare function path_unlink_file(fd: u32, path: usize, len: usize): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "path_create_directory")
declare function path_create_directory(fd: u32, path: usize, len: usize): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "path_filestat_get")
declare function path_filestat_get(fd: u32, flags: u32, path: usize, len: usize, buf: usize): u16;

const ERRNO_BADF: u16 = 8;
const ERRNO_NOENT: u16 = 44;
const LOOKUP_SYMLINK_FOLLOW: u32 = 1;
const O_CREAT: u16 = 1;
const O_TRUNC: u16 = 8;
// Rights are mostly ignored by current runtimes, but wazero reads FD_READ and
// FD_WRITE to choose the open mode, and a read-only mount needs O_RDONLY.
const RIGHT_FD_READ: u64 = 1 << 1;
const RIGHT_FD_WRITE: u64 = 1 << 6;

class Preopen {
  fd: u32;
  name: string;
  constructor(fd: u32, name: string) {
    this.fd = fd;
    this.name = name;
  }
}

let preopens: Preopen[] | null = null;

function loadPreopens(): Preopen[] {
  const list: Preopen[] = [];
  const buf = memory.data(8);
  // Preopens are numbered from 3 upwards without gaps; the first EBADF ends them.
  for (let fd: u32 = 3; ; fd++) {
    const e = fd_prestat_get(fd, buf);
    if (e == ERRNO_BADF) break;
    if (e != 0 || load<u8>(buf) != 0) continue;
    const len = load<u32>(buf, 4);
    const name = new ArrayBuffer(<i32>len);
    if (fd_prestat_dir_name(fd, changetype<usize>(name), len) != 0) continue;
    let s = String.UTF8.decode(name);
    while (s.length > 1 && s.endsWith("/")) s = s.substring(0, s.length - 1);
    list.push(new Preopen(fd, s));
  }
  return list;
}

/** A path resolved to a preopen directory and a path relative to it. */
class Resolved {
  fd: u32 = 0;
  rel: ArrayBuffer = new ArrayBuffer(0);
  error: string = "";
}

function resolve(path: string): Resolved {
  let list = preopens;
  if (list == null) {
    list = loadPreopens();
    preopens = list;
  }
  const r = new Resolved();
  let best = -1;
  for (let i = 0; i < list.length; i++) {
    const name = list[i].name;
    const under = path == name || (path.startsWith(name) && (name == "/" || path.charAt(name.length) == "/"));
    if (under && (best < 0 || name.length > list[best].name.length)) best = i;
  }
  if (!path.startsWith("/") || best < 0) {
    r.error = "not inside a granted directory";
    return r;
  }
  const name = list[best].name;
  let rel = path.substring(name == "/" ? 1 : name.length + 1);
  if (rel.length == 0) rel = ".";
  r.fd = list[best].fd;
  r.rel = String.UTF8.encode(rel);
  return r;
}

/** A short description of a WASI errno (values from wasi/api.h), in the
 *  words of strerror. */
export function errnoText(e: u16): string {
  switch (e) {
    case 2: return "permission denied";
    case 8: return "bad file descriptor";
    case 20: return "file exists";
    case 22: return "file too large";
    case 28: return "invalid argument";
    case 29: return "I/O error";
    case 31: return "is a directory";
    case 32: return "too many levels of symbolic links";
    case 37: return "file name too long";
    case 44: return "no such file or directory";
    case 51: return "no space left on device";
    case 52: return "function not implemented";
    case 54: return "not a directory";
    case 55: return "directory not empty";
    case 63: return "operation not permitted";
    case 64: return "broken pipe";
    case 69: return "read-only file system";
    case 75: return "cross-device link";
    case 76: return "not permitted by the sandbox";
  }
  return `errno ${e}`;
}

function fail(op: string, path: string, e: u16): string {
  return `${op} ${path}: ${errnoText(e)}`;
}

function open(path: string, oflags: u16, rights: u64, fdOut: usize): string {
  const r = resolve(path);
  if (r.error.length) return `open ${path}: ${r.error}`;
  const e = path_open(r.fd, LOOKUP_SYMLINK_FOLLOW, changetype<usize>(r.rel), <usize>r.rel.byteLength,
    oflags, rights, 0, 0, fdOut);
  return e == 0 ? "" : fail("open", path, e);
}

/** Creates or truncates path and writes data. */
export function writeBytes(path: string, data: ArrayBuffer): string {
  const fdp = memory.data(4);
  const err = open(path, O_CREAT | O_TRUNC, RIGHT_FD_WRITE, fdp);
  if (err.length) return err;
  const fd = load<u32>(fdp);
  const iov = memory.data(8);
  const nw = memory.data(4);
  let off = 0;
  let werr: u16 = 0;
  while (off < data.byteLength) {
    store<u32>(iov, changetype<usize>(data) + <usize>off);
    store<u32>(iov, <u32>(data.byteLength - off), 4);
    werr = fd_write(fd, iov, 1, nw);
    if (werr != 0) break;
    off += <i32>load<u32>(nw);
  }
  const cerr = fd_close(fd);
  if (werr != 0) return fail("write", path, werr);
  if (cerr != 0) return fail("close", path, cerr);
  return "";
}

/** Creates or truncates path and writes text as UTF-8. */
export function writeFile(path: string, text: string): string {
  return writeBytes(path, String.UTF8.encode(text));
}

/** What readFile read. */
export class ReadResult {
  text: string = "";
  error: string = "";
}

/** Reads at most maxBytes of path as UTF-8 text. */
export function readFile(path: string, maxBytes: i32 = 1 << 20): ReadResult {
  const res = new ReadResult();
  const fdp = memory.data(4);
  res.error = open(path, 0, RIGHT_FD_READ, fdp);
  if (res.error.length) return res;
  const fd = load<u32>(fdp);
  const buf = new ArrayBuffer(maxBytes);
  const iov = memory.data(8);
  const nr = memory.data(4);
  let off = 0;
  while (off < maxBytes) {
    store<u32>(iov, changetype<usize>(buf) + <usize>off);
    store<u32>(iov, <u32>(maxBytes - off), 4);
    const e = fd_read(fd, iov, 1, nr);
    if (e != 0) {
      fd_close(fd);
      res.error = fail("read", path, e);
      return res;
    }
    const n = <i32>load<u32>(nr);
    if (n == 0) break;
    off += n;
  }
  fd_close(fd);
  res.text = String.UTF8.decodeUnsafe(changetype<usize>(buf), <usize>off);
  return res;
}

/** Renames from to to (both must be in granted directories). */
export function rename(from: string, to: string): string {
  const a = resolve(from);
  if (a.error.length) return `rename ${from}: ${a.error}`;
  const b = resolve(to);
  if (b.error.length) return `rename ${to}: ${b.error}`;
  const e = path_rename(a.fd, changetype<usize>(a.rel), <usize>a.rel.byteLength,
    b.fd, changetype<usize>(b.rel), <usize>b.rel.byteLength);
  return e == 0 ? "" : `rename ${from} to ${to}: ${errnoText(e)}`;
}

/** Removes a file; a missing file is not an error when missingOk. */
export function remove(path: string, missingOk: bool = false): string {
  const r = resolve(path);
  if (r.error.length) return `remove ${path}: ${r.error}`;
  const e = path_unlink_file(r.fd, changetype<usize>(r.rel), <usize>r.rel.byteLength);
  return e == 0 || (missingOk && e == ERRNO_NOENT) ? "" : fail("remove", path, e);
}

/** Creates one directory. */
export function mkdir(path: string): string {
  const r = resolve(path);
  if (r.error.length) return `mkdir ${path}: ${r.error}`;
  const e = path_create_directory(r.fd, changetype<usize>(r.rel), <usize>r.rel.byteLength);
  return e == 0 ? "" : fail("mkdir", path, e);
}

/** Reports whether path exists (following symlinks). */
export function exists(path: string): bool {
  const r = resolve(path);
  if (r.error.length) return false;
  const stat = memory.data(64);
  return path_filestat_get(r.fd, LOOKUP_SYMLINK_FOLLOW, changetype<usize>(r.rel), <usize>r.rel.byteLength, stat) == 0;
}
