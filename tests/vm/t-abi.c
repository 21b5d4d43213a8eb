// SPDX-License-Identifier: MIT
/*
 * The raw ABI (2), without libesca: every refusal the module promises, and
 * a producer that breaks the protocol. Setup (ABI version, 1 included,
 * flags, reserved fields, entries), one context per process, registration
 * (into read-only memory: EFAULT, other rings untouched), the mmap windows
 * (size, offset, once only, the completion side read-only, no split, a
 * move followed, no MADV_DOFORK), entries with unknown flags or call
 * numbers, user_data carried, a bounce (a write to a blocking pipe: no
 * effect), a bounced DEFERRED entry pausing the ring until sq_hdr.resume
 * says the producer made it, the fd inherited by a fork child, a tail
 * pushed past the ring (the ring is retired: DEAD, reason PROTOCOL).
 */
#include "t.h"

#include <fcntl.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>

#include "esca/abi.h"
#include "raw.h"

static int setup(int fd, uint32_t version, uint32_t flags, uint32_t entries)
{
	struct esca_setup s = { .abi_version = version,
				.flags = flags,
				.entries = entries };

	return (int)raw_ioc(fd, ESCA_IOC_SETUP, &s);
}

/* WAIT for entry @idx (blocking: the entries here all complete). */
static long wait_idx(int fd, struct raw_ring *r, uint32_t idx,
		     const struct esca_cqe **cqe)
{
	struct esca_wait w = { .ring_id = r->id, .index = idx };
	long ret = raw_ioc(fd, ESCA_IOC_WAIT, &w);

	*cqe = raw_cqe(r, idx);
	return ret;
}

static long submit_wait(int fd, struct raw_ring *r, uint32_t nr, uint32_t flags,
			uint64_t a0, uint64_t a1, uint64_t a2, uint64_t ud,
			const struct esca_cqe **cqe)
{
	uint32_t idx = raw_queue(r, nr, flags, a0, a1, a2, 0, ud);

	raw_submit(r);
	return wait_idx(fd, r, idx, cqe);
}

static uint32_t head(const struct raw_ring *r)
{
	return __atomic_load_n(&r->cq->sq_head, __ATOMIC_ACQUIRE); /* D */
}

static int unread(int fd) /* bytes waiting in a pipe */
{
	int n = -1;

	return ioctl(fd, FIONREAD, &n) ? -1 : n;
}

static long file_size(int fd)
{
	return (long)lseek(fd, 0, SEEK_END);
}

/*
 * A write to a blocking pipe is bounced: flags BOUNCED, res 0, and no
 * effect. Synchronous, so the ring does not pause.
 */
static void check_bounce(int fd, struct raw_ring *r)
{
	const struct esca_cqe *cqe;
	int p[2];

	if (pipe(p))
		DIE("pipe: %s", strerror(errno));
	CHECK(submit_wait(fd, r, SYS_write, 0, (uint64_t)p[1], (uint64_t) "X",
			  1, 4, &cqe) == 0 &&
		      cqe->res == 0 && cqe->flags == ESCA_CQE_BOUNCED &&
		      cqe->user_data == 4,
	      "write to a blocking pipe: res %lld flags %x",
	      (long long)cqe->res, cqe->flags);
	CHECK(unread(p[0]) == 0, "bounced write left %d bytes in the pipe",
	      unread(p[0]));
	CHECK(!(r->cq->flags & ESCA_RING_PAUSED),
	      "a synchronous bounce paused the ring (flags %x)", r->cq->flags);
	close(p[0]);
	close(p[1]);
}

/*
 * A bounced DEFERRED entry pauses the ring: nothing after it runs until
 * the producer, having made the call itself, stores resume = its index + 1
 * (a wrong value does not resume it); then the rest runs, in order.
 */
static void check_pause(int fd, struct raw_ring *r)
{
	const struct esca_cqe *cqe;
	int p[2],
		f = open("/tmp/t-abi-pause", O_RDWR | O_CREAT | O_TRUNC, 0644);
	uint32_t b, n;

	if (pipe(p) || f < 0)
		DIE("pipe/open: %s", strerror(errno));
	b = raw_queue(r, SYS_write, ESCA_SQE_DEFERRED, (uint64_t)p[1],
		      (uint64_t) "P", 1, 0, 10);
	raw_publish(r);
	n = raw_queue(r, SYS_write, 0, (uint64_t)f, (uint64_t) "N", 1, 0, 11);
	raw_publish(r);
	raw_kick(r);
	CHECK(wait_idx(fd, r, b, &cqe) == 0 && cqe->res == 0 &&
		      cqe->flags == ESCA_CQE_BOUNCED && cqe->user_data == 10,
	      "deferred write to a blocking pipe: res %lld flags %x",
	      (long long)cqe->res, cqe->flags);
	/* WAIT on a later entry returns at once: the ring is paused */
	CHECK(wait_idx(fd, r, n, &cqe) == 0, "WAIT while paused");
	CHECK(r->cq->flags & ESCA_RING_PAUSED, "ring not PAUSED (flags %x)",
	      r->cq->flags);
	usleep(300000); /* the consumer had every chance to run entry n */
	CHECK(head(r) == b + 1, "head %u while paused, want %u", head(r),
	      b + 1);
	CHECK(file_size(f) == 0 && unread(p[0]) == 0,
	      "while paused: file %ld bytes, pipe %d bytes, want 0 and 0",
	      file_size(f), unread(p[0]));

	/* a wrong resume index: still paused */
	__atomic_store_n(&r->sq->resume, b + 2, __ATOMIC_RELEASE);
	ioctl(fd, ESCA_IOC_WAKE, r->id);
	usleep(300000);
	CHECK(head(r) == b + 1 && file_size(f) == 0,
	      "resume = %u (not %u) let the ring go on: head %u", b + 2, b + 1,
	      head(r));

	/* the producer makes the bounced call, then says so */
	CHECK(write(p[1], "P", 1) == 1, "direct write");
	__atomic_store_n(&r->sq->resume, b + 1, __ATOMIC_RELEASE); /* G */
	raw_kick(r);
	/* WAIT returns at once until the consumer has seen resume */
	for (int i = 0; i < 5000 && head(r) != n + 1; i++)
		if (wait_idx(fd, r, n, &cqe) || head(r) != n + 1)
			usleep(1000);
	cqe = raw_cqe(r, n);
	CHECK(head(r) == n + 1 && cqe->res == 1 && cqe->flags == 0 &&
		      cqe->user_data == 11,
	      "after resume: head %u res %lld flags %x", head(r),
	      (long long)cqe->res, cqe->flags);
	CHECK(file_size(f) == 1 && unread(p[0]) == 1,
	      "after resume: file %ld bytes, pipe %d bytes, want 1 and 1",
	      file_size(f), unread(p[0]));
	CHECK(!(r->cq->flags & ESCA_RING_PAUSED),
	      "still PAUSED after resume (flags %x)", r->cq->flags);
	close(p[0]);
	close(p[1]);
	close(f);
}

/*
 * REGISTER whose result cannot be written back (read-only memory): EFAULT,
 * that ring is gone, and the process's other ring still works.
 */
static void check_register_efault(int fd, struct raw_ring *r, int tmp)
{
	const struct esca_cqe *cqe;
	long rings = t_ctx(getpid(), "rings");
	void *ro =
		mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	CHECK(rings == 1, "context rings %ld before, want 1", rings);
	CHECK(ro != MAP_FAILED && raw_ioc(fd, ESCA_IOC_REGISTER, ro) == -EFAULT,
	      "REGISTER into read-only memory was not EFAULT");
	CHECK(t_ctx(getpid(), "rings") == rings,
	      "context rings %ld after a failed REGISTER, want %ld",
	      t_ctx(getpid(), "rings"), rings);
	CHECK(submit_wait(fd, r, SYS_write, 0, (uint64_t)tmp, (uint64_t) "ok",
			  2, 20, &cqe) == 0 &&
		      cqe->res == 2 && cqe->flags == 0,
	      "the other ring after a failed REGISTER: res %lld",
	      (long long)cqe->res);
	munmap(ro, 4096);
}

int main(void)
{
	struct esca_register reg = { 0 };
	const struct esca_cqe *cqe;
	struct raw_ring r = { 0 };
	int fd, fd2, tmp, status;
	long ps = sysconf(_SC_PAGESIZE);
	void *map, *cqmap, *bad;
	size_t size;
	pid_t pid;

	fd = open(ESCA_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		DIE("open %s: %s", ESCA_DEVICE_PATH, strerror(errno));

	/* Setup refusals, then one context per process. */
	CHECK(raw_ioc(fd, ESCA_IOC_REGISTER, &reg) == -EBADFD,
	      "register before setup");
	CHECK(setup(fd, 99, 0, 0) == -EPROTO, "ABI 99 accepted");
	CHECK(setup(fd, 1, 0, 0) == -EPROTO, "ABI 1 accepted");
	CHECK(setup(fd, ESCA_ABI_VERSION, 1, 0) == -EINVAL, "flags 1 accepted");
	CHECK(setup(fd, ESCA_ABI_VERSION, 0, 100) == -EINVAL,
	      "100 entries accepted");
	CHECK(setup(fd, ESCA_ABI_VERSION, 0, 4) == -EINVAL,
	      "4 entries accepted");
	CHECK(setup(fd, ESCA_ABI_VERSION, 0, 8192) == -EINVAL,
	      "8192 entries accepted");
	{
		struct esca_setup s = { .abi_version = ESCA_ABI_VERSION,
					.resv = { 1 } };

		CHECK(raw_ioc(fd, ESCA_IOC_SETUP, &s) == -EINVAL,
		      "reserved field accepted");
	}
	CHECK(setup(fd, ESCA_ABI_VERSION, 0, 8) == 0, "setup with 8 entries");
	CHECK(setup(fd, ESCA_ABI_VERSION, 0, 8) == -EEXIST,
	      "second setup on one file");
	fd2 = open(ESCA_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	CHECK(setup(fd2, ESCA_ABI_VERSION, 0, 8) == -EBUSY,
	      "second context for one process");
	close(fd2);
	CHECK(raw_ioc(fd, 0xE5FF, NULL) == -ENOTTY, "unknown ioctl");
	CHECK(ioctl(fd, _IO(ESCA_IOC_MAGIC, 6), 0) == -1 && errno == ENOTTY,
	      "ABI 1's RESUME ioctl still answered");

	/* Registration and the mmap windows. */
	CHECK(raw_ioc(fd, ESCA_IOC_REGISTER, &reg) == 0, "register");
	size = reg.sq_size;
	CHECK(reg.entries == 8 &&
		      size == (size_t)((ESCA_SQ_MMAP_SIZE(8) + ps - 1) &
				       ~(ps - 1)) &&
		      reg.cq_size == (size_t)((ESCA_CQ_MMAP_SIZE(8) + ps - 1) &
					      ~(ps - 1)) &&
		      reg.sq_offset == ESCA_SQ_OFFSET(reg.ring_id) &&
		      reg.cq_offset == ESCA_CQ_OFFSET(reg.ring_id),
	      "entries %u sizes %zu %u", reg.entries, size, reg.cq_size);
	bad = mmap(NULL, size + ps, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		   (off_t)reg.sq_offset);
	CHECK(bad == MAP_FAILED && errno == EINVAL, "mmap of the wrong size");
	bad = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		   (off_t)ESCA_SQ_OFFSET(5));
	CHECK(bad == MAP_FAILED && errno == ENOENT, "mmap of an unknown ring");
	bad = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		   (off_t)reg.sq_offset + ps);
	CHECK(bad == MAP_FAILED && errno == EINVAL,
	      "mmap at a misaligned offset");
	bad = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		   (off_t)ESCA_SQ_OFFSET(ESCA_MAX_RINGS));
	CHECK(bad == MAP_FAILED && errno == EINVAL,
	      "mmap beyond the last ring");
	bad = mmap(NULL, reg.cq_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		   (off_t)reg.cq_offset);
	CHECK(bad == MAP_FAILED && errno == EPERM,
	      "completion side mapped writable");
	cqmap = mmap(NULL, reg.cq_size, PROT_READ, MAP_SHARED, fd,
		     (off_t)reg.cq_offset);
	if (cqmap == MAP_FAILED)
		DIE("mmap of the completion side: %s", strerror(errno));
	CHECK(mprotect(cqmap, reg.cq_size, PROT_READ | PROT_WRITE) == -1 &&
		      errno == EACCES,
	      "completion side made writable by mprotect");
	map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		   (off_t)reg.sq_offset);
	if (map == MAP_FAILED)
		DIE("mmap: %s", strerror(errno));
	bad = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		   (off_t)reg.sq_offset);
	CHECK(bad == MAP_FAILED && errno == EBUSY, "second mmap of one ring");
	CHECK(munmap((char *)map + ps, ps) == -1 && errno == EINVAL,
	      "ring mapping split");
	CHECK(madvise(map, size, MADV_DOFORK) == -1 && errno == EINVAL,
	      "MADV_DOFORK on the ring mapping");
	bad = mremap(map, size, size + ps, MREMAP_MAYMOVE);
	CHECK(bad == MAP_FAILED, "ring mapping grown by mremap");
	{
		/* A move is followed: the ring lives on at its new address. */
		void *to = mmap(NULL, size, PROT_NONE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		void *moved = mremap(map, size, size,
				     MREMAP_MAYMOVE | MREMAP_FIXED, to);

		CHECK(moved == to, "mremap move: %s", strerror(errno));
		if (moved == to)
			map = moved;
	}

	r.fd = fd;
	r.sq = map;
	r.cq = cqmap;
	r.id = reg.ring_id;
	r.entries = r.cq->entries; /* the mask as the mapping says */
	CHECK(r.cq->entries == 8 && r.cq->mask == 7 && r.cq->ring_id == r.id,
	      "geometry: entries %u mask %u id %u", r.cq->entries, r.cq->mask,
	      r.cq->ring_id);
	r.sqes = (void *)((char *)map + ESCA_SQES_OFFSET);
	r.cqes = (const void *)((const char *)cqmap + ESCA_CQES_OFFSET);

	/* Entries: a valid call, unknown flags, unknown numbers, a bounce. */
	tmp = open("/tmp/t-abi", O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(submit_wait(fd, &r, SYS_write, 0, (uint64_t)tmp, (uint64_t) "abc",
			  3, 0xabcdef, &cqe) == 0 &&
		      cqe->res == 3 && cqe->user_data == 0xabcdef &&
		      cqe->flags == 0,
	      "write: res %lld ud %llx", (long long)cqe->res,
	      (unsigned long long)cqe->user_data);
	CHECK(submit_wait(fd, &r, SYS_write, 0x80, (uint64_t)tmp, (uint64_t) "",
			  0, 1, &cqe) == 0 &&
		      cqe->res == -EINVAL,
	      "unknown sqe flag: res %lld", (long long)cqe->res);
	CHECK(submit_wait(fd, &r, 9999, 0, 0, 0, 0, 2, &cqe) == 0 &&
		      cqe->res == -ENOSYS,
	      "nr 9999: res %lld", (long long)cqe->res);
	CHECK(submit_wait(fd, &r, SYS_getuid, 0, 0, 0, 0, 3, &cqe) == 0 &&
		      cqe->res == -ENOSYS,
	      "getuid: res %lld", (long long)cqe->res);
	check_bounce(fd, &r);
	check_pause(fd, &r);
	check_register_efault(fd, &r, tmp);
	for (int i = 0; i < 20; i++) /* wraps the 8-entry ring */
		CHECK(submit_wait(fd, &r, SYS_write, 0, (uint64_t)tmp,
				  (uint64_t) "", 0, (uint64_t)i, &cqe) == 0 &&
			      cqe->res == 0 && cqe->user_data == (uint64_t)i,
		      "entry %d: res %lld", i, (long long)cqe->res);
	CHECK(ioctl(fd, ESCA_IOC_WAKE, 77) == -1 && errno == ENOENT,
	      "wake of an unknown ring");
	CHECK(ioctl(fd, ESCA_IOC_UNREGISTER, 77) == -1 && errno == ENOENT,
	      "unregister of an unknown ring");

	/* A fork child inherits the fd, not the context or the mapping. */
	pid = fork();
	if (pid == 0) {
		struct esca_register r2;

		_exit(raw_ioc(fd, ESCA_IOC_REGISTER, &r2) == -EBADF &&
				      ioctl(fd, ESCA_IOC_UNREGISTER,
					    reg.ring_id) == -1 &&
				      errno == EBADF ?
			      0 :
			      1);
	}
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
		      !WEXITSTATUS(status),
	      "fork child could use the parent's context");

	/* A tail pushed past the ring: the ring is retired, the process is not. */
	__atomic_store_n(&r.sq->sq_tail, r.tail + 100, __ATOMIC_RELEASE);
	ioctl(fd, ESCA_IOC_WAKE, r.id);
	{
		struct esca_wait w = { .ring_id = r.id, .index = r.tail + 50 };
		long ret = raw_ioc(fd, ESCA_IOC_WAIT, &w);

		CHECK(ret == -ENXIO, "wait on a broken ring: %ld", ret);
		CHECK(r.cq->flags & ESCA_RING_DEAD,
		      "broken ring not marked DEAD (flags %x)", r.cq->flags);
		CHECK(r.cq->sq_head == r.tail, "head moved to %u past %u",
		      r.cq->sq_head, r.tail);
		CHECK(r.cq->dead_reason == ESCA_DEAD_PROTOCOL,
		      "dead_reason %u, want PROTOCOL (%u)", r.cq->dead_reason,
		      ESCA_DEAD_PROTOCOL);
	}
	CHECK(ioctl(fd, ESCA_IOC_UNREGISTER, r.id) == 0,
	      "unregister the dead ring");
	CHECK(munmap(map, size) == 0 && munmap(cqmap, reg.cq_size) == 0,
	      "munmap");
	memset(&reg, 0, sizeof(reg));
	CHECK(raw_ioc(fd, ESCA_IOC_REGISTER, &reg) == 0,
	      "register again after a broken ring");
	close(fd);
	return t_done("t-abi");
}
