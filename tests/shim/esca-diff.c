// SPDX-License-Identifier: MIT
/*
 * esca-diff: the differential test of the preload shim.
 *
 *   esca-diff show SEED              print the program SEED generates
 *   esca-diff run SEED [N] [-o DIR]  run programs SEED..SEED+N-1 and print
 *                                    their transcripts (or DIR/SEED.txt)
 *   esca-diff check SEED N           run each program directly and under
 *                                    the shim, compare the transcripts
 *
 * A program is 20-60 calls on socketpairs, TCP loopback pairs, pipes,
 * regular files and epoll sets, made from the seed alone, with fork
 * children and a second thread running small programs of their own. Its
 * transcript holds, per call: the result and errno, a hash of the bytes
 * read, the events returned (sorted where Linux leaves the order open)
 * and the SIGPIPEs the calling thread got. Under plain Linux a program
 * gives the same transcript on every run; any difference under the shim
 * is something a program could see.
 *
 * How timing is kept out of the transcript:
 *  - A call that could block is made only when the interpreter knows it
 *    will not (data already queued, or end of file, or room for the
 *    write); otherwise the transcript says "skip", the same way on every
 *    run, since what the interpreter knows comes from earlier results.
 *  - TCP loopback delivers in softirq context, possibly later: after any
 *    call on a TCP socket, the next call waits until every TCP socket is
 *    quiet (the bytes sent are all readable at the peer and acked, the FIN
 *    or reset it expects has arrived). That wait is not in the transcript.
 *    TCP writes are kept small enough never to fill a window or a buffer.
 *  - A second thread gets its own descriptors, made before it starts; it
 *    never creates or closes one, and the main thread leaves its
 *    descriptors alone until the join, so descriptor numbers (which are
 *    compared: lowest free) never depend on the interleaving. Its lines
 *    are printed at the join.
 *  - A fork child runs while the parent waits; it writes its transcript
 *    to a pipe and the parent prints it after its own fork line.
 *  - The harness's own descriptors sit at 1000 and above.
 *
 * check spawns two runners (this program, "run"), one with LD_PRELOAD
 * removed and one with LD_PRELOAD=$ESCA_PRELOAD (default: the shim next to
 * this binary, ../lib/libesca-preload.so; "none" runs both directly, which
 * checks that programs are deterministic). Each runner forks one process
 * per program.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define GFD 64 /* program descriptors: 3..63 */
#define FD_DIR 1000 /* the program's directory */
#define FD_RES_R 1001 /* fork children's transcripts, read end */
#define FD_RES_W 1002 /* ... write end */
#define FD_OUT 1003 /* run -o: the transcript file */
#define MAXD 512 /* descriptions a program can make */
#define NFILES 4
#define MAXLEN (256 * 1024 + 4096)
#define MAXOPEN 36 /* no new descriptors past this many */
#define TCP_WINDOW 16384 /* bytes in flight per TCP direction, at most */

/* ------------------------------------------------------------ util */

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("esca-diff: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

struct sbuf {
	char *p;
	size_t len, cap;
};

static void sb_grow(struct sbuf *b, size_t more)
{
	if (b->len + more + 1 <= b->cap)
		return;
	while (b->len + more + 1 > b->cap)
		b->cap = b->cap ? b->cap * 2 : 4096;
	b->p = realloc(b->p, b->cap);
	if (!b->p)
		die("out of memory");
}

static void __attribute__((format(printf, 2, 3)))
sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	sb_grow(b, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
	sb_grow(b, n);
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = 0;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* ------------------------------------------------------------ programs */

enum kind { K_NONE, K_STD, K_UNIX, K_TCP, K_PIPE_R, K_PIPE_W, K_FILE, K_EPOLL };
#define M(k) (1u << (k))
#define SOCKS (M(K_UNIX) | M(K_TCP))
#define READABLE (SOCKS | M(K_PIPE_R) | M(K_FILE))
#define WRITABLE (SOCKS | M(K_PIPE_W) | M(K_FILE))
#define ANY (READABLE | WRITABLE | M(K_EPOLL))

enum opk {
	OP_SOCKETPAIR,
	OP_TCPPAIR,
	OP_PIPE,
	OP_OPEN,
	OP_OPENAT,
	OP_EPOLL_CREATE,
	OP_CLOSE,
	OP_DUP,
	OP_DUP2,
	OP_DUP3,
	OP_DUPFD,
	OP_SETFL,
	OP_GETFL,
	OP_SETFD,
	OP_GETFD,
	OP_READ,
	OP_READV,
	OP_RECV,
	OP_RECVFROM,
	OP_RECVMSG,
	OP_PREAD,
	OP_WRITE,
	OP_WRITEV,
	OP_SEND,
	OP_SENDTO,
	OP_SENDMSG,
	OP_PWRITE,
	OP_SENDFILE,
	OP_LSEEK,
	OP_FTRUNCATE,
	OP_FSYNC,
	OP_FDATASYNC,
	OP_FCHMOD,
	OP_FSTAT,
	OP_SHUTDOWN,
	OP_SETSOCKOPT,
	OP_GETSOCKOPT,
	OP_EPOLL_CTL,
	OP_EPOLL_WAIT,
	OP_POLL,
	OP_FIONREAD,
	OP_SIGPIPE,
	OP_FORK,
	OP_THREAD,
	OP_JOIN,
	OP_NKINDS
};

struct prog;

struct op {
	uint8_t kind;
	int fd, fd2; /* the descriptors (or numbers) the call names */
	int len; /* bytes, count, length, option value */
	int flags; /* call flags, or which variant */
	long off; /* offset, or a second value */
	int n; /* entries in v[] and ev[] */
	int v[4]; /* iovec lengths; poll descriptors */
	int ev[4]; /* poll events */
	int made[6], nmade; /* descriptors the generator expects it makes */
	struct prog *sub; /* fork child's or thread's program */
};

struct prog {
	struct op *op;
	int n, cap;
};

static struct op *prog_add(struct prog *p, int kind)
{
	struct op *o;

	if (p->n == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 64;
		p->op = realloc(p->op, (size_t)p->cap * sizeof(*p->op));
		if (!p->op)
			die("out of memory");
	}
	o = &p->op[p->n++];
	memset(o, 0, sizeof(*o));
	o->kind = (uint8_t)kind;
	o->fd = o->fd2 = -1;
	return o;
}

static void prog_free(struct prog *p)
{
	for (int i = 0; i < p->n; i++)
		if (p->op[i].sub) {
			prog_free(p->op[i].sub);
			free(p->op[i].sub);
		}
	free(p->op);
	p->op = NULL;
	p->n = p->cap = 0;
}

/* The variants some calls choose from. */
static const int open_flags[] = {
	O_RDWR | O_CREAT,
	O_RDWR | O_CREAT | O_TRUNC,
	O_RDONLY,
	O_WRONLY | O_CREAT | O_APPEND,
	O_RDWR | O_CREAT | O_EXCL,
	O_RDWR | O_NONBLOCK,
	O_RDWR | O_CREAT | O_CLOEXEC,
};
#define N_OPEN_FLAGS (int)(sizeof(open_flags) / sizeof(open_flags[0]))
static const int setfl_vals[] = { 0, O_NONBLOCK, O_APPEND,
				  O_NONBLOCK | O_APPEND };
static const int chmod_modes[] = { 0600, 0644, 0400, 0, 0755 };
static const int sndbuf_vals[] = { 4096, 8192, 65536, 131072, 1 << 20 };

enum sockopt {
	SO_SNDBUF_,
	SO_RCVBUF_,
	TCP_NODELAY_,
	SO_LINGER_,
	SO_KEEPALIVE_,
	SO_ERROR_, /* get only, from here */
	SO_TYPE_,
	N_SOCKOPT
};
static const char *const sockopt_name[N_SOCKOPT] = {
	"SO_SNDBUF",	"SO_RCVBUF", "TCP_NODELAY", "SO_LINGER",
	"SO_KEEPALIVE", "SO_ERROR",  "SO_TYPE",
};

/* ------------------------------------------------------------ generator */

/*
 * The generator follows the descriptor table exactly (calls that create
 * descriptors take the lowest free number and, as generated, succeed
 * unless it knows why not), so programs name real numbers: show prints
 * what will run. It knows kinds, not states: the interpreter decides at
 * run time what could block.
 */
enum { G_MAIN, G_CHILD, G_THREAD };

struct gen {
	uint64_t rng;
	uint8_t kind[GFD];
	uint8_t mine[GFD]; /* the running thread's (main must not touch) */
	bool exists[NFILES];
	int where;
	int threads;
};

static unsigned rnd(struct gen *g, unsigned n)
{
	return n ? (unsigned)(splitmix(&g->rng) % n) : 0;
}

static bool pct(struct gen *g, unsigned p)
{
	return rnd(g, 100) < p;
}

static int lowest(struct gen *g, int min)
{
	for (int fd = min < 3 ? 3 : min; fd < GFD; fd++)
		if (g->kind[fd] == K_NONE)
			return fd;
	return -1;
}

static int nopen(struct gen *g)
{
	int n = 0;

	for (int fd = 3; fd < GFD; fd++)
		n += g->kind[fd] != K_NONE;
	return n;
}

static int make_fd(struct gen *g, struct op *o, int kind)
{
	int fd = lowest(g, 3);

	if (fd >= 0) {
		g->kind[fd] = (uint8_t)kind;
		o->made[o->nmade++] = fd;
	}
	return fd;
}

/* A descriptor for a call wanting one of @mask: mostly a fitting open
 * one, sometimes another kind, sometimes a closed or never-used number. */
static int pick_fd(struct gen *g, unsigned mask)
{
	int c[GFD], n = 0;
	unsigned r = rnd(g, 100);

	if (g->where == G_THREAD) { /* only its own: numbers are shared */
		for (int fd = 3; fd < GFD; fd++)
			if (g->mine[fd] && (mask & M(g->kind[fd])))
				c[n++] = fd;
		if (!n || r < 8) {
			n = 0;
			for (int fd = 3; fd < GFD; fd++)
				if (g->mine[fd])
					c[n++] = fd;
		}
		return n ? c[rnd(g, (unsigned)n)] : -1;
	}
	if (r < 84)
		for (int fd = 3; fd < GFD; fd++)
			if (!g->mine[fd] && (mask & M(g->kind[fd])))
				c[n++] = fd;
	if (!n && r < 93)
		for (int fd = 3; fd < GFD; fd++)
			if (!g->mine[fd] && g->kind[fd] != K_NONE)
				c[n++] = fd;
	if (!n) /* closed before, or never opened */
		for (int fd = 3; fd < GFD; fd++)
			if (g->kind[fd] == K_NONE && (fd < 24 || pct(g, 10)))
				c[n++] = fd;
	return n ? c[rnd(g, (unsigned)n)] : 50;
}

static int gen_len(struct gen *g, int fd)
{
	unsigned r = rnd(g, 100);
	int len;

	if (r < 70)
		len = 1 + (int)rnd(g, 512);
	else if (r < 90)
		len = 513 + (int)rnd(g, 3584);
	else if (r < 98)
		len = 4097 + (int)rnd(g, 28672);
	else
		len = 65536 + (int)rnd(g, 196608);
	if (fd >= 0 && fd < GFD && g->kind[fd] == K_TCP && len > 4096 &&
	    pct(g, 75))
		len = 1 + (int)rnd(g, 4096);
	return len;
}

static void gen_iov(struct gen *g, struct op *o)
{
	int total = gen_len(g, o->fd);

	o->n = 1 + (int)rnd(g, 4);
	if (o->n > total)
		o->n = total;
	for (int i = 0; i < o->n - 1; i++) {
		o->v[i] = 1 + (int)rnd(g, (unsigned)(total - (o->n - 1 - i)));
		if (o->v[i] > total - (o->n - 1 - i))
			o->v[i] = total - (o->n - 1 - i);
		total -= o->v[i];
	}
	o->v[o->n - 1] = total;
	o->len = 0;
	for (int i = 0; i < o->n; i++)
		o->len += o->v[i];
}

static int send_flags(struct gen *g)
{
	return (pct(g, 40) ? MSG_DONTWAIT : 0) |
	       (pct(g, 50) ? MSG_NOSIGNAL : 0);
}

static int recv_flags(struct gen *g)
{
	return (pct(g, 40) ? MSG_DONTWAIT : 0) | (pct(g, 10) ? MSG_PEEK : 0) |
	       (pct(g, 10) ? MSG_WAITALL : 0) | (pct(g, 5) ? MSG_TRUNC : 0);
}

static int ep_events(struct gen *g)
{
	int e = 0;

	if (pct(g, 70))
		e |= EPOLLIN;
	if (pct(g, 50))
		e |= EPOLLOUT;
	if (pct(g, 30))
		e |= EPOLLRDHUP;
	if (pct(g, 10))
		e |= EPOLLPRI;
	if (pct(g, 20))
		e |= EPOLLET;
	if (pct(g, 10))
		e |= EPOLLONESHOT;
	return e;
}

static void gen_prog(struct gen *g, struct prog *p, int nops);

/* A number a dup2-style call may land on: never 0-2 or the thread's. */
static int pick_target(struct gen *g)
{
	int fd;

	for (int tries = 0; tries < 20; tries++) {
		fd = pct(g, 60) ? pick_fd(g, ANY) : 3 + (int)rnd(g, 30);
		if (fd >= 3 && fd < GFD && !g->mine[fd])
			return fd;
	}
	return lowest(g, 3);
}

static bool have(struct gen *g, int kind)
{
	for (int fd = 3; fd < GFD; fd++)
		if (g->kind[fd] == kind &&
		    !g->mine[fd] == (g->where != G_THREAD))
			return true;
	return false;
}

static void gen_op(struct gen *g, struct prog *p, int kind)
{
	struct op *o;
	int fd, a;

	/* an epoll call wants an epoll set: make one first, mostly */
	if ((kind == OP_EPOLL_CTL || kind == OP_EPOLL_WAIT) &&
	    g->where != G_THREAD && !have(g, K_EPOLL) && pct(g, 80))
		kind = OP_EPOLL_CREATE;
	o = prog_add(p, kind);

	switch (kind) {
	case OP_SOCKETPAIR:
		o->flags = (int)rnd(g, 4); /* 1 NONBLOCK, 2 CLOEXEC */
		make_fd(g, o, K_UNIX);
		make_fd(g, o, K_UNIX);
		break;
	case OP_TCPPAIR: /* 1 client NONBLOCK, 2 server NONBLOCK, 4 CLOEXEC,
			 * 8 Nagle left on */
		o->flags = (int)rnd(g, 8) | (pct(g, 15) ? 8 : 0);
		a = make_fd(g, o, K_TCP); /* the listener, closed at the end */
		o->nmade = 0;
		make_fd(g, o, K_TCP);
		make_fd(g, o, K_TCP);
		g->kind[a] = K_NONE;
		break;
	case OP_PIPE: /* 1 NONBLOCK, 2 CLOEXEC, 4 DIRECT (packets) */
		o->flags = (int)rnd(g, 4) | (pct(g, 15) ? 4 : 0);
		make_fd(g, o, K_PIPE_R);
		make_fd(g, o, K_PIPE_W);
		break;
	case OP_OPEN:
	case OP_OPENAT:
		o->len = (int)rnd(g, NFILES);
		o->flags = (int)rnd(g, N_OPEN_FLAGS);
		o->off = pct(g, 80) ? 0600 : 0644;
		if (kind == OP_OPENAT) {
			a = (int)rnd(g, 100);
			o->fd = a < 70 ? FD_DIR :
				a < 85 ? AT_FDCWD :
					 pick_fd(g, ANY);
			if (o->fd != FD_DIR && o->fd != AT_FDCWD)
				break; /* ENOTDIR or EBADF */
		}
		a = open_flags[o->flags];
		if (!(a & O_CREAT) && !g->exists[o->len])
			break;
		if ((a & O_EXCL) && g->exists[o->len])
			break;
		g->exists[o->len] = true;
		make_fd(g, o, K_FILE);
		break;
	case OP_EPOLL_CREATE:
		o->flags = pct(g, 50) ? EPOLL_CLOEXEC : 0;
		make_fd(g, o, K_EPOLL);
		break;
	case OP_CLOSE:
		if (pct(g, 75)) {
			o->fd = pick_fd(g, ANY);
		} else {
			o->fd = 3 + (int)rnd(g, 40);
			if (g->mine[o->fd])
				o->fd = pick_fd(g, ANY);
		}
		if (o->fd >= 0 && o->fd < GFD)
			g->kind[o->fd] = K_NONE;
		break;
	case OP_DUP:
		o->fd = pick_fd(g, ANY);
		if (o->fd >= 0 && o->fd < GFD && g->kind[o->fd] != K_NONE)
			make_fd(g, o, g->kind[o->fd]);
		break;
	case OP_DUP2:
	case OP_DUP3:
		o->fd = pick_fd(g, ANY);
		o->fd2 = pick_target(g);
		o->flags = kind == OP_DUP3 && pct(g, 50) ? O_CLOEXEC : 0;
		fd = o->fd;
		if (fd < 0 || fd >= GFD || g->kind[fd] == K_NONE || o->fd2 < 0)
			break;
		if (fd == o->fd2)
			break; /* dup2: no change; dup3: EINVAL */
		g->kind[o->fd2] = g->kind[fd];
		o->made[o->nmade++] = o->fd2;
		break;
	case OP_DUPFD:
		o->fd = pick_fd(g, ANY);
		o->len = (int)rnd(g, 40);
		if (lowest(g, o->len) < 0)
			o->len = 3;
		o->flags = pct(g, 50) ? F_DUPFD_CLOEXEC : F_DUPFD;
		if (o->fd >= 0 && o->fd < GFD && g->kind[o->fd] != K_NONE) {
			fd = lowest(g, o->len);
			g->kind[fd] = g->kind[o->fd];
			o->made[o->nmade++] = fd;
		}
		break;
	case OP_SETFL:
		o->fd = pick_fd(g, ANY);
		o->len = setfl_vals[rnd(g, 4)];
		break;
	case OP_SETFD:
		o->fd = pick_fd(g, ANY);
		o->len = pct(g, 50) ? FD_CLOEXEC : 0;
		break;
	case OP_GETFL:
	case OP_GETFD:
	case OP_FSTAT:
		o->fd = pick_fd(g, ANY);
		break;
	case OP_READ:
	case OP_WRITE:
		o->fd = pick_fd(g, kind == OP_READ ? READABLE : WRITABLE);
		o->len = gen_len(g, o->fd);
		break;
	case OP_READV:
	case OP_WRITEV:
		o->fd = pick_fd(g, kind == OP_READV ? READABLE : WRITABLE);
		gen_iov(g, o);
		break;
	case OP_RECV:
	case OP_RECVFROM:
		o->fd = pick_fd(g, SOCKS);
		o->len = gen_len(g, o->fd);
		o->flags = recv_flags(g);
		break;
	case OP_RECVMSG:
		o->fd = pick_fd(g, SOCKS);
		gen_iov(g, o);
		o->flags = recv_flags(g);
		break;
	case OP_SEND:
	case OP_SENDTO:
		o->fd = pick_fd(g, SOCKS);
		o->len = gen_len(g, o->fd);
		o->flags = send_flags(g);
		break;
	case OP_SENDMSG:
		o->fd = pick_fd(g, SOCKS);
		gen_iov(g, o);
		o->flags = send_flags(g);
		break;
	case OP_PREAD:
	case OP_PWRITE:
		o->fd = pick_fd(g, M(K_FILE));
		o->len = gen_len(g, o->fd);
		o->off = (long)rnd(g, 16384);
		break;
	case OP_SENDFILE:
		o->fd = pick_fd(g, SOCKS | M(K_PIPE_W) | M(K_FILE));
		o->fd2 = pick_fd(g, M(K_FILE));
		o->len = pct(g, 95) ? 1 + (int)rnd(g, 8192) :
				      65536 + (int)rnd(g, 65536);
		o->off = pct(g, 50) ? -1 : (long)rnd(g, 8192);
		break;
	case OP_LSEEK:
		o->fd = pick_fd(g, M(K_FILE));
		o->off = (long)rnd(g, 8192);
		o->flags = (int)rnd(g, 3); /* SEEK_SET, SEEK_CUR, SEEK_END */
		break;
	case OP_FTRUNCATE:
		o->fd = pick_fd(g, M(K_FILE));
		o->len = (int)rnd(g, 16384);
		break;
	case OP_FSYNC:
	case OP_FDATASYNC:
		o->fd = pick_fd(g, M(K_FILE));
		break;
	case OP_FCHMOD:
		o->fd = pick_fd(g, M(K_FILE));
		o->len = chmod_modes[rnd(g, 5)];
		break;
	case OP_SHUTDOWN:
		o->fd = pick_fd(g, SOCKS);
		o->flags = (int)rnd(g, 3); /* SHUT_RD, SHUT_WR, SHUT_RDWR */
		break;
	case OP_SETSOCKOPT:
		o->fd = pick_fd(g, SOCKS);
		o->flags = (int)rnd(g, SO_ERROR_);
		switch (o->flags) {
		case SO_SNDBUF_:
		case SO_RCVBUF_:
			o->len = sndbuf_vals[rnd(g, 5)];
			break;
		case SO_LINGER_:
			o->len = (int)rnd(g, 2);
			o->off = o->len ? (long)rnd(g, 2) : 0;
			break;
		default:
			o->len = (int)rnd(g, 2);
		}
		break;
	case OP_GETSOCKOPT:
		o->fd = pick_fd(g, SOCKS);
		o->flags = (int)rnd(g, N_SOCKOPT);
		break;
	case OP_EPOLL_CTL:
		o->fd = pick_fd(g, M(K_EPOLL));
		o->fd2 = pick_fd(g, pct(g, 85) ?
					    SOCKS | M(K_PIPE_R) | M(K_PIPE_W) :
					    ANY);
		a = (int)rnd(g, 100);
		o->flags = a < 60 ? EPOLL_CTL_ADD :
			   a < 85 ? EPOLL_CTL_MOD :
				    EPOLL_CTL_DEL;
		o->len = ep_events(g);
		break;
	case OP_EPOLL_WAIT:
		o->fd = pick_fd(g, M(K_EPOLL));
		break;
	case OP_POLL:
		o->n = 1 + (int)rnd(g, 4);
		for (int i = 0; i < o->n; i++) {
			o->v[i] = pick_fd(g, READABLE | WRITABLE);
			o->ev[i] = (pct(g, 70) ? POLLIN : 0) |
				   (pct(g, 50) ? POLLOUT : 0) |
				   (pct(g, 30) ? POLLRDHUP : 0) |
				   (pct(g, 10) ? POLLPRI : 0);
		}
		break;
	case OP_FIONREAD:
		o->fd = pick_fd(g, READABLE);
		break;
	case OP_SIGPIPE:
		o->flags =
			(int)rnd(g, 2); /* 0 ignored, 1 counted by a handler */
		break;
	case OP_FORK: {
		struct gen c = *g;

		c.rng = splitmix(&g->rng);
		c.where = G_CHILD;
		o->sub = calloc(1, sizeof(*o->sub));
		gen_prog(&c, o->sub, 2 + (int)rnd(g, 9));
		/* files it made outlive it */
		memcpy(g->exists, c.exists, sizeof(g->exists));
		break;
	}
	case OP_THREAD: {
		struct gen t;

		o->len = g->threads++; /* its file: t0, t1... */
		o->flags = (int)rnd(g, 4); /* 1 socketpair NONBLOCK, 2 pipe */
		make_fd(g, o, K_UNIX);
		make_fd(g, o, K_UNIX);
		make_fd(g, o, K_PIPE_R);
		make_fd(g, o, K_PIPE_W);
		make_fd(g, o, K_EPOLL);
		make_fd(g, o, K_FILE);
		for (int i = 0; i < o->nmade; i++)
			if (o->made[i] >= 0)
				g->mine[o->made[i]] = 1;
		t = *g;
		t.rng = splitmix(&g->rng);
		t.where = G_THREAD;
		o->sub = calloc(1, sizeof(*o->sub));
		gen_prog(&t, o->sub, 4 + (int)rnd(g, 12));
		break;
	}
	case OP_JOIN:
		memset(g->mine, 0, sizeof(g->mine));
		break;
	}
}

static const struct {
	uint8_t kind, w[3]; /* weight in main, child, thread */
	bool makes; /* creates descriptors */
} weights[] = {
	{ OP_SOCKETPAIR, { 5, 2, 0 }, true },
	{ OP_TCPPAIR, { 3, 0, 0 }, true },
	{ OP_PIPE, { 4, 2, 0 }, true },
	{ OP_OPEN, { 3, 1, 0 }, true },
	{ OP_OPENAT, { 2, 1, 0 }, true },
	{ OP_EPOLL_CREATE, { 2, 1, 0 }, true },
	{ OP_CLOSE, { 6, 4, 0 }, false },
	{ OP_DUP, { 2, 2, 0 }, true },
	{ OP_DUP2, { 2, 2, 0 }, true },
	{ OP_DUP3, { 1, 1, 0 }, true },
	{ OP_DUPFD, { 1, 1, 0 }, true },
	{ OP_SETFL, { 2, 2, 2 }, false },
	{ OP_GETFL, { 1, 1, 1 }, false },
	{ OP_SETFD, { 1, 0, 0 }, false },
	{ OP_GETFD, { 1, 0, 0 }, false },
	{ OP_READ, { 5, 4, 5 }, false },
	{ OP_READV, { 2, 1, 2 }, false },
	{ OP_RECV, { 4, 3, 4 }, false },
	{ OP_RECVFROM, { 1, 1, 1 }, false },
	{ OP_RECVMSG, { 2, 1, 2 }, false },
	{ OP_PREAD, { 2, 1, 2 }, false },
	{ OP_WRITE, { 6, 4, 5 }, false },
	{ OP_WRITEV, { 2, 1, 2 }, false },
	{ OP_SEND, { 5, 3, 4 }, false },
	{ OP_SENDTO, { 1, 1, 1 }, false },
	{ OP_SENDMSG, { 2, 1, 2 }, false },
	{ OP_PWRITE, { 2, 1, 2 }, false },
	{ OP_SENDFILE, { 2, 1, 2 }, false },
	{ OP_LSEEK, { 1, 1, 1 }, false },
	{ OP_FTRUNCATE, { 1, 1, 1 }, false },
	{ OP_FSYNC, { 1, 1, 1 }, false },
	{ OP_FDATASYNC, { 1, 0, 1 }, false },
	{ OP_FCHMOD, { 1, 1, 1 }, false },
	{ OP_FSTAT, { 1, 1, 1 }, false },
	{ OP_SHUTDOWN, { 2, 2, 1 }, false },
	{ OP_SETSOCKOPT, { 2, 1, 2 }, false },
	{ OP_GETSOCKOPT, { 2, 1, 2 }, false },
	{ OP_EPOLL_CTL, { 5, 2, 4 }, false },
	{ OP_EPOLL_WAIT, { 3, 2, 3 }, false },
	{ OP_POLL, { 3, 1, 3 }, false },
	{ OP_FIONREAD, { 1, 1, 1 }, false },
	{ OP_SIGPIPE, { 1, 0, 0 }, false },
	{ OP_FORK, { 2, 0, 0 }, false },
	{ OP_THREAD, { 1, 0, 0 }, false },
};
#define N_WEIGHTS (int)(sizeof(weights) / sizeof(weights[0]))

static void gen_prog(struct gen *g, struct prog *p, int nops)
{
	int window = -1; /* main: calls left before the thread's join */

	if (g->where == G_MAIN) {
		gen_op(g, p, OP_SIGPIPE);
		nops--;
	}
	for (int i = 0; i < nops; i++) {
		int open = nopen(g), total = 0, r, k = 0;
		int w[N_WEIGHTS];

		if (window == 0) {
			gen_op(g, p, OP_JOIN);
			window = -1;
			continue;
		}
		for (int j = 0; j < N_WEIGHTS; j++) {
			w[j] = weights[j].w[g->where];
			if (weights[j].makes && open < 3)
				w[j] *= 4;
			if (weights[j].makes && open >= MAXOPEN)
				w[j] = 0;
			/* the disposition is the process's: not while a
			 * thread may be raising SIGPIPE */
			if (weights[j].kind == OP_SIGPIPE && window >= 0)
				w[j] = 0;
			if (weights[j].kind == OP_THREAD &&
			    (window >= 0 || g->threads >= 4 || open > 28 ||
			     i + 4 > nops))
				w[j] = 0;
			total += w[j];
		}
		r = (int)rnd(g, (unsigned)total);
		while (r >= w[k])
			r -= w[k++];
		gen_op(g, p, weights[k].kind);
		if (window > 0)
			window--;
		if (weights[k].kind == OP_THREAD)
			window = 2 + (int)rnd(g, 7);
	}
	if (window >= 0)
		gen_op(g, p, OP_JOIN);
}

static void gen_main(uint64_t seed, struct prog *p)
{
	struct gen g;

	memset(&g, 0, sizeof(g));
	g.rng = seed * 0x2545f4914f6cdd1dull + 1;
	g.kind[0] = g.kind[1] = g.kind[2] = K_STD;
	g.where = G_MAIN;
	gen_prog(&g, p, 20 + (int)rnd(&g, 41));
}

/* ------------------------------------------------------------ printing */

static const char *const op_name[OP_NKINDS] = {
	[OP_SOCKETPAIR] = "socketpair",
	[OP_TCPPAIR] = "tcppair",
	[OP_PIPE] = "pipe2",
	[OP_OPEN] = "open",
	[OP_OPENAT] = "openat",
	[OP_EPOLL_CREATE] = "epoll_create1",
	[OP_CLOSE] = "close",
	[OP_DUP] = "dup",
	[OP_DUP2] = "dup2",
	[OP_DUP3] = "dup3",
	[OP_DUPFD] = "fcntl",
	[OP_SETFL] = "fcntl",
	[OP_GETFL] = "fcntl",
	[OP_SETFD] = "fcntl",
	[OP_GETFD] = "fcntl",
	[OP_READ] = "read",
	[OP_READV] = "readv",
	[OP_RECV] = "recv",
	[OP_RECVFROM] = "recvfrom",
	[OP_RECVMSG] = "recvmsg",
	[OP_PREAD] = "pread",
	[OP_WRITE] = "write",
	[OP_WRITEV] = "writev",
	[OP_SEND] = "send",
	[OP_SENDTO] = "sendto",
	[OP_SENDMSG] = "sendmsg",
	[OP_PWRITE] = "pwrite",
	[OP_SENDFILE] = "sendfile",
	[OP_LSEEK] = "lseek",
	[OP_FTRUNCATE] = "ftruncate",
	[OP_FSYNC] = "fsync",
	[OP_FDATASYNC] = "fdatasync",
	[OP_FCHMOD] = "fchmod",
	[OP_FSTAT] = "fstat",
	[OP_SHUTDOWN] = "shutdown",
	[OP_SETSOCKOPT] = "setsockopt",
	[OP_GETSOCKOPT] = "getsockopt",
	[OP_EPOLL_CTL] = "epoll_ctl",
	[OP_EPOLL_WAIT] = "epoll_wait",
	[OP_POLL] = "poll",
	[OP_FIONREAD] = "ioctl",
	[OP_SIGPIPE] = "sigaction",
	[OP_FORK] = "fork",
	[OP_THREAD] = "thread",
	[OP_JOIN] = "join",
};

struct flagname {
	int bit;
	const char *name;
};

static void sb_flags(struct sbuf *b, int v, const struct flagname *f)
{
	bool any = false;

	for (; f->name; f++)
		if (v & f->bit) {
			sb_printf(b, "%s%s", any ? "|" : "", f->name);
			v &= ~f->bit;
			any = true;
		}
	if (v || !any)
		sb_printf(b, "%s%#x", any ? "|" : "", (unsigned)v);
}

static const struct flagname msg_names[] = {
	{ MSG_DONTWAIT, "DONTWAIT" }, { MSG_NOSIGNAL, "NOSIGNAL" },
	{ MSG_PEEK, "PEEK" },	      { MSG_WAITALL, "WAITALL" },
	{ MSG_TRUNC, "TRUNC" },	      { MSG_EOR, "EOR" },
	{ MSG_CTRUNC, "CTRUNC" },     { 0, NULL }
};
static const struct flagname ep_names[] = { { EPOLLIN, "IN" },
					    { EPOLLOUT, "OUT" },
					    { EPOLLRDHUP, "RDHUP" },
					    { EPOLLPRI, "PRI" },
					    { EPOLLERR, "ERR" },
					    { EPOLLHUP, "HUP" },
					    { (int)EPOLLET, "ET" },
					    { EPOLLONESHOT, "ONESHOT" },
					    { EPOLLRDNORM, "RDNORM" },
					    { EPOLLWRNORM, "WRNORM" },
					    { 0, NULL } };
static const struct flagname poll_names[] = {
	{ POLLIN, "IN" },	  { POLLOUT, "OUT" },
	{ POLLRDHUP, "RDHUP" },	  { POLLPRI, "PRI" },
	{ POLLERR, "ERR" },	  { POLLHUP, "HUP" },
	{ POLLNVAL, "NVAL" },	  { POLLRDNORM, "RDNORM" },
	{ POLLWRNORM, "WRNORM" }, { 0, NULL }
};
static const struct flagname open_names[] = { { O_WRONLY, "WRONLY" },
					      { O_RDWR, "RDWR" },
					      { O_CREAT, "CREAT" },
					      { O_TRUNC, "TRUNC" },
					      { O_APPEND, "APPEND" },
					      { O_EXCL, "EXCL" },
					      { O_NONBLOCK, "NONBLOCK" },
					      { O_CLOEXEC, "CLOEXEC" },
					      { 0, NULL } };
static const struct flagname pair_names[] = { { 1, "NONBLOCK" },
					      { 2, "CLOEXEC" },
					      { 0, NULL } };
static const struct flagname pipe_names[] = { { 1, "NONBLOCK" },
					      { 2, "CLOEXEC" },
					      { 4, "DIRECT" },
					      { 0, NULL } };
static const struct flagname tcp_names[] = { { 1, "CLIENT_NONBLOCK" },
					     { 2, "SERVER_NONBLOCK" },
					     { 4, "CLOEXEC" },
					     { 8, "NAGLE" },
					     { 0, NULL } };

static void sb_fd(struct sbuf *b, int fd)
{
	if (fd == AT_FDCWD)
		sb_printf(b, "AT_FDCWD");
	else if (fd == FD_DIR)
		sb_printf(b, "dir");
	else
		sb_printf(b, "%d", fd);
}

static void sb_iov(struct sbuf *b, const struct op *o)
{
	sb_printf(b, "[");
	for (int i = 0; i < o->n; i++)
		sb_printf(b, "%s%d", i ? " " : "", o->v[i]);
	sb_printf(b, "]");
}

/* The call as the program makes it (show and transcripts). */
static void sb_op(struct sbuf *b, const struct op *o)
{
	static const char *const shut[] = { "SHUT_RD", "SHUT_WR", "SHUT_RDWR" };
	static const char *const whence[] = { "SEEK_SET", "SEEK_CUR",
					      "SEEK_END" };
	static const char *const ctl[] = { "", "ADD", "DEL", "MOD" };

	sb_printf(b, "%s(", op_name[o->kind]);
	switch (o->kind) {
	case OP_SOCKETPAIR:
		sb_flags(b, o->flags, pair_names);
		break;
	case OP_TCPPAIR:
		sb_flags(b, o->flags, tcp_names);
		break;
	case OP_PIPE:
		sb_flags(b, o->flags, pipe_names);
		break;
	case OP_OPENAT:
		sb_fd(b, o->fd);
		sb_printf(b, ", ");
		/* fall through */
	case OP_OPEN:
		sb_printf(b, "f%d, ", o->len);
		sb_flags(b, open_flags[o->flags], open_names);
		sb_printf(b, ", 0%lo", (unsigned long)o->off);
		break;
	case OP_EPOLL_CREATE:
		sb_printf(b, "%s", o->flags ? "CLOEXEC" : "0");
		break;
	case OP_DUP2:
		sb_printf(b, "%d, %d", o->fd, o->fd2);
		break;
	case OP_DUP3:
		sb_printf(b, "%d, %d, %s", o->fd, o->fd2,
			  o->flags ? "CLOEXEC" : "0");
		break;
	case OP_DUPFD:
		sb_printf(b, "%d, %s, %d", o->fd,
			  o->flags == F_DUPFD ? "F_DUPFD" : "F_DUPFD_CLOEXEC",
			  o->len);
		break;
	case OP_SETFL:
		sb_printf(b, "%d, F_SETFL, ", o->fd);
		sb_flags(b, o->len, open_names);
		break;
	case OP_GETFL:
		sb_printf(b, "%d, F_GETFL", o->fd);
		break;
	case OP_SETFD:
		sb_printf(b, "%d, F_SETFD, %d", o->fd, o->len);
		break;
	case OP_GETFD:
		sb_printf(b, "%d, F_GETFD", o->fd);
		break;
	case OP_READ:
	case OP_WRITE:
		sb_printf(b, "%d, %d", o->fd, o->len);
		break;
	case OP_READV:
	case OP_WRITEV:
		sb_printf(b, "%d, ", o->fd);
		sb_iov(b, o);
		break;
	case OP_RECV:
	case OP_RECVFROM:
	case OP_SEND:
	case OP_SENDTO:
		sb_printf(b, "%d, %d, ", o->fd, o->len);
		sb_flags(b, o->flags, msg_names);
		break;
	case OP_RECVMSG:
	case OP_SENDMSG:
		sb_printf(b, "%d, ", o->fd);
		sb_iov(b, o);
		sb_printf(b, ", ");
		sb_flags(b, o->flags, msg_names);
		break;
	case OP_PREAD:
	case OP_PWRITE:
		sb_printf(b, "%d, %d, %ld", o->fd, o->len, o->off);
		break;
	case OP_SENDFILE:
		if (o->off < 0)
			sb_printf(b, "%d, %d, NULL, %d", o->fd, o->fd2, o->len);
		else
			sb_printf(b, "%d, %d, &%ld, %d", o->fd, o->fd2, o->off,
				  o->len);
		break;
	case OP_LSEEK:
		sb_printf(b, "%d, %ld, %s", o->fd, o->off, whence[o->flags]);
		break;
	case OP_FTRUNCATE:
		sb_printf(b, "%d, %d", o->fd, o->len);
		break;
	case OP_FCHMOD:
		sb_printf(b, "%d, 0%o", o->fd, (unsigned)o->len);
		break;
	case OP_SHUTDOWN:
		sb_printf(b, "%d, %s", o->fd, shut[o->flags]);
		break;
	case OP_SETSOCKOPT:
		if (o->flags == SO_LINGER_)
			sb_printf(b, "%d, SO_LINGER, {%d, %ld}", o->fd, o->len,
				  o->off);
		else
			sb_printf(b, "%d, %s, %d", o->fd,
				  sockopt_name[o->flags], o->len);
		break;
	case OP_GETSOCKOPT:
		sb_printf(b, "%d, %s", o->fd, sockopt_name[o->flags]);
		break;
	case OP_EPOLL_CTL:
		sb_printf(b, "%d, %s, %d, ", o->fd, ctl[o->flags], o->fd2);
		sb_flags(b, o->len, ep_names);
		break;
	case OP_EPOLL_WAIT:
		sb_printf(b, "%d, 32, 0", o->fd);
		break;
	case OP_POLL:
		sb_printf(b, "[");
		for (int i = 0; i < o->n; i++) {
			sb_printf(b, "%s%d:", i ? " " : "", o->v[i]);
			sb_flags(b, o->ev[i], poll_names);
		}
		sb_printf(b, "], 0");
		break;
	case OP_FIONREAD:
		sb_printf(b, "%d, FIONREAD", o->fd);
		break;
	case OP_SIGPIPE:
		sb_printf(b, "SIGPIPE, %s", o->flags ? "counted" : "SIG_IGN");
		break;
	case OP_THREAD:
		sb_printf(b, "t%d", o->len);
		break;
	default:
		if (o->fd >= 0)
			sb_printf(b, "%d", o->fd);
	}
	sb_printf(b, ")");
}

static void show_prog(struct sbuf *b, const struct prog *p, const char *pre)
{
	for (int i = 0; i < p->n; i++) {
		const struct op *o = &p->op[i];
		char sub[64];

		sb_printf(b, "%s%d ", pre, i);
		sb_op(b, o);
		if (o->nmade) {
			sb_printf(b, " -> [");
			for (int j = 0; j < o->nmade; j++)
				sb_printf(b, "%s%d", j ? " " : "", o->made[j]);
			sb_printf(b, "]");
		}
		sb_printf(b, "\n");
		if (o->sub) {
			snprintf(sub, sizeof(sub), "%s%d%c", pre, i,
				 o->kind == OP_FORK ? '.' : ':');
			show_prog(b, o->sub, sub);
		}
	}
}

/* ------------------------------------------------------------ interpreter */

/*
 * What the interpreter knows of each open file description, from the
 * results of earlier calls. Shared with fork children (they change what
 * their parent will find: data queued, shutdowns). Reference counts are
 * per process.
 */
struct rdesc {
	int kind;
	int peer; /* the other end, -1 if none */
	int nonblock; /* O_NONBLOCK on the description */
	int closed; /* its last descriptor is gone */
	int shut_rd, shut_wr; /* shutdown() on this end */
	int eof_in; /* reads end: the writer shut down or closed */
	int epipe_out; /* writes fail: the reader shut down or closed */
	int reset_in; /* TCP: a reset is on its way here */
	int inflight; /* bytes queued to be read here */
	int segs; /* writes queued here since it was last empty */
	int small_sndbuf; /* SO_SNDBUF was set below the default */
	int sndbuf_set, rcvbuf_set; /* TCP: set, so no longer auto-tuned */
	int linger_abort; /* SO_LINGER {1, 0}: close resets */
	int packets; /* pipe made O_DIRECT: a short read drops the rest of
		      * a packet, so inflight is only an upper bound */
	int thread; /* the running thread's: main keeps off */
};

static struct rdesc *D; /* MAXD entries, shared */
static int *ndesc; /* shared */
static int fdmap[GFD]; /* fd -> description, per process */
static short refs[MAXD];
static uint8_t pinned[MAXD]; /* fork child: the parent holds it open */
static uint64_t g_seed;
static double settle_s = 10; /* ESCA_DIFF_SETTLE: give up on TCP after */
static bool g_debug; /* ESCA_DIFF_DEBUG: say why TCP was slow to settle */

static __thread volatile sig_atomic_t t_sigpipes;

struct ctx {
	struct sbuf out;
	char *rbuf, *wbuf;
	const struct prog *prog;
	char pre[48]; /* "", "12." (child of op 12), "12:" (thread) */
	int where;
	bool tcp_dirty;
	uint64_t ops; /* calls made, for the data written */
	int calls; /* calls made, with its children's and thread's: the summary */
	pthread_t thr; /* main: the running thread */
	struct ctx *tctx;
};

static void ctx_init(struct ctx *c, int where, const char *pre)
{
	memset(c, 0, sizeof(*c));
	c->where = where;
	snprintf(c->pre, sizeof(c->pre), "%s", pre);
	c->rbuf = malloc(MAXLEN);
	c->wbuf = malloc(MAXLEN);
	if (!c->rbuf || !c->wbuf)
		die("out of memory");
}

static void ctx_free(struct ctx *c)
{
	free(c->rbuf);
	free(c->wbuf);
	free(c->out.p);
}

static int desc_of(int fd)
{
	return fd >= 0 && fd < GFD ? fdmap[fd] : -1;
}

static struct rdesc *rd(int fd)
{
	int d = desc_of(fd);

	return d >= 0 ? &D[d] : NULL;
}

static struct rdesc *peer(const struct rdesc *d)
{
	return d && d->peer >= 0 ? &D[d->peer] : NULL;
}

static int new_desc(int kind, int nonblock)
{
	int d = (*ndesc)++;

	if (d >= MAXD)
		die("too many descriptions");
	memset(&D[d], 0, sizeof(D[d]));
	D[d].kind = kind;
	D[d].peer = -1;
	D[d].nonblock = nonblock;
	return d;
}

static void map_fd(int fd, int d)
{
	if (fd < 0 || fd >= GFD || d < 0)
		return;
	fdmap[fd] = d;
	refs[d]++;
}

static void final_close(int d)
{
	struct rdesc *x = &D[d], *p = peer(x);

	x->closed = 1;
	if (!p || p->closed)
		return;
	switch (x->kind) {
	case K_UNIX:
		p->eof_in = 1;
		p->epipe_out = 1;
		break;
	case K_PIPE_W:
		p->eof_in = 1;
		break;
	case K_PIPE_R:
		p->epipe_out = 1;
		break;
	case K_TCP:
		if (x->reset_in)
			break; /* already closed by a reset: sends nothing */
		if (x->inflight > 0 || x->linger_abort)
			p->reset_in = 1; /* unread data: RST, not FIN */
		else if (!x->shut_wr)
			p->eof_in = 1;
		break;
	}
}

static void unref_fd(int fd)
{
	int d = desc_of(fd);

	if (d < 0)
		return;
	fdmap[fd] = -1;
	if (--refs[d] == 0 && !pinned[d])
		final_close(d);
}

/* Bytes @n written on @fd are now queued at the other end. */
static void produced(int fd, long n)
{
	struct rdesc *x = rd(fd), *p = peer(x);

	if (!x || n <= 0 || !p)
		return;
	if (x->kind == K_TCP) {
		if (p->closed) {
			x->reset_in = 1; /* an orphan answers data with RST */
			return;
		}
		if (p->shut_rd && p->shut_wr && !p->reset_in) {
			/* in FIN_WAIT with RCV_SHUTDOWN, data is not queued:
			 * it resets both ends */
			x->reset_in = 1;
			p->reset_in = 1;
			return;
		}
	}
	p->inflight += (int)n;
	p->segs += 1 + (int)(n / 4096);
}

static void consumed(int fd, long n)
{
	struct rdesc *x = rd(fd);

	if (!x || n <= 0 || x->kind == K_FILE)
		return;
	x->inflight -= (int)n;
	if (x->inflight < 0) {
		fprintf(stderr,
			"esca-diff: seed %" PRIu64
			": fd %d: read %ld more bytes than were sent\n",
			g_seed, fd, -(long)x->inflight);
		x->inflight = 0;
	}
	if (!x->inflight)
		x->segs = 0;
}

/*
 * Could a read of @len bytes on @fd block? Only reads the interpreter
 * knows will return at once are made.
 */
static bool read_blocks(int fd, int len, int flags)
{
	struct rdesc *x = rd(fd);
	bool eof;

	if (!x || (flags & MSG_DONTWAIT) || x->nonblock)
		return false;
	switch (x->kind) {
	case K_UNIX:
		eof = x->eof_in || x->shut_rd;
		break;
	case K_PIPE_R:
		eof = x->eof_in;
		if (!eof && x->packets)
			return true;
		break;
	case K_TCP:
		eof = x->eof_in || x->reset_in || x->shut_rd;
		break;
	default:
		return false;
	}
	if (eof)
		return false;
	if (flags & MSG_WAITALL)
		return x->inflight < len;
	return x->inflight == 0;
}

/* Could a write of @len bytes on @fd block (or, for TCP, fill a window,
 * which would make later readiness depend on timing)? */
static bool write_blocks(int fd, int len, int flags, int nb, const char **why)
{
	struct rdesc *x = rd(fd), *p = peer(x);
	bool dontwait = (flags & MSG_DONTWAIT) ||
			(nb < 0 ? x && x->nonblock : nb > 0);

	*why = "would block";
	if (!x || !p)
		return false;
	switch (x->kind) {
	case K_TCP:
		if (x->shut_wr || x->reset_in || p->closed)
			return false; /* EPIPE, or an orphan's RST */
		*why = "tcp window";
		return p->inflight + len > TCP_WINDOW;
	case K_UNIX:
		if (dontwait || x->shut_wr || x->epipe_out || p->closed)
			return false;
		if (len > 2048)
			return true;
		if (x->small_sndbuf)
			return p->inflight > 0;
		return p->segs >= 8 || p->inflight + len > 8192;
	case K_PIPE_W:
		if (dontwait || x->epipe_out)
			return false;
		return len > 4096 || p->segs >= 8 || p->inflight + len > 8192;
	}
	return false;
}

static uint32_t hash(const char *p, long n)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (long i = 0; i < n; i++)
		h = (h ^ (uint8_t)p[i]) * 0x100000001b3ull;
	return (uint32_t)(h ^ (h >> 32));
}

static void fill(struct ctx *c, long n)
{
	uint64_t s = g_seed * 1000003 + c->ops * 7919 + (uint64_t)c->where;

	for (long i = 0; i < n; i += 8) {
		uint64_t v = splitmix(&s);

		memcpy(c->wbuf + i, &v, n - i >= 8 ? 8 : (size_t)(n - i));
	}
}

static void res(struct ctx *c, long r, int err)
{
	if (r < 0)
		sb_printf(&c->out, " = -1 %s", strerrorname_np(err) ?: "E?");
	else
		sb_printf(&c->out, " = %ld", r);
}

static void res_read(struct ctx *c, long r, int err, long shown)
{
	res(c, r, err);
	if (r > 0)
		sb_printf(&c->out, " h=%08x", hash(c->rbuf, shown));
}

static void sigpipe_handler(int sig)
{
	(void)sig;
	t_sigpipes++;
}

/* TCP: is this description quiet? Everything sent to it readable,
 * everything it sent acked, the FIN or reset it expects arrived. */
static bool tcp_quiet(struct rdesc *x, int fd, int peer_fd, bool nudge,
		      struct sbuf *why)
{
	int inq = -1, outq = -1, one = 1;
	struct pollfd pf = { .fd = fd, .events = POLLIN | POLLOUT | POLLRDHUP };

	if (poll(&pf, 1, 0) < 0)
		goto busy;
	if (ioctl(fd, SIOCINQ, &inq) < 0 || inq != x->inflight)
		goto busy;
	if (x->reset_in) {
		if (pf.revents & POLLHUP)
			return true;
		goto busy;
	}
	/*
	 * Whether what it sent is acked yet cannot be seen (the buffers are
	 * far from full, so writability does not change), except for the
	 * FIN: its ACK moves the state (FIN_WAIT1 to FIN_WAIT2, LAST_ACK or
	 * CLOSING to CLOSE, after which shutdown() says ENOTCONN), and the
	 * state change wakes the socket: one more edge for an EPOLLET
	 * watcher. A peer that got the FIN first delays its ACK (up to
	 * 200 ms), so without this wait an epoll_wait a few ops later saw
	 * that edge in one run and not in the other.
	 */
	if (x->shut_wr && (ioctl(fd, SIOCOUTQ, &outq) < 0 || outq != 0)) {
		/* a delayed ACK holds it: ask the peer to ack now */
		if (nudge && peer_fd >= 0)
			setsockopt(peer_fd, IPPROTO_TCP, TCP_QUICKACK, &one,
				   sizeof(one));
		goto busy;
	}
	if (x->eof_in && !(pf.revents & POLLRDHUP))
		goto busy;
	return true;
busy:
	if (why)
		sb_printf(
			why,
			" fd %d: inq %d want %d, outq %d, revents %#x, reset %d eof %d",
			fd, inq, x->inflight, outq, (unsigned)pf.revents,
			x->reset_in, x->eof_in);
	return false;
}

/* Wait until every TCP socket of ours is quiet (not in the transcript,
 * unless it never happens). */
static void tcp_settle(struct ctx *c)
{
	int fdof[MAXD];
	double t0 = now();

	c->tcp_dirty = false;
	for (int d = 0; d < *ndesc; d++)
		fdof[d] = -1;
	for (int fd = GFD - 1; fd >= 3; fd--)
		if (fdmap[fd] >= 0)
			fdof[fdmap[fd]] = fd;
	for (int iter = 0;; iter++) {
		bool quiet = true, late = now() - t0 > settle_s;
		struct sbuf why = { 0 };

		for (int d = 0; d < *ndesc; d++) {
			struct rdesc *x = &D[d];

			if (x->kind != K_TCP || x->closed || fdof[d] < 0)
				continue;
			if (!tcp_quiet(x, fdof[d],
				       x->peer >= 0 ? fdof[x->peer] : -1,
				       iter >= 2,
				       late || (g_debug && iter == 60) ? &why :
									 NULL))
				quiet = false;
		}
		if (quiet) {
			if (g_debug && now() - t0 > 0.005)
				fprintf(stderr,
					"esca-diff: seed %" PRIu64
					": TCP settled in %.1f ms\n",
					g_seed, (now() - t0) * 1e3);
			return;
		}
		if (g_debug && why.p && !late) {
			fprintf(stderr,
				"esca-diff: seed %" PRIu64 ": slow:%s\n",
				g_seed, why.p);
			free(why.p);
			why.p = NULL;
		}
		if (late) {
			sb_printf(&c->out, "settle timeout:%s\n", why.p);
			fprintf(stderr,
				"esca-diff: seed %" PRIu64
				": TCP never settled:%s\n",
				g_seed, why.p);
			free(why.p);
			return;
		}
		if (iter < 20) {
			sched_yield();
		} else {
			struct timespec ts = { 0,
					       iter < 100 ? 50000 : 1000000 };

			nanosleep(&ts, NULL);
		}
	}
}

static bool is_tcp(int fd)
{
	struct rdesc *x = rd(fd);

	return x && x->kind == K_TCP;
}

static bool is_threads(int fd)
{
	struct rdesc *x = rd(fd);

	return x && x->thread;
}

/* Main, while a thread runs: does the call name one of its descriptors
 * (only if the generator lost track of the table)? */
static bool touches_thread(const struct op *o)
{
	if (is_threads(o->fd) || is_threads(o->fd2))
		return true;
	for (int i = 0; o->kind == OP_POLL && i < o->n; i++)
		if (is_threads(o->v[i]))
			return true;
	return false;
}

static bool touches_tcp(const struct op *o)
{
	if (is_tcp(o->fd) || is_tcp(o->fd2))
		return true;
	for (int i = 0; o->kind == OP_POLL && i < o->n; i++)
		if (is_tcp(o->v[i]))
			return true;
	return o->kind == OP_TCPPAIR || o->kind == OP_FORK;
}

static void run_prog(struct ctx *c, const struct prog *p);

static void op_tcppair(struct ctx *c, const struct op *o)
{
	int cl = (o->flags & 4) ? SOCK_CLOEXEC : 0, one = 1, err;
	int l = -1, cfd = -1, sfd = -1;
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t al = sizeof(a);
	const char *step;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	step = "socket";
	if ((l = socket(AF_INET, SOCK_STREAM | cl, 0)) < 0)
		goto fail;
	step = "bind";
	if (bind(l, (struct sockaddr *)&a, sizeof(a)) < 0)
		goto fail;
	step = "listen";
	if (listen(l, 8) < 0 || getsockname(l, (struct sockaddr *)&a, &al) < 0)
		goto fail;
	step = "socket";
	if ((cfd = socket(AF_INET, SOCK_STREAM | cl, 0)) < 0)
		goto fail;
	step = "connect";
	if (connect(cfd, (struct sockaddr *)&a, al) < 0)
		goto fail;
	step = "accept4";
	sfd = accept4(l, NULL, NULL, cl | ((o->flags & 2) ? SOCK_NONBLOCK : 0));
	if (sfd < 0)
		goto fail;
	close(l);
	step = "fcntl";
	if ((o->flags & 1) && fcntl(cfd, F_SETFL, O_NONBLOCK) < 0)
		goto fail;
	step = "setsockopt";
	if (!(o->flags & 8) &&
	    (setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0 ||
	     setsockopt(sfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0))
		goto fail;
	sb_printf(&c->out, " = 0 [%d %d]", cfd, sfd);
	{
		int dc = new_desc(K_TCP, o->flags & 1),
		    ds = new_desc(K_TCP, !!(o->flags & 2));

		D[dc].peer = ds;
		D[ds].peer = dc;
		map_fd(cfd, dc);
		map_fd(sfd, ds);
	}
	if (cfd >= GFD || sfd >= GFD)
		die("seed %" PRIu64 ": descriptor past %d", g_seed, GFD);
	return;
fail:
	err = errno;
	sb_printf(&c->out, " = -1 %s (%s)", strerrorname_np(err) ?: "E?", step);
	fprintf(stderr, "esca-diff: seed %" PRIu64 ": tcppair: %s: %s\n",
		g_seed, step, strerror(err));
	if (l >= 0)
		close(l);
	if (cfd >= 0)
		close(cfd);
	if (sfd >= 0)
		close(sfd);
}

static void *thread_main(void *arg)
{
	struct ctx *t = arg;

	run_prog(t, t->prog);
	return NULL;
}

static void op_thread(struct ctx *c, const struct op *o, int idx)
{
	int sv[2] = { -1, -1 }, pp[2] = { -1, -1 }, e, f, r1, r2, d;
	char name[64];

	r1 = socketpair(AF_UNIX,
			SOCK_STREAM | ((o->flags & 1) ? SOCK_NONBLOCK : 0), 0,
			sv);
	r2 = pipe2(pp, (o->flags & 2) ? O_NONBLOCK : 0);
	e = epoll_create1(0);
	snprintf(name, sizeof(name), "t%d", o->len);
	f = open(name, O_RDWR | O_CREAT | O_TRUNC, 0600);
	sb_printf(&c->out, " = [%d %d %d %d %d %d]", sv[0], sv[1], pp[0], pp[1],
		  e, f);
	if (r1 == 0) {
		d = new_desc(K_UNIX, o->flags & 1);
		D[d].peer = d + 1;
		map_fd(sv[0], d);
		d = new_desc(K_UNIX, o->flags & 1);
		D[d].peer = d - 1;
		map_fd(sv[1], d);
	}
	if (r2 == 0) {
		d = new_desc(K_PIPE_R, !!(o->flags & 2));
		D[d].peer = d + 1;
		map_fd(pp[0], d);
		d = new_desc(K_PIPE_W, !!(o->flags & 2));
		D[d].peer = d - 1;
		map_fd(pp[1], d);
	}
	map_fd(e, new_desc(K_EPOLL, 0));
	map_fd(f, new_desc(K_FILE, 0));
	for (int i = 0; i < 6; i++) {
		int fds[6] = { sv[0], sv[1], pp[0], pp[1], e, f };

		if (desc_of(fds[i]) >= 0)
			D[desc_of(fds[i])].thread = 1;
	}
	c->tctx = malloc(sizeof(*c->tctx));
	snprintf(name, sizeof(name), "%s%d:", c->pre, idx);
	ctx_init(c->tctx, G_THREAD, name);
	c->tctx->prog = o->sub;
	if (pthread_create(&c->thr, NULL, thread_main, c->tctx))
		die("pthread_create failed");
}

static void op_join(struct ctx *c)
{
	if (!c->tctx) {
		sb_printf(&c->out, " = no thread");
		return;
	}
	pthread_join(c->thr, NULL);
	for (int d = 0; d < *ndesc; d++)
		D[d].thread = 0;
	sb_printf(&c->out, " = 0\n");
	sb_add(&c->out, c->tctx->out.p ? c->tctx->out.p : "", c->tctx->out.len);
	c->calls += c->tctx->calls;
	c->out.len--; /* the caller ends the line */
	ctx_free(c->tctx);
	free(c->tctx);
	c->tctx = NULL;
}

static void op_fork(struct ctx *c, const struct op *o, int idx)
{
	char pre[64], buf[65536];
	int st = 0, err;
	pid_t pid;
	ssize_t n;
	struct sbuf got = { 0 };

	pid = fork();
	if (pid == 0) {
		struct ctx cc;

		snprintf(pre, sizeof(pre), "%s%d.", c->pre, idx);
		ctx_init(&cc, G_CHILD, pre);
		for (int d = 0; d < *ndesc; d++)
			pinned[d] = refs[d] > 0;
		cc.tcp_dirty = true;
		run_prog(&cc, o->sub);
		sb_printf(&cc.out, "%s#ops %d\n", pre, cc.calls);
		write_all(FD_RES_W, cc.out.p, cc.out.len);
		_exit(0);
	}
	err = errno;
	if (pid < 0) {
		res(c, -1, err);
		return;
	}
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	c->tcp_dirty = true; /* the child's TCP calls settle before our next */
	while ((n = read(FD_RES_R, buf, sizeof(buf))) > 0)
		sb_add(&got, buf, (size_t)n);
	if (WIFEXITED(st))
		sb_printf(&c->out, " = child exit %d", WEXITSTATUS(st));
	else
		sb_printf(&c->out, " = child signal %d", WTERMSIG(st));
	/* the child's lines follow; its call count is the last */
	if (got.len) {
		char *last, *cnt;

		got.p[got.len - 1] = 0;
		last = strrchr(got.p, '\n');
		cnt = strstr(last ? last : got.p, "#ops ");
		if (cnt)
			c->calls += atoi(cnt + 5);
		if (last) {
			*last = 0;
			sb_printf(&c->out, "\n%s", got.p);
		}
	}
	free(got.p);
}

static void sb_events(struct sbuf *b, struct epoll_event *ev, int n)
{
	/* the ready list's order is not the program's business: sort */
	for (int i = 1; i < n; i++)
		for (int j = i;
		     j > 0 && (ev[j - 1].data.u64 > ev[j].data.u64 ||
			       (ev[j - 1].data.u64 == ev[j].data.u64 &&
				ev[j - 1].events > ev[j].events));
		     j--) {
			struct epoll_event t = ev[j];

			ev[j] = ev[j - 1];
			ev[j - 1] = t;
		}
	sb_printf(b, " [");
	for (int i = 0; i < n; i++) {
		sb_printf(b, "%s%" PRIu64 ":", i ? " " : "", ev[i].data.u64);
		sb_flags(b, (int)ev[i].events, ep_names);
	}
	sb_printf(b, "]");
}

static void setsockopt_done(struct ctx *c, const struct op *o, int r)
{
	struct rdesc *x = rd(o->fd);

	(void)c;
	if (r || !x)
		return;
	switch (o->flags) {
	case SO_SNDBUF_:
		x->small_sndbuf = o->len < 65536;
		x->sndbuf_set = 1;
		break;
	case SO_RCVBUF_:
		x->rcvbuf_set = 1;
		break;
	case SO_LINGER_:
		x->linger_abort = o->len && !o->off;
		break;
	}
}

/* Bytes a file has from @off (-1: its position) to its end. */
static long file_left(int fd, long off)
{
	struct stat st;

	if (off < 0)
		off = lseek(fd, 0, SEEK_CUR);
	if (off < 0 || fstat(fd, &st) < 0)
		return LONG_MAX;
	return st.st_size > off ? st.st_size - off : 0;
}

/* One call: its line in the transcript. */
static void run_op(struct ctx *c, const struct op *o, int idx)
{
	struct sbuf *b = &c->out;
	struct rdesc *x = rd(o->fd);
	struct iovec iov[4];
	long r = 0;
	int err = 0, v, sig0, fd = o->fd;
	bool tcp, skipped = false;
	const char *why;

	if (c->tcp_dirty && c->where != G_THREAD)
		tcp_settle(c);
	tcp = touches_tcp(o);
	sig0 = t_sigpipes;
	c->ops++;
	c->calls++;
	sb_printf(b, "%s%d ", c->pre, idx);
	sb_op(b, o);
	if (c->where != G_THREAD && touches_thread(o)) {
		sb_printf(b, " skip (the thread's descriptor)\n");
		return;
	}

	switch (o->kind) {
	case OP_SOCKETPAIR: {
		int sv[2] = { -1, -1 };

		r = socketpair(AF_UNIX,
			       SOCK_STREAM |
				       ((o->flags & 1) ? SOCK_NONBLOCK : 0) |
				       ((o->flags & 2) ? SOCK_CLOEXEC : 0),
			       0, sv);
		err = errno;
		res(c, r, err);
		if (r == 0) {
			int a = new_desc(K_UNIX, o->flags & 1),
			    bb = new_desc(K_UNIX, o->flags & 1);

			D[a].peer = bb;
			D[bb].peer = a;
			map_fd(sv[0], a);
			map_fd(sv[1], bb);
			sb_printf(b, " [%d %d]", sv[0], sv[1]);
		}
		break;
	}
	case OP_TCPPAIR:
		op_tcppair(c, o);
		break;
	case OP_PIPE: {
		int pp[2] = { -1, -1 };

		r = pipe2(pp, ((o->flags & 1) ? O_NONBLOCK : 0) |
				      ((o->flags & 2) ? O_CLOEXEC : 0) |
				      ((o->flags & 4) ? O_DIRECT : 0));
		err = errno;
		res(c, r, err);
		if (r == 0) {
			int a = new_desc(K_PIPE_R, o->flags & 1),
			    bb = new_desc(K_PIPE_W, o->flags & 1);

			D[a].peer = bb;
			D[bb].peer = a;
			D[a].packets = !!(o->flags & 4);
			map_fd(pp[0], a);
			map_fd(pp[1], bb);
			sb_printf(b, " [%d %d]", pp[0], pp[1]);
		}
		break;
	}
	case OP_OPEN:
	case OP_OPENAT: {
		char name[8];

		snprintf(name, sizeof(name), "f%d", o->len);
		if (o->kind == OP_OPEN)
			r = open(name, open_flags[o->flags], (mode_t)o->off);
		else
			r = openat(o->fd, name, open_flags[o->flags],
				   (mode_t)o->off);
		err = errno;
		res(c, r, err);
		if (r >= 0)
			map_fd((int)r,
			       new_desc(K_FILE,
					!!(open_flags[o->flags] & O_NONBLOCK)));
		break;
	}
	case OP_EPOLL_CREATE:
		r = epoll_create1(o->flags);
		err = errno;
		res(c, r, err);
		if (r >= 0)
			map_fd((int)r, new_desc(K_EPOLL, 0));
		break;
	case OP_CLOSE:
		r = close(fd);
		err = errno;
		res(c, r, err);
		if (r == 0)
			unref_fd(fd);
		break;
	case OP_DUP:
		r = dup(fd);
		err = errno;
		res(c, r, err);
		map_fd((int)r, desc_of(fd));
		break;
	case OP_DUP2:
	case OP_DUP3:
		r = o->kind == OP_DUP2 ? dup2(fd, o->fd2) :
					 dup3(fd, o->fd2, o->flags);
		err = errno;
		res(c, r, err);
		if (r >= 0 && fd != o->fd2) {
			int d = desc_of(fd);

			unref_fd(o->fd2);
			map_fd(o->fd2, d);
		}
		break;
	case OP_DUPFD:
		r = fcntl(fd, o->flags, o->len);
		err = errno;
		res(c, r, err);
		map_fd((int)r, desc_of(fd));
		break;
	case OP_SETFL:
		r = fcntl(fd, F_SETFL, o->len);
		err = errno;
		res(c, r, err);
		if (r == 0 && x)
			x->nonblock = !!(o->len & O_NONBLOCK);
		break;
	case OP_GETFL:
		r = fcntl(fd, F_GETFL);
		err = errno;
		if (r >= 0)
			sb_printf(b, " = %#lx", (unsigned long)r);
		else
			res(c, r, err);
		break;
	case OP_SETFD:
		r = fcntl(fd, F_SETFD, o->len);
		err = errno;
		res(c, r, err);
		break;
	case OP_GETFD:
		r = fcntl(fd, F_GETFD);
		err = errno;
		res(c, r, err);
		break;
	case OP_READ:
	case OP_READV:
	case OP_RECV:
	case OP_RECVFROM:
	case OP_RECVMSG:
	case OP_PREAD: {
		int flags = o->kind == OP_RECV || o->kind == OP_RECVFROM ||
					    o->kind == OP_RECVMSG ?
				    o->flags :
				    0;
		struct sockaddr_storage sa;
		socklen_t sl = sizeof(sa);
		struct msghdr mh = { 0 };

		if (o->kind != OP_PREAD && read_blocks(fd, o->len, flags)) {
			skipped = true;
			sb_printf(b, " skip (would block)");
			break;
		}
		memset(c->rbuf, 0, (size_t)o->len);
		for (int i = 0, at = 0; i < o->n; at += o->v[i++])
			iov[i] =
				(struct iovec){ c->rbuf + at, (size_t)o->v[i] };
		switch (o->kind) {
		case OP_READ:
			r = read(fd, c->rbuf, (size_t)o->len);
			break;
		case OP_READV:
			r = readv(fd, iov, o->n);
			break;
		case OP_RECV:
			r = recv(fd, c->rbuf, (size_t)o->len, flags);
			break;
		case OP_RECVFROM:
			r = recvfrom(fd, c->rbuf, (size_t)o->len, flags,
				     (struct sockaddr *)&sa, &sl);
			break;
		case OP_RECVMSG:
			mh.msg_iov = iov;
			mh.msg_iovlen = (size_t)o->n;
			r = recvmsg(fd, &mh, flags);
			break;
		case OP_PREAD:
			r = pread(fd, c->rbuf, (size_t)o->len, o->off);
			break;
		}
		err = errno;
		res_read(c, r, err, r > 0 ? r : 0);
		if (r >= 0 && o->kind == OP_RECVFROM)
			sb_printf(b, " addrlen=%u", (unsigned)sl);
		if (r >= 0 && o->kind == OP_RECVMSG) {
			sb_printf(b, " msg_flags=");
			sb_flags(b, mh.msg_flags, msg_names);
		}
		if (r > 0 && !(flags & MSG_PEEK) && o->kind != OP_PREAD)
			consumed(fd, r);
		break;
	}
	case OP_WRITE:
	case OP_WRITEV:
	case OP_SEND:
	case OP_SENDTO:
	case OP_SENDMSG:
	case OP_PWRITE: {
		int flags = o->kind == OP_SEND || o->kind == OP_SENDTO ||
					    o->kind == OP_SENDMSG ?
				    o->flags :
				    0;
		struct msghdr mh = { 0 };

		if (o->kind != OP_PWRITE &&
		    write_blocks(fd, o->len, flags, -1, &why)) {
			skipped = true;
			sb_printf(b, " skip (%s)", why);
			break;
		}
		fill(c, o->len);
		for (int i = 0, at = 0; i < o->n; at += o->v[i++])
			iov[i] =
				(struct iovec){ c->wbuf + at, (size_t)o->v[i] };
		switch (o->kind) {
		case OP_WRITE:
			r = write(fd, c->wbuf, (size_t)o->len);
			break;
		case OP_WRITEV:
			r = writev(fd, iov, o->n);
			break;
		case OP_SEND:
			r = send(fd, c->wbuf, (size_t)o->len, flags);
			break;
		case OP_SENDTO:
			r = sendto(fd, c->wbuf, (size_t)o->len, flags, NULL, 0);
			break;
		case OP_SENDMSG:
			mh.msg_iov = iov;
			mh.msg_iovlen = (size_t)o->n;
			r = sendmsg(fd, &mh, flags);
			break;
		case OP_PWRITE:
			r = pwrite(fd, c->wbuf, (size_t)o->len, o->off);
			break;
		}
		err = errno;
		res(c, r, err);
		if (o->kind != OP_PWRITE)
			produced(fd, r);
		break;
	}
	case OP_SENDFILE: {
		struct rdesc *in = rd(o->fd2);
		off_t off = o->off;

		if (in && in->kind != K_FILE && in->kind != K_EPOLL &&
		    in->kind != K_PIPE_W) {
			/* a socket or pipe as the source could block */
			skipped = true;
			sb_printf(b, " skip (source would block)");
			break;
		}
		/* into a pipe, sendfile waits unless the source file is
		 * O_NONBLOCK; into a socket, unless the socket is */
		if (write_blocks(fd, o->len, 0,
				 x && x->kind == K_PIPE_W ? in && in->nonblock :
							    -1,
				 &why)) {
			skipped = true;
			sb_printf(b, " skip (%s)", why);
			break;
		}
		if (x && x->kind == K_TCP && in && in->kind == K_FILE &&
		    o->len > file_left(o->fd2, o->off)) {
			/* short of count at end of file, the last piece goes
			 * with MSG_MORE: TCP holds it back indefinitely */
			skipped = true;
			sb_printf(b, " skip (past end of file, to tcp)");
			break;
		}
		r = sendfile(fd, o->fd2, o->off < 0 ? NULL : &off,
			     (size_t)o->len);
		err = errno;
		res(c, r, err);
		if (o->off >= 0 && r >= 0)
			sb_printf(b, " off=%ld", (long)off);
		produced(fd, r);
		break;
	}
	case OP_LSEEK:
		r = lseek(fd, o->off, o->flags);
		err = errno;
		res(c, r, err);
		break;
	case OP_FTRUNCATE:
		r = ftruncate(fd, o->len);
		err = errno;
		res(c, r, err);
		break;
	case OP_FSYNC:
		r = fsync(fd);
		err = errno;
		res(c, r, err);
		break;
	case OP_FDATASYNC:
		r = fdatasync(fd);
		err = errno;
		res(c, r, err);
		break;
	case OP_FCHMOD:
		if (x && x->kind == K_EPOLL) {
			/* every epoll fd shares one anonymous inode: its mode
			 * is the whole system's, other processes change it */
			skipped = true;
			sb_printf(b, " skip (shared inode)");
			break;
		}
		r = fchmod(fd, (mode_t)o->len);
		err = errno;
		res(c, r, err);
		break;
	case OP_FSTAT: {
		struct stat st;

		r = fstat(fd, &st);
		err = errno;
		res(c, r, err);
		if (r == 0 && x && x->kind == K_EPOLL) /* see OP_FCHMOD */
			st.st_mode &= S_IFMT;
		if (r == 0)
			sb_printf(b, " mode=0%o size=%ld", (unsigned)st.st_mode,
				  (long)st.st_size);
		break;
	}
	case OP_SHUTDOWN:
		r = shutdown(fd, o->flags);
		err = errno;
		res(c, r, err);
		if (r == 0 && x) {
			struct rdesc *p = peer(x);
			bool rd_ = o->flags != SHUT_WR,
			     wr_ = o->flags != SHUT_RD;

			if (x->kind == K_TCP) {
				if (wr_ && !x->shut_wr && p && !p->closed)
					p->eof_in = 1;
			} else if (p) {
				if (wr_)
					p->eof_in = 1;
				if (rd_)
					p->epipe_out = 1;
			}
			x->shut_rd |= rd_;
			x->shut_wr |= wr_;
		}
		break;
	case OP_SETSOCKOPT: {
		static const int lv[] = { SOL_SOCKET, SOL_SOCKET, IPPROTO_TCP,
					  SOL_SOCKET, SOL_SOCKET };
		static const int nm[] = { SO_SNDBUF, SO_RCVBUF, TCP_NODELAY,
					  SO_LINGER, SO_KEEPALIVE };
		struct linger lg = { o->len, (int)o->off };

		if (x && x->kind == K_TCP &&
		    (o->flags == SO_SNDBUF_ || o->flags == SO_RCVBUF_) &&
		    o->len < 65536) {
			/* a small TCP buffer makes writes timing-bound */
			skipped = true;
			sb_printf(b, " skip (small tcp buffer)");
			break;
		}
		v = o->len;
		if (o->flags == SO_LINGER_)
			r = setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg,
				       sizeof(lg));
		else
			r = setsockopt(fd, lv[o->flags], nm[o->flags], &v,
				       sizeof(v));
		err = errno;
		res(c, r, err);
		setsockopt_done(c, o, (int)r);
		break;
	}
	case OP_GETSOCKOPT: {
		static const int lv[] = { SOL_SOCKET, SOL_SOCKET, IPPROTO_TCP,
					  SOL_SOCKET, SOL_SOCKET, SOL_SOCKET,
					  SOL_SOCKET };
		static const int nm[] = { SO_SNDBUF, SO_RCVBUF,	   TCP_NODELAY,
					  SO_LINGER, SO_KEEPALIVE, SO_ERROR,
					  SO_TYPE };
		struct linger lg = { -1, -1 };
		socklen_t l;

		v = -1;
		if (o->flags == SO_LINGER_) {
			l = sizeof(lg);
			r = getsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, &l);
		} else {
			l = sizeof(v);
			r = getsockopt(fd, lv[o->flags], nm[o->flags], &v, &l);
		}
		err = errno;
		res(c, r, err);
		if (r < 0)
			break;
		if (o->flags == SO_LINGER_)
			sb_printf(b, " {%d, %d} len=%u", lg.l_onoff,
				  lg.l_linger, (unsigned)l);
		else if (x && x->kind == K_TCP &&
			 ((o->flags == SO_SNDBUF_ && !x->sndbuf_set) ||
			  (o->flags == SO_RCVBUF_ && !x->rcvbuf_set)))
			sb_printf(b, " auto-tuned len=%u", (unsigned)l);
		else
			sb_printf(b, " %d len=%u", v, (unsigned)l);
		break;
	}
	case OP_EPOLL_CTL: {
		struct epoll_event ev = { .events = (uint32_t)o->len,
					  .data.u64 = (uint64_t)o->fd2 };

		r = epoll_ctl(fd, o->flags, o->fd2, &ev);
		err = errno;
		res(c, r, err);
		break;
	}
	case OP_EPOLL_WAIT: {
		struct epoll_event ev[32];

		r = epoll_wait(fd, ev, 32, 0);
		err = errno;
		res(c, r, err);
		if (r > 0)
			sb_events(b, ev, (int)r);
		break;
	}
	case OP_POLL: {
		struct pollfd pf[4];

		for (int i = 0; i < o->n; i++)
			pf[i] = (struct pollfd){ o->v[i], (short)o->ev[i], 0 };
		r = poll(pf, (nfds_t)o->n, 0);
		err = errno;
		res(c, r, err);
		if (r >= 0) {
			sb_printf(b, " [");
			for (int i = 0; i < o->n; i++) {
				sb_printf(b, "%s%d:", i ? " " : "", pf[i].fd);
				sb_flags(b, pf[i].revents, poll_names);
			}
			sb_printf(b, "]");
		}
		break;
	}
	case OP_FIONREAD:
		v = -1;
		r = ioctl(fd, FIONREAD, &v);
		err = errno;
		res(c, r, err);
		if (r == 0)
			sb_printf(b, " %d", v);
		break;
	case OP_SIGPIPE: {
		struct sigaction sa = { 0 };

		sa.sa_handler = o->flags ? sigpipe_handler : SIG_IGN;
		sa.sa_flags = SA_RESTART;
		r = sigaction(SIGPIPE, &sa, NULL);
		err = errno;
		res(c, r, err);
		break;
	}
	case OP_FORK:
		op_fork(c, o, idx);
		break;
	case OP_THREAD:
		op_thread(c, o, idx);
		break;
	case OP_JOIN:
		op_join(c);
		break;
	}
	/* the generator's table must match the real one */
	for (int i = 0; i < o->nmade; i++)
		if (desc_of(o->made[i]) < 0)
			fprintf(stderr,
				"esca-diff: seed %" PRIu64
				" op %s%d: fd %d not made as generated\n",
				g_seed, c->pre, idx, o->made[i]);
	if (t_sigpipes != sig0)
		sb_printf(b, " sigpipe=%d", t_sigpipes - sig0);
	sb_printf(b, "\n");
	if (tcp && !skipped)
		c->tcp_dirty = true;
}

static void run_prog(struct ctx *c, const struct prog *p)
{
	for (int i = 0; i < p->n; i++)
		run_op(c, &p->op[i], i);
}

/* ------------------------------------------------------------ runner */

static const char *tmp_base(void)
{
	const char *t = getenv("ESCA_DIFF_TMP");

	if (t && *t)
		return t;
	if (access("/dev/shm", W_OK) == 0)
		return "/dev/shm";
	t = getenv("TMPDIR");
	return t && *t ? t : "/tmp";
}

/* Move @fd to @to (the harness's own numbers stay out of the way). */
static void park(int fd, int to)
{
	if (fd < 0 || dup3(fd, to, O_CLOEXEC) < 0)
		die("cannot set up descriptor %d: %s", to, strerror(errno));
	close(fd);
}

static struct ctx *g_main_ctx;
static int g_out;

/* A program that hangs is a bug here (or in the shim): show how far the
 * main thread got. The buffer may be mid-update: good enough to debug. */
static void on_alarm(int sig)
{
	static const char msg[] = "timeout: the program hung here\n";

	(void)sig;
	if (g_main_ctx && g_main_ctx->out.p)
		write_all(g_out, g_main_ctx->out.p, g_main_ctx->out.len);
	write_all(g_out, msg, sizeof(msg) - 1);
	_exit(3);
}

/* One program, in a process of its own: its transcript to @out. */
static void run_one(uint64_t seed, const struct prog *p, int out)
{
	char dir[PATH_MAX];
	int pp[2];
	struct ctx c;
	void *shm;

	g_out = out;
	signal(SIGALRM, on_alarm);
	alarm(60); /* a hang must not stop the run */
	if (getenv("ESCA_DIFF_SETTLE"))
		settle_s = atof(getenv("ESCA_DIFF_SETTLE"));
	g_debug = getenv("ESCA_DIFF_DEBUG") != NULL;
	g_seed = seed;
	snprintf(dir, sizeof(dir), "%s/esca-diff.XXXXXX", tmp_base());
	if (!mkdtemp(dir) || chdir(dir) < 0)
		die("cannot make a directory in %s: %s", tmp_base(),
		    strerror(errno));
	park(open(".", O_RDONLY | O_DIRECTORY), FD_DIR);
	if (pipe(pp) < 0)
		die("pipe: %s", strerror(errno));
	park(pp[0], FD_RES_R);
	park(pp[1], FD_RES_W);
	fcntl(FD_RES_R, F_SETFL, O_NONBLOCK);
	shm = mmap(NULL, MAXD * sizeof(struct rdesc) + 64,
		   PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shm == MAP_FAILED)
		die("mmap: %s", strerror(errno));
	ndesc = shm;
	D = (struct rdesc *)((char *)shm + 64);
	for (int fd = 0; fd < GFD; fd++)
		fdmap[fd] = -1;

	ctx_init(&c, G_MAIN, "");
	g_main_ctx = &c;
	sb_printf(&c.out, "@program %" PRIu64 "\n", seed);
	run_prog(&c, p); /* the generator joined every thread */
	sb_printf(&c.out, "#ops %d\n", c.calls);
	if (write_all(out, c.out.p, c.out.len) < 0)
		die("cannot write the transcript: %s", strerror(errno));

	/* no TIME_WAIT left behind: reset what is still connected */
	for (int fd = 3; fd < GFD; fd++)
		if (is_tcp(fd)) {
			struct linger lg = { 1, 0 };

			setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		}
	for (int i = 0; i < NFILES + 4; i++) {
		char name[8];

		snprintf(name, sizeof(name), "%c%d", i < NFILES ? 'f' : 't',
			 i % NFILES);
		unlinkat(FD_DIR, name, 0);
	}
	if (chdir("/") == 0)
		rmdir(dir);
	_exit(0);
}

static bool preload_loaded(void)
{
	char line[512];
	bool yes = false;
	FILE *f = fopen("/proc/self/maps", "r");

	if (!f)
		return false;
	while (!yes && fgets(line, sizeof(line), f))
		yes = strstr(line, "libesca-preload") != NULL;
	fclose(f);
	return yes;
}

static int cmd_run(uint64_t seed, uint64_t n, const char *dir)
{
	struct sbuf b = { 0 };

	/* descriptors this runner was given (or its shim made) below GFD
	 * shift every number the programs get: say which */
	sb_printf(&b,
		  "@runner preload=%s open=", preload_loaded() ? "yes" : "no");
	for (int fd = 3; fd < GFD; fd++)
		if (fcntl(fd, F_GETFD) >= 0)
			sb_printf(&b, "%d,", fd);
	sb_printf(&b, "\n");
	if (strstr(b.p, "open=\n") == NULL)
		fprintf(stderr, "esca-diff: warning: %s", b.p + 1);
	if (!dir && write_all(1, b.p, b.len) < 0)
		return 2;
	for (uint64_t s = seed; s < seed + n; s++) {
		struct prog p = { 0 };
		int out = 1, st = 0;
		pid_t pid;

		if (dir) {
			char path[PATH_MAX];

			snprintf(path, sizeof(path), "%s/%" PRIu64 ".txt", dir,
				 s);
			park(open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644),
			     FD_OUT);
			out = FD_OUT;
		}
		gen_main(s, &p);
		pid = fork();
		if (pid < 0)
			die("fork: %s", strerror(errno));
		if (pid == 0)
			run_one(s, &p, out);
		prog_free(&p);
		while (waitpid(pid, &st, 0) < 0)
			if (errno != EINTR)
				die("waitpid: %s", strerror(errno));
		b.len = 0;
		if (WIFEXITED(st))
			sb_printf(&b, "@end %" PRIu64 " exit %d\n", s,
				  WEXITSTATUS(st));
		else
			sb_printf(&b, "@end %" PRIu64 " signal %d\n", s,
				  WTERMSIG(st));
		if (write_all(out, b.p, b.len) < 0)
			return 2;
		if (dir)
			close(FD_OUT);
	}
	free(b.p);
	return 0;
}

/* ------------------------------------------------------------ check */

struct side {
	const char *name;
	int fd;
	pid_t pid;
	struct sbuf in;
	size_t done; /* bytes of in already compared */
	bool eof;
	int preload; /* -1 unknown, 0 no, 1 yes */
};

static pid_t spawn(const char *exe, uint64_t seed, uint64_t n,
		   const char *preload, int *fd)
{
	char s1[32], s2[32];
	int p[2];
	pid_t pid;

	snprintf(s1, sizeof(s1), "%" PRIu64, seed);
	snprintf(s2, sizeof(s2), "%" PRIu64, n);
	if (pipe2(p, O_CLOEXEC) < 0)
		die("pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		/* the runner starts with 0, 1 and 2 only */
		if (dup2(p[1], 1) < 0 || close_range(3, ~0u, 0) < 0)
			_exit(127);
		if (preload)
			setenv("LD_PRELOAD", preload, 1);
		else
			unsetenv("LD_PRELOAD");
		execl(exe, exe, "run", s1, s2, (char *)NULL);
		fprintf(stderr, "esca-diff: cannot run %s: %s\n", exe,
			strerror(errno));
		_exit(127);
	}
	close(p[1]);
	*fd = p[0];
	return pid;
}

/* Everything a runner of one program prints, up to its end (malloc'd). */
static char *run_once(const char *exe, uint64_t seed, size_t *len)
{
	size_t cap = 1 << 16, n = 0;
	char *buf = malloc(cap);
	int fd, st;
	pid_t pid = spawn(exe, seed, 1, NULL, &fd);
	ssize_t r;

	while (buf && (r = read(fd, buf + n, cap - n)) > 0)
		if ((n += (size_t)r) == cap)
			buf = realloc(buf, cap *= 2);
	close(fd);
	waitpid(pid, &st, 0);
	*len = n;
	return buf;
}

/*
 * A program whose direct runs disagree with each other (its outcome
 * hangs on timing the generator failed to rule out) proves nothing about
 * the shim: such a seed is reported, and not counted as a difference.
 */
static bool direct_stable(const char *exe, uint64_t seed)
{
	size_t l0, l1;
	char *a = run_once(exe, seed, &l0);
	bool same = a != NULL;

	/* several tries: a timing-dependent outcome is often stable */
	for (int i = 0; i < 8 && same; i++) {
		char *b = run_once(exe, seed, &l1);

		same = b && l0 == l1 && !memcmp(a, b, l0);
		free(b);
	}
	free(a);
	return same;
}

/* The next complete program block of @s (from "@program" to "@end"
 * inclusive), or NULL. */
static char *next_block(struct side *s, size_t *len)
{
	char *start = s->in.p + s->done, *end = s->in.p + s->in.len, *p;

	while (start < end && !strncmp(start, "@runner ", 8)) {
		char *nl = memchr(start, '\n', (size_t)(end - start));

		if (!nl)
			return NULL;
		s->preload = !strncmp(start, "@runner preload=yes", 19);
		s->done += (size_t)(nl + 1 - start);
		start = nl + 1;
	}
	for (p = start; p < end;) {
		char *nl = memchr(p, '\n', (size_t)(end - p));

		if (!nl)
			return NULL;
		if (!strncmp(p, "@end ", 5)) {
			*len = (size_t)(nl + 1 - start);
			return start;
		}
		p = nl + 1;
	}
	return NULL;
}

static char *line_at(char *p, char *end, char **next)
{
	char *nl = memchr(p, '\n', (size_t)(end - p));

	*nl = 0;
	*next = nl + 1;
	return p;
}

static uint64_t seed_of(const char *block, size_t len)
{
	const char *end = memmem(block, len, "\n@end ", 6);

	if (!strncmp(block, "@program ", 9))
		return strtoull(block + 9, NULL, 10);
	return strtoull(end ? end + 6 : block + 5, NULL, 10);
}

static int cmd_check(uint64_t seed, uint64_t n)
{
	char exe[PATH_MAX], shim[PATH_MAX];
	const char *pre = getenv("ESCA_PRELOAD");
	struct side s[2] = { { .name = "direct", .preload = -1 },
			     { .name = "shim", .preload = -1 } };
	uint64_t programs = 0, ops = 0, diffs = 0, shown = 0;
	double t0 = now();
	ssize_t len;
	bool none;

	len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (len < 0)
		die("cannot find myself: %s", strerror(errno));
	exe[len] = 0;
	if (!pre || !*pre) {
		char *slash;

		snprintf(shim, sizeof(shim), "%s", exe);
		slash = strrchr(shim, '/');
		*slash = 0;
		slash = strrchr(shim, '/');
		snprintf(slash ? slash + 1 : shim,
			 sizeof(shim) - (size_t)(slash ? slash + 1 - shim : 0),
			 "lib/libesca-preload.so");
		pre = shim;
	}
	none = !strcmp(pre, "none");
	if (!none && access(pre, R_OK) < 0)
		die("no shim at %s (set ESCA_PRELOAD)", pre);
	fprintf(stderr,
		"esca-diff: seeds %" PRIu64 "..%" PRIu64 ", direct vs %s\n",
		seed, seed + n - 1, none ? "direct (ESCA_PRELOAD=none)" : pre);
	signal(SIGPIPE, SIG_IGN);
	s[0].pid = spawn(exe, seed, n, NULL, &s[0].fd);
	s[1].pid = spawn(exe, seed, n, none ? NULL : pre, &s[1].fd);

	while (programs < n) {
		struct pollfd pf[2];
		int np = 0;
		char *blk[2];
		size_t bl[2];

		blk[0] = next_block(&s[0], &bl[0]);
		blk[1] = next_block(&s[1], &bl[1]);
		if (blk[0] && blk[1]) {
			/* a direct run that did not end well is a bug here */
			bool direct_ok =
				bl[0] >= 8 &&
				!memcmp(blk[0] + bl[0] - 8, " exit 0\n", 8);
			char *p0 = blk[0], *p1 = blk[1], *e0 = p0 + bl[0],
			     *e1 = p1 + bl[1];
			uint64_t sd = seed_of(blk[0], bl[0]);
			bool differs = false;

			if (s[0].preload != 0 || s[1].preload != !none)
				die("runner %s has the shim %s",
				    s[0].preload ? "direct" : "shim",
				    s[0].preload ? "loaded" : "missing");
			while (p0 < e0 || p1 < e1) {
				char *l0 = p0 < e0 ? line_at(p0, e0, &p0) :
						     "(end)";
				char *l1 = p1 < e1 ? line_at(p1, e1, &p1) :
						     "(end)";

				if (!strncmp(l0, "#ops ", 5))
					ops += strtoull(l0 + 5, NULL, 10);
				if (!strcmp(l0, l1))
					continue;
				differs = true;
				if (shown++ < 10) {
					int w = (int)strcspn(l0, " ");

					printf("esca-diff: seed %" PRIu64
					       " differs at op %.*s\n"
					       "  direct: %s\n  shim:   %s\n",
					       sd, w, l0, l0, l1);
					fflush(stdout);
				}
				break;
			}
			if (!direct_ok) {
				printf("esca-diff: seed %" PRIu64
				       ": the direct run did not end with exit 0\n",
				       sd);
				differs = true;
			}
			if (differs && direct_ok && !direct_stable(exe, sd)) {
				printf("esca-diff: seed %" PRIu64
				       ": its direct runs disagree too (timing the generator did not rule out): not counted\n",
				       sd);
				differs = false;
			}
			diffs += differs;
			s[0].done += bl[0];
			s[1].done += bl[1];
			for (int i = 0; i < 2; i++)
				if (s[i].done > (1u << 20)) {
					memmove(s[i].in.p,
						s[i].in.p + s[i].done,
						s[i].in.len - s[i].done);
					s[i].in.len -= s[i].done;
					s[i].done = 0;
				}
			programs++;
			if (programs % 1000 == 0 && programs < n)
				fprintf(stderr,
					"esca-diff: %" PRIu64
					" programs, %" PRIu64 " ops, %" PRIu64
					" differences, %.0f s\n",
					programs, ops, diffs, now() - t0);
			continue;
		}
		for (int i = 0; i < 2; i++)
			if (!s[i].eof && !(i == 0 ? blk[0] : blk[1])) {
				pf[np].fd = s[i].fd;
				pf[np].events = POLLIN;
				pf[np].revents = 0;
				np++;
			}
		if (!np) {
			printf("esca-diff: the %s runner ended after %" PRIu64
			       " programs\n",
			       s[0].eof && !blk[0] ? "direct" : "shim",
			       programs);
			diffs++;
			break;
		}
		if (poll(pf, (nfds_t)np, -1) < 0 && errno != EINTR)
			die("poll: %s", strerror(errno));
		for (int j = 0; j < np; j++) {
			struct side *x = pf[j].fd == s[0].fd ? &s[0] : &s[1];
			ssize_t r;

			if (!pf[j].revents)
				continue;
			sb_grow(&x->in, 65536);
			r = read(x->fd, x->in.p + x->in.len, 65536);
			if (r > 0)
				x->in.len += (size_t)r;
			else if (r == 0 || errno != EINTR)
				x->eof = true;
		}
	}
	for (int i = 0; i < 2; i++) {
		int st;

		close(s[i].fd);
		kill(s[i].pid, SIGTERM);
		waitpid(s[i].pid, &st, 0);
		free(s[i].in.p);
	}
	printf("esca-diff: %" PRIu64 " programs, %" PRIu64 " ops, %" PRIu64
	       " differences (seeds %" PRIu64 "..%" PRIu64 ")\n",
	       programs, ops, diffs, seed, seed + n - 1);
	fprintf(stderr, "esca-diff: %.1f s\n", now() - t0);
	return diffs ? 1 : 0;
}

/* ------------------------------------------------------------ main */

static void usage(FILE *f)
{
	fputs("usage: esca-diff show SEED\n"
	      "       esca-diff run SEED [N] [-o DIR]\n"
	      "       esca-diff check SEED N\n"
	      "env:   ESCA_PRELOAD=PATH|none (check: the shim; none: direct twice)\n"
	      "       ESCA_DIFF_TMP=DIR (where programs make their files)\n"
	      "       ESCA_DIFF_SETTLE=SECONDS (wait for TCP at most, default 10)\n"
	      "       ESCA_DIFF_DEBUG=1 (say why TCP was slow to settle)\n",
	      f);
}

static uint64_t number(const char *s, const char *what)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *end || *s == '-')
		die("bad %s '%s'", what, s);
	return v;
}

int main(int argc, char **argv)
{
	if (argc >= 2 &&
	    (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		usage(stdout);
		return 0;
	}
	if (argc == 3 && !strcmp(argv[1], "show")) {
		struct prog p = { 0 };
		struct sbuf b = { 0 };

		gen_main(number(argv[2], "seed"), &p);
		show_prog(&b, &p, "");
		fputs(b.p, stdout);
		prog_free(&p);
		free(b.p);
		return 0;
	}
	if (argc >= 3 && !strcmp(argv[1], "run")) {
		uint64_t n = 1;
		const char *dir = NULL;
		int i = 3;

		if (i < argc && strcmp(argv[i], "-o"))
			n = number(argv[i++], "count");
		if (i + 1 < argc && !strcmp(argv[i], "-o")) {
			dir = argv[i + 1];
			i += 2;
		}
		if (i != argc) {
			usage(stderr);
			return 2;
		}
		return cmd_run(number(argv[2], "seed"), n, dir);
	}
	if (argc == 4 && !strcmp(argv[1], "check"))
		return cmd_check(number(argv[2], "seed"),
				 number(argv[3], "count"));
	usage(stderr);
	return 2;
}
