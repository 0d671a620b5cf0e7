/* One load generator for every echo server in the benchmark (bench/run.py compiles and runs it).
 *
 * One thread, epoll, non-blocking sockets, frames masked once at start-up (RFC 6455 5.3), so
 * the per-message cost here is a memcmp and a writev: far below what any Python server spends.
 * It measures its own CPU time (getrusage) and the server's (/proc/PID/stat) over the measured
 * window, so the output says which side was the bottleneck. Every echoed payload is compared
 * with what was sent (a broken server cannot look fast): any mismatch, unexpected close or
 * protocol error ends the run with exit status 2 and a message on stderr.
 *
 * Modes:
 *   echo   CONNS connections, INFLIGHT messages of SIZE bytes in flight on each (a message
 *          is sent again as soon as one comes back): messages/s, latency percentiles.
 *   idle   open CONNS connections (handshake and one echo each), then report the server's
 *          RSS per connection from /proc/PID/status, and keep them open --hold seconds.
 *   churn  CONNS workers, each in a loop: connect, handshake, one echo, close handshake.
 *   broadcast  open CONNS connections (handshake and one echo each), then ROUNDS times:
 *          connection 0 sends a text message of SIZE bytes starting with '!', which the
 *          server broadcasts to every open connection; each arrival is timestamped and
 *          checked. Reports the time until the last connection had it (median and best
 *          round), deliveries/s and arrival latency percentiles.
 *
 * --deflate (idle and churn: one message per connection) offers permessage-deflate as browsers
 * do (RFC 7692), requires the server to accept it, sends the message compressed and inflates
 * compressed echoes (zlib), so the server's compression state is what a browser would cause.
 *
 * --socketio (echo mode) speaks Socket.IO 5 over Engine.IO 4's websocket transport, as
 * python-socketio's client does with transports=['websocket']: the upgrade goes to
 * /socket.io/?EIO=4&transport=websocket, the Engine.IO open packet is awaited, the namespace
 * is joined ('40', answered '40{...}'), then each message is the event '42["echo","<letters>"]'
 * (SIZE bytes in all), which a server that emits the event back returns byte for byte.
 *
 * Output: one JSON object on stdout.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

enum mode { MODE_ECHO, MODE_IDLE, MODE_CHURN, MODE_BROADCAST };
enum state { ST_CONNECTING, ST_HANDSHAKE, ST_PREAMBLE, ST_OPEN, ST_CLOSING, ST_IDLE,
             ST_BROADCAST };

#define HIST_BUCKETS 1000000          /* 1 us each: latencies up to 1 s, the rest in the last */
#define READ_CHUNK (256 * 1024)
#define MAX_CONNECTING 128            /* idle mode: handshakes in progress at once */
#define RING_SMALL 256                /* distinct payloads for small messages */

/* RFC 6455 1.3's example key and the accept value it must produce. */
static const char *WS_KEY = "dGhlIHNhbXBsZSBub25jZQ==";
static const char *WS_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

struct conn {
    int fd;
    int id;
    enum state state;
    int preamble;                     /* --socketio: packets of the opening seen */
    int want_out;                     /* EPOLLOUT registered */
    const char *extra;                /* handshake request or close frame being written */
    size_t extra_left;
    size_t out_pos, out_left;         /* frames of the ring still to write */
    char resp[2048];                  /* the handshake response head */
    size_t resp_len;
    unsigned char hdr[14];            /* the frame header being read */
    int hdr_have, hdr_need;
    int in_frame, frame_opcode, frame_fin, in_message, compressed;
    unsigned char *zbuf;              /* --deflate: the compressed echo collected so far */
    size_t zlen;
    uint64_t pay_left, pay_off;
    unsigned start;                   /* this connection's first payload in the ring */
    uint64_t sent, received;
    double *sent_at;                  /* send time of each message in flight */
    double opened_at;
};

static struct {
    enum mode mode;
    int port, conns, inflight, binary, server_pid, deflate;
    size_t size;
    double warmup, duration, settle, hold;
    int rounds, socketio;
} opt = {MODE_ECHO, 0, 1, 1, 0, 0, 0, 32, 1.0, 3.0, 1.0, 0.0, 10, 0};

static int ep;
static struct sockaddr_in addr;
static char request[640];
static size_t request_len;
static unsigned char *ring, *payloads;    /* masked frames back to back; their payloads */
static size_t frame_len, ring_len;
static unsigned ring_count;
static unsigned char close_frame[8];
static unsigned char sio_connect_frame[8];    /* --socketio: '40', masked */
static uint32_t *hist;
static unsigned char readbuf[READ_CHUNK];

static unsigned char *bcast_frame, *bcast_payload;   /* broadcast mode: the trigger */
static size_t bcast_frame_len;
static double bcast_sent_at;
static uint64_t bcast_arrived;

static int measuring, stopping;
static uint64_t measured_messages, verified, idle_ready, opened_total, compressed_echoes;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "loadgen: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2);
}

static double cpu_self(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 +
           ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
}

/* The server's user + system CPU seconds (all its threads), or -1 without a pid; its system
 * (kernel) seconds alone in *SYS: syscalls, and on loopback the delivery of what it sends. */
static double cpu_server(double *sys) {
    char path[64], buf[1024];
    if (!opt.server_pid) return -1;
    snprintf(path, sizeof path, "/proc/%d/stat", opt.server_pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');      /* the command name may hold spaces */
    unsigned long utime = 0, stime = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
                     &utime, &stime) != 2)
        return -1;
    *sys = (double)stime / sysconf(_SC_CLK_TCK);
    return (double)(utime + stime) / sysconf(_SC_CLK_TCK);
}

/* Seconds a task spent runnable but waiting for its core (other processes had it): the noise
 * of a shared machine, from /proc/PID/schedstat (main thread only). */
static double runq_wait(int pid) {
    char path[64];
    unsigned long long on_cpu, waited;
    if (pid) snprintf(path, sizeof path, "/proc/%d/schedstat", pid);
    else snprintf(path, sizeof path, "/proc/self/schedstat");
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    int ok = fscanf(f, "%llu %llu", &on_cpu, &waited) == 2;
    fclose(f);
    return ok ? waited * 1e-9 : -1;
}

static long rss_server_kib(void) {
    char path[64], line[256];
    long kib = -1;
    snprintf(path, sizeof path, "/proc/%d/status", opt.server_pid);
    FILE *f = fopen(path, "r");
    if (!f) die("cannot read %s", path);
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1) break;
    fclose(f);
    return kib;
}

/* One masked client frame of LEN payload bytes at F (RFC 6455 5.2, 5.3); its length. */
static size_t put_frame(unsigned char *f, int first_byte, const unsigned char *payload,
                        size_t len, const unsigned char key[4]) {
    size_t hlen = len < 126 ? 2 : len < 65536 ? 4 : 10;
    f[0] = (unsigned char)first_byte;
    if (hlen == 2) {
        f[1] = 0x80 | (unsigned char)len;
    } else if (hlen == 4) {
        f[1] = 0x80 | 126;
        f[2] = len >> 8;
        f[3] = len & 0xff;
    } else {
        f[1] = 0x80 | 127;
        for (int j = 0; j < 8; j++) f[2 + j] = (uint64_t)len >> (56 - 8 * j);
    }
    memcpy(f + hlen, key, 4);
    for (size_t j = 0; j < len; j++) f[hlen + 4 + j] = payload[j] ^ key[j & 3];
    return hlen + 4 + len;
}

/* PAYLOAD as the first message of a permessage-deflate stream (RFC 7692 7.2.1): raw deflate,
 * sync flush, its 00 00 ff ff tail removed. Returns the compressed length, written to OUT. */
static size_t deflate_message(const unsigned char *payload, size_t len, unsigned char *out,
                              size_t room) {
    z_stream z = {0};
    if (deflateInit2(&z, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        die("deflateInit2 failed");
    z.next_in = (unsigned char *)payload;
    z.avail_in = len;
    z.next_out = out;
    z.avail_out = room;
    if (deflate(&z, Z_SYNC_FLUSH) != Z_OK || z.avail_in) die("deflate failed");
    size_t n = room - z.avail_out;
    deflateEnd(&z);
    if (n < 4 || memcmp(out + n - 4, "\0\0\xff\xff", 4)) die("deflate: no sync-flush tail");
    return n - 4;
}

/* Build RING_SMALL (or 2 for big messages) distinct payloads, each framed and masked with
 * its own key, back to back, so sending k messages is writing k * frame_len bytes. With
 * --deflate, one compressed frame (every connection sends only one message). */
static void build_frames(void) {
    ring_count = opt.deflate ? 1 : opt.size >= 65536 ? 2 : RING_SMALL;
    size_t room = opt.size + opt.size / 8 + 64;   /* deflate's worst case fits */
    ring = malloc((room + 14) * ring_count);
    payloads = malloc(opt.size * ring_count + 1);
    unsigned char *zout = malloc(room);
    if (!ring || !payloads || !zout) die("out of memory");
    srand(6455);
    ring_len = 0;
    for (unsigned i = 0; i < ring_count; i++) {
        unsigned char *p = payloads + i * opt.size, key[4];
        for (size_t j = 0; j < opt.size; j++)
            p[j] = opt.binary ? (unsigned char)rand() : (unsigned char)('a' + rand() % 26);
        if (opt.socketio) {   /* 42["echo","<letters>"] */
            memcpy(p, "42[\"echo\",\"", 11);
            memcpy(p + opt.size - 2, "\"]", 2);
        }
        for (int j = 0; j < 4; j++) key[j] = (unsigned char)rand();
        int first_byte = 0x80 | (opt.binary ? 2 : 1);
        if (opt.deflate)
            frame_len = put_frame(ring, first_byte | 0x40, zout,
                                  deflate_message(p, opt.size, zout, room), key);
        else
            frame_len = put_frame(ring + ring_len, first_byte, p, opt.size, key);
        ring_len += frame_len;
    }
    free(zout);
    /* A masked close frame, code 1000 (RFC 6455 5.5.1, 7.4.1). */
    unsigned char key[4] = {0x12, 0x34, 0x56, 0x78};
    close_frame[0] = 0x88;
    close_frame[1] = 0x82;
    memcpy(close_frame + 2, key, 4);
    close_frame[6] = 0x03 ^ key[0];
    close_frame[7] = 0xe8 ^ key[1];
    memcpy(sio_connect_frame, close_frame, 6);
    sio_connect_frame[0] = 0x81;
    sio_connect_frame[6] = '4' ^ key[0];
    sio_connect_frame[7] = '0' ^ key[1];
}

static void set_events(struct conn *c, int want_out) {
    if (c->want_out == want_out) return;
    struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0), .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0) die("epoll_ctl: %s", strerror(errno));
    c->want_out = want_out;
}

static void open_conn(struct conn *c) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0) die("socket: %s", strerror(errno));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0 && errno != EINPROGRESS)
        die("connect: %s", strerror(errno));
    double *sent_at = c->sent_at;
    unsigned char *zbuf = c->zbuf;
    int id = c->id;
    memset(c, 0, sizeof *c);
    c->fd = fd;
    c->id = id;
    c->sent_at = sent_at;
    c->zbuf = zbuf;
    c->state = ST_CONNECTING;
    c->start = (unsigned)(id * 7) % ring_count;
    c->out_pos = c->start * frame_len;
    c->hdr_need = 2;
    c->opened_at = now();
    c->want_out = 1;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl: %s", strerror(errno));
    opened_total++;
}

static void close_conn(struct conn *c, int abortive) {
    if (abortive) {
        /* RST instead of FIN: the client side keeps no TIME_WAIT, so churn cannot run out
         * of ephemeral ports. The WebSocket close handshake is already complete here. */
        struct linger lg = {1, 0};
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
}

static void queue_messages(struct conn *c, int k) {
    double t = now();
    for (int i = 0; i < k; i++) c->sent_at[(c->sent + i) % opt.inflight] = t;
    c->sent += k;
    c->out_left += (size_t)k * frame_len;
}

/* Write what is pending; ask epoll for EPOLLOUT only while the socket is full. */
static void flush(struct conn *c) {
    while (c->extra_left) {
        ssize_t n = send(c->fd, c->extra, c->extra_left, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN) { set_events(c, 1); return; }
            die("connection %d: send: %s", c->id, strerror(errno));
        }
        c->extra += n;
        c->extra_left -= n;
    }
    while (c->out_left) {
        struct iovec iov[2];
        size_t first = ring_len - c->out_pos;
        if (first > c->out_left) first = c->out_left;
        iov[0].iov_base = ring + c->out_pos;
        iov[0].iov_len = first;
        size_t second = c->out_left - first;
        if (second > ring_len) second = ring_len;
        iov[1].iov_base = ring;
        iov[1].iov_len = second;
        ssize_t n = writev(c->fd, iov, second ? 2 : 1);
        if (n < 0) {
            if (errno == EAGAIN) { set_events(c, 1); return; }
            die("connection %d: send: %s", c->id, strerror(errno));
        }
        c->out_pos = (c->out_pos + n) % ring_len;
        c->out_left -= n;
    }
    set_events(c, 0);
}

static void handshake_done(struct conn *c) {
    c->state = ST_OPEN;
    if (opt.mode == MODE_ECHO) queue_messages(c, opt.inflight);
    else queue_messages(c, 1);
    flush(c);
}

static void on_message(struct conn *c) {
    double t = now();
    double latency = t - c->sent_at[c->received % opt.inflight];
    c->received++;
    verified++;
    if (opt.mode == MODE_ECHO) {
        if (measuring) {
            long us = (long)(latency * 1e6);
            measured_messages++;
            hist[us < HIST_BUCKETS ? us : HIST_BUCKETS - 1]++;
        }
        if (!stopping) queue_messages(c, 1);    /* written by on_readable, in one batch */
    } else if (opt.mode == MODE_IDLE || opt.mode == MODE_BROADCAST) {
        c->state = ST_IDLE;
        idle_ready++;
    } else {
        c->state = ST_CLOSING;
        c->extra = (const char *)close_frame;
        c->extra_left = sizeof close_frame;
        flush(c);
    }
}

/* The churn cycle ends when the server answers the close (or just closes the TCP connection). */
static void churn_closed(struct conn *c) {
    close_conn(c, 1);
    if (measuring) {
        long us = (long)((now() - c->opened_at) * 1e6);
        measured_messages++;
        hist[us < HIST_BUCKETS ? us : HIST_BUCKETS - 1]++;
    }
    if (!stopping) open_conn(c);
}

/* A compressed echo, whole: inflated (with the tail RFC 7692 7.2.2 restores) and compared
 * with the message sent. Each connection sends one message, so its stream starts here. */
static void check_compressed(struct conn *c, const unsigned char *want) {
    static unsigned char *plain;
    if (!plain && !(plain = malloc(opt.size + 1))) die("out of memory");
    memcpy(c->zbuf + c->zlen, "\0\0\xff\xff", 4);
    z_stream z = {0};
    if (inflateInit2(&z, -15) != Z_OK) die("inflateInit2 failed");
    z.next_in = c->zbuf;
    z.avail_in = c->zlen + 4;
    z.next_out = plain;
    z.avail_out = opt.size + 1;
    int rc = inflate(&z, Z_SYNC_FLUSH);
    size_t got = opt.size + 1 - z.avail_out;
    inflateEnd(&z);
    if ((rc != Z_OK && rc != Z_STREAM_END) || got != opt.size || memcmp(plain, want, got))
        die("connection %d: the compressed echo differs from the message sent", c->id);
    compressed_echoes++;
}

/* Parse the server's frames in [p, p+n): unmasked (RFC 6455 5.1), data payloads compared
 * with what this connection sent, in order. Returns 0 when the connection was closed. */
static int on_frames(struct conn *c, const unsigned char *p, size_t n) {
    while (n) {
        if (!c->in_frame) {
            size_t take = c->hdr_need - c->hdr_have;
            if (take > n) take = n;
            memcpy(c->hdr + c->hdr_have, p, take);
            c->hdr_have += take;
            p += take;
            n -= take;
            if (c->hdr_have < c->hdr_need) continue;
            if (c->hdr_have == 2) {
                if (c->hdr[1] & 0x80) die("connection %d: the server masked a frame", c->id);
                int len7 = c->hdr[1] & 0x7f;
                c->hdr_need = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0);
                if (c->hdr_need > 2) continue;
            }
            uint64_t len = c->hdr[1] & 0x7f;
            if (len == 126) {
                len = (c->hdr[2] << 8) | c->hdr[3];
            } else if (len == 127) {
                len = 0;
                for (int j = 0; j < 8; j++) len = (len << 8) | c->hdr[2 + j];
            }
            c->frame_opcode = c->hdr[0] & 0x0f;
            c->frame_fin = c->hdr[0] & 0x80;
            int rsv = c->hdr[0] & 0x70;
            int starts_message = c->frame_opcode && c->frame_opcode < 8;
            if (rsv && !(rsv == 0x40 && opt.deflate && starts_message))
                die("connection %d: unexpected RSV bits 0x%x", c->id, rsv);
            c->pay_left = len;
            c->in_frame = 1;
            c->hdr_have = 0;
            c->hdr_need = 2;
            if (c->frame_opcode == 8) {
                if (c->state == ST_CLOSING) { churn_closed(c); return 0; }
                die("connection %d: the server sent a close frame", c->id);
            }
            if (c->frame_opcode < 8 && c->state == ST_PREAMBLE) {
                if (c->frame_opcode != 1) die("connection %d: a binary Engine.IO packet", c->id);
                c->in_message = 1;
            } else if (c->frame_opcode < 8 && c->state == ST_BROADCAST) {
                if (c->frame_opcode != 1 || !c->frame_fin || len != opt.size)
                    die("connection %d: the broadcast came as opcode %d, fin %d, %llu bytes",
                        c->id, c->frame_opcode, !!c->frame_fin, (unsigned long long)len);
                c->in_message = 1;
            } else if (c->frame_opcode < 8) {
                int expected = opt.binary ? 2 : 1;
                if (c->frame_opcode == 0 ? !c->in_message
                                         : c->in_message || c->frame_opcode != expected)
                    die("connection %d: unexpected opcode %d", c->id, c->frame_opcode);
                if (c->sent <= c->received) die("connection %d: an echo nobody sent", c->id);
                if (starts_message) c->compressed = rsv != 0;
                if (c->compressed) {
                    if (c->zlen + len + 4 > opt.size + opt.size / 8 + 64)
                        die("connection %d: compressed echo too long", c->id);
                    if (!c->zbuf && !(c->zbuf = malloc(opt.size + opt.size / 8 + 64)))
                        die("out of memory");
                } else if (c->pay_off + len > opt.size) {
                    die("connection %d: echo longer than the message", c->id);
                }
                c->in_message = 1;
            }
        }
        size_t take = c->pay_left < n ? c->pay_left : n;
        const unsigned char *want = c->state == ST_BROADCAST ? bcast_payload :
            payloads + ((c->start + c->received) % ring_count) * opt.size;
        if (c->frame_opcode < 8 && c->compressed) {
            memcpy(c->zbuf + c->zlen, p, take);
            c->zlen += take;
        } else if (c->frame_opcode < 8 && c->state == ST_PREAMBLE) {
            if (c->pay_off == 0 && take && p[0] != (c->preamble ? '4' : '0'))
                die("connection %d: unexpected Engine.IO packet '%c'", c->id, p[0]);
            c->pay_off += take;
        } else if (c->frame_opcode < 8) {
            if (memcmp(want + c->pay_off, p, take))
                die("connection %d: the echo differs from the message sent", c->id);
            c->pay_off += take;
        }
        c->pay_left -= take;
        p += take;
        n -= take;
        if (c->pay_left) continue;
        c->in_frame = 0;
        if (c->frame_opcode < 8 && c->frame_fin && c->state == ST_PREAMBLE) {
            c->pay_off = 0;
            c->in_message = 0;
            if (++c->preamble == 1) {   /* the Engine.IO open: join the namespace */
                c->extra = (const char *)sio_connect_frame;
                c->extra_left = sizeof sio_connect_frame;
                flush(c);
            } else {                    /* its answer: the Socket.IO connection is open */
                handshake_done(c);
            }
        } else if (c->frame_opcode < 8 && c->frame_fin && c->state == ST_BROADCAST) {
            if (c->pay_off != opt.size)
                die("connection %d: broadcast shorter than sent", c->id);
            c->pay_off = 0;
            c->in_message = 0;
            c->state = ST_IDLE;
            long us = (long)((now() - bcast_sent_at) * 1e6);
            hist[us < HIST_BUCKETS ? us : HIST_BUCKETS - 1]++;
            bcast_arrived++;
        } else if (c->frame_opcode < 8 && c->frame_fin) {
            if (c->compressed) check_compressed(c, want);
            else if (c->pay_off != opt.size)
                die("connection %d: echo shorter than the message", c->id);
            c->pay_off = c->zlen = 0;
            c->in_message = 0;
            on_message(c);
            if (c->fd < 0) return 0;
        }
        /* ping and pong payloads are skipped: no server here pings within a run */
    }
    return 1;
}

static int on_handshake(struct conn *c, const unsigned char *p, size_t n) {
    size_t room = sizeof c->resp - 1 - c->resp_len;
    size_t take = n < room ? n : room;
    memcpy(c->resp + c->resp_len, p, take);
    c->resp_len += take;
    c->resp[c->resp_len] = 0;
    char *end = strstr(c->resp, "\r\n\r\n");
    if (!end) {
        if (c->resp_len == sizeof c->resp - 1) die("handshake response too long");
        return 1;
    }
    if (strncmp(c->resp, "HTTP/1.1 101", 12) || !strstr(c->resp, WS_ACCEPT))
        die("connection %d: bad handshake response: %.200s", c->id, c->resp);
    if (opt.deflate && !strcasestr(c->resp, "permessage-deflate"))
        die("connection %d: the server declined permessage-deflate", c->id);
    size_t head = end + 4 - c->resp;
    if (opt.socketio) c->state = ST_PREAMBLE;
    else handshake_done(c);
    /* Frames that came with the response: the rest of resp, then what did not fit in it. */
    if (c->resp_len > head &&
        !on_frames(c, (const unsigned char *)c->resp + head, c->resp_len - head))
        return 0;
    return n == take || on_frames(c, p + take, n - take);
}

static void on_readable(struct conn *c) {
    for (;;) {
        ssize_t n = recv(c->fd, readbuf, sizeof readbuf, 0);
        if (n < 0) {
            if (errno == EAGAIN) return;
            if (c->state == ST_CLOSING && errno == ECONNRESET) { churn_closed(c); return; }
            die("connection %d: recv: %s", c->id, strerror(errno));
        }
        if (n == 0) {
            if (c->state == ST_CLOSING) { churn_closed(c); return; }
            die("connection %d: the server closed the connection", c->id);
        }
        int alive = c->state == ST_HANDSHAKE ? on_handshake(c, readbuf, n)
                                              : on_frames(c, readbuf, n);
        if (!alive) return;
        if (c->out_left) flush(c);
        if ((size_t)n < sizeof readbuf) return;
    }
}

static void on_writable(struct conn *c) {
    if (c->state == ST_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) die("connection %d: connect: %s", c->id, strerror(err));
        c->state = ST_HANDSHAKE;
        c->extra = request;
        c->extra_left = request_len;
    }
    flush(c);
}

static void poll_once(int timeout_ms) {
    struct epoll_event events[256];
    int n = epoll_wait(ep, events, 256, timeout_ms);
    if (n < 0 && errno != EINTR) die("epoll_wait: %s", strerror(errno));
    for (int i = 0; i < n; i++) {
        struct conn *c = events[i].data.ptr;
        if (c->fd < 0) continue;
        int fd = c->fd;
        if (events[i].events & (EPOLLOUT | EPOLLERR)) on_writable(c);
        if (c->fd == fd && events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable(c);
    }
}

static void percentiles(double *p50, double *p99) {
    uint64_t total = 0, seen = 0;
    *p50 = *p99 = -1;
    for (int i = 0; i < HIST_BUCKETS; i++) total += hist[i];
    for (int i = 0; i < HIST_BUCKETS && total; i++) {
        seen += hist[i];
        if (*p50 < 0 && seen * 100 >= total * 50) *p50 = i + 0.5;
        if (*p99 < 0 && seen * 100 >= total * 99) { *p99 = i + 0.5; break; }
    }
}

/* Drive CONNS echo connections or churn workers: warm up, then measure for DURATION. */
static void run_load(struct conn *conns) {
    for (int i = 0; i < opt.conns; i++) open_conn(&conns[i]);
    double t0 = now(), t_start = t0 + opt.warmup, t_end = t_start + opt.duration;
    double cpu0 = 0, srv0 = 0, sys0 = 0, sys1 = 0, wait0 = 0, srv_wait0 = 0;
    uint64_t bytes_factor = opt.size;
    while (!measuring || now() < t_end) {
        poll_once(2);
        if (!measuring && now() >= t_start) {
            measuring = 1;
            t_start = now();
            t_end = t_start + opt.duration;
            cpu0 = cpu_self();
            srv0 = cpu_server(&sys0);
            wait0 = runq_wait(0);
            srv_wait0 = opt.server_pid ? runq_wait(opt.server_pid) : 0;
        }
    }
    double elapsed = now() - t_start, cpu = cpu_self() - cpu0, srv = cpu_server(&sys1) - srv0;
    double waited = runq_wait(0) - wait0;
    double srv_waited = opt.server_pid ? runq_wait(opt.server_pid) - srv_wait0 : -elapsed;
    stopping = 1;
    double p50, p99;
    percentiles(&p50, &p99);
    printf("{\"mode\": \"%s\", \"messages\": %llu, \"seconds\": %.3f, \"rate\": %.1f, "
           "\"mb_per_s\": %.2f, \"p50_us\": %.1f, \"p99_us\": %.1f, \"verified\": %llu, "
           "\"connections_opened\": %llu, \"gen_cpu\": %.3f, \"gen_waited\": %.3f, "
           "\"server_cpu\": %.3f, \"server_sys\": %.3f, \"server_waited\": %.3f, "
           "\"compressed_echoes\": %llu}\n",
           opt.mode == MODE_ECHO ? "echo" : "churn",
           (unsigned long long)measured_messages, elapsed, measured_messages / elapsed,
           measured_messages * (double)bytes_factor / elapsed / 1e6, p50, p99,
           (unsigned long long)verified, (unsigned long long)opened_total, cpu / elapsed,
           waited / elapsed, srv0 < 0 ? -1.0 : srv / elapsed,
           srv0 < 0 ? -1.0 : (sys1 - sys0) / elapsed, srv_waited / elapsed,
           (unsigned long long)compressed_echoes);
}

/* Open COUNT connections, at most MAX_CONNECTING handshakes at a time, each ending idle after
 * one echo. Returns when all are idle. */
static void open_idle(struct conn *conns, int count) {
    int next = 0;
    idle_ready = 0;
    double deadline = now() + 60;
    while (idle_ready < (uint64_t)count) {
        while (next < count && (uint64_t)next - idle_ready < MAX_CONNECTING)
            open_conn(&conns[next++]);
        poll_once(5);
        if (now() > deadline) die("only %llu of %d connections opened in 60 s",
                                  (unsigned long long)idle_ready, count);
    }
}

static void wait_quiet(double seconds) {
    double end = now() + seconds;
    while (now() < end) poll_once(10);
}

static void run_idle(struct conn *conns) {
    /* Warm up: the server's first connections allocate what every later one reuses. */
    int warm = opt.conns < 100 ? opt.conns : 100;
    open_idle(conns, warm);
    for (int i = 0; i < warm; i++) close_conn(&conns[i], 0);
    wait_quiet(opt.settle);
    long before = rss_server_kib();
    double t0 = now();
    open_idle(conns, opt.conns);
    double open_s = now() - t0;
    wait_quiet(opt.settle);
    long after = rss_server_kib();
    printf("{\"mode\": \"idle\", \"connections\": %d, \"rss_before_kib\": %ld, "
           "\"rss_after_kib\": %ld, \"kib_per_connection\": %.2f, \"open_seconds\": %.3f, "
           "\"verified\": %llu, \"compressed_echoes\": %llu}\n",
           opt.conns, before, after, (double)(after - before) / opt.conns, open_s,
           (unsigned long long)verified, (unsigned long long)compressed_echoes);
    fflush(stdout);
    wait_quiet(opt.hold);    /* --hold: a profiler in the server looks at them meanwhile */
    for (int i = 0; i < opt.conns; i++) close_conn(&conns[i], 0);
}

static int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Broadcast mode: CONNS idle connections, then ROUNDS broadcasts triggered by connection 0. */
static void run_broadcast(struct conn *conns) {
    open_idle(conns, opt.conns);
    wait_quiet(opt.settle);
    bcast_payload = malloc(opt.size);
    bcast_frame = malloc(opt.size + 14);
    if (!bcast_payload || !bcast_frame) die("out of memory");
    for (size_t i = 0; i < opt.size; i++) bcast_payload[i] = 'a' + i % 26;
    bcast_payload[0] = '!';
    static const unsigned char key[4] = {0x5a, 0xc3, 0x0f, 0x96};
    bcast_frame_len = put_frame(bcast_frame, 0x81, bcast_payload, opt.size, key);
    double *last = calloc(opt.rounds, sizeof *last);
    if (!last) die("out of memory");
    double cpu0 = cpu_self(), sys0 = 0, sys1 = 0, srv0 = cpu_server(&sys0), t_all = now();
    for (int r = 0; r < opt.rounds; r++) {
        for (int i = 0; i < opt.conns; i++) conns[i].state = ST_BROADCAST;
        bcast_arrived = 0;
        bcast_sent_at = now();
        conns[0].extra = (const char *)bcast_frame;
        conns[0].extra_left = bcast_frame_len;
        flush(&conns[0]);
        double deadline = bcast_sent_at + 60;
        while (bcast_arrived < (uint64_t)opt.conns) {
            poll_once(5);
            if (now() > deadline) die("only %llu of %d connections had broadcast %d in 60 s",
                                      (unsigned long long)bcast_arrived, opt.conns, r);
        }
        last[r] = now() - bcast_sent_at;
        wait_quiet(0.05);   /* a pause between rounds, for the server to settle */
    }
    double elapsed = now() - t_all, cpu = cpu_self() - cpu0, srv = cpu_server(&sys1) - srv0;
    qsort(last, opt.rounds, sizeof *last, compare_doubles);
    double median = last[opt.rounds / 2], p50, p99;
    percentiles(&p50, &p99);
    printf("{\"mode\": \"broadcast\", \"connections\": %d, \"rounds\": %d, "
           "\"last_ms_median\": %.3f, \"last_ms_best\": %.3f, \"rate\": %.1f, "
           "\"p50_us\": %.1f, \"p99_us\": %.1f, \"gen_cpu_per_round_ms\": %.3f, "
           "\"server_cpu_per_round_ms\": %.3f, \"server_sys_per_round_ms\": %.3f, "
           "\"seconds\": %.3f}\n",
           opt.conns, opt.rounds, median * 1e3, last[0] * 1e3, opt.conns / median, p50, p99,
           cpu / opt.rounds * 1e3, srv0 < 0 ? -1.0 : srv / opt.rounds * 1e3,
           srv0 < 0 ? -1.0 : (sys1 - sys0) / opt.rounds * 1e3, elapsed);
    for (int i = 0; i < opt.conns; i++) close_conn(&conns[i], 0);
}

static void usage(void) {
    fprintf(stderr, "usage: loadgen --port N --mode echo|idle|churn|broadcast [--conns N] "
                    "[--inflight N] [--size BYTES] [--binary] [--warmup S] [--duration S] "
                    "[--settle S] [--hold S] [--rounds N] [--server-pid PID] [--deflate] "
                    "[--socketio]\n");
    exit(64);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--binary")) { opt.binary = 1; continue; }
        if (!strcmp(a, "--deflate")) { opt.deflate = 1; continue; }
        if (!strcmp(a, "--socketio")) { opt.socketio = 1; continue; }
        if (!v) usage();
        i++;
        if (!strcmp(a, "--port")) opt.port = atoi(v);
        else if (!strcmp(a, "--conns")) opt.conns = atoi(v);
        else if (!strcmp(a, "--inflight")) opt.inflight = atoi(v);
        else if (!strcmp(a, "--size")) opt.size = strtoul(v, NULL, 10);
        else if (!strcmp(a, "--warmup")) opt.warmup = atof(v);
        else if (!strcmp(a, "--duration")) opt.duration = atof(v);
        else if (!strcmp(a, "--settle")) opt.settle = atof(v);
        else if (!strcmp(a, "--hold")) opt.hold = atof(v);
        else if (!strcmp(a, "--rounds")) opt.rounds = atoi(v);
        else if (!strcmp(a, "--server-pid")) opt.server_pid = atoi(v);
        else if (!strcmp(a, "--mode"))
            opt.mode = !strcmp(v, "echo") ? MODE_ECHO : !strcmp(v, "idle") ? MODE_IDLE
                     : !strcmp(v, "churn") ? MODE_CHURN
                     : !strcmp(v, "broadcast") ? MODE_BROADCAST : (usage(), MODE_ECHO);
        else usage();
    }
    if (!opt.port || opt.conns < 1 || opt.inflight < 1 || opt.size < 1) usage();
    if (opt.mode == MODE_IDLE && !opt.server_pid) die("idle mode needs --server-pid");
    if (opt.mode == MODE_BROADCAST && (opt.binary || opt.deflate || opt.rounds < 1))
        die("broadcast mode sends text, uncompressed, at least one round");
    if (opt.mode != MODE_ECHO) opt.inflight = 1;
    else if (opt.deflate) die("--deflate is for one message per connection: idle or churn");
    if (opt.socketio && (opt.mode != MODE_ECHO || opt.binary || opt.size < 14))
        die("--socketio echoes text events of at least 14 bytes");

    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if ((rlim_t)opt.conns + 64 > rl.rlim_cur)
        die("RLIMIT_NOFILE %lu is too low for %d connections", (unsigned long)rl.rlim_cur,
            opt.conns);
    signal(SIGPIPE, SIG_IGN);

    addr.sin_family = AF_INET;
    addr.sin_port = htons(opt.port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    request_len = snprintf(request, sizeof request,
                           "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                           "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                           "Sec-WebSocket-Version: 13\r\n%s\r\n",
                           opt.socketio ? "/socket.io/?EIO=4&transport=websocket" : "/",
                           opt.port, WS_KEY,
                           opt.deflate ? "Sec-WebSocket-Extensions: permessage-deflate; "
                                         "client_max_window_bits\r\n" : "");
    build_frames();
    hist = calloc(HIST_BUCKETS, sizeof *hist);
    struct conn *conns = calloc(opt.conns, sizeof *conns);
    if (!hist || !conns) die("out of memory");
    for (int i = 0; i < opt.conns; i++) {
        conns[i].id = i;
        conns[i].fd = -1;
        conns[i].sent_at = calloc(opt.inflight, sizeof(double));
        if (!conns[i].sent_at) die("out of memory");
    }
    ep = epoll_create1(0);
    if (opt.mode == MODE_IDLE) run_idle(conns);
    else if (opt.mode == MODE_BROADCAST) run_broadcast(conns);
    else run_load(conns);
    fflush(stdout);
    return 0;
}
