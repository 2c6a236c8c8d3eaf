/*
 * Diagnostic LD_PRELOAD shim for bench/store.py: sets TCP_NODELAY on every socket a server
 * accepts. s3s-fs 0.14.1 leaves Nagle's algorithm on, so a response written as headers, then
 * body, waits for the client's delayed ACK (~40 ms on Linux) before the body goes out; with
 * this shim the "s3-nodelay" rows show what tile-store's S3 path does without that stall.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags) {
  static int (*real_accept4)(int, struct sockaddr *, socklen_t *, int);
  if (!real_accept4) real_accept4 = (int (*)(int, struct sockaddr *, socklen_t *, int))dlsym(RTLD_NEXT, "accept4");
  int s = real_accept4(fd, addr, len, flags);
  if (s >= 0) {
    int one = 1;
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  return s;
}

int accept(int fd, struct sockaddr *addr, socklen_t *len) { return accept4(fd, addr, len, 0); }
