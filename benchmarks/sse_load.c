/*
 * sse_load: hold N Server-Sent Events streams open with one epoll loop, then time one event's
 * delivery to every one of them.
 *
 *   gcc -O2 -o sse_load sse_load.c
 *   sse_load --port P -n N [--host 127.0.0.1] [--path '/__beacon/events?channel=bench']
 *            [--src-first 2] [--src-count 8] [--ready headers|connect] [--max-inflight 256]
 *            [--connect-timeout 120] [--wait 120] [--linger 15]
 *            [--rounds 1] [--dump FILE] [--hold 0] [--browser no]
 *
 * Connection i binds its source address to 127.0.0.(src-first + i % src-count) (with
 * IP_BIND_ADDRESS_NO_PORT, so the ephemeral port is chosen at connect time per 4-tuple), which
 * lets one client open more than the ~28k connections one source address allows.
 *
 * Readiness: with --ready headers (default) a stream counts once its response headers (status 200)
 * have arrived; with --ready connect once its TCP connection is established and the request sent
 * (for servers such as Flask-SSE that send no headers before the first event). When every stream
 * is ready, or --connect-timeout has passed, it prints one line and flushes:
 *
 *   READY connected=N headers=N failed=F elapsed_ms=T
 *
 * It then waits for an event whose data is a decimal CLOCK_MONOTONIC timestamp in nanoseconds
 * (optionally JSON-quoted, as Flask-SSE sends it), records arrival - stamp per stream, and ends when
 * every ready stream has one, --linger seconds after the first arrival, or --wait seconds after
 * READY, printing:
 *
 *   RESULT ready=R received=X lost=L closed=C p50_ms= p99_ms= max_ms= t50_ms= t99_ms= t100_ms=
 *
 * p50/p99/max are over the streams that received the event; tXX is the time from the stamp until
 * XX% of the ready streams had it ("NA" if that many never did). Every loop is bounded in time.
 * Only loopback addresses are used.
 *
 * Several rounds (--rounds R, at most 64): R stamped events, published one after the other, each
 * told apart by its stamp (the first R distinct stamps seen). Each round ends like the single
 * event above (--wait counts from READY for the first round, from the previous round's end for the
 * next) and prints its RESULT line with round=K (1-based; also printed for a single round). An
 * event of a round that has already ended counts as late, not as received. --dump FILE appends
 * each round's raw latencies, one "K NS" line per stream that received it, when the round ends.
 *
 * --hold S: after the last round, keep every stream open and reading for up to S seconds, or
 * until stdin (a pipe) reaches end of file, counting every event with data (stamped or not). A
 * line "COUNT" on stdin prints the count so far; at the end it prints:
 *
 *   HELD events=N closed=C late=L done=1
 *
 * --browser yes sends the request headers headless Chromium sends for a same-origin EventSource
 * (about 550 bytes) instead of a minimal request: a server's memory per stream can depend on it.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

enum state { S_IDLE = 0, S_CONNECTING, S_HEADERS, S_STREAM, S_DONE, S_FAILED };

#define HBUF 2048
#define LBUF 512

struct conn {
    int fd;
    unsigned char state;
    unsigned char chunked;
    unsigned char closed;    /* closed by the peer after becoming ready */
    unsigned char retries;
    /* chunked decoding: 0 = reading size line, 1 = in data, 2 = CRLF after data */
    unsigned char cstate;
    long chunk_left;
    char *hbuf;              /* header buffer, freed once headers are parsed */
    int hlen;
    char line[LBUF];         /* current SSE line */
    int llen;
    char data[64];           /* last data: field of the current event (truncated) */
    int dlen;
    char sizeline[20];
    int slen;
    uint64_t got_mask;       /* bit K: received round K's stamped event */
};

static struct conn *conns;
static long n_conns;
static int epfd;
static int ready_mode_headers = 1;
static long n_connected, n_headers, n_failed, n_closed_after;
static int ready_printed;

#define MAX_ROUNDS 64
#define STDIN_MARK UINT64_MAX
static int n_rounds = 1;          /* --rounds */
static int rounds_seen;           /* distinct stamps seen so far */
static int cur_round;             /* the round being timed; == n_rounds once all ended */
static int64_t round_stamp[MAX_ROUNDS];
static int64_t *round_lat[MAX_ROUNDS];
static long round_recv[MAX_ROUNDS];
static int64_t round_first[MAX_ROUNDS];
static long n_late, n_hold_events;
static int holding;
/* the round being reported: latencies / n_received / first_arrival_ns point at its figures */
static int64_t *latencies;
static long n_received;

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static const char *host = "127.0.0.1";
static int port = 0;
static const char *path = "/__beacon/events?channel=bench";
static int src_first = 2, src_count = 8;
static char request[2048];
static int request_len;

static int start_connect(long i) {
    struct conn *c = &conns[i];
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, SOL_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in src = {0};
    src.sin_family = AF_INET;
    src.sin_addr.s_addr = htonl((127u << 24) | (unsigned)(src_first + (int)(i % src_count)));
    if (bind(fd, (struct sockaddr *)&src, sizeof src) < 0) {
        close(fd);
        return -1;
    }
    struct sockaddr_in dst = {0};
    dst.sin_family = AF_INET;
    dst.sin_port = htons((unsigned short)port);
    inet_pton(AF_INET, host, &dst.sin_addr);
    if (connect(fd, (struct sockaddr *)&dst, sizeof dst) < 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    c->fd = fd;
    c->state = S_CONNECTING;
    struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN | EPOLLRDHUP, .data.u64 = (uint64_t)i};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        close(fd);
        c->fd = -1;
        return -1;
    }
    return 0;
}

static void fail_conn(long i) {
    struct conn *c = &conns[i];
    if (c->fd >= 0) {
        epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
    free(c->hbuf);
    c->hbuf = NULL;
    if (c->state == S_STREAM || c->state == S_DONE) {
        c->closed = 1;
        n_closed_after++;
    } else {
        n_failed++;
    }
    c->state = S_FAILED;
}

static void dispatch_event(long i, int64_t t) {
    struct conn *c = &conns[i];
    if (c->dlen == 0) return;
    if (holding) n_hold_events++;
    const char *p = c->data;
    int len = c->dlen;
    while (len > 0 && (*p == ' ' || *p == '"')) { p++; len--; }
    while (len > 0 && (p[len - 1] == '"' || p[len - 1] == ' ')) len--;
    if (len == 0 || len > 19) return;
    int64_t v = 0;
    for (int k = 0; k < len; k++) {
        if (p[k] < '0' || p[k] > '9') return;
        v = v * 10 + (p[k] - '0');
    }
    int k = 0;
    while (k < rounds_seen && round_stamp[k] != v) k++;
    if (k == rounds_seen) {
        if (rounds_seen >= n_rounds) return; /* more stamps than rounds: not timed */
        round_stamp[rounds_seen++] = v;
    }
    if (c->got_mask & (1ULL << k)) return;
    c->got_mask |= 1ULL << k;
    if (k < cur_round) {
        n_late++;
        return;
    }
    round_lat[k][round_recv[k]++] = t - v;
    if (round_first[k] == 0) round_first[k] = t;
}

static void sse_line(long i, int64_t t) {
    struct conn *c = &conns[i];
    int len = c->llen;
    if (len > 0 && c->line[len - 1] == '\r') len--;
    if (len == 0) {
        dispatch_event(i, t);
        c->dlen = 0;
        return;
    }
    if (len >= 5 && memcmp(c->line, "data:", 5) == 0) {
        int n = len - 5;
        if (n > (int)sizeof c->data) n = sizeof c->data;
        memcpy(c->data, c->line + 5, (size_t)n);
        c->dlen = n;
    }
}

static void sse_bytes(long i, const char *p, long n, int64_t t) {
    struct conn *c = &conns[i];
    for (long k = 0; k < n; k++) {
        char ch = p[k];
        if (ch == '\n') {
            sse_line(i, t);
            c->llen = 0;
        } else if (c->llen < LBUF) {
            c->line[c->llen++] = ch;
        }
    }
}

/* Feeds body bytes through the chunked decoder (if any) into the SSE parser. */
static void body_bytes(long i, const char *p, long n, int64_t t) {
    struct conn *c = &conns[i];
    if (!c->chunked) {
        sse_bytes(i, p, n, t);
        return;
    }
    long k = 0;
    while (k < n) {
        if (c->cstate == 0) {
            char ch = p[k++];
            if (ch == '\n') {
                c->sizeline[c->slen < (int)sizeof c->sizeline ? c->slen : (int)sizeof c->sizeline - 1] = 0;
                c->chunk_left = strtol(c->sizeline, NULL, 16);
                c->slen = 0;
                c->cstate = c->chunk_left > 0 ? 1 : 3;
            } else if (c->slen < (int)sizeof c->sizeline - 1) {
                c->sizeline[c->slen++] = ch;
            }
        } else if (c->cstate == 1) {
            long take = n - k < c->chunk_left ? n - k : c->chunk_left;
            sse_bytes(i, p + k, take, t);
            k += take;
            c->chunk_left -= take;
            if (c->chunk_left == 0) c->cstate = 2;
        } else if (c->cstate == 2) {
            if (p[k++] == '\n') c->cstate = 0;
        } else {
            k = n; /* last chunk: ignore trailers */
        }
    }
}

static void became_ready_headers(long i) {
    (void)i;
    n_headers++;
}

static void parse_headers(long i, int64_t t) {
    struct conn *c = &conns[i];
    char *end = memmem(c->hbuf, (size_t)c->hlen, "\r\n\r\n", 4);
    if (!end) {
        if (c->hlen >= HBUF) fail_conn(i);
        return;
    }
    *end = 0;
    int ok = strncmp(c->hbuf, "HTTP/1.", 7) == 0 && strncmp(c->hbuf + 8, " 200", 4) == 0;
    if (!ok) {
        fail_conn(i);
        return;
    }
    for (char *q = c->hbuf; *q; q++) *q = (char)((*q >= 'A' && *q <= 'Z') ? *q + 32 : *q);
    c->chunked = strstr(c->hbuf, "transfer-encoding: chunked") != NULL;
    long rest = c->hlen - (long)(end + 4 - c->hbuf);
    char tail[HBUF];
    memcpy(tail, end + 4, (size_t)rest);
    free(c->hbuf);
    c->hbuf = NULL;
    c->state = S_STREAM;
    became_ready_headers(i);
    if (rest > 0) body_bytes(i, tail, rest, t);
}

static void on_readable(long i) {
    struct conn *c = &conns[i];
    char buf[16384];
    for (int rounds = 0; rounds < 64; rounds++) {
        ssize_t r = read(c->fd, buf, sizeof buf);
        int64_t t = now_ns();
        if (r == 0) {
            fail_conn(i);
            return;
        }
        if (r < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            if (errno == EINTR) continue;
            fail_conn(i);
            return;
        }
        if (c->state == S_HEADERS) {
            if (!c->hbuf) c->hbuf = malloc(HBUF + 1);
            long room = HBUF - c->hlen;
            long take = r < room ? r : room;
            memcpy(c->hbuf + c->hlen, buf, (size_t)take);
            c->hlen += (int)take;
            parse_headers(i, t);
            if (c->state == S_STREAM && take < r) body_bytes(i, buf + take, r - take, t);
            if (c->state == S_FAILED) return;
        } else if (c->state == S_STREAM || c->state == S_DONE) {
            body_bytes(i, buf, r, t);
        }
    }
}

static void on_writable(long i) {
    struct conn *c = &conns[i];
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
        epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
        c->state = S_IDLE;
        if (c->retries++ < 5 && start_connect(i) == 0) return;
        c->state = S_CONNECTING;
        fail_conn(i);
        return;
    }
    ssize_t w = write(c->fd, request, (size_t)request_len);
    if (w != request_len) {
        fail_conn(i);
        return;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.u64 = (uint64_t)i};
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
    c->state = S_HEADERS;
    n_connected++;
}

static int cmp64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void fmt_ms(char *out, size_t n, long idx) {
    if (idx < 0 || idx >= n_received) snprintf(out, n, "NA");
    else snprintf(out, n, "%.3f", (double)latencies[idx] / 1e6);
}

static FILE *dump_file;

/* Prints round k's RESULT line (and appends its raw latencies to --dump). */
static void report_round(int k) {
    latencies = round_lat[k];
    n_received = round_recv[k];
    long ready = ready_mode_headers ? n_headers : n_connected;
    qsort(latencies, (size_t)n_received, sizeof *latencies, cmp64);
    char p50[32], p99[32], mx[32], t50[32], t99[32], t100[32];
    /* nearest rank: the k-th smallest, k = ceil(p% * count) */
    fmt_ms(p50, sizeof p50, n_received ? (long)((n_received * 50 + 99) / 100) - 1 : -1);
    fmt_ms(p99, sizeof p99, n_received ? (long)((n_received * 99 + 99) / 100) - 1 : -1);
    fmt_ms(mx, sizeof mx, n_received - 1);
    /* time until XX% of the ready streams had the event: the k-th smallest latency, k = ceil(XX% * ready) */
    long k50 = (long)((ready * 50 + 99) / 100) - 1, k99 = (long)((ready * 99 + 99) / 100) - 1, k100 = ready - 1;
    fmt_ms(t50, sizeof t50, ready ? k50 : -1);
    fmt_ms(t99, sizeof t99, ready ? k99 : -1);
    fmt_ms(t100, sizeof t100, ready ? k100 : -1);
    long lost = ready - n_received;
    printf("RESULT round=%d ready=%ld connected=%ld headers=%ld failed=%ld received=%ld lost=%ld closed=%ld p50_ms=%s "
           "p99_ms=%s max_ms=%s t50_ms=%s t99_ms=%s t100_ms=%s\n",
           k + 1, ready, n_connected, n_headers, n_failed, n_received, lost < 0 ? 0 : lost, n_closed_after, p50, p99,
           mx, t50, t99, t100);
    fflush(stdout);
    if (dump_file) {
        for (long j = 0; j < n_received; j++) fprintf(dump_file, "%d %lld\n", k + 1, (long long)latencies[j]);
        fflush(dump_file);
    }
}

static void usage(void) {
    fprintf(stderr,
            "usage: sse_load --port P -n N [--host 127.0.0.1] [--path PATH] [--src-first 2] [--src-count 8]\n"
            "                [--ready headers|connect] [--max-inflight 256] [--connect-timeout 120]\n"
            "                [--wait 120] [--linger 15] [--rounds 1] [--dump FILE] [--hold 0] [--browser no]\n");
    exit(2);
}

int main(int argc, char **argv) {
    long max_inflight = 256;
    double connect_timeout = 120, wait_s = 120, linger_s = 15, hold_s = 0;
    const char *dump_path = NULL;
    int browser = 0;
    for (int a = 1; a < argc; a++) {
        const char *k = argv[a];
        if (a + 1 >= argc) usage();
        const char *v = argv[++a];
        if (!strcmp(k, "--port")) port = atoi(v);
        else if (!strcmp(k, "-n")) n_conns = atol(v);
        else if (!strcmp(k, "--host")) host = v;
        else if (!strcmp(k, "--path")) path = v;
        else if (!strcmp(k, "--src-first")) src_first = atoi(v);
        else if (!strcmp(k, "--src-count")) src_count = atoi(v);
        else if (!strcmp(k, "--ready")) ready_mode_headers = strcmp(v, "connect") != 0;
        else if (!strcmp(k, "--max-inflight")) max_inflight = atol(v);
        else if (!strcmp(k, "--connect-timeout")) connect_timeout = atof(v);
        else if (!strcmp(k, "--wait")) wait_s = atof(v);
        else if (!strcmp(k, "--linger")) linger_s = atof(v);
        else if (!strcmp(k, "--rounds")) n_rounds = atoi(v);
        else if (!strcmp(k, "--dump")) dump_path = v;
        else if (!strcmp(k, "--hold")) hold_s = atof(v);
        else if (!strcmp(k, "--browser")) browser = !strcmp(v, "yes");
        else usage();
    }
    if (port <= 0 || n_conns <= 0 || src_count <= 0 || src_first < 1 || src_first + src_count > 255) usage();
    if (n_rounds < 1 || n_rounds > MAX_ROUNDS || hold_s < 0 || hold_s > 3600 || wait_s > 3600) usage();
    if (dump_path && !(dump_file = fopen(dump_path, "w"))) {
        perror("sse_load: --dump");
        return 2;
    }
    if (strncmp(host, "127.", 4) != 0) {
        fprintf(stderr, "sse_load: only loopback (127.x.x.x) targets are allowed\n");
        return 2;
    }

    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
    printf("LIMIT nofile=%lu\n", (unsigned long)rl.rlim_cur);
    if ((unsigned long)n_conns + 16 > (unsigned long)rl.rlim_cur) {
        fprintf(stderr, "sse_load: warning: %ld connections need more than the open-files limit %lu\n", n_conns,
                (unsigned long)rl.rlim_cur);
    }
    fflush(stdout);

    if (browser)  /* what headless Chromium 156 sends for a same-origin EventSource (548 bytes on port 8977) */
        request_len = snprintf(request, sizeof request,
                               "GET %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: keep-alive\r\nPragma: no-cache\r\n"
                               "Cache-Control: no-cache\r\nsec-ch-ua-platform: \"Linux\"\r\n"
                               "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                               "HeadlessChrome/156.0.0.0 Safari/537.36\r\nAccept: text/event-stream\r\n"
                               "sec-ch-ua: \"Not:A-Brand\";v=\"8\", \"Chromium\";v=\"156\"\r\nsec-ch-ua-mobile: ?0\r\n"
                               "Sec-Fetch-Site: same-origin\r\nSec-Fetch-Mode: cors\r\nSec-Fetch-Dest: empty\r\n"
                               "Referer: http://%s:%d/\r\nAccept-Encoding: gzip, deflate, br, zstd\r\n"
                               "Accept-Language: en-US,en;q=0.9\r\n\r\n",
                               path, host, port, host, port);
    else
        request_len = snprintf(request, sizeof request,
                               "GET %s HTTP/1.1\r\nHost: %s:%d\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n",
                               path, host, port);
    conns = calloc((size_t)n_conns, sizeof *conns);
    if (!conns) return 1;
    for (int k = 0; k < n_rounds; k++)
        if (!(round_lat[k] = calloc((size_t)n_conns, sizeof(int64_t)))) return 1;
    for (long i = 0; i < n_conns; i++) conns[i].fd = -1;
    epfd = epoll_create1(EPOLL_CLOEXEC);

    struct epoll_event events[1024];
    int64_t t0 = now_ns();
    int64_t round_start = 0, hold_start = 0;
    int stdin_polled = 0, stdin_eof = 0;
    (void)stdin_polled;
    long next = 0;
    for (;;) {
        int64_t now = now_ns();
        long inflight;
        if (ready_mode_headers) inflight = next - n_headers - n_failed - n_closed_after;
        else inflight = next - n_connected - n_failed;
        while (!ready_printed && next < n_conns && inflight < max_inflight) {
            if (start_connect(next) < 0) {
                conns[next].state = S_CONNECTING;
                fail_conn(next);
            }
            next++;
            inflight++;
        }
        long ready_now = ready_mode_headers ? n_headers : n_connected;
        if (!ready_printed &&
            ((next == n_conns && ready_now + n_failed >= n_conns) || (now - t0) > (int64_t)(connect_timeout * 1e9))) {
            ready_printed = 1;
            round_start = now;
            printf("READY connected=%ld headers=%ld failed=%ld elapsed_ms=%.1f\n", n_connected, n_headers, n_failed,
                   (double)(now - t0) / 1e6);
            fflush(stdout);
        }
        if (ready_printed && !holding) {
            long target = (ready_mode_headers ? n_headers : n_connected);
            int k = cur_round;
            if ((round_recv[k] >= target && round_recv[k] > 0) || now - round_start > (int64_t)(wait_s * 1e9) ||
                (round_first[k] && now - round_first[k] > (int64_t)(linger_s * 1e9))) {
                report_round(k);
                cur_round++;
                round_start = now;
                if (cur_round == n_rounds) {
                    if (hold_s <= 0) break;
                    holding = 1;
                    hold_start = now;
                    /* stdin, when it is a pipe: "COUNT" lines and end of file (a file or /dev/null cannot be polled) */
                    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.u64 = STDIN_MARK};
                    stdin_polled = epoll_ctl(epfd, EPOLL_CTL_ADD, 0, &ev) == 0;
                }
            }
        }
        if (holding && (stdin_eof || now - hold_start > (int64_t)(hold_s * 1e9))) break;
        int n = epoll_wait(epfd, events, 1024, 100);
        if (n < 0 && errno != EINTR) break;
        for (int e = 0; e < n; e++) {
            if (events[e].data.u64 == STDIN_MARK) {
                char in[256];
                ssize_t r = read(0, in, sizeof in);
                if (r <= 0) {
                    stdin_eof = 1;
                    epoll_ctl(epfd, EPOLL_CTL_DEL, 0, NULL);
                } else if (memmem(in, (size_t)r, "COUNT", 5)) {
                    printf("HELD events=%ld closed=%ld late=%ld done=0\n", n_hold_events, n_closed_after, n_late);
                    fflush(stdout);
                }
                continue;
            }
            long i = (long)events[e].data.u64;
            struct conn *c = &conns[i];
            if (c->state == S_FAILED || c->fd < 0) continue;
            if (c->state == S_CONNECTING) {
                if (events[e].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) on_writable(i);
                continue;
            }
            if (events[e].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) on_readable(i);
        }
    }
    /* rounds that never ended (epoll failure) still get their line */
    while (cur_round < n_rounds) report_round(cur_round++);
    if (holding) {
        printf("HELD events=%ld closed=%ld late=%ld done=1\n", n_hold_events, n_closed_after, n_late);
        fflush(stdout);
    }
    if (dump_file) fclose(dump_file);
    return 0;
}
