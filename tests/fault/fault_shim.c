/* fault_shim.c: an LD_PRELOAD library for the fault tests. It makes one process's file
 * system fill up, its checkpoint writes pause where a test wants to kill it, or its clock
 * run wrong, without root, a loop device or a second machine. The test scripts build it with
 * `cc -shared -fPIC -O2 -o fault_shim.so fault_shim.c -ldl -lpthread`.
 *
 * Environment (every variable optional):
 *   DERMFED_FAULT_PATHS   colon-separated substrings. A file opened for writing whose path
 *                         contains one is "watched"; so are renames and removals of such
 *                         paths. Nothing else is touched.
 *   DERMFED_FAULT_FULL    a flag file. While it exists the watched files live on a full
 *                         disk: it holds the bytes still free (empty = 0); writes past them
 *                         fail with ENOSPC (a write that straddles the limit is short, as
 *                         the kernel's is). Deleting the flag frees the disk.
 *   DERMFED_FAULT_TRACE   appends "<n> <op> <path>" for every watched operation (open,
 *                         write, fsync, close, rename), "- unlink <path>" for every removal
 *                         (traced, not counted: a clean-up must not shift the numbers) and
 *                         "enospc <path>" for every refused write.
 *   DERMFED_FAULT_HOLD_AT N: the N-th watched operation (1-based) first appends
 *                         "hold <n> <op> <path>" to the trace and then sleeps for an hour,
 *                         so that the test can SIGKILL the process right before it.
 *   DERMFED_FAULT_HOLD_AFTER N: the same, right after the N-th watched operation returns
 *                         ("hold-after <n> <op> <path>").
 *   DERMFED_FAULT_CLOCK_OFFSET_S  seconds (may be negative) added to the wall clock
 *                         (clock_gettime of CLOCK_REALTIME*, gettimeofday, time); the
 *                         monotonic clocks are left alone.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define MAX_FDS 65536

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static char* watched[MAX_FDS]; /* path of each watched fd, or NULL */
static long ops = 0;          /* watched operations so far */
static long long used_while_full = 0;

/* The next definition of `name` (libc's), looked up once. */
#define REAL(name)                                                                   \
  ({                                                                                 \
    static __typeof__(&name) real_##name;                                            \
    if (!real_##name) real_##name = (__typeof__(&name))dlsym(RTLD_NEXT, #name);      \
    real_##name;                                                                     \
  })

static int is_watched_path(const char* path) {
  const char* list = getenv("DERMFED_FAULT_PATHS");
  if (!list || !*list || !path) return 0;
  char buf[4096];
  snprintf(buf, sizeof(buf), "%s", list);
  for (char* save = NULL, *p = strtok_r(buf, ":", &save); p; p = strtok_r(NULL, ":", &save)) {
    if (*p && strstr(path, p)) return 1;
  }
  return 0;
}

static void trace_line(const char* line) {
  const char* path = getenv("DERMFED_FAULT_TRACE");
  if (!path) return;
  int fd = ((int (*)(const char*, int, ...))dlsym(RTLD_NEXT, "open"))(
      path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return;
  ssize_t (*real_write)(int, const void*, size_t) = REAL(write);
  (void)real_write(fd, line, strlen(line));
  close(fd);
}

/* Holds the process (until it is killed) when operation n is the one `var` asks for. */
static void maybe_hold(const char* var, const char* word, long n, const char* op, const char* path) {
  const char* hold = getenv(var);
  if (!hold || atol(hold) != n) return;
  char line[4200];
  snprintf(line, sizeof(line), "%s %ld %s %s\n", word, n, op, path ? path : "?");
  trace_line(line);
  sleep(3600);
}

/* Counts one watched operation, about to be done; returns its number. */
static long watched_op(const char* op, const char* path) {
  pthread_mutex_lock(&mu);
  long n = ++ops;
  pthread_mutex_unlock(&mu);
  char line[4200];
  snprintf(line, sizeof(line), "%ld %s %s\n", n, op, path ? path : "?");
  trace_line(line);
  maybe_hold("DERMFED_FAULT_HOLD_AT", "hold", n, op, path);
  return n;
}

/* After watched operation n returned. */
static void done_op(long n, const char* op, const char* path) {
  maybe_hold("DERMFED_FAULT_HOLD_AFTER", "hold-after", n, op, path);
}

static const char* fd_path(int fd) {
  if (fd < 0 || fd >= MAX_FDS) return NULL;
  return __atomic_load_n(&watched[fd], __ATOMIC_ACQUIRE);
}

/* Bytes a watched write of n bytes may write now: n, fewer, or -1 (ENOSPC). */
static ssize_t allowance(const char* path, size_t n) {
  const char* flag = getenv("DERMFED_FAULT_FULL");
  if (!flag) return (ssize_t)n;
  int (*real_open)(const char*, int, ...) = (int (*)(const char*, int, ...))dlsym(RTLD_NEXT, "open");
  int fd = real_open(flag, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    pthread_mutex_lock(&mu);
    used_while_full = 0;
    pthread_mutex_unlock(&mu);
    return (ssize_t)n;
  }
  char buf[32] = {0};
  ssize_t (*real_read)(int, void*, size_t) = REAL(read);
  (void)real_read(fd, buf, sizeof(buf) - 1);
  close(fd);
  long long free_bytes = atoll(buf);
  pthread_mutex_lock(&mu);
  long long left = free_bytes - used_while_full;
  ssize_t allow = left <= 0 ? -1 : (left < (long long)n ? (ssize_t)left : (ssize_t)n);
  if (allow > 0) used_while_full += allow;
  pthread_mutex_unlock(&mu);
  if (allow < 0) {
    char line[4200];
    snprintf(line, sizeof(line), "enospc %s\n", path);
    trace_line(line);
  }
  return allow;
}

static void remember(int fd, const char* path, int flags) {
  if (fd < 0 || fd >= MAX_FDS) return;
  if (!(flags & (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC | O_APPEND))) return;
  if (!is_watched_path(path)) return;
  char* copy = strdup(path);
  char* old = __atomic_exchange_n(&watched[fd], copy, __ATOMIC_ACQ_REL);
  free(old);
  watched_op("open", path);
}

static int open_common(const char* name, int dirfd, const char* path, int flags, mode_t mode) {
  int fd;
  if (dirfd == -1) {
    int (*real)(const char*, int, ...) = (int (*)(const char*, int, ...))dlsym(RTLD_NEXT, name);
    fd = real(path, flags, mode);
  } else {
    int (*real)(int, const char*, int, ...) = (int (*)(int, const char*, int, ...))dlsym(RTLD_NEXT, name);
    fd = real(dirfd, path, flags, mode);
  }
  int saved = errno;
  remember(fd, path, flags);
  errno = saved;
  return fd;
}

#define MODE_ARG(flags, mode)                               \
  mode_t mode = 0;                                          \
  if ((flags) & (O_CREAT | __O_TMPFILE)) {                  \
    va_list ap;                                             \
    va_start(ap, flags);                                    \
    mode = va_arg(ap, mode_t);                              \
    va_end(ap);                                             \
  }

int open(const char* path, int flags, ...) {
  MODE_ARG(flags, mode);
  return open_common("open", -1, path, flags, mode);
}
int open64(const char* path, int flags, ...) {
  MODE_ARG(flags, mode);
  return open_common("open64", -1, path, flags, mode);
}
int openat(int dirfd, const char* path, int flags, ...) {
  MODE_ARG(flags, mode);
  return open_common("openat", dirfd, path, flags, mode);
}
int openat64(int dirfd, const char* path, int flags, ...) {
  MODE_ARG(flags, mode);
  return open_common("openat64", dirfd, path, flags, mode);
}
int __open_2(const char* path, int flags) { return open_common("open", -1, path, flags, 0); }
int __open64_2(const char* path, int flags) { return open_common("open64", -1, path, flags, 0); }
int creat(const char* path, mode_t mode) {
  return open_common("open", -1, path, O_CREAT | O_WRONLY | O_TRUNC, mode);
}
int creat64(const char* path, mode_t mode) {
  return open_common("open64", -1, path, O_CREAT | O_WRONLY | O_TRUNC, mode);
}

int close(int fd) {
  if (fd >= 0 && fd < MAX_FDS && fd_path(fd)) {
    char* path = __atomic_exchange_n(&watched[fd], NULL, __ATOMIC_ACQ_REL);
    if (path) {
      watched_op("close", path);
      free(path);
    }
  }
  return REAL(close)(fd);
}

/* The write family: watched fds count as one operation each and may hit the full disk. */
#define GUARD_WRITE(fd, n)                          \
  const char* path = fd_path(fd);                   \
  size_t want = (n);                                \
  if (path) {                                       \
    watched_op("write", path);                      \
    ssize_t allow = allowance(path, want);          \
    if (allow < 0) {                                \
      errno = ENOSPC;                               \
      return -1;                                    \
    }                                               \
    want = (size_t)allow;                           \
  }

ssize_t write(int fd, const void* buf, size_t n) {
  GUARD_WRITE(fd, n);
  return REAL(write)(fd, buf, want);
}
ssize_t pwrite(int fd, const void* buf, size_t n, off_t off) {
  GUARD_WRITE(fd, n);
  return REAL(pwrite)(fd, buf, want, off);
}
ssize_t pwrite64(int fd, const void* buf, size_t n, off64_t off) {
  GUARD_WRITE(fd, n);
  return REAL(pwrite64)(fd, buf, want, off);
}
ssize_t writev(int fd, const struct iovec* iov, int cnt) {
  const char* path = fd_path(fd);
  if (path) {
    size_t total = 0;
    for (int i = 0; i < cnt; ++i) total += iov[i].iov_len;
    watched_op("write", path);
    ssize_t allow = allowance(path, total);
    if (allow < 0) {
      errno = ENOSPC;
      return -1;
    }
    if ((size_t)allow < total) {
      /* Short: write the allowed prefix of the first buffers. */
      size_t done = 0;
      for (int i = 0; i < cnt && done < (size_t)allow; ++i) {
        size_t part = iov[i].iov_len < (size_t)allow - done ? iov[i].iov_len : (size_t)allow - done;
        ssize_t w = REAL(write)(fd, iov[i].iov_base, part);
        if (w < 0) return done ? (ssize_t)done : -1;
        done += (size_t)w;
        if ((size_t)w < part) break;
      }
      return (ssize_t)done;
    }
  }
  return REAL(writev)(fd, iov, cnt);
}

int fsync(int fd) {
  const char* path = fd_path(fd);
  if (path) watched_op("fsync", path);
  return REAL(fsync)(fd);
}
int fdatasync(int fd) {
  const char* path = fd_path(fd);
  if (path) watched_op("fsync", path);
  return REAL(fdatasync)(fd);
}

int rename(const char* from, const char* to) {
  long n = is_watched_path(from) || is_watched_path(to) ? watched_op("rename", to) : 0;
  int rc = REAL(rename)(from, to);
  int saved = errno;
  if (n) done_op(n, "rename", to);
  errno = saved;
  return rc;
}
int renameat(int fd1, const char* from, int fd2, const char* to) {
  long n = is_watched_path(from) || is_watched_path(to) ? watched_op("rename", to) : 0;
  int rc = REAL(renameat)(fd1, from, fd2, to);
  int saved = errno;
  if (n) done_op(n, "rename", to);
  errno = saved;
  return rc;
}
static void trace_unlink(const char* path) {
  if (!is_watched_path(path)) return;
  char line[4200];
  snprintf(line, sizeof(line), "- unlink %s\n", path);
  trace_line(line);
}
int unlink(const char* path) {
  trace_unlink(path);
  return REAL(unlink)(path);
}
int unlinkat(int dirfd, const char* path, int flags) {
  trace_unlink(path);
  return REAL(unlinkat)(dirfd, path, flags);
}
int remove(const char* path) {
  trace_unlink(path);
  return REAL(remove)(path);
}

/* ---- the wall clock ---- */

static long clock_offset(void) {
  const char* s = getenv("DERMFED_FAULT_CLOCK_OFFSET_S");
  return s ? atol(s) : 0;
}

int clock_gettime(clockid_t id, struct timespec* ts) {
  int rc = REAL(clock_gettime)(id, ts);
  if (rc == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE)) ts->tv_sec += clock_offset();
  return rc;
}
int gettimeofday(struct timeval* tv, void* tz) {
  int rc = ((int (*)(struct timeval*, void*))dlsym(RTLD_NEXT, "gettimeofday"))(tv, tz);
  if (rc == 0) tv->tv_sec += clock_offset();
  return rc;
}
time_t time(time_t* out) {
  time_t t = REAL(time)(NULL) + clock_offset();
  if (out) *out = t;
  return t;
}
