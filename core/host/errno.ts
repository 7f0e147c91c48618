// strerror(3) texts (glibc) for the errno codes Node reports, so host errors read as QEMU's
// error_setg_errno messages do ("Failed to find an available port: Address already in use").
// Pure data: no node imports, usable by in-memory providers too.

const STRERROR: Readonly<Record<string, string>> = {
  EACCES: 'Permission denied',
  EADDRINUSE: 'Address already in use',
  EADDRNOTAVAIL: 'Cannot assign requested address',
  EAFNOSUPPORT: 'Address family not supported by protocol',
  EAGAIN: 'Resource temporarily unavailable',
  EBADF: 'Bad file descriptor',
  ECONNABORTED: 'Software caused connection abort',
  ECONNREFUSED: 'Connection refused',
  ECONNRESET: 'Connection reset by peer',
  EEXIST: 'File exists',
  EHOSTUNREACH: 'No route to host',
  EINVAL: 'Invalid argument',
  EIO: 'Input/output error',
  EISDIR: 'Is a directory',
  EMFILE: 'Too many open files',
  ENAMETOOLONG: 'File name too long',
  ENETUNREACH: 'Network is unreachable',
  ENOENT: 'No such file or directory',
  ENOSPC: 'No space left on device',
  ENOTDIR: 'Not a directory',
  ENOTSOCK: 'Socket operation on non-socket',
  EPERM: 'Operation not permitted',
  EPIPE: 'Broken pipe',
  EROFS: 'Read-only file system',
  ETIMEDOUT: 'Connection timed out',
};

/** The strerror text for a Node error code (`EADDRINUSE`...); unknown codes are returned as is. */
export function strerror(code: string | undefined): string {
  if (!code) return 'Unknown error';
  return STRERROR[code] ?? code;
}

/** The `code` of a Node system error, or undefined. */
export function errnoCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = (err as { code: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}
