// SPDX-License-Identifier: MIT
/*
 * esca-check: a checking client for the real-server tests (tests/servers/).
 *
 * It fetches or stores known objects through a server's own protocol (HTTP/1.1,
 * Redis RESP, memcached text) and compares every byte with content it
 * regenerates itself: byte i of an object of n bytes is (i * 131 + n) % 251,
 * the rule the docroot helper writes the files with.
 *
 * Exit 0 only if every request got its answer and every byte matched. The
 * first failure prints one line (object, mode, connection, round, and for a
 * mismatch the byte offset, expected and got) and exits 1 at once: later
 * traffic would only hide which request went wrong first.
 */
#define _GNU_SOURCE

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#define NOBJ 5
#define MAX_LINE 16384 /* longest status, header or reply line accepted */
#define MAX_HEADERS 100
#define MAX_ROUNDS 100000
#define MAX_CONNS 1024
#define MIB (1024u * 1024u)

enum proto { P_HTTP, P_REDIS, P_MEMCACHED };
static const char *const proto_name[] = { "http", "redis", "memcached" };
static const unsigned proto_modes[] = { 3, 2, 2 };

struct object {
	char name[32]; /* the docroot file name; used in messages */
	size_t size;
	uint8_t *data; /* expected content, shared read-only by all workers */
};

static struct {
	enum proto proto;
	const char *host, *port;
	char hostport[300]; /* "host:port", IPv6 in brackets: Host header */
	unsigned rounds, conns;
	int timeout_ms;
	size_t max_item; /* memcached's item size limit (its -I) */
	struct object obj[NOBJ];
	struct addrinfo *ai;
} cfg = { .rounds = 3, .conns = 1, .timeout_ms = 10000, .max_item = MIB };

/* Where a worker is, so a failure line can say which request went wrong. */
struct job {
	unsigned conn; /* worker index, 0-based */
	const char *object;
	const char *mode;
	unsigned round; /* 0-based here, printed 1-based */
	uint64_t requests; /* requests answered and checked */
	uint64_t bytes; /* object bytes received and verified */
};

static pthread_mutex_t fail_lock = PTHREAD_MUTEX_INITIALIZER;

/*
 * Print one failure line and exit 1. The lock is never released: a second
 * worker failing at the same moment waits here until the process is gone, so
 * exactly one line comes out.
 */
static void fail(const struct job *job, const char *kind, const char *fmt, ...)
	__attribute__((noreturn, format(printf, 3, 4)));
static void die(const char *fmt, ...)
	__attribute__((noreturn, format(printf, 1, 2)));

static void fail(const struct job *job, const char *kind, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&fail_lock);
	fprintf(stderr, "esca-check: %s %s: %s: object %s, mode %s, conn %u",
		proto_name[cfg.proto], cfg.hostport, kind, job->object,
		job->mode, job->conn);
	if (job->round != UINT_MAX)
		fprintf(stderr, ", round %u", job->round + 1);
	fputs(": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
	_exit(1);
}

static void die(const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&fail_lock);
	fputs("esca-check: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
	_exit(1);
}

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		die("out of memory (%zu bytes)", n);
	return p;
}

/*
 * Output batch, sent with one conn_send: text (request lines, keys) is
 * copied, object data only referenced, so a pipelined batch of 1 MiB values
 * costs no copy.
 */
struct seg {
	const void *ext; /* NULL: the bytes are text[off, off + len) */
	size_t off, len;
};

struct obuf {
	char *text;
	size_t tlen, tcap;
	struct seg *seg;
	size_t nseg, segcap;
};

static void ob_reset(struct obuf *b)
{
	b->tlen = 0;
	b->nseg = 0;
}

static void ob_free(struct obuf *b)
{
	free(b->text);
	free(b->seg);
}

static struct seg *ob_seg(struct obuf *b)
{
	if (b->nseg == b->segcap) {
		b->segcap = b->segcap ? 2 * b->segcap : 16;
		b->seg = xrealloc(b->seg, b->segcap * sizeof(*b->seg));
	}
	return &b->seg[b->nseg++];
}

static void ob_put(struct obuf *b, const void *p, size_t n)
{
	struct seg *s = b->nseg ? &b->seg[b->nseg - 1] : NULL;

	if (!n)
		return;
	if (b->tlen + n > b->tcap) {
		b->tcap = (b->tlen + n) * 2;
		b->text = xrealloc(b->text, b->tcap);
	}
	memcpy(b->text + b->tlen, p, n);
	if (s && !s->ext && s->off + s->len == b->tlen) {
		s->len += n;
	} else {
		s = ob_seg(b);
		s->ext = NULL;
		s->off = b->tlen;
		s->len = n;
	}
	b->tlen += n;
}

/* Reference n bytes at p; they must stay unchanged until sent. */
static void ob_ref(struct obuf *b, const void *p, size_t n)
{
	struct seg *s;

	if (!n)
		return;
	s = ob_seg(b);
	s->ext = p;
	s->off = 0;
	s->len = n;
}

__attribute__((format(printf, 2, 3))) static void
ob_printf(struct obuf *b, const char *fmt, ...)
{
	char tmp[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(tmp))
		die("internal: request line too long");
	ob_put(b, tmp, (size_t)n);
}

/* ---- connection: a socket with a read buffer and a timeout per wait ---- */

struct conn {
	int fd;
	bool eof; /* the server closed its side */
	uint8_t *buf;
	size_t cap, head, tail; /* unread bytes are buf[head, tail) */
	struct job *job;
};

/* Wait for events; a wait longer than --timeout is a failure. */
static short conn_wait(struct conn *c, short events, const char *what)
{
	struct pollfd pfd = { .fd = c->fd, .events = events };
	int n;

	do
		n = poll(&pfd, 1, cfg.timeout_ms);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		fail(c->job, "error", "poll: %s", strerror(errno));
	if (n == 0)
		fail(c->job, "timeout", "nothing for %d s while %s",
		     cfg.timeout_ms / 1000, what);
	return pfd.revents;
}

static void conn_open(struct conn *c, struct job *job)
{
	const struct addrinfo *ai;
	int err = 0, fd = -1, one = 1;
	socklen_t len;

	c->job = job;
	c->eof = false;
	c->head = c->tail = 0;
	if (!c->buf) {
		c->cap = 65536;
		c->buf = xrealloc(NULL, c->cap);
	}
	for (ai = cfg.ai; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family,
			    ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
			    ai->ai_protocol);
		if (fd < 0) {
			err = errno;
			continue;
		}
		c->fd = fd;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		err = errno;
		if (err == EINPROGRESS) {
			conn_wait(c, POLLOUT, "connecting");
			len = sizeof(err);
			if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len))
				err = errno;
			if (!err)
				break;
		}
		close(fd);
		fd = -1;
	}
	if (fd < 0)
		fail(job, "error", "connect: %s", strerror(err));
	/* requests go out whole from one buffer: no need to wait for ACKs */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void conn_close(struct conn *c)
{
	close(c->fd);
	c->fd = -1;
}

static size_t conn_buffered(const struct conn *c)
{
	return c->tail - c->head;
}

/*
 * One non-blocking recv into the buffer: bytes read, 0 at EOF, -1 when
 * nothing is there yet. Other errors fail.
 */
static ssize_t conn_recv_some(struct conn *c)
{
	ssize_t n;

	if (c->eof)
		return 0;
	if (c->head == c->tail)
		c->head = c->tail = 0;
	if (c->tail == c->cap) {
		if (c->head > 0) {
			memmove(c->buf, c->buf + c->head, c->tail - c->head);
			c->tail -= c->head;
			c->head = 0;
		} else {
			c->cap *= 2;
			c->buf = xrealloc(c->buf, c->cap);
		}
	}
	do
		n = recv(c->fd, c->buf + c->tail, c->cap - c->tail, 0);
	while (n < 0 && errno == EINTR);
	if (n > 0) {
		c->tail += (size_t)n;
		return n;
	}
	if (n == 0) {
		c->eof = true;
		return 0;
	}
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		return -1;
	fail(c->job, "error", "recv: %s", strerror(errno));
}

/* Read more: bytes read, or 0 at EOF. */
static size_t conn_fill(struct conn *c, const char *what)
{
	ssize_t n;

	while ((n = conn_recv_some(c)) < 0)
		conn_wait(c, POLLIN, what);
	return (size_t)n;
}

/*
 * Send a whole batch. While the socket is full, whatever the server answers
 * is read into the buffer: a server blocked on its own full send buffer would
 * otherwise stop reading and both sides would wait forever (pipelining).
 */
static void conn_send(struct conn *c, const struct obuf *b, const char *what)
{
	struct iovec iov[64];
	struct msghdr msg = { .msg_iov = iov };
	size_t i = 0, done = 0; /* next segment, bytes of it already sent */
	size_t k, n, skip;
	const struct seg *s;
	const char *base;
	ssize_t sent;
	short ev;

	while (i < b->nseg) {
		for (k = 0; k < 64 && i + k < b->nseg; k++) {
			s = &b->seg[i + k];
			base = s->ext ? s->ext : b->text + s->off;
			skip = k ? 0 : done;
			iov[k].iov_base = (void *)(base + skip);
			iov[k].iov_len = s->len - skip;
		}
		msg.msg_iovlen = k;
		sent = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
		if (sent > 0) {
			for (n = (size_t)sent; n;) {
				k = b->seg[i].len - done;
				if (n < k) {
					done += n;
					break;
				}
				n -= k;
				i++;
				done = 0;
			}
			continue;
		}
		if (sent < 0 && errno == EINTR)
			continue;
		if (sent < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			fail(c->job, "error", "send (%s): %s%s", what,
			     strerror(errno),
			     c->eof ? " (the server closed the connection)" :
				      "");
		ev = conn_wait(c, c->eof ? POLLOUT : POLLOUT | POLLIN, what);
		if (ev & (POLLIN | POLLHUP | POLLERR))
			while (conn_recv_some(c) > 0)
				;
	}
}

/*
 * Next line ended by CRLF, NUL-terminated in place (the CR becomes NUL);
 * valid until the next conn_ call. EOF or an overlong line fails.
 */
static char *conn_getline(struct conn *c, const char *what)
{
	size_t scanned = 0;
	uint8_t *nl;
	char *line;

	for (;;) {
		nl = memchr(c->buf + c->head + scanned, '\n',
			    conn_buffered(c) - scanned);
		if (nl)
			break;
		scanned = conn_buffered(c);
		if (scanned > MAX_LINE)
			fail(c->job, "error", "%s: line longer than %d bytes",
			     what, MAX_LINE);
		if (!conn_fill(c, what))
			fail(c->job, "error",
			     "connection closed by the server while %s%s", what,
			     scanned ? " (in the middle of a line)" : "");
	}
	if (nl == c->buf + c->head || nl[-1] != '\r')
		fail(c->job, "error", "%s: line not ended by CRLF", what);
	nl[-1] = '\0';
	line = (char *)c->buf + c->head;
	c->head = (size_t)(nl + 1 - c->buf);
	return line;
}

/* Make at least n bytes available (EOF fails). */
static void conn_need(struct conn *c, size_t n, const char *what)
{
	while (conn_buffered(c) < n)
		if (!conn_fill(c, what))
			fail(c->job, "error",
			     "connection closed by the server while %s", what);
}

/* ---- byte comparison against the expected object ---- */

struct check {
	const struct object *obj; /* NULL: bytes are discarded (a 404 body) */
	size_t off; /* bytes seen so far */
	const char *unit; /* "body", "value": for messages */
};

static void check_bytes(struct job *job, struct check *ck, const uint8_t *p,
			size_t n)
{
	const struct object *o = ck->obj;
	size_t left, m, i;

	if (o) {
		left = o->size > ck->off ? o->size - ck->off : 0;
		m = n < left ? n : left;
		if (memcmp(p, o->data + ck->off, m)) {
			for (i = 0; p[i] == o->data[ck->off + i]; i++)
				;
			fail(job, "mismatch",
			     "byte %zu: expected 0x%02x, got 0x%02x",
			     ck->off + i, o->data[ck->off + i], p[i]);
		}
		if (n > left)
			fail(job, "mismatch",
			     "byte %zu: expected end of %s (%zu bytes), got 0x%02x",
			     o->size, ck->unit, o->size, p[m]);
		job->bytes += n;
	}
	ck->off += n;
}

static void check_end(struct job *job, const struct check *ck)
{
	const struct object *o = ck->obj;

	if (o && ck->off < o->size)
		fail(job, "mismatch",
		     "byte %zu: expected 0x%02x, got end of %s (%zu of %zu bytes)",
		     ck->off, o->data[ck->off], ck->unit, ck->off, o->size);
}

/* Read exactly len bytes through the checker. */
static void conn_take(struct conn *c, size_t len, struct check *ck,
		      const char *what)
{
	size_t k, start = ck->off;

	while (len) {
		if (!conn_buffered(c) && !conn_fill(c, what))
			fail(c->job, "error",
			     "connection closed by the server after %zu of %zu bytes while %s",
			     ck->off - start, ck->off - start + len, what);
		k = conn_buffered(c) < len ? conn_buffered(c) : len;
		check_bytes(c->job, ck, c->buf + c->head, k);
		c->head += k;
		len -= k;
	}
}

/* Parse a whole unsigned decimal (or hex) number; false if not one. */
static bool parse_size(const char *s, int base, size_t *out)
{
	unsigned long long v;
	char *end;

	if (!*s || !(base == 16 ? isxdigit((unsigned char)*s) :
				  (*s >= '0' && *s <= '9')))
		return false;
	errno = 0;
	v = strtoull(s, &end, base);
	if (errno || *end || v > SIZE_MAX)
		return false;
	*out = (size_t)v;
	return true;
}

/* ---- HTTP/1.1 ---- */

struct http_resp {
	int status;
	bool close; /* the server closes after this response */
};

static bool token_in_list(const char *list, const char *token)
{
	size_t n = strlen(token);
	const char *p = list;

	while (*p) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (!strncasecmp(p, token, n) && (p[n] == '\0' || p[n] == ',' ||
						  p[n] == ' ' || p[n] == '\t'))
			return true;
		while (*p && *p != ',')
			p++;
	}
	return false;
}

static void http_chunked_body(struct conn *c, struct check *ck)
{
	size_t size;
	char *line, *end;

	for (;;) {
		line = conn_getline(c, "reading a chunk size");
		/* chunk-size [ BWS ";" chunk-ext ]: the extension is ignored */
		end = line + strspn(line, "0123456789abcdefABCDEF");
		if (end == line || end - line > 16)
			fail(c->job, "error",
			     "malformed chunk size line '%.60s'", line);
		if (*end && *end != ';' && *end != ' ' && *end != '\t')
			fail(c->job, "error",
			     "malformed chunk size line '%.60s'", line);
		*end = '\0';
		if (!parse_size(line, 16, &size))
			fail(c->job, "error", "chunk size '%.60s' out of range",
			     line);
		if (!size)
			break;
		conn_take(c, size, ck, "reading chunk data");
		if (*conn_getline(c, "reading the end of a chunk"))
			fail(c->job, "error",
			     "chunk data longer than its size line says");
	}
	while (*conn_getline(c, "reading the chunked trailer"))
		;
}

/*
 * Read one response. 1xx interim responses are skipped. A status other than
 * want fails; a 200 body is compared with obj, any other body discarded.
 */
static struct http_resp http_read(struct conn *c, int want,
				  const struct object *obj)
{
	struct http_resp r;
	struct check ck = { .obj = want == 200 ? obj : NULL, .unit = "body" };
	bool has_len = false, chunked = false, te = false;
	bool said_close = false, said_keep_alive = false;
	size_t len = 0, v;
	char *line, *colon, *val, *e;
	int minor, nh;

again:
	line = conn_getline(c, "waiting for the status line");
	if (strncmp(line, "HTTP/1.", 7) || line[7] < '0' || line[7] > '9' ||
	    line[8] != ' ' || line[9] < '1' || line[9] > '9' ||
	    line[10] < '0' || line[10] > '9' || line[11] < '0' ||
	    line[11] > '9' || (line[12] != ' ' && line[12] != '\0'))
		fail(c->job, "error", "malformed status line '%.60s'", line);
	minor = line[7] - '0';
	r.status = atoi(line + 9);
	if (r.status != want && (r.status < 100 || r.status > 199))
		fail(c->job, "error", "status %d, expected %d ('%.60s')",
		     r.status, want, line);
	for (nh = 0;; nh++) {
		line = conn_getline(c, "reading the response headers");
		if (!*line)
			break;
		if (nh == MAX_HEADERS)
			fail(c->job, "error", "more than %d header lines",
			     MAX_HEADERS);
		colon = strchr(line, ':');
		if (*line == ' ' || *line == '\t' || !colon || colon == line ||
		    colon[-1] == ' ' || colon[-1] == '\t')
			fail(c->job, "error", "malformed header line '%.60s'",
			     line);
		*colon = '\0';
		val = colon + 1 + strspn(colon + 1, " \t");
		for (e = val + strlen(val);
		     e > val && (e[-1] == ' ' || e[-1] == '\t');)
			*--e = '\0';
		if (!strcasecmp(line, "Content-Length")) {
			if (!parse_size(val, 10, &v) || (has_len && v != len))
				fail(c->job, "error",
				     "bad or conflicting Content-Length '%.40s'",
				     val);
			has_len = true;
			len = v;
		} else if (!strcasecmp(line, "Transfer-Encoding")) {
			/* we compare raw bytes: only chunked is acceptable */
			if (te || strcasecmp(val, "chunked"))
				fail(c->job, "error",
				     "unsupported Transfer-Encoding '%.40s'",
				     val);
			te = chunked = true;
		} else if (!strcasecmp(line, "Content-Encoding")) {
			if (strcasecmp(val, "identity"))
				fail(c->job, "error",
				     "unexpected Content-Encoding '%.40s'",
				     val);
		} else if (!strcasecmp(line, "Connection")) {
			said_close |= token_in_list(val, "close");
			said_keep_alive |= token_in_list(val, "keep-alive");
		}
	}
	/* HTTP/1.0 closes unless it says keep-alive */
	r.close = said_close || (minor == 0 && !said_keep_alive);
	if (r.status >= 100 && r.status <= 199) {
		if (r.status == 101)
			fail(c->job, "error",
			     "unexpected 101 Switching Protocols");
		has_len = chunked = te = false;
		said_close = said_keep_alive = false;
		goto again;
	}
	if (r.status == 204 || r.status == 304) {
		check_end(c->job, &ck);
		return r;
	}
	if (has_len && chunked)
		fail(c->job, "error",
		     "both Content-Length and Transfer-Encoding: chunked");
	if (chunked) {
		http_chunked_body(c, &ck);
	} else if (has_len) {
		conn_take(c, len, &ck, "reading the body");
	} else {
		/* no framing: the body ends when the server closes */
		for (;;) {
			if (conn_buffered(c)) {
				check_bytes(c->job, &ck, c->buf + c->head,
					    conn_buffered(c));
				c->head = c->tail;
			}
			if (!conn_fill(c, "reading a body that ends at close"))
				break;
		}
		r.close = true;
	}
	check_end(c->job, &ck);
	c->job->requests++;
	return r;
}

static void http_request(struct obuf *b, const char *name, bool close)
{
	ob_printf(b,
		  "GET /%s HTTP/1.1\r\nHost: %s\r\nUser-Agent: esca-check\r\n"
		  "%s\r\n",
		  name, cfg.hostport, close ? "Connection: close\r\n" : "");
}

/* After a Connection: close exchange, nothing more may come, then EOF. */
static void conn_expect_eof(struct conn *c)
{
	if (!conn_buffered(c) &&
	    !conn_fill(c, "waiting for the server to close"))
		return;
	fail(c->job, "error", "%zu unexpected bytes after the response",
	     conn_buffered(c));
}

static void http_keep_alive_left(struct conn *c, struct http_resp r,
				 unsigned done, unsigned total)
{
	if (r.close && done < total)
		fail(c->job, "error",
		     "the server closed the keep-alive connection after %u of %u responses",
		     done, total);
}

static void http_worker(struct job *job)
{
	const unsigned n = cfg.rounds;
	struct obuf b = { 0 };
	struct conn c = { .fd = -1 };
	const struct object *o, *after404 = &cfg.obj[2];
	struct http_resp r;
	unsigned i, k;

	for (i = 0; i < NOBJ; i++) {
		o = &cfg.obj[i];
		job->object = o->name;

		/* (a) keep-alive: one request at a time on one connection */
		job->mode = "keep-alive";
		conn_open(&c, job);
		for (k = 0; k < n; k++) {
			job->round = k;
			ob_reset(&b);
			http_request(&b, o->name, false);
			conn_send(&c, &b, "sending a request");
			r = http_read(&c, 200, o);
			http_keep_alive_left(&c, r, k + 1, n);
		}
		conn_close(&c);

		/* (b) pipelined: all n requests in one write, then n answers */
		job->mode = "pipelined";
		job->round = UINT_MAX;
		conn_open(&c, job);
		ob_reset(&b);
		for (k = 0; k < n; k++)
			http_request(&b, o->name, false);
		conn_send(&c, &b, "sending pipelined requests");
		for (k = 0; k < n; k++) {
			job->round = k;
			r = http_read(&c, 200, o);
			http_keep_alive_left(&c, r, k + 1, n);
		}
		conn_close(&c);

		/* (c) one request per connection, Connection: close */
		job->mode = "close";
		for (k = 0; k < n; k++) {
			job->round = k;
			conn_open(&c, job);
			ob_reset(&b);
			http_request(&b, o->name, true);
			conn_send(&c, &b, "sending a request");
			http_read(&c, 200, o);
			conn_expect_eof(&c);
			conn_close(&c);
		}
	}

	/* a 404 must be whole: the next response on the connection parses */
	job->mode = "404-keep-alive";
	conn_open(&c, job);
	for (k = 0; k < n; k++) {
		job->round = k;
		job->object = "esca-check-missing.bin";
		ob_reset(&b);
		http_request(&b, job->object, false);
		conn_send(&c, &b, "sending a request");
		r = http_read(&c, 404, NULL);
		http_keep_alive_left(&c, r, 2 * k + 1, 2 * n);
		job->object = after404->name;
		ob_reset(&b);
		http_request(&b, after404->name, false);
		conn_send(&c, &b, "sending a request");
		r = http_read(&c, 200, after404);
		http_keep_alive_left(&c, r, 2 * k + 2, 2 * n);
	}
	conn_close(&c);
	ob_free(&b);
	free(c.buf);
}

/* ---- Redis (RESP2) ---- */

/* Commands go out as RESP arrays of bulk strings: binary-safe values. */
static void redis_set(struct obuf *b, const char *key, const struct object *o)
{
	ob_printf(b, "*3\r\n$3\r\nSET\r\n$%zu\r\n%s\r\n$%zu\r\n", strlen(key),
		  key, o->size);
	ob_ref(b, o->data, o->size);
	ob_put(b, "\r\n", 2);
}

static void redis_get(struct obuf *b, const char *key)
{
	ob_printf(b, "*2\r\n$3\r\nGET\r\n$%zu\r\n%s\r\n", strlen(key), key);
}

static char *redis_line(struct conn *c, const char *what)
{
	char *line = conn_getline(c, what);

	if (*line == '-')
		fail(c->job, "error", "%s: the server answered '%.80s'", what,
		     line);
	return line;
}

static void redis_expect_line(struct conn *c, const char *want,
			      const char *what)
{
	char *line = redis_line(c, what);

	if (strcmp(line, want))
		fail(c->job, "error", "%s: expected '%s', got '%.60s'", what,
		     want, line);
	c->job->requests++;
}

/* A bulk string equal to obj; obj NULL: a null bulk ($-1). */
static void redis_expect_bulk(struct conn *c, const struct object *obj)
{
	struct check ck = { .obj = obj, .unit = "value" };
	char *line = redis_line(c, "waiting for a GET reply");
	size_t len;

	if (!strcmp(line, "$-1")) {
		if (obj)
			fail(c->job, "mismatch",
			     "byte 0: expected a %zu-byte bulk string, got a null bulk",
			     obj->size);
		c->job->requests++;
		return;
	}
	if (*line != '$' || !parse_size(line + 1, 10, &len))
		fail(c->job, "error",
		     "GET: expected a bulk string, got '%.60s'", line);
	if (!obj)
		fail(c->job, "error",
		     "GET of a missing key: expected a null bulk, got a %zu-byte bulk string",
		     len);
	conn_take(c, len, &ck, "reading a bulk string");
	check_end(c->job, &ck);
	conn_need(c, 2, "reading the end of a bulk string");
	if (memcmp(c->buf + c->head, "\r\n", 2))
		fail(c->job, "error", "bulk string not followed by CRLF");
	c->head += 2;
	c->job->requests++;
}

static void key_name(char *key, size_t size, const struct object *o,
		     const struct job *job, unsigned round, const char *suffix)
{
	snprintf(key, size, "key_%zu_%u_%u%s", o->size, job->conn, round,
		 suffix);
}

/* DEL an object's 2n keys (each must have existed), then GET one: null. */
static void redis_cleanup(struct conn *c, struct obuf *b,
			  const struct object *o)
{
	const unsigned n = cfg.rounds;
	struct job *job = c->job;
	char key[64], want[32];
	unsigned k;

	job->mode = "cleanup";
	job->round = UINT_MAX;
	ob_reset(b);
	ob_printf(b, "*%u\r\n$3\r\nDEL\r\n", 2 * n + 1);
	for (k = 0; k < 2 * n; k++) {
		key_name(key, sizeof(key), o, job, k / 2, k % 2 ? "_p" : "");
		ob_printf(b, "$%zu\r\n%s\r\n", strlen(key), key);
	}
	key_name(key, sizeof(key), o, job, 0, "");
	redis_get(b, key);
	conn_send(c, b, "sending DEL");
	snprintf(want, sizeof(want), ":%u", 2 * n);
	redis_expect_line(c, want, "DEL");
	redis_expect_bulk(c, NULL);
}

static void redis_worker(struct job *job)
{
	const unsigned n = cfg.rounds;
	struct obuf b = { 0 };
	struct conn c = { .fd = -1 };
	const struct object *o;
	char key[64];
	unsigned i, k;

	job->object = cfg.obj[0].name; /* where a connect failure is told */
	job->mode = "sequential";
	conn_open(&c, job);
	for (i = 0; i < NOBJ; i++) {
		o = &cfg.obj[i];
		job->object = o->name;

		job->mode = "sequential";
		for (k = 0; k < n; k++) {
			job->round = k;
			key_name(key, sizeof(key), o, job, k, "");
			ob_reset(&b);
			redis_set(&b, key, o);
			conn_send(&c, &b, "sending SET");
			redis_expect_line(&c, "+OK", "SET");
			ob_reset(&b);
			redis_get(&b, key);
			conn_send(&c, &b, "sending GET");
			redis_expect_bulk(&c, o);
		}

		/* n SETs then n GETs of other keys, written at once */
		job->mode = "pipelined";
		job->round = UINT_MAX;
		ob_reset(&b);
		for (k = 0; k < n; k++) {
			key_name(key, sizeof(key), o, job, k, "_p");
			redis_set(&b, key, o);
		}
		for (k = 0; k < n; k++) {
			key_name(key, sizeof(key), o, job, k, "_p");
			redis_get(&b, key);
		}
		conn_send(&c, &b, "sending a pipelined batch");
		for (k = 0; k < n; k++) {
			job->round = k;
			redis_expect_line(&c, "+OK", "pipelined SET");
		}
		for (k = 0; k < n; k++) {
			job->round = k;
			redis_expect_bulk(&c, o);
		}

		/* per object, so at most one object's keys are live */
		redis_cleanup(&c, &b, o);
	}
	job->object = "esca-check-missing-key";
	job->mode = "miss";
	ob_reset(&b);
	redis_get(&b, job->object);
	conn_send(&c, &b, "sending GET");
	redis_expect_bulk(&c, NULL);
	conn_close(&c);
	ob_free(&b);
	free(c.buf);
}

/* ---- memcached (text protocol) ---- */

static void mc_set(struct obuf *b, const char *key, unsigned flags,
		   const struct object *o)
{
	ob_printf(b, "set %s %u 0 %zu\r\n", key, flags, o->size);
	ob_ref(b, o->data, o->size);
	ob_put(b, "\r\n", 2);
}

static char *mc_line(struct conn *c, const char *what)
{
	char *line = conn_getline(c, what);

	if (!strcmp(line, "ERROR") || !strncmp(line, "CLIENT_ERROR", 12) ||
	    !strncmp(line, "SERVER_ERROR", 12))
		fail(c->job, "error", "%s: the server answered '%.80s'%s", what,
		     line,
		     strstr(line, "too large") ?
			     " (is memcached's -I below --max-item?)" :
			     "");
	return line;
}

static void mc_expect_line(struct conn *c, const char *want, const char *what)
{
	char *line = mc_line(c, what);

	if (strcmp(line, want))
		fail(c->job, "error", "%s: expected '%s', got '%.60s'", what,
		     want, line);
	c->job->requests++;
}

/*
 * For a value that should be there but is not: memcached's own word on
 * whether it evicted items (its -m too small for this run), from "stats" on
 * a new connection.
 */
static void mc_miss_hint(struct job *job, char *hint, size_t size)
{
	struct obuf b = { 0 };
	struct conn c = { .fd = -1 };
	unsigned long long evictions = 0, maxbytes = 0;
	const char *line;

	conn_open(&c, job);
	ob_printf(&b, "stats\r\n");
	conn_send(&c, &b, "sending stats");
	while (strcmp(line = conn_getline(&c, "reading stats"), "END")) {
		sscanf(line, "STAT evictions %llu", &evictions);
		sscanf(line, "STAT limit_maxbytes %llu", &maxbytes);
	}
	snprintf(
		hint, size,
		"memcached reports %llu evictions, -m %llu MiB; this run keeps up to %zu MiB of values",
		evictions, maxbytes / MIB,
		(size_t)cfg.conns * 2 * cfg.rounds * cfg.obj[NOBJ - 1].size /
				MIB +
			1);
	conn_close(&c);
	ob_free(&b);
	free(c.buf);
}

/* The answer to "get key": VALUE key flags bytes, data, END; obj NULL: a miss. */
static void mc_expect_value(struct conn *c, const char *key, unsigned flags,
			    const struct object *obj)
{
	struct check ck = { .obj = obj, .unit = "value" };
	char *line = mc_line(c, "waiting for a get reply");
	char *f[5], *save = NULL, hint[160];
	size_t len, got_flags;
	int nf = 0;

	if (!strcmp(line, "END")) {
		if (obj) {
			mc_miss_hint(c->job, hint, sizeof(hint));
			fail(c->job, "mismatch",
			     "byte 0: expected a %zu-byte value, got a miss (END) (%s)",
			     obj->size, hint);
		}
		c->job->requests++;
		return;
	}
	for (char *t = strtok_r(line, " ", &save); t && nf < 5;
	     t = strtok_r(NULL, " ", &save))
		f[nf++] = t;
	if (nf < 4 || nf > 5 || strcmp(f[0], "VALUE") ||
	    !parse_size(f[3], 10, &len) || !parse_size(f[2], 10, &got_flags))
		fail(c->job, "error", "get: expected VALUE or END, got '%.60s'",
		     line);
	if (!obj)
		fail(c->job, "error",
		     "get of a missing key: expected END, got a %zu-byte value",
		     len);
	if (strcmp(f[1], key) || got_flags != flags)
		fail(c->job, "error",
		     "get %s: answer is for key %.60s flags %zu, expected flags %u",
		     key, f[1], got_flags, flags);
	conn_take(c, len, &ck, "reading a value");
	check_end(c->job, &ck);
	conn_need(c, 2, "reading the end of a value");
	if (memcmp(c->buf + c->head, "\r\n", 2))
		fail(c->job, "error", "value data not followed by CRLF");
	c->head += 2;
	if (strcmp(mc_line(c, "waiting for END"), "END"))
		fail(c->job, "error", "get %s: more than one VALUE or no END",
		     key);
	c->job->requests++;
}

/* Delete an object's 2n keys (each must exist), then get one: a miss. */
static void mc_cleanup(struct conn *c, struct obuf *b, const struct object *o)
{
	const unsigned n = cfg.rounds;
	struct job *job = c->job;
	char key[64];
	unsigned k;

	job->mode = "cleanup";
	job->round = UINT_MAX;
	ob_reset(b);
	for (k = 0; k < 2 * n; k++) {
		key_name(key, sizeof(key), o, job, k / 2, k % 2 ? "_p" : "");
		ob_printf(b, "delete %s\r\n", key);
	}
	key_name(key, sizeof(key), o, job, 0, "");
	ob_printf(b, "get %s\r\n", key);
	conn_send(c, b, "sending deletes");
	for (k = 0; k < 2 * n; k++) {
		job->round = k / 2;
		mc_expect_line(c, "DELETED", "delete");
	}
	job->round = UINT_MAX;
	mc_expect_value(c, key, 0, NULL);
}

static void memcached_worker(struct job *job)
{
	const unsigned n = cfg.rounds;
	struct obuf b = { 0 };
	struct conn c = { .fd = -1 };
	const struct object *o;
	char key[64];
	unsigned i, k;

	job->object = cfg.obj[0].name; /* where a connect failure is told */
	job->mode = "sequential";
	conn_open(&c, job);
	for (i = 0; i < NOBJ; i++) {
		o = &cfg.obj[i];
		job->object = o->name;

		/* flags carry the round: a value from another round is caught */
		job->mode = "sequential";
		for (k = 0; k < n; k++) {
			job->round = k;
			key_name(key, sizeof(key), o, job, k, "");
			ob_reset(&b);
			mc_set(&b, key, k, o);
			conn_send(&c, &b, "sending set");
			mc_expect_line(&c, "STORED", "set");
			ob_reset(&b);
			ob_printf(&b, "get %s\r\n", key);
			conn_send(&c, &b, "sending get");
			mc_expect_value(&c, key, k, o);
		}

		/* n sets then n gets of other keys, written at once */
		job->mode = "pipelined";
		job->round = UINT_MAX;
		ob_reset(&b);
		for (k = 0; k < n; k++) {
			key_name(key, sizeof(key), o, job, k, "_p");
			mc_set(&b, key, k, o);
		}
		for (k = 0; k < n; k++) {
			key_name(key, sizeof(key), o, job, k, "_p");
			ob_printf(&b, "get %s\r\n", key);
		}
		conn_send(&c, &b, "sending a pipelined batch");
		for (k = 0; k < n; k++) {
			job->round = k;
			mc_expect_line(&c, "STORED", "pipelined set");
		}
		for (k = 0; k < n; k++) {
			job->round = k;
			key_name(key, sizeof(key), o, job, k, "_p");
			mc_expect_value(&c, key, k, o);
		}

		/* per object: fewer live values, fewer evictions */
		mc_cleanup(&c, &b, o);
	}
	job->object = "esca-check-missing-key";
	job->mode = "miss";
	ob_reset(&b);
	ob_printf(&b, "get %s\r\n", job->object);
	conn_send(&c, &b, "sending get");
	mc_expect_value(&c, job->object, 0, NULL);
	conn_close(&c);
	ob_free(&b);
	free(c.buf);
}

/* ---- main ---- */

static void *worker(void *arg)
{
	struct job *job = arg;

	switch (cfg.proto) {
	case P_HTTP:
		http_worker(job);
		break;
	case P_REDIS:
		redis_worker(job);
		break;
	case P_MEMCACHED:
		memcached_worker(job);
		break;
	}
	return NULL;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: esca-check http|redis|memcached HOST PORT [options]\n"
		"Check a server byte for byte with objects of 0, 1, 4096, 65536 and\n"
		"1048576 bytes (memcached: 524288 instead of 1048576 unless\n"
		"--max-item allows more); byte i of an n-byte object is\n"
		"(i*131 + n) %% 251.\n"
		"  http       GET /0.bin /1.bin /4k.bin /64k.bin /1m.bin: keep-alive,\n"
		"             pipelined and one per connection; a 404 on keep-alive\n"
		"  redis      SET/GET key_<size>_<conn>_<round>[_p], one at a time\n"
		"             and pipelined; DEL after each object; GET of a missing key\n"
		"  memcached  set/get the same way (text protocol); delete; a miss\n"
		"  --rounds N       requests per object and mode (default 3)\n"
		"  --conns N        connections in parallel, each doing it all (default 1)\n"
		"  --timeout SEC    longest wait for a connect, send or reply (default 10)\n"
		"  --max-item BYTES memcached's item size limit, its -I (k/m suffix;\n"
		"                   default 1m); the 1 MiB object needs more than 1m\n"
		"  -h, --help       show this help\n"
		"Exit 0 if every request was answered and every byte matched, 1 on the\n"
		"first failure (one line saying where), 2 on bad usage.\n");
}

static unsigned parse_count(const char *opt, const char *s, unsigned max)
{
	size_t v;

	if (!parse_size(s, 10, &v) || v < 1 || v > max) {
		fprintf(stderr, "esca-check: %s wants 1..%u, got '%s'\n", opt,
			max, s);
		exit(2);
	}
	return (unsigned)v;
}

static size_t parse_bytes(const char *s)
{
	char num[32];
	size_t v, len = strlen(s), mul = 1;

	if (len && len < sizeof(num)) {
		memcpy(num, s, len + 1);
		if (num[len - 1] == 'k' || num[len - 1] == 'K')
			mul = 1024;
		else if (num[len - 1] == 'm' || num[len - 1] == 'M')
			mul = MIB;
		if (mul > 1)
			num[len - 1] = '\0';
		if (parse_size(num, 10, &v) && v && v <= SIZE_MAX / mul)
			return v * mul;
	}
	fprintf(stderr, "esca-check: --max-item wants BYTES[k|m], got '%s'\n",
		s);
	exit(2);
}

static void make_objects(void)
{
	static const size_t sizes[NOBJ] = { 0, 1, 4096, 65536, MIB };
	struct object *o;
	size_t i, j;

	for (i = 0; i < NOBJ; i++) {
		o = &cfg.obj[i];
		o->size = sizes[i];
		/*
		 * memcached's limit counts the item header and key too: a
		 * 1 MiB value fits only when the limit is above 1 MiB.
		 */
		if (cfg.proto == P_MEMCACHED && o->size == MIB &&
		    cfg.max_item <= MIB)
			o->size = MIB / 2;
		if (o->size >= 1024)
			snprintf(o->name, sizeof(o->name), "%zu%s.bin",
				 o->size >= MIB ? o->size / MIB :
						  o->size / 1024,
				 o->size >= MIB ? "m" : "k");
		else
			snprintf(o->name, sizeof(o->name), "%zu.bin", o->size);
		o->data = xrealloc(NULL, o->size);
		for (j = 0; j < o->size; j++)
			o->data[j] = (uint8_t)((j * 131 + o->size) % 251);
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "rounds", required_argument, NULL, 'r' },
		{ "conns", required_argument, NULL, 'c' },
		{ "timeout", required_argument, NULL, 't' },
		{ "max-item", required_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM };
	struct job *jobs;
	pthread_t *tids;
	uint64_t requests = 0, bytes = 0;
	unsigned i;
	int opt, err;

	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'r':
			cfg.rounds =
				parse_count("--rounds", optarg, MAX_ROUNDS);
			break;
		case 'c':
			cfg.conns = parse_count("--conns", optarg, MAX_CONNS);
			break;
		case 't':
			cfg.timeout_ms =
				(int)parse_count("--timeout", optarg, 86400) *
				1000;
			break;
		case 'm':
			cfg.max_item = parse_bytes(optarg);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (argc - optind != 3) {
		usage(stderr);
		return 2;
	}
	for (i = 0; i < 3 && strcmp(argv[optind], proto_name[i]); i++)
		;
	if (i == 3) {
		fprintf(stderr, "esca-check: unknown protocol '%s'\n",
			argv[optind]);
		usage(stderr);
		return 2;
	}
	cfg.proto = (enum proto)i;
	cfg.host = argv[optind + 1];
	cfg.port = argv[optind + 2];
	snprintf(cfg.hostport, sizeof(cfg.hostport),
		 strchr(cfg.host, ':') ? "[%s]:%s" : "%s:%s", cfg.host,
		 cfg.port);
	err = getaddrinfo(cfg.host, cfg.port, &hints, &cfg.ai);
	if (err)
		die("%s %s: %s", proto_name[cfg.proto], cfg.hostport,
		    gai_strerror(err));
	make_objects();

	jobs = calloc(cfg.conns, sizeof(*jobs));
	tids = calloc(cfg.conns, sizeof(*tids));
	if (!jobs || !tids)
		die("out of memory");
	for (i = 0; i < cfg.conns; i++) {
		jobs[i].conn = i;
		jobs[i].object = "-";
		jobs[i].mode = "-";
		jobs[i].round = UINT_MAX;
		err = pthread_create(&tids[i], NULL, worker, &jobs[i]);
		if (err)
			die("pthread_create: %s", strerror(err));
	}
	for (i = 0; i < cfg.conns; i++) {
		pthread_join(tids[i], NULL);
		requests += jobs[i].requests;
		bytes += jobs[i].bytes;
	}
	printf("esca-check: %s %s: %d objects x %u modes x %u rounds x %u conns: "
	       "%" PRIu64 " requests, %" PRIu64 " bytes, 0 errors\n",
	       proto_name[cfg.proto], cfg.hostport, NOBJ,
	       proto_modes[cfg.proto], cfg.rounds, cfg.conns, requests, bytes);
	for (i = 0; i < NOBJ; i++)
		free(cfg.obj[i].data);
	free(jobs);
	free(tids);
	freeaddrinfo(cfg.ai);
	return 0;
}
