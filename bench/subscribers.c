/* S8's subscribers: CONNS WebSocket connections, spread round robin over the --port
 * arguments, to PATH; each waits for its "ready" text message (or, with --socketio, for the
 * engine.io/socket.io handshake: "0{...}" answered "40", then "40{...}"), then reads text
 * messages that carry the publisher's CLOCK_MONOTONIC time as "T<nanoseconds>" and its
 * phase as "R<phase>" anywhere in them, and records when each one arrived (per phase, a
 * histogram of 10 us buckets up to 10 s).
 *
 * Prints "ready N" on stdout once every connection is subscribed (the orchestrator then
 * starts the publisher's first phase), and "done K {json}" once phase K's messages (the K-th
 * of the comma-separated --messages) reached every connection: deliveries, expected, the
 * first and last arrival (ns), latency p50/p99/max in microseconds. It ends after the last
 * phase, or when nothing arrived for --idle seconds (then printing the unfinished phases).
 *
 *   cc -O2 -o subscribers subscribers.c
 *   subscribers --port 8001 --port 8002 --conns 10000 --path /sub/bench --messages 30,300
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUF 65536
#define BUCKET_NS 10000ULL            /* 10 us */
#define BUCKETS 1000000               /* up to 10 s */
#define MAX_PORTS 8
#define MAX_CONNECTING 256
#define PHASES 8

enum state { CONNECTING, HANDSHAKE, WAITING, READY };

struct conn {
    int fd, port;
    enum state state;
    size_t len;
    unsigned long long received;
    unsigned char *buf;
};

static int ports[MAX_PORTS], nports, conns = 1, socketio;
static const char *path = "/";
static unsigned long long messages[PHASES], idle_s = 20;
static int phases;
static uint32_t *histogram[PHASES];
static unsigned long long deliveries[PHASES], max_ns[PHASES], first_ns[PHASES], last_ns[PHASES];
static int reported[PHASES];
static unsigned long long total;
static int ready, connected, in_progress, epfd;

static void report(int k) {
    unsigned long long seen = 0, p50 = 0, p99 = 0, n = deliveries[k];
    for (unsigned long long b = 0; b < BUCKETS && n; b++) {
        seen += histogram[k][b];
        if (!p50 && seen * 2 >= n) p50 = b * 10 + 10;
        if (!p99 && seen * 100 >= n * 99) { p99 = b * 10 + 10; break; }
    }
    printf("done %d {\"deliveries\": %llu, \"expected\": %llu, \"first_ns\": %llu, "
           "\"last_ns\": %llu, \"p50_us\": %llu, \"p99_us\": %llu, \"max_us\": %llu}\n",
           k, n, messages[k] * (unsigned long long)conns, first_ns[k], last_ns[k], p50, p99,
           max_ns[k] / 1000);
    fflush(stdout);
    reported[k] = 1;
}

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static unsigned long long now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static void send_all(int fd, const void *data, size_t n) {
    const char *p = data;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EAGAIN) continue;   /* a few bytes, rarely: spin */
        if (w < 0) die("write: %s", strerror(errno));
        p += w;
        n -= (size_t)w;
    }
}

static void send_text(int fd, const char *text) {
    unsigned char frame[140];
    size_t n = strlen(text);
    if (n > 125) die("send_text: too long");
    frame[0] = 0x81;
    frame[1] = 0x80 | (unsigned char)n;
    memset(frame + 2, 0, 4);                  /* a zero mask: the payload as it is */
    memcpy(frame + 6, text, n);
    send_all(fd, frame, n + 6);
}

static void start(struct conn *c) {
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(c->port)};
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (c->fd < 0) die("socket: %s", strerror(errno));
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, (struct sockaddr *)&addr, sizeof addr) < 0 && errno != EINPROGRESS)
        die("connect: %s", strerror(errno));
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
    c->state = CONNECTING;
    in_progress++;
}

static void on_message(struct conn *c, const unsigned char *data, size_t n) {
    char text[256];
    size_t m = n < sizeof text - 1 ? n : sizeof text - 1;
    memcpy(text, data, m);
    text[m] = 0;
    if (c->state == WAITING) {
        if (socketio && text[0] == '0') { send_text(c->fd, "40"); return; }
        if ((socketio && !strncmp(text, "40", 2)) || (!socketio && !strcmp(text, "ready"))) {
            c->state = READY;
            in_progress--;
            if (++ready == conns) { printf("ready %d\n", ready); fflush(stdout); }
        }
        return;
    }
    if (socketio && !strcmp(text, "2")) { send_text(c->fd, "3"); return; }   /* ping */
    char *t = strchr(text, 'T'), *r = strchr(text, 'R');
    if (!t || !r) return;
    int k = atoi(r + 1);
    if (k < 0 || k >= phases) die("phase %d of %d", k, phases);
    unsigned long long sent = strtoull(t + 1, NULL, 10), at = now();
    unsigned long long latency = at > sent ? at - sent : 0;
    unsigned long long bucket = latency / BUCKET_NS;
    histogram[k][bucket < BUCKETS ? bucket : BUCKETS - 1]++;
    if (latency > max_ns[k]) max_ns[k] = latency;
    if (!first_ns[k]) first_ns[k] = at;
    last_ns[k] = at;
    total++;
    c->received++;
    if (++deliveries[k] == messages[k] * (unsigned long long)conns) report(k);
}

static void on_readable(struct conn *c) {
    for (;;) {
        ssize_t r = read(c->fd, c->buf + c->len, BUF - c->len);
        if (r < 0 && errno == EAGAIN) return;
        if (r <= 0) die("connection closed by the server (%s) after %llu messages",
                        r ? strerror(errno) : "EOF", c->received);
        c->len += (size_t)r;
        size_t i = 0;
        if (c->state == HANDSHAKE) {
            unsigned char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
            if (!end) continue;
            if (memcmp(c->buf, "HTTP/1.1 101", 12)) die("handshake refused: %.40s", c->buf);
            c->state = WAITING;
            i = (size_t)(end - c->buf) + 4;
        }
        while (c->len - i >= 2) {
            unsigned char *p = c->buf + i;
            size_t head = 2, n = p[1] & 0x7f;
            if (n == 126) { if (c->len - i < 4) break; n = (p[2] << 8) | p[3]; head = 4; }
            else if (n == 127) die("message over 64 KiB");
            if (c->len - i < head + n) break;
            if ((p[0] & 0x0f) == 1) on_message(c, p + head, n);
            else if ((p[0] & 0x0f) == 9) {   /* the server's keepalive: a pong, as sent */
                unsigned char pong[131] = {0x8a, 0x80 | (unsigned char)n};
                memcpy(pong + 6, p + head, n);
                send_all(c->fd, pong, n + 6);
            }
            else if ((p[0] & 0x0f) == 8) die("the server closed a connection");
            i += head + n;
        }
        memmove(c->buf, c->buf + i, c->len - i);
        c->len -= i;
    }
}

int main(int argc, char **argv) {
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (!strcmp(a, "--port") && nports < MAX_PORTS) ports[nports++] = atoi(v);
        else if (!strcmp(a, "--conns")) conns = atoi(v);
        else if (!strcmp(a, "--path")) path = v;
        else if (!strcmp(a, "--messages")) {
            for (char *p = (char *)v; *p && phases < PHASES; p += strspn(p, ","))
                messages[phases++] = strtoull(p, &p, 10);
        }
        else if (!strcmp(a, "--idle")) idle_s = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--socketio")) socketio = atoi(v);
        else die("usage: subscribers --port N [--port N...] --conns N --path P "
                 "--messages N [--idle S] [--socketio 1]");
    }
    if (!nports) die("no --port");
    if (!phases) die("no --messages");
    for (int k = 0; k < phases; k++) histogram[k] = calloc(BUCKETS, sizeof **histogram);
    struct conn *all = calloc((size_t)conns, sizeof *all);
    epfd = epoll_create1(0);
    int next = 0;
    struct epoll_event events[512];
    unsigned long long expected = 0, quiet_since = now();
    for (int k = 0; k < phases; k++) expected += messages[k] * (unsigned long long)conns;
    while (total < expected) {
        while (next < conns && in_progress < MAX_CONNECTING) {
            all[next].port = ports[next % nports];
            all[next].buf = malloc(BUF);
            start(&all[next++]);
        }
        int n = epoll_wait(epfd, events, 512, 200);
        if (n == 0 && ready == conns && now() - quiet_since > idle_s * 1000000000ULL) break;
        if (n == 0 && ready < conns && now() - quiet_since > 60 * 1000000000ULL)
            die("only %d of %d connections subscribed in 60 s", ready, conns);
        if (n > 0) quiet_since = now();
        for (int k = 0; k < n; k++) {
            struct conn *c = events[k].data.ptr;
            if (c->state == CONNECTING) {
                int err = 0;
                socklen_t len = sizeof err;
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
                if (err) die("connect: %s", strerror(err));
                char request[512];
                int m = snprintf(request, sizeof request,
                                 "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                                 "Connection: Upgrade\r\nSec-WebSocket-Key: "
                                 "dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                                 path, c->port);
                send_all(c->fd, request, (size_t)m);
                c->state = HANDSHAKE;
                connected++;
                struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
                epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
            } else {
                on_readable(c);
            }
        }
    }
    for (int k = 0; k < phases; k++)
        if (!reported[k]) report(k);
    return 0;
}
