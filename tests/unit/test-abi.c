// SPDX-License-Identifier: MIT
/*
 * The user/kernel ABI (include/esca/abi.h) checked at run time: sizes and
 * offsets, the ring mapping geometry, ioctl numbers and flag bits. abi.h
 * has static asserts too; these checks name the value that moved, and
 * the byte probes see the layout the compiler really produced.
 */
#include <stdint.h>
#include <string.h>

#include "esca/abi.h"
#include "unit.h"

#define SIZE(type, want)                                                   \
	CHECK(sizeof(type) == (want), "sizeof(" #type ") = %zu, want %zu", \
	      sizeof(type), (size_t)(want))
#define OFF(type, field, want)                                   \
	CHECK(offsetof(type, field) == (want),                   \
	      "offsetof(" #type ", " #field ") = %zu, want %zu", \
	      offsetof(type, field), (size_t)(want))

static bool is_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

/* Byte probe: where does a store to a field land in the raw bytes? */
static size_t where(const void *base, size_t size, const void *pattern,
		    size_t len)
{
	const unsigned char *p = base;

	for (size_t i = 0; i + len <= size; i++)
		if (!memcmp(p + i, pattern, len))
			return i;
	return SIZE_MAX;
}

static void test_layout(void)
{
	SIZE(struct esca_sq_hdr, ESCA_CACHELINE);
	OFF(struct esca_sq_hdr, sq_tail, 0);
	OFF(struct esca_sq_hdr, resume, 4);
	SIZE(struct esca_cq_hdr, 2 * ESCA_CACHELINE);
	OFF(struct esca_cq_hdr, sq_head, 0);
	OFF(struct esca_cq_hdr, flags, 4);
	OFF(struct esca_cq_hdr, dead_reason, 8);
	OFF(struct esca_cq_hdr, entries, 64);
	OFF(struct esca_cq_hdr, mask, 68);
	OFF(struct esca_cq_hdr, ring_id, 72);

	SIZE(struct esca_sqe, 64);
	OFF(struct esca_sqe, nr, 0);
	OFF(struct esca_sqe, flags, 4);
	OFF(struct esca_sqe, args, 8);
	OFF(struct esca_sqe, user_data, 56);
	SIZE(((struct esca_sqe *)0)->args, 6 * sizeof(__u64));

	SIZE(struct esca_cqe, 24);
	OFF(struct esca_cqe, res, 0);
	OFF(struct esca_cqe, flags, 8);
	OFF(struct esca_cqe, resv, 12);
	OFF(struct esca_cqe, user_data, 16);

	SIZE(struct esca_setup, 32);
	OFF(struct esca_setup, abi_version, 0);
	OFF(struct esca_setup, flags, 4);
	OFF(struct esca_setup, entries, 8);
	OFF(struct esca_setup, nr_consumers, 12);
	OFF(struct esca_setup, resv, 16);

	SIZE(struct esca_register, 40);
	OFF(struct esca_register, ring_id, 0);
	OFF(struct esca_register, entries, 4);
	OFF(struct esca_register, sq_offset, 8);
	OFF(struct esca_register, cq_offset, 16);
	OFF(struct esca_register, sq_size, 24);
	OFF(struct esca_register, cq_size, 28);
	OFF(struct esca_register, consumer_cpu, 32);
	OFF(struct esca_register, resv, 36);

	SIZE(struct esca_wait, 16);
	OFF(struct esca_wait, ring_id, 0);
	OFF(struct esca_wait, index, 4);
	OFF(struct esca_wait, resv, 8);

	/* 64-bit fields must not depend on the ABI's alignment rules */
	CHECK(_Alignof(struct esca_sqe) == 8 && _Alignof(struct esca_cqe) == 8,
	      "sqe/cqe alignment %zu/%zu, want 8", _Alignof(struct esca_sqe),
	      _Alignof(struct esca_cqe));

	/* the same, seen through the bytes */
	unsigned char raw[sizeof(struct esca_sqe)] = { 0 };
	struct esca_sqe sqe;
	uint64_t ud = 0x0123456789abcdefULL, a5 = 0xfedcba9876543210ULL;

	memset(&sqe, 0, sizeof(sqe));
	sqe.user_data = ud;
	sqe.args[5] = a5;
	memcpy(raw, &sqe, sizeof(raw));
	CHECK(where(raw, sizeof(raw), &ud, 8) == 56, "sqe user_data at %zu",
	      where(raw, sizeof(raw), &ud, 8));
	CHECK(where(raw, sizeof(raw), &a5, 8) == 48, "sqe args[5] at %zu",
	      where(raw, sizeof(raw), &a5, 8));

	struct esca_cqe cqe;
	int64_t res = -0x1122334455667788LL;

	memset(&cqe, 0, sizeof(cqe));
	cqe.res = res;
	cqe.user_data = ud;
	CHECK(where(&cqe, sizeof(cqe), &res, 8) == 0, "cqe res at %zu",
	      where(&cqe, sizeof(cqe), &res, 8));
	CHECK(where(&cqe, sizeof(cqe), &ud, 8) == 16, "cqe user_data at %zu",
	      where(&cqe, sizeof(cqe), &ud, 8));
}

static void test_geometry(void)
{
	uint64_t window = 1ULL << ESCA_RING_OFFSET_SHIFT;

	CHECK(ESCA_ABI_VERSION == 2, "ABI version %u", ESCA_ABI_VERSION);
	CHECK(window == 16 << 20, "mmap window %llu bytes, want 16 MiB",
	      (unsigned long long)window);
	CHECK(is_pow2(ESCA_ENTRIES_MIN) && is_pow2(ESCA_ENTRIES_DEFAULT) &&
		      is_pow2(ESCA_ENTRIES_MAX),
	      "entries limits %u/%u/%u not powers of two", ESCA_ENTRIES_MIN,
	      ESCA_ENTRIES_DEFAULT, ESCA_ENTRIES_MAX);
	CHECK(ESCA_ENTRIES_MIN <= ESCA_ENTRIES_DEFAULT &&
		      ESCA_ENTRIES_DEFAULT <= ESCA_ENTRIES_MAX,
	      "entries min %u <= default %u <= max %u", ESCA_ENTRIES_MIN,
	      ESCA_ENTRIES_DEFAULT, ESCA_ENTRIES_MAX);
	CHECK(ESCA_SQES_OFFSET >= sizeof(struct esca_sq_hdr) &&
		      ESCA_SQES_OFFSET % 4096 == 0 &&
		      ESCA_CQES_OFFSET >= sizeof(struct esca_cq_hdr) &&
		      ESCA_CQES_OFFSET % 4096 == 0,
	      "sqes/cqes offsets %u/%u: must follow the headers, page aligned",
	      ESCA_SQES_OFFSET, ESCA_CQES_OFFSET);

	for (uint32_t e = ESCA_ENTRIES_MIN; e <= ESCA_ENTRIES_MAX; e *= 2) {
		uint64_t sq = ESCA_SQ_MMAP_SIZE(e), cq = ESCA_CQ_MMAP_SIZE(e);

		CHECK(sq == ESCA_SQES_OFFSET + (uint64_t)e * 64 &&
			      cq == ESCA_CQES_OFFSET + (uint64_t)e * 24,
		      "%u entries: sizes %llu/%llu", e, (unsigned long long)sq,
		      (unsigned long long)cq);
		/* each side fits its half of the ring's window */
		CHECK(sq <= window / 2 && cq <= window / 2,
		      "%u entries: %llu/%llu bytes > half window", e,
		      (unsigned long long)sq, (unsigned long long)cq);
	}

	/* ring windows: page aligned, disjoint, no overflow up to MAX_RINGS */
	uint64_t last = ESCA_SQ_OFFSET(ESCA_MAX_RINGS - 1);

	CHECK(ESCA_SQ_OFFSET(0) == 0 && ESCA_SQ_OFFSET(1) == window &&
		      ESCA_CQ_OFFSET(0) == window / 2 &&
		      ESCA_CQ_OFFSET(1) == window + window / 2,
	      "ring offsets 0, 1: %llu/%llu, %llu/%llu",
	      (unsigned long long)ESCA_SQ_OFFSET(0),
	      (unsigned long long)ESCA_CQ_OFFSET(0),
	      (unsigned long long)ESCA_SQ_OFFSET(1),
	      (unsigned long long)ESCA_CQ_OFFSET(1));
	CHECK(last == (uint64_t)(ESCA_MAX_RINGS - 1) * window &&
		      last % 4096 == 0,
	      "offset of the last ring %llu", (unsigned long long)last);
	CHECK(last + window > last, "last ring window wraps");
}

static void test_ioctls(void)
{
	const struct {
		const char *name;
		unsigned long nr;
		unsigned int dir;
		size_t size;
	} ioc[] = {
		{ "SETUP", ESCA_IOC_SETUP, _IOC_READ | _IOC_WRITE,
		  sizeof(struct esca_setup) },
		{ "REGISTER", ESCA_IOC_REGISTER, _IOC_READ,
		  sizeof(struct esca_register) },
		{ "UNREGISTER", ESCA_IOC_UNREGISTER, _IOC_NONE, 0 },
		{ "WAKE", ESCA_IOC_WAKE, _IOC_NONE, 0 },
		{ "WAIT", ESCA_IOC_WAIT, _IOC_WRITE, sizeof(struct esca_wait) },
	};
	const size_t n = sizeof(ioc) / sizeof(ioc[0]);

	for (size_t i = 0; i < n; i++) {
		CHECK(_IOC_TYPE(ioc[i].nr) == ESCA_IOC_MAGIC,
		      "%s: type %#lx, want %#x", ioc[i].name,
		      (unsigned long)_IOC_TYPE(ioc[i].nr), ESCA_IOC_MAGIC);
		CHECK(_IOC_DIR(ioc[i].nr) == ioc[i].dir,
		      "%s: direction %lu, want %u", ioc[i].name,
		      (unsigned long)_IOC_DIR(ioc[i].nr), ioc[i].dir);
		CHECK(_IOC_SIZE(ioc[i].nr) == ioc[i].size,
		      "%s: size %lu, want %zu", ioc[i].name,
		      (unsigned long)_IOC_SIZE(ioc[i].nr), ioc[i].size);
		/* 6 was RESUME (ABI 1): never reused for something else */
		CHECK(_IOC_NR(ioc[i].nr) != 6, "%s reuses number 6 (RESUME)",
		      ioc[i].name);
		for (size_t j = i + 1; j < n; j++) {
			CHECK(ioc[i].nr != ioc[j].nr, "%s == %s (%#lx)",
			      ioc[i].name, ioc[j].name, ioc[i].nr);
			CHECK(_IOC_NR(ioc[i].nr) != _IOC_NR(ioc[j].nr),
			      "%s and %s share number %lu", ioc[i].name,
			      ioc[j].name, (unsigned long)_IOC_NR(ioc[i].nr));
		}
	}
}

static void flag_set(const char *set, const uint32_t *flags,
		     const char *const *names, size_t n)
{
	uint32_t seen = 0;

	for (size_t i = 0; i < n; i++) {
		CHECK(is_pow2(flags[i]), "%s %s = %#x: not a single bit", set,
		      names[i], flags[i]);
		CHECK(!(seen & flags[i]), "%s %s = %#x overlaps another flag",
		      set, names[i], flags[i]);
		seen |= flags[i];
	}
}

static void test_flags(void)
{
	const uint32_t ring[] = { ESCA_RING_NEED_WAKEUP, ESCA_RING_DEAD,
				  ESCA_RING_PAUSED };
	const char *const ring_n[] = { "NEED_WAKEUP", "DEAD", "PAUSED" };
	const uint32_t sqe[] = { ESCA_SQE_DEFERRED };
	const char *const sqe_n[] = { "DEFERRED" };
	const uint32_t cqe[] = { ESCA_CQE_BOUNCED };
	const char *const cqe_n[] = { "BOUNCED" };

	flag_set("ring", ring, ring_n, 3);
	flag_set("sqe", sqe, sqe_n, 1);
	flag_set("cqe", cqe, cqe_n, 1);
	CHECK(ESCA_SQE_VALID_FLAGS == ESCA_SQE_DEFERRED,
	      "SQE_VALID_FLAGS %#x does not match the sqe flags",
	      ESCA_SQE_VALID_FLAGS);
}

/* dead_reason values: the documented numbers, 0 meaning "none yet". */
static void test_dead_reasons(void)
{
	const struct {
		const char *name;
		uint32_t v, want;
	} r[] = {
		{ "CLOSED", ESCA_DEAD_CLOSED, 1 },
		{ "PROTOCOL", ESCA_DEAD_PROTOCOL, 2 },
		{ "EXITED", ESCA_DEAD_EXITED, 3 },
		{ "IDENTITY", ESCA_DEAD_IDENTITY, 4 },
		{ "SECCOMP", ESCA_DEAD_SECCOMP, 5 },
		{ "STALLED", ESCA_DEAD_STALLED, 6 },
		{ "OFFLINE", ESCA_DEAD_OFFLINE, 7 },
		{ "PROCESS", ESCA_DEAD_PROCESS, 8 },
	};

	for (size_t i = 0; i < sizeof(r) / sizeof(r[0]); i++)
		CHECK(r[i].v == r[i].want, "ESCA_DEAD_%s = %u, want %u",
		      r[i].name, r[i].v, r[i].want);
}

int main(void)
{
	test_layout();
	test_geometry();
	test_ioctls();
	test_flags();
	test_dead_reasons();
	return unit_done();
}
