/* The harness's own limit: the least a WebSocket echo server can do per message, in C, so the
 * table row it makes shows how far the kernel and the load generator let any server go on
 * this machine (bench/run.py compiles it next to the load generator).
 *
 * One thread, epoll, blocking writes (one small write per batch of input, so they never wait
 * long). It answers only the load generator's handshake (RFC 6455 1.3's sample key, whose
 * accept value is fixed), unmasks 8 bytes at a time and echoes every data frame as it came.
 * Usage: c_echo PORT. Control frames are echoed too: the load generator sends none in S1-S3.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF (4 << 20)

static const char KEY_LINE[] = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
static const char RESPONSE[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                               "Connection: Upgrade\r\n"
                               "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";

struct conn {
    int fd, upgraded;
    size_t have;
    unsigned char in[BUF];
};

static unsigned char out[BUF + 14];

static int write_all(int fd, const void *p, size_t n) {
    while (n) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EAGAIN) {
            struct pollfd w = {fd, POLLOUT, 0};
            poll(&w, 1, -1);
            continue;
        }
        if (k < 0) return -1;
        p = (const char *)p + k;
        n -= k;
    }
    return 0;
}

/* Echo every whole frame in c->in, unmasked, in one write; keep the partial one. */
static int echo_frames(struct conn *c, size_t pos) {
    size_t o = 0;
    for (;;) {
        const unsigned char *h = c->in + pos;
        size_t left = c->have - pos, hl = 2, len;
        if (left < 2) break;
        len = h[1] & 0x7f;
        if (len == 126) {
            hl = 4;
            if (left < hl) break;
            len = (size_t)h[2] << 8 | h[3];
        } else if (len == 127) {
            hl = 10;
            if (left < hl) break;
            len = 0;
            for (int i = 0; i < 8; i++) len = len << 8 | h[2 + i];
        }
        if (!(h[1] & 0x80) || len > BUF - 14) return -1;
        if (left < hl + 4 + len) break;
        if (o + hl + len > sizeof out) {
            if (write_all(c->fd, out, o) < 0) return -1;
            o = 0;
        }
        out[o] = h[0];
        out[o + 1] = h[1] & 0x7f;
        memcpy(out + o + 2, h + 2, hl - 2);
        const unsigned char *key = h + hl, *p = key + 4;
        unsigned char *d = out + o + hl;
        uint64_t k8;
        unsigned char k[8] = {key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3]};
        memcpy(&k8, k, 8);
        size_t i = 0;
        for (; i + 8 <= len; i += 8) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            w ^= k8;
            memcpy(d + i, &w, 8);
        }
        for (; i < len; i++) d[i] = p[i] ^ key[i & 3];
        o += hl + len;
        pos += hl + 4 + len;
    }
    memmove(c->in, c->in + pos, c->have - pos);
    c->have -= pos;
    return o ? write_all(c->fd, out, o) : 0;
}

static int on_readable(struct conn *c) {
    for (;;) {
        ssize_t n = recv(c->fd, c->in + c->have, BUF - c->have, 0);
        if (n < 0) return errno == EAGAIN ? 0 : -1;
        if (n == 0) return -1;
        c->have += n;
        size_t pos = 0;
        if (!c->upgraded) {
            unsigned char *end = memmem(c->in, c->have, "\r\n\r\n", 4);
            if (!end) continue;
            if (!memmem(c->in, c->have, KEY_LINE, sizeof KEY_LINE - 1)) return -1;
            if (write_all(c->fd, RESPONSE, sizeof RESPONSE - 1) < 0) return -1;
            c->upgraded = 1;
            pos = end + 4 - c->in;
        }
        if (echo_frames(c, pos) < 0) return -1;
    }
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: c_echo PORT\n");
        return 64;
    }
    int one = 1, listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[1])),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(listener, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(listener, 1024) < 0) {
        perror("c_echo");
        return 1;
    }
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL}, events[256];
    epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev);
    for (;;) {
        int n = epoll_wait(ep, events, 256, -1);
        for (int i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;
            if (!c) {
                int fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK);
                if (fd < 0 || !(c = calloc(1, sizeof *c))) {
                    if (fd >= 0) close(fd);
                    continue;
                }
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                c->fd = fd;
                struct epoll_event cev = {.events = EPOLLIN, .data.ptr = c};
                epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
            } else if (on_readable(c) < 0) {
                close(c->fd);
                free(c);
            }
        }
    }
}
