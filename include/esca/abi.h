/* SPDX-License-Identifier: MIT OR GPL-2.0 */
/*
 * ESCA user/kernel ABI: the only header both esca.ko and user space include.
 *
 * A process opens /dev/esca, calls ESCA_IOC_SETUP once, then each thread
 * that wants to offload calls ESCA_IOC_REGISTER and mmap()s the two halves
 * of the ring it gets back. One ring per thread, one producer per ring
 * (that thread), one consumer at a time (a kernel thread "esca/N" pinned to
 * core N).
 *
 * Ring memory, two mappings per ring (offsets and sizes from REGISTER):
 *
 *   submission side, at sq_offset, read-write, ESCA_SQ_MMAP_SIZE(entries):
 *     0                 struct esca_sq_hdr         (sq_tail)
 *     ESCA_SQES_OFFSET  struct esca_sqe[entries]   (written by the producer)
 *   completion side, at cq_offset, read-only, ESCA_CQ_MMAP_SIZE(entries):
 *     0                 struct esca_cq_hdr         (sq_head, flags, geometry)
 *     ESCA_CQES_OFFSET  struct esca_cqe[entries]   (written by the consumer)
 *
 * Everything the kernel writes is mapped read-only (a writable mapping of
 * the completion side is refused), and the kernel never reads it back: it
 * keeps its own head. The ring dies when its last mapping goes.
 *
 * Entry i (a free-running u32 index) lives in slot i & (entries - 1) of both
 * arrays. Completions are in submission order: sq_head == n means entries
 * [0, n) are complete and their CQEs are final. So a producer may reuse a
 * slot once sq_head has passed it and it has read the CQE it wants.
 *
 * Who writes what:
 *   sq_tail, sqes,  producer only (submission side)
 *   resume
 *   sq_head, flags, consumer only (completion side, their own cache line)
 *   dead_reason
 *   cqes            consumer only
 *   geometry        kernel, once, before the ring is visible
 * The kernel keeps private copies of head and geometry and never trusts the
 * shared ones; a tail more than `entries` ahead of head stops the ring.
 *
 * Barriers (labels used at every call site, in the module and in lib/):
 *
 *   producer                            consumer
 *   write sqe[i]
 *   A: store-release sq_tail = i+1  ->  B: load-acquire sq_tail, read sqe
 *                                        write cqe[i]
 *   D: load-acquire sq_head          <- C: store-release sq_head = i+1
 *      then read cqe[i]
 *
 *   Resume after a bounced deferred entry (ESCA_RING_PAUSED):
 *   G: store-release resume = i+1   ->  H: load-acquire resume, run on
 *
 *   Sleep/wake (Dekker pair, both sides need a full barrier):
 *   producer: A, then E: smp_mb, then read flags & NEED_WAKEUP -> ioctl WAKE
 *   consumer: set NEED_WAKEUP, F: smp_mb, then re-read sq_tail -> sleep
 *   At least one side sees the other's store, so no wakeup is lost.
 */
#ifndef ESCA_ABI_H
#define ESCA_ABI_H

#ifdef __KERNEL__
#include <linux/types.h>
#include <linux/ioctl.h>
#include <linux/build_bug.h>
#include <linux/stddef.h>
#define ESCA_STATIC_ASSERT(c, m) static_assert(c, m)
#else
#include <linux/types.h>
#include <linux/ioctl.h>
#include <stddef.h>
#define ESCA_STATIC_ASSERT(c, m) _Static_assert(c, m)
#endif

#define ESCA_ABI_VERSION 2U
#define ESCA_DEVICE_PATH "/dev/esca"

/* Ring geometry limits; entries must be a power of two. */
#define ESCA_ENTRIES_DEFAULT 256U
#define ESCA_ENTRIES_MIN 8U
#define ESCA_ENTRIES_MAX 4096U
#define ESCA_MAX_RINGS 1024U /* registered threads per process */

/*
 * mmap offsets of ring `id`: each ring has a 16 MiB window, its submission
 * side at the start and its completion side half way.
 */
#define ESCA_RING_OFFSET_SHIFT 24
#define ESCA_SQ_OFFSET(id) ((__u64)(id) << ESCA_RING_OFFSET_SHIFT)
#define ESCA_CQ_OFFSET(id) (ESCA_SQ_OFFSET(id) | (1ULL << 23))

#define ESCA_CACHELINE 64

/* esca_cq_hdr.flags, written by the consumer only. */
#define ESCA_RING_NEED_WAKEUP (1U << 0) /* consumer sleeps: ioctl WAKE */
/*
 * Ring retired: the consumer has let go of it for good, so sq_head is
 * final; entries at or past it never ran and have had no effect.
 */
#define ESCA_RING_DEAD (1U << 1)
/*
 * A deferred entry was bounced: the producer makes it itself, then
 * store-releases resume = its index + 1 (G, matches H); the consumer runs
 * nothing past it until then.
 */
#define ESCA_RING_PAUSED (1U << 2)

/* esca_cq_hdr.dead_reason: why the ring died (set before DEAD shows). */
#define ESCA_DEAD_CLOSED 1U /* unregistered, unmapped, or /dev/esca closed */
#define ESCA_DEAD_PROTOCOL 2U /* the producer broke the protocol (tail) */
#define ESCA_DEAD_EXITED 3U /* the registering thread exited */
#define ESCA_DEAD_IDENTITY 4U /* its creds, mm or file table changed (exec) */
#define ESCA_DEAD_SECCOMP 5U /* a thread of the process is under seccomp */
#define ESCA_DEAD_STALLED 6U /* a call overran call_timeout_ms */
#define ESCA_DEAD_OFFLINE 7U /* its consumer's CPU went offline, none left */
#define ESCA_DEAD_PROCESS 8U /* the process's address space is gone */

/* Head of the submission side: the producer's positions. */
struct esca_sq_hdr {
	__u32 sq_tail;
	__u32 resume; /* index + 1 of the bounced deferred entry made */
	__u32 resv[14];
};

/* Head of the completion side (read-only to user space). */
struct esca_cq_hdr {
	/* cache line 0: consumer-owned */
	__u32 sq_head;
	__u32 flags;
	__u32 dead_reason; /* ESCA_DEAD_*, final once ESCA_RING_DEAD shows */
	__u32 resv0[13];
	/* cache line 1: geometry, written once by the kernel */
	__u32 entries;
	__u32 mask;
	__u32 ring_id;
	__u32 resv1[13];
};

/* esca_sqe.flags */
#define ESCA_SQE_DEFERRED (1U << 0) /* producer will not wait for it */
#define ESCA_SQE_VALID_FLAGS (ESCA_SQE_DEFERRED)

/*
 * One submission: an x86-64 system call number and its six arguments,
 * exactly as the syscall instruction would pass them.
 */
struct esca_sqe {
	__u32 nr;
	__u32 flags;
	__u64 args[6];
	__u64 user_data;
};

/* esca_cqe.flags */
/*
 * The module did not execute the call because it could block the consumer
 * or needs something of the caller's that it does not borrow: see the
 * audit in kmod/exec.c). res is 0; the producer must make the call itself.
 * The call has had no effect. After bouncing a DEFERRED entry the consumer
 * pauses the ring (ESCA_RING_PAUSED) and runs nothing past it until the
 * producer has made the call and stored sq_hdr.resume, so the thread's
 * calls still take effect in program order.
 */
#define ESCA_CQE_BOUNCED (1U << 0)

struct esca_cqe {
	__s64 res; /* exact return value, -errno on failure */
	__u32 flags;
	__u32 resv;
	__u64 user_data;
};

#define ESCA_SQES_OFFSET 4096U
#define ESCA_CQES_OFFSET 4096U
#define ESCA_SQ_MMAP_SIZE(entries) \
	(ESCA_SQES_OFFSET + (__u64)(entries) * sizeof(struct esca_sqe))
#define ESCA_CQ_MMAP_SIZE(entries) \
	(ESCA_CQES_OFFSET + (__u64)(entries) * sizeof(struct esca_cqe))

/* ioctls on /dev/esca */
struct esca_setup {
	__u32 abi_version; /* in: ESCA_ABI_VERSION */
	__u32 flags; /* in: must be 0 */
	__u32 entries; /* in: per-ring entries (0: default); out: used */
	__u32 nr_consumers; /* out */
	__u64 resv[2];
};

struct esca_register {
	__u32 ring_id; /* out */
	__u32 entries; /* out */
	__u64 sq_offset; /* out: mmap() offset, PROT_READ | PROT_WRITE */
	__u64 cq_offset; /* out: mmap() offset, PROT_READ only */
	__u32 sq_size; /* out: mmap() lengths */
	__u32 cq_size;
	__u32 consumer_cpu; /* out: OS index of the serving core */
	__u32 resv;
};

/* WAIT also returns (0) when the ring is PAUSED, and -ENXIO once DEAD. */
struct esca_wait {
	__u32 ring_id;
	__u32 index; /* wait until sq_head has passed entry `index` */
	__u64 resv;
};

#define ESCA_IOC_MAGIC 0xE5
#define ESCA_IOC_SETUP _IOWR(ESCA_IOC_MAGIC, 1, struct esca_setup)
#define ESCA_IOC_REGISTER _IOR(ESCA_IOC_MAGIC, 2, struct esca_register)
#define ESCA_IOC_UNREGISTER _IO(ESCA_IOC_MAGIC, 3) /* arg: ring_id */
#define ESCA_IOC_WAKE _IO(ESCA_IOC_MAGIC, 4) /* arg: ring_id */
#define ESCA_IOC_WAIT _IOW(ESCA_IOC_MAGIC, 5, struct esca_wait)
/* 6 was ESCA_IOC_RESUME in ABI 1: now sq_hdr.resume, no system call. */

ESCA_STATIC_ASSERT(sizeof(struct esca_sqe) == 64, "sqe is 64 bytes");
ESCA_STATIC_ASSERT(offsetof(struct esca_sqe, args) == 8, "sqe args");
ESCA_STATIC_ASSERT(offsetof(struct esca_sqe, user_data) == 56, "sqe udata");
ESCA_STATIC_ASSERT(sizeof(struct esca_cqe) == 24, "cqe is 24 bytes");
ESCA_STATIC_ASSERT(sizeof(struct esca_sq_hdr) == ESCA_CACHELINE,
		   "tail has its cache line");
ESCA_STATIC_ASSERT(sizeof(struct esca_cq_hdr) == 2 * ESCA_CACHELINE,
		   "completion header is two cache lines");
ESCA_STATIC_ASSERT(offsetof(struct esca_cq_hdr, sq_head) == 0, "head");
ESCA_STATIC_ASSERT(offsetof(struct esca_cq_hdr, dead_reason) == 8, "reason");
ESCA_STATIC_ASSERT(offsetof(struct esca_sq_hdr, resume) == 4, "resume");
ESCA_STATIC_ASSERT(offsetof(struct esca_cq_hdr, entries) == ESCA_CACHELINE,
		   "geometry on its own cache line");
ESCA_STATIC_ASSERT(sizeof(struct esca_sq_hdr) <= ESCA_SQES_OFFSET,
		   "header fits before the sqes");
ESCA_STATIC_ASSERT(sizeof(struct esca_cq_hdr) <= ESCA_CQES_OFFSET,
		   "header fits before the cqes");
ESCA_STATIC_ASSERT(sizeof(struct esca_setup) == 32, "setup");
ESCA_STATIC_ASSERT(sizeof(struct esca_register) == 40, "register");
ESCA_STATIC_ASSERT(sizeof(struct esca_wait) == 16, "wait");
ESCA_STATIC_ASSERT(ESCA_SQ_MMAP_SIZE(ESCA_ENTRIES_MAX) <= (1ULL << 23) &&
			   ESCA_CQ_MMAP_SIZE(ESCA_ENTRIES_MAX) <= (1ULL << 23),
		   "largest ring fits its mmap windows");

#endif /* ESCA_ABI_H */
