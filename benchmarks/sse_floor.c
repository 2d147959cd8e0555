/*
 * sse_floor: the floor for fan-out (issue 23) — a minimal Server-Sent Events broadcaster that does
 * nothing but what delivery needs: accept, answer any GET with SSE headers and keep the socket,
 * and on `POST /__beacon/publish` (Beacon's own request, so the same load client and publisher
 * drive both) write the event to every held stream with one write() each, from T threads that
 * each own an equal share of the streams. No parsing beyond finding the body's "data" value, no
 * history, no ids, no backpressure: what no real server can go below.
 *
 *   sse_floor --port P [--threads 1|2]
 *
 * Prints "LISTENING port=P" once it accepts. Stops on SIGTERM/SIGINT. Loopback only.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define MAX_THREADS 2
#define MAX_EVENTS 256

static const char SSE_HEAD[] =
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\r\n";
static const char ACCEPTED[] =
    "HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 10\r\n\r\n{\"id\":\"1\"}";

struct worker {
    pthread_t thread;
    int epoll;
    int wake;              /* eventfd: an event to write */
    int *streams;          /* the sockets this thread writes to */
    int count, capacity;
    pthread_mutex_t lock;  /* guards streams (added by the acceptor's thread) */
};

static struct worker workers[MAX_THREADS];
static int thread_count = 1;
static volatile sig_atomic_t stopping = 0;
static char event_buf[256];
static int event_len = 0;

static void on_signal(int sig) { (void)sig; stopping = 1; }

static void add_stream(struct worker *w, int fd) {
    pthread_mutex_lock(&w->lock);
    if (w->count == w->capacity) {
        w->capacity = w->capacity ? w->capacity * 2 : 1024;
        w->streams = realloc(w->streams, sizeof(int) * w->capacity);
    }
    w->streams[w->count++] = fd;
    pthread_mutex_unlock(&w->lock);
}

static void *write_loop(void *arg) {
    struct worker *w = arg;
    struct epoll_event ev;
    while (!stopping) {
        int n = epoll_wait(w->epoll, &ev, 1, 200);
        if (n <= 0) continue;
        uint64_t value;
        if (read(w->wake, &value, sizeof value) != sizeof value) continue;
        pthread_mutex_lock(&w->lock);
        int kept = 0;
        for (int i = 0; i < w->count; i++) {
            ssize_t written = write(w->streams[i], event_buf, event_len);
            if (written < 0 && errno != EAGAIN) { close(w->streams[i]); continue; }
            w->streams[kept++] = w->streams[i];
        }
        w->count = kept;
        pthread_mutex_unlock(&w->lock);
    }
    return NULL;
}

/* The value of "data":"..." in a JSON body, copied into the event; 0 if there is none. */
static int make_event(const char *body, int len) {
    const char *key = memmem(body, len, "\"data\"", 6);
    if (!key) return 0;
    const char *open = memchr(key + 6, '"', body + len - (key + 6));
    if (!open) return 0;
    const char *close_ = memchr(open + 1, '"', body + len - (open + 1));
    if (!close_ || close_ - open - 1 > 200) return 0;
    event_len = snprintf(event_buf, sizeof event_buf, "data: %.*s\n\n", (int)(close_ - open - 1), open + 1);
    return 1;
}

struct conn { int fd; char buf[2048]; int len; };

int main(int argc, char **argv) {
    int port = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--port")) port = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads")) thread_count = atoi(argv[i + 1]);
    }
    if (thread_count < 1 || thread_count > MAX_THREADS || port <= 0) {
        fprintf(stderr, "usage: sse_floor --port P [--threads 1|2]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);

    int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons(port) };
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(listener, (struct sockaddr *)&addr, sizeof addr) || listen(listener, 4096)) {
        perror("sse_floor: listen");
        return 1;
    }
    for (int t = 0; t < thread_count; t++) {
        struct worker *w = &workers[t];
        pthread_mutex_init(&w->lock, NULL);
        w->epoll = epoll_create1(0);
        w->wake = eventfd(0, EFD_NONBLOCK);
        struct epoll_event ev = { .events = EPOLLIN, .data.fd = w->wake };
        epoll_ctl(w->epoll, EPOLL_CTL_ADD, w->wake, &ev);
        pthread_create(&w->thread, NULL, write_loop, w);
    }
    /* The main thread accepts and reads requests; streams go to the writers round-robin. */
    int ep = epoll_create1(0);
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
    epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev);
    printf("LISTENING port=%d\n", port);
    fflush(stdout);
    int next = 0;
    struct epoll_event events[MAX_EVENTS];
    while (!stopping) {
        int n = epoll_wait(ep, events, MAX_EVENTS, 200);
        for (int i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;
            if (c == NULL) {
                for (;;) {
                    int fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK);
                    if (fd < 0) break;
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct conn *nc = calloc(1, sizeof *nc);
                    nc->fd = fd;
                    struct epoll_event cev = { .events = EPOLLIN, .data.ptr = nc };
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
                }
                continue;
            }
            ssize_t got = read(c->fd, c->buf + c->len, sizeof c->buf - 1 - c->len);
            if (got <= 0) {
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                close(c->fd);
                free(c);
                continue;
            }
            c->len += got;
            c->buf[c->len] = 0;
            char *end = strstr(c->buf, "\r\n\r\n");
            if (!end) continue;
            if (!strncmp(c->buf, "POST", 4)) {
                char *length = strcasestr(c->buf, "content-length:");
                int body_len = length ? atoi(length + 15) : 0;
                int have = c->len - (int)(end + 4 - c->buf);
                if (have < body_len) continue;
                if (make_event(end + 4, body_len)) {
                    for (int t = 0; t < thread_count; t++) {
                        uint64_t value = 1;
                        if (write(workers[t].wake, &value, sizeof value) < 0) perror("sse_floor: wake");
                    }
                }
                if (write(c->fd, ACCEPTED, sizeof ACCEPTED - 1) < 0) perror("sse_floor: answer");
                int used = (int)(end + 4 - c->buf) + body_len;
                memmove(c->buf, c->buf + used, c->len - used);
                c->len -= used;
            } else {
                /* A stream: headers now, then it belongs to a writer and leaves this loop. */
                if (write(c->fd, SSE_HEAD, sizeof SSE_HEAD - 1) < 0) { close(c->fd); free(c); continue; }
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                add_stream(&workers[next], c->fd);
                next = (next + 1) % thread_count;
                free(c);
            }
        }
    }
    return 0;
}
