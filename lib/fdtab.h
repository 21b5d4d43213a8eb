/* SPDX-License-Identifier: MIT */
/*
 * The preload shim's descriptor table: what the shim knows about each fd
 * number, learnt from the results of calls it saw. A cache that corrects
 * itself: an entry is retired (unknown) before any call that may end the
 * descriptor, and overwritten by every call that creates one. Unknown
 * means "prove nothing": such calls are offloaded synchronously or made
 * directly, never deferred.
 *
 * Readers take no lock. The table grows in chunks of 1024 entries that are
 * installed once (compare-and-swap) and never moved or freed, so a reader
 * can never see memory go away under it: no grace period is needed (what
 * liburcu would give us, with nothing to reclaim). Chunks come from mmap,
 * which is async-signal-safe, so a handler may grow the table too.
 */
#ifndef ESCA_LIB_FDTAB_H
#define ESCA_LIB_FDTAB_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/mman.h>

#define FD_CHUNK_SHIFT 10
#define FD_CHUNK (1u << FD_CHUNK_SHIFT)
#define FD_CHUNKS (1u << 14) /* 16M descriptors; beyond: unknown */

/* fd kinds: what created the descriptor */
enum {
	FK_UNKNOWN,
	FK_SOCK,
	FK_PIPE,
	FK_FILE, /* open(): a regular file, FIFO or device: not known which */
	FK_EPOLL,
	FK_EVENTFD,
	FK_TIMERFD,
	FK_SIGNALFD,
};

/* socket families, as the module tells them apart */
enum { FF_UNKNOWN, FF_INET, FF_UNIX, FF_OTHER };

#define FD_KIND_MASK 0xfu
#define FD_FAM_SHIFT 4
#define FD_FAM_MASK (3u << FD_FAM_SHIFT)
#define FD_NB_KNOWN (1u << 7) /* FD_NB is the truth */
#define FD_NB (1u << 8) /* O_NONBLOCK */
#define FD_LIBC (1u << 9) /* a FILE or DIR stream owns it */
#define FD_LINGER (1u << 10) /* SO_LINGER was set: its close is bounced */

/* fd_ep_member() answers */
enum { FD_EP_UNSURE, FD_EP_OUT, FD_EP_IN };

/* Entry.ep: 0 unknown, 1 in no epoll set of ours, >= 2 in that epoll. */
#define EP_UNKNOWN 0u
#define EP_NONE 1u

struct fd_ent {
	uint32_t w; /* kind, family, flags */
	uint32_t ep; /* for an epoll fd: its id; else its set (above) */
};

static struct fd_ent *fd_chunks[FD_CHUNKS];
static uint32_t fd_ep_next = 2; /* epoll ids */
/* epoll ids below this were created before the last fork: shared with
 * another process, which may change the set unseen */
static uint32_t fd_ep_min_valid = 2;

static inline struct fd_ent *fd_slot(int fd, bool grow)
{
	uint32_t c = (uint32_t)fd >> FD_CHUNK_SHIFT;
	struct fd_ent *chunk, *fresh;

	if (fd < 0 || c >= FD_CHUNKS)
		return NULL;
	chunk = __atomic_load_n(&fd_chunks[c], __ATOMIC_ACQUIRE);
	if (chunk || !grow)
		return chunk ? &chunk[fd & (FD_CHUNK - 1)] : NULL;
	fresh = mmap(NULL, FD_CHUNK * sizeof(struct fd_ent),
		     PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		     0);
	if (fresh == MAP_FAILED)
		return NULL; /* the entry stays unknown: always safe */
	if (!__atomic_compare_exchange_n(&fd_chunks[c], &chunk, fresh, false,
					 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		munmap(fresh, FD_CHUNK * sizeof(struct fd_ent));
	else
		chunk = fresh;
	return &chunk[fd & (FD_CHUNK - 1)];
}

static inline uint32_t fd_word(int fd)
{
	const struct fd_ent *e = fd_slot(fd, false);

	return e ? __atomic_load_n(&e->w, __ATOMIC_RELAXED) : 0;
}

static inline unsigned int fd_kind(uint32_t w)
{
	return w & FD_KIND_MASK;
}

static inline unsigned int fd_family(uint32_t w)
{
	return (w & FD_FAM_MASK) >> FD_FAM_SHIFT;
}

static inline void fd_store(int fd, uint32_t w, uint32_t ep)
{
	struct fd_ent *e = fd_slot(fd, w != 0);

	if (!e)
		return;
	__atomic_store_n(&e->w, w, __ATOMIC_RELAXED);
	__atomic_store_n(&e->ep, ep, __ATOMIC_RELAXED);
}

/* A descriptor a call just created (a new open file: in no epoll set). */
static inline void fd_new(int fd, unsigned int kind, unsigned int fam,
			  bool nonblock)
{
	fd_store(fd,
		 kind | fam << FD_FAM_SHIFT | FD_NB_KNOWN |
			 (nonblock ? FD_NB : 0),
		 EP_NONE);
}

static inline void fd_new_epoll(int fd)
{
	fd_store(fd, FK_EPOLL | FD_NB_KNOWN,
		 __atomic_fetch_add(&fd_ep_next, 1, __ATOMIC_RELAXED));
}

/* Before anything that may end the descriptor: nothing proven about it. */
static inline void fd_forget(int fd)
{
	struct fd_ent *e = fd_slot(fd, false);

	if (!e)
		return;
	__atomic_store_n(&e->w, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&e->ep, EP_UNKNOWN, __ATOMIC_RELAXED);
}

static inline void fd_forget_range(unsigned int first, unsigned int last)
{
	for (uint64_t c = first >> FD_CHUNK_SHIFT;
	     c <= (last >> FD_CHUNK_SHIFT) && c < FD_CHUNKS; c++) {
		struct fd_ent *chunk =
			__atomic_load_n(&fd_chunks[c], __ATOMIC_ACQUIRE);

		if (!chunk)
			continue;
		for (uint64_t i = 0; i < FD_CHUNK; i++) {
			uint64_t fd = c << FD_CHUNK_SHIFT | i;

			if (fd >= first && fd <= last) {
				__atomic_store_n(&chunk[i].w, 0,
						 __ATOMIC_RELAXED);
				__atomic_store_n(&chunk[i].ep, EP_UNKNOWN,
						 __ATOMIC_RELAXED);
			}
		}
	}
}

/*
 * dup family: @nfd now names @fd's open file. It is a new epoll key
 * (file, nfd), which may still be registered from an earlier life of the
 * same pair: only "in a set" is ever used to prove anything, and that is
 * not claimed here.
 */
static inline void fd_copy(int fd, int nfd)
{
	uint32_t w = fd_word(fd) & ~FD_LIBC;

	if (fd_kind(w) == FK_EPOLL) {
		/* another name for the same epoll: its id, still valid */
		const struct fd_ent *e = fd_slot(fd, false);

		fd_store(nfd, w,
			 e ? __atomic_load_n(&e->ep, __ATOMIC_RELAXED) : 0);
		return;
	}
	fd_store(nfd, w, fd_kind(w) ? EP_UNKNOWN : 0);
}

static inline void fd_set_nonblock(int fd, bool nb)
{
	struct fd_ent *e = fd_slot(fd, false);
	uint32_t w;

	if (!e)
		return;
	w = __atomic_load_n(&e->w, __ATOMIC_RELAXED);
	if (!fd_kind(w))
		return;
	w = (w & ~FD_NB) | FD_NB_KNOWN | (nb ? FD_NB : 0);
	__atomic_store_n(&e->w, w, __ATOMIC_RELAXED);
}

static inline void fd_set_flag(int fd, uint32_t flag)
{
	struct fd_ent *e = fd_slot(fd, false);

	if (e)
		__atomic_store_n(
			&e->w, __atomic_load_n(&e->w, __ATOMIC_RELAXED) | flag,
			__ATOMIC_RELAXED);
}

/* The id of epoll @epfd if nobody outside this process can change it. */
static inline uint32_t fd_ep_id(int epfd)
{
	const struct fd_ent *e = fd_slot(epfd, false);
	uint32_t id;

	if (!e || fd_kind(__atomic_load_n(&e->w, __ATOMIC_RELAXED)) != FK_EPOLL)
		return 0;
	id = __atomic_load_n(&e->ep, __ATOMIC_RELAXED);
	return id >= __atomic_load_n(&fd_ep_min_valid, __ATOMIC_RELAXED) ? id :
									   0;
}

static inline int fd_ep_member(int fd, int epfd)
{
	const struct fd_ent *e = fd_slot(fd, false);
	uint32_t id = fd_ep_id(epfd), ep;

	if (!id || !e || !fd_kind(__atomic_load_n(&e->w, __ATOMIC_RELAXED)))
		return FD_EP_UNSURE;
	ep = __atomic_load_n(&e->ep, __ATOMIC_RELAXED);
	if (ep == id)
		return FD_EP_IN;
	return ep == EP_NONE ? FD_EP_OUT : FD_EP_UNSURE;
}

static inline void fd_ep_store(int fd, uint32_t ep)
{
	struct fd_ent *e = fd_slot(fd, false);

	if (e && fd_kind(__atomic_load_n(&e->w, __ATOMIC_RELAXED)))
		__atomic_store_n(&e->ep, ep, __ATOMIC_RELAXED);
}

/* Record what an epoll_ctl's result says about (fd, epfd). */
static inline void fd_ep_learn(int fd, int epfd, int op, long res)
{
	uint32_t id = fd_ep_id(epfd);
	int was = fd_ep_member(fd, epfd);

	if (!id) {
		fd_ep_store(fd, EP_UNKNOWN);
		return;
	}
	switch (op) {
	case 1: /* EPOLL_CTL_ADD: either way, (file, fd) is now in the set */
		if (res == 0 || res == -17 /* EEXIST */)
			fd_ep_store(fd, id);
		break;
	case 2: /* EPOLL_CTL_DEL */
		if (res == 0 && was == FD_EP_IN)
			fd_ep_store(fd, EP_NONE);
		else if (res != 0)
			fd_ep_store(fd, EP_UNKNOWN);
		break;
	default: /* MOD */
		if (res != 0)
			fd_ep_store(fd, EP_UNKNOWN);
	}
}

static inline void fd_ep_set(int fd, int epfd, int what)
{
	(void)epfd;
	fd_ep_store(fd, what == FD_EP_OUT ? EP_NONE : EP_UNKNOWN);
}

/*
 * fork or vfork: every epoll that exists now is shared with the child,
 * which may change its sets unseen by us (and we by it).
 */
static inline void fd_fork(void)
{
	__atomic_store_n(&fd_ep_min_valid,
			 __atomic_load_n(&fd_ep_next, __ATOMIC_RELAXED),
			 __ATOMIC_RELAXED);
}

#endif /* ESCA_LIB_FDTAB_H */
