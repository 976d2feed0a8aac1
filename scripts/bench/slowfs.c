// A read-only FUSE passthrough that waits before every operation a network filer would answer with a round
// trip (lookup/getattr, readdir, readlink, open, read, statfs): a source that answers like NFS on a LAN.
// Build: gcc -O2 -Wall slowfs.c $(pkg-config --cflags --libs fuse3) -o slowfs
// Run:   slowfs SOURCE DELAY_US MOUNTPOINT [fuse options]   (unmount with fusermount3 -u MOUNTPOINT)
// release/releasedir have no delay: NFSv3 has no close call. Kernel caches keep libfuse's defaults (1 s).
#define FUSE_USE_VERSION 31
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

static const char *source;
static long delay_us;

static void wait_round_trip(void) {
  struct timespec t = {delay_us / 1000000, (delay_us % 1000000) * 1000};
  while (nanosleep(&t, &t) == -1 && errno == EINTR) {
  }
}

static void full_path(char out[PATH_MAX], const char *path) { snprintf(out, PATH_MAX, "%s%s", source, path); }

static int slow_getattr(const char *path, struct stat *st, struct fuse_file_info *fi) {
  (void)fi;
  char p[PATH_MAX];
  full_path(p, path);
  wait_round_trip();
  return lstat(p, st) == -1 ? -errno : 0;
}

static int slow_readlink(const char *path, char *buf, size_t size) {
  char p[PATH_MAX];
  full_path(p, path);
  wait_round_trip();
  ssize_t n = readlink(p, buf, size - 1);
  if (n == -1) return -errno;
  buf[n] = '\0';
  return 0;
}

static int slow_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off, struct fuse_file_info *fi,
                        enum fuse_readdir_flags flags) {
  (void)off;
  (void)fi;
  (void)flags;
  char p[PATH_MAX];
  full_path(p, path);
  wait_round_trip();
  DIR *d = opendir(p);
  if (!d) return -errno;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    struct stat st = {0};
    st.st_ino = e->d_ino;
    st.st_mode = (mode_t)(DTTOIF(e->d_type));
    if (fill(buf, e->d_name, &st, 0, 0)) break;
  }
  closedir(d);
  return 0;
}

static int slow_open(const char *path, struct fuse_file_info *fi) {
  if ((fi->flags & O_ACCMODE) != O_RDONLY) return -EROFS;
  char p[PATH_MAX];
  full_path(p, path);
  wait_round_trip();
  int fd = open(p, fi->flags);
  if (fd == -1) return -errno;
  fi->fh = (uint64_t)fd;
  return 0;
}

static int slow_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi) {
  (void)path;
  wait_round_trip();
  ssize_t n = pread((int)fi->fh, buf, size, off);
  return n == -1 ? -errno : (int)n;
}

static int slow_release(const char *path, struct fuse_file_info *fi) {
  (void)path;
  close((int)fi->fh);
  return 0;
}

static int slow_statfs(const char *path, struct statvfs *st) {
  char p[PATH_MAX];
  full_path(p, path);
  wait_round_trip();
  return statvfs(p, st) == -1 ? -errno : 0;
}

static const struct fuse_operations ops = {
    .getattr = slow_getattr,
    .readlink = slow_readlink,
    .readdir = slow_readdir,
    .open = slow_open,
    .read = slow_read,
    .release = slow_release,
    .statfs = slow_statfs,
};

int main(int argc, char *argv[]) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s SOURCE DELAY_US MOUNTPOINT [fuse options]\n", argv[0]);
    return 2;
  }
  source = realpath(argv[1], NULL);
  delay_us = strtol(argv[2], NULL, 10);
  if (!source || delay_us < 0) {
    fprintf(stderr, "slowfs: bad source %s or delay %s\n", argv[1], argv[2]);
    return 2;
  }
  argv[2] = argv[0];
  return fuse_main(argc - 2, argv + 2, &ops, NULL);
}
