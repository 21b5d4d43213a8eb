/* SPDX-License-Identifier: MIT */
/*
 * Producer side of the ring protocol (see the barrier diagram in
 * include/esca/abi.h). Header-only so host unit tests drive the very same
 * code against a simulated consumer.
 *
 * One producer per ring: none of these functions may run concurrently on
 * the same ring. No lock and no read-modify-write on shared memory.
 */
#ifndef ESCA_LIB_RING_H
#define ESCA_LIB_RING_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "esca/abi.h"

struct esca_pring {
	struct esca_sq_hdr *sq; /* submission side (ours to write) */
	const struct esca_cq_hdr *cq; /* completion side (read-only) */
	struct esca_sqe *sqes;
	const struct esca_cqe *cqes;
	uint32_t entries;
	uint32_t mask;
	uint32_t id;
	uint32_t tail; /* private copy of sq_tail (we are its only writer) */
	uint32_t head; /* last sq_head seen: refreshed only when needed */
};

/*
 * Point @r at a ring's two mapped sides, laid out per abi.h; geometry is
 * read once here.
 */
static inline void esca_pring_init(struct esca_pring *r, void *sq_mem,
				   const void *cq_mem)
{
	const struct esca_cq_hdr *cq = cq_mem;

	r->sq = sq_mem;
	r->cq = cq;
	r->entries = cq->entries;
	r->mask = cq->entries - 1;
	r->id = cq->ring_id;
	r->sqes = (struct esca_sqe *)((char *)sq_mem + ESCA_SQES_OFFSET);
	r->cqes = (const struct esca_cqe *)((const char *)cq_mem +
					    ESCA_CQES_OFFSET);
	r->tail = __atomic_load_n(&r->sq->sq_tail, __ATOMIC_RELAXED);
	r->head = __atomic_load_n(&cq->sq_head, __ATOMIC_ACQUIRE);
}

/* D, matches C: entries before the returned head have final CQEs. */
static inline uint32_t esca_pring_load_head(struct esca_pring *r)
{
	r->head = __atomic_load_n(&r->cq->sq_head, __ATOMIC_ACQUIRE);
	return r->head;
}

/* Has entry @idx completed? */
static inline bool esca_pring_done(struct esca_pring *r, uint32_t idx)
{
	return (int32_t)(esca_pring_load_head(r) - (idx + 1)) >= 0;
}

static inline bool esca_pring_full(struct esca_pring *r)
{
	if (r->tail - r->head < r->entries)
		return false;
	return r->tail - esca_pring_load_head(r) >= r->entries;
}

/*
 * Queue one call; returns its index. The caller has checked that the ring
 * is not full and has looked at any CQE in the slot it reuses.
 */
static inline uint32_t esca_pring_submit(struct esca_pring *r, uint32_t nr,
					 const __u64 args[6], uint32_t flags,
					 uint64_t user_data)
{
	uint32_t idx = r->tail;
	struct esca_sqe *sqe = &r->sqes[idx & r->mask];

	sqe->nr = nr;
	sqe->flags = flags;
	memcpy(sqe->args, args, sizeof(sqe->args));
	sqe->user_data = user_data;
	r->tail = idx + 1;
	/* A, matches B: the entry is written before the consumer sees it. */
	__atomic_store_n(&r->sq->sq_tail, r->tail, __ATOMIC_RELEASE);
	return idx;
}

/*
 * The ring's flags as seen after our last store (tail or resume). The full
 * barrier orders that store before the flag load (E, matches F); without it
 * a consumer going to sleep and this producer could miss each other.
 */
static inline uint32_t esca_pring_flags_fenced(struct esca_pring *r)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return __atomic_load_n(&r->cq->flags, __ATOMIC_ACQUIRE);
}

/* After submitting: must the sleeping consumer be woken (ioctl WAKE)? */
static inline bool esca_pring_needs_wakeup(struct esca_pring *r)
{
	return esca_pring_flags_fenced(r) & ESCA_RING_NEED_WAKEUP;
}

static inline bool esca_pring_dead(struct esca_pring *r)
{
	return __atomic_load_n(&r->cq->flags, __ATOMIC_ACQUIRE) &
	       ESCA_RING_DEAD;
}

/* Paused after bouncing a deferred entry (see ESCA_CQE_BOUNCED). */
static inline bool esca_pring_paused(struct esca_pring *r)
{
	return __atomic_load_n(&r->cq->flags, __ATOMIC_ACQUIRE) &
	       ESCA_RING_PAUSED;
}

/*
 * We made the deferred entry @idx the consumer bounced (the ring is PAUSED
 * behind it): let the consumer run on. No system call, so this works even
 * if the program closed /dev/esca's fd. G, matches H: the call was made
 * before the consumer runs anything past it. Then kick the consumer if it
 * sleeps (esca_pring_needs_wakeup); a sleeping consumer also looks at its
 * rings at least once a second.
 */
static inline void esca_pring_resume(struct esca_pring *r, uint32_t idx)
{
	__atomic_store_n(&r->sq->resume, idx + 1, __ATOMIC_RELEASE);
}

/*
 * Why the ring died (ESCA_DEAD_*): final once esca_pring_dead() has been
 * seen (the consumer sets it before DEAD, and DEAD is load-acquired).
 */
static inline uint32_t esca_pring_dead_reason(struct esca_pring *r)
{
	return __atomic_load_n(&r->cq->dead_reason, __ATOMIC_RELAXED);
}

static inline const struct esca_cqe *esca_pring_cqe(struct esca_pring *r,
						    uint32_t idx)
{
	return &r->cqes[idx & r->mask];
}

static inline const struct esca_sqe *esca_pring_sqe(struct esca_pring *r,
						    uint32_t idx)
{
	return &r->sqes[idx & r->mask];
}

#endif /* ESCA_LIB_RING_H */
