/* SPDX-License-Identifier: MIT */
/*
 * A FUSE file system that never answers, on raw /dev/fuse (no libfuse):
 * one file "f" in the root. The server answers INIT, LOOKUP, GETATTR and
 * OPEN, and reads every other request (READ, WRITE, FLUSH, FSYNC, SETATTR,
 * POLL ...) without ever replying, so a call that reaches the file system
 * waits until the connection is aborted; once the server has read the
 * request the wait is uninterruptible. It counts what it read, by opcode.
 */
#ifndef ESCA_TFUSE_H
#define ESCA_TFUSE_H

#include "t.h"

#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <linux/fuse.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <sys/wait.h>

struct tfuse_shared {
	volatile long ops[64]; /* requests read, by opcode */
	volatile long other;
	/* Set: files opened from now on have FOPEN_NOFLUSH, so closing one
	 * of their fds (dup2 over it) sends no FLUSH, which would hang. */
	volatile int noflush;
};

struct tfuse {
	char mnt[64], file[80], abort_path[80];
	pid_t server;
	unsigned conn; /* /sys/fs/fuse/connections/N */
	struct tfuse_shared *sh;
};

#define TFUSE_KO "/esca/fuse.ko"

/*
 * /dev/fuse must work. Debian's 6.1 has FUSE as a module: the guest tree
 * carries that kernel's fuse.ko (make guest), loaded here. Skip only when
 * the kernel refuses it.
 */
static inline void tfuse_need(void)
{
	int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC), ko;

	if (fd >= 0) {
		close(fd);
		return;
	}
	ko = open(TFUSE_KO, O_RDONLY | O_CLOEXEC);
	if (ko < 0)
		DIE("no /dev/fuse (%s) and no %s (%s): the guest tree must "
		    "carry the kernel's fuse.ko",
		    strerror(errno), TFUSE_KO, strerror(errno));
	if (syscall(SYS_finit_module, ko, "", 0) && errno != EEXIST) {
		printf("SKIP: insmod %s: %s (the fuse module is unavailable)\n",
		       TFUSE_KO, strerror(errno));
		exit(77);
	}
	close(ko);
	for (int i = 0; i < 100; i++) { /* devtmpfs adds the node */
		fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
		if (fd >= 0) {
			close(fd);
			return;
		}
		usleep(10000);
	}
	DIE("/dev/fuse after insmod %s: %s", TFUSE_KO, strerror(errno));
}

static inline void tfuse_reply(int dev, uint64_t unique, int error,
			       const void *data, size_t len)
{
	struct fuse_out_header oh = { .len = (uint32_t)(sizeof(oh) + len),
				      .error = error,
				      .unique = unique };
	struct iovec iov[2] = { { &oh, sizeof(oh) }, { (void *)data, len } };

	if (writev(dev, iov, len ? 2 : 1) < 0 && errno != ENOENT)
		_exit(3); /* ENOENT: the request was interrupted meanwhile */
}

static inline void tfuse_attr(struct fuse_attr *a, uint64_t node)
{
	memset(a, 0, sizeof(*a));
	a->ino = node;
	a->mode = node == FUSE_ROOT_ID ? S_IFDIR | 0755 : S_IFREG | 0666;
	a->nlink = node == FUSE_ROOT_ID ? 2 : 1;
	a->blksize = 4096;
}

static inline void tfuse_serve(int dev, struct tfuse_shared *sh)
{
	static char buf[1 << 17];

	for (;;) {
		ssize_t n = read(dev, buf, sizeof(buf));
		const struct fuse_in_header *in = (const void *)buf;
		const char *arg = buf + sizeof(*in);

		if (n < 0 && (errno == EINTR || errno == ENOENT))
			continue;
		if (n < (ssize_t)sizeof(*in))
			_exit(0); /* aborted or unmounted */
		if (in->opcode < 64)
			sh->ops[in->opcode]++;
		else
			sh->other++;
		switch (in->opcode) {
		case FUSE_INIT: {
			const struct fuse_init_in *ii = (const void *)arg;
			struct fuse_init_out o = { 0 };

			/* 7.31 and no feature flags: plain, synchronous */
			o.major = FUSE_KERNEL_VERSION;
			o.minor = 31;
			o.max_readahead = ii->max_readahead;
			o.max_write = 4096;
			o.time_gran = 1;
			tfuse_reply(dev, in->unique, 0, &o, sizeof(o));
			break;
		}
		case FUSE_LOOKUP: {
			struct fuse_entry_out e = { 0 };

			if (in->nodeid != FUSE_ROOT_ID || strcmp(arg, "f")) {
				tfuse_reply(dev, in->unique, -ENOENT, NULL, 0);
				break;
			}
			e.nodeid = 2;
			e.generation = 1;
			e.entry_valid = 3600;
			e.attr_valid = 3600;
			tfuse_attr(&e.attr, 2);
			tfuse_reply(dev, in->unique, 0, &e, sizeof(e));
			break;
		}
		case FUSE_GETATTR: {
			struct fuse_attr_out a = { .attr_valid = 3600 };

			tfuse_attr(&a.attr, in->nodeid);
			tfuse_reply(dev, in->unique, 0, &a, sizeof(a));
			break;
		}
		case FUSE_OPEN: {
			/* direct I/O: every read and write is a request */
			struct fuse_open_out o = {
				.fh = 1, .open_flags = FOPEN_DIRECT_IO
			};

			if (sh->noflush)
				o.open_flags |= FOPEN_NOFLUSH;

			tfuse_reply(dev, in->unique, 0, &o, sizeof(o));
			break;
		}
		default:
			break; /* never answered */
		}
	}
}

/* Mount at /tmp/esca-fuse.PID, start the server; f->file is the file. */
static inline void tfuse_mount(struct tfuse *f)
{
	char opts[96];
	struct stat st;
	int dev;

	memset(f, 0, sizeof(*f));
	f->sh = mmap(NULL, sizeof(*f->sh), PROT_READ | PROT_WRITE,
		     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (f->sh == MAP_FAILED)
		DIE("mmap: %s", strerror(errno));
	memset((void *)f->sh, 0, sizeof(*f->sh));
	snprintf(f->mnt, sizeof(f->mnt), "/tmp/esca-fuse.%d", (int)getpid());
	snprintf(f->file, sizeof(f->file), "%s/f", f->mnt);
	if (mkdir(f->mnt, 0755) && errno != EEXIST)
		DIE("mkdir %s: %s", f->mnt, strerror(errno));
	dev = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	if (dev < 0)
		DIE("open /dev/fuse: %s", strerror(errno));
	snprintf(opts, sizeof(opts),
		 "fd=%d,rootmode=40000,user_id=0,group_id=0", dev);
	if (mount("fuse", f->mnt, "fuse", 0, opts))
		DIE("mount fuse on %s (%s): %s", f->mnt, opts, strerror(errno));
	f->server = fork();
	if (f->server < 0)
		DIE("fork: %s", strerror(errno));
	if (f->server == 0) {
		/* the test gone, the connection goes: nothing stays stuck */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		tfuse_serve(dev, f->sh);
	}
	close(dev); /* the server holds the only /dev/fuse fd */
	if (stat(f->mnt, &st))
		DIE("stat %s: %s", f->mnt, strerror(errno));
	f->conn = minor(st.st_dev);
	snprintf(f->abort_path, sizeof(f->abort_path),
		 "/sys/fs/fuse/connections/%u/abort", f->conn);
}

/*
 * End every stuck request: abort the connection (fusectl), detach the
 * mount, kill the server (its /dev/fuse fd was the last: that aborts too).
 * Async-signal-safe, so a SIGALRM hang guard may call it.
 */
static inline void tfuse_abort(struct tfuse *f)
{
	int fd;

	if (!f->server)
		return;
	mount("fusectl", "/sys/fs/fuse/connections", "fusectl", 0, NULL);
	fd = open(f->abort_path, O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (write(fd, "1", 1) < 0) {
			/* the kill below aborts as well */
		}
		close(fd);
	}
	umount2(f->mnt, MNT_DETACH);
	kill(f->server, SIGKILL);
	waitpid(f->server, NULL, 0);
	f->server = 0;
	rmdir(f->mnt);
}

#endif
