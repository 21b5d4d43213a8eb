# ESCA: build everything, test, demo.
#
#   make              library, tools, tests and esca.ko for kernel K
#   make deps         install the Debian packages needed (run once)
#   make test         host unit tests and shim tests, then the guest suite
#                     (module, shim, real servers) on 6.1 and 6.12
#   make demo         direct vs ESCA vs io_uring calls, then nginx, lighttpd and
#                     redis vanilla vs ESCA under load, side by side, in a guest
#   make bench        nginx, lighttpd, h2o, redis and memcached vanilla vs ESCA,
#                     pinned on esca-affinity's cores: CSV, table, plots
#                     (QUICK=1: one size, one connection count; make test runs it)
#   make install      libraries, headers, libesca.pc, tools, man pages
#   make load|unload  esca.ko for the running kernel, on esca-affinity's cores
#   make unittest | vmtest | guest K=6.12 | format | clean
#
# K selects the tested Debian kernel (6.1 or 6.12); KDIR overrides the
# headers (default: the headers of that guest kernel).

K ?= 6.1
KERNELS ?= 6.1 6.12
B := build
KB := $(B)/k$(K)
KDIR ?= $(shell scripts/kernel.sh kdir $(K) 2>/dev/null)

CC ?= cc
CFLAGS ?= -O2 -g
CFLAGS += -std=c11 -Wall -Wextra -Werror -Iinclude -Ilib -pthread
LDFLAGS += -pthread

LIB_SRC := lib/esca.c
LIB_HDR := include/esca/abi.h include/esca/esca.h lib/ring.h lib/internal.h \
	lib/fdtab.h
KMOD_SRC := $(wildcard kmod/*.c kmod/*.h) kmod/Kbuild include/esca/abi.h

TOOLS := $(B)/bin/esca-stat $(B)/bin/esca-micro $(B)/bin/esca-traps \
	$(B)/bin/esca-check $(B)/bin/esca-diff $(B)/bin/esca-affinity \
	$(B)/bin/esca-run
VMTESTS := $(patsubst tests/vm/%.c,$(B)/vmtests/%,$(wildcard tests/vm/t-*.c))
UNITTESTS := $(patsubst tests/unit/%.c,$(B)/unit/%,$(wildcard tests/unit/test-*.c))
SHIMTESTS := $(patsubst tests/shim/%.c,$(B)/shimtests/%,$(wildcard tests/shim/t-*.c))

.PHONY: all user module guest deps test unittest vmtest demo bench format clean \
	install load unload

all: user module

user: $(B)/lib/libesca.a $(B)/lib/libesca.so $(B)/lib/libesca-preload.so \
	$(TOOLS) $(VMTESTS) $(UNITTESTS) $(SHIMTESTS)

deps:
	@scripts/deps.sh

$(B)/lib/%.o: lib/%.c $(LIB_HDR)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -fPIC -fvisibility=hidden -c -o $@ $<

$(B)/lib/libesca.a: $(B)/lib/esca.o
	$(AR) rcs $@ $^

# The shared library's own object: default visibility, so that the
# version script's esca_* are exported (the hidden esca.o serves the static
# library and the preload shim, which exports libc's names only).
$(B)/lib/esca-shared.o: lib/esca.c $(LIB_HDR)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -fPIC -c -o $@ $<

$(B)/lib/libesca.so: $(B)/lib/esca-shared.o lib/libesca.map
	$(CC) -shared -Wl,--version-script=lib/libesca.map -Wl,-soname,libesca.so.1 \
		$(LDFLAGS) -o $@ $(B)/lib/esca-shared.o

# The LD_PRELOAD shim: libesca inside, only the interposed libc names
# exported (unversioned, so they bind for programs linked against any
# glibc symbol version).
$(B)/lib/libesca-preload.so: $(B)/lib/preload.o $(B)/lib/esca.o
	$(CC) -shared -Wl,-soname,libesca-preload.so -Wl,--no-undefined \
		-Wl,-z,now $(LDFLAGS) -o $@ $^

$(B)/bin/esca-run: tools/esca-run
	@mkdir -p $(@D)
	cp $< $@

$(B)/bin/esca-stat: tools/esca-stat.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $< $(LDFLAGS)

# hwloc linked dynamically: tests/vm/run copies libhwloc.so (and the
# libudev it needs) into the guest with every binary's other libraries.
$(B)/bin/esca-affinity: affinity/esca-affinity.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $< -lhwloc $(LDFLAGS)

$(B)/bin/esca-check: tests/servers/esca-check.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $< $(LDFLAGS)

# liburing linked statically: the guest has no liburing.so.
$(B)/bin/esca-micro: bench/micro/esca-micro.c tests/vm/perfcount.h $(B)/lib/libesca.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Itests/vm -o $@ $< $(B)/lib/libesca.a -l:liburing.a $(LDFLAGS)

# The shim's tests use libc only: they run directly and under the shim.
$(B)/bin/esca-diff: tests/shim/esca-diff.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $< $(LDFLAGS)

$(B)/shimtests/%: tests/shim/%.c $(wildcard tests/shim/*.h)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $< $(LDFLAGS)

$(B)/bin/esca-traps: bench/servers/esca-traps.c tests/vm/perfcount.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Itests/vm -o $@ $< $(LDFLAGS)

$(B)/vmtests/%: tests/vm/%.c $(wildcard tests/vm/*.h) $(B)/lib/libesca.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Itests/vm -o $@ $< $(B)/lib/libesca.a $(LDFLAGS)

$(B)/unit/%: tests/unit/%.c $(LIB_HDR) $(LIB_SRC) tests/unit/unit.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Itests/unit -o $@ $< $(LDFLAGS)

# The module is built out of a copy per kernel, so 6.1 and 6.12 builds
# never share objects.
module: $(KB)/src/kmod/esca.ko

$(KB)/src/kmod/esca.ko: $(KMOD_SRC)
	@if [ -z "$(KDIR)" ] || [ ! -d "$(KDIR)" ]; then \
		echo "esca: no kernel headers for $(K) (KDIR='$(KDIR)'): run 'make deps' first" >&2; exit 1; fi
	@rm -rf $(KB)/src && mkdir -p $(KB)/src/include
	@cp -r kmod $(KB)/src/ && cp -r include/esca $(KB)/src/include/
	$(MAKE) -s -C $(KDIR) M=$(CURDIR)/$(KB)/src/kmod modules 2>&1 | \
		grep -v 'Skipping BTF generation' || true
	@test -f $@

# Everything the guest sees at /esca (tests/vm/run copies it).
guest: user module
	@rm -rf $(KB)/root && mkdir -p $(KB)/root/bin $(KB)/root/tests $(KB)/root/lib
	@cp $(KB)/src/kmod/esca.ko $(KB)/root/
	@cp $(TOOLS) $(KB)/root/bin/
	@cp $(B)/lib/libesca.so $(B)/lib/libesca-preload.so $(KB)/root/lib/
	@cp $(VMTESTS) tests/vm/suite.sh tests/vm/t-*.sh $(KB)/root/tests/
	@mkdir -p $(KB)/root/shimtests
	@cp $(SHIMTESTS) tests/shim/run.sh $(KB)/root/shimtests/
	@# FUSE tests need /dev/fuse: carry the kernel's fuse.ko when it is a
	@# module (6.1); 6.12 has it built in.
	@img=$$(scripts/kernel.sh image $(K) 2>/dev/null) || img=; \
	for ko in $${img%/boot/*}/lib/modules/*/kernel/fs/fuse/fuse.ko; do \
		if [ -n "$$img" ] && [ -f "$$ko" ]; then cp "$$ko" $(KB)/root/; fi; \
	done

unittest: $(UNITTESTS) $(B)/bin/esca-stat $(B)/bin/esca-affinity \
	$(B)/lib/libesca.so $(B)/lib/libesca-preload.so
	@tests/unit/run $(UNITTESTS)

vmtest:
	@tests/vm/suite-all $(KERNELS)

test: deps
	@$(MAKE) -s user
	@tests/unit/run $(UNITTESTS) | tee $(B)/unit.log
	@# the shim on the host (no module: every call direct, the table and
	@# the bookkeeping still at work): 10,000 random programs + rule tests
	@ESCA_DIFF_N=10000 sh tests/shim/run.sh | tee $(B)/shim.log
	@tests/vm/suite-all $(KERNELS) | tee $(B)/vm.log
	@# every server once per mode under load, results under build/bench-quick
	@$(MAKE) -s bench QUICK=1 K=$(firstword $(KERNELS)) OUT=$(B)/bench-quick | tee $(B)/bench.log
	@tests/total $(B)/unit.log $(B)/shim.log $(B)/vm.log $(B)/bench.log

# The demo's guests read the clock through the vDSO, as a real machine
# does: under TCG the kernel distrusts the TSC and falls back to the HPET,
# and then every gettimeofday/clock_gettime is a system call (redis makes
# two per request), which would count as traps no server makes natively.
DEMO_APPEND := clocksource=tsc tsc=reliable

demo: deps
	@$(MAKE) -s guest K=$(K)
	@ESCA_VM_APPEND="$(DEMO_APPEND)" tests/vm/run --kernel $(K) -- 'bin/esca-micro && echo && \
		for i in $$(seq 50); do grep -q live_contexts=0 /proc/esca/stats && break; sleep 0.1; done; \
		echo "module counters after the run (the process has exited, its context is gone):" && \
		bin/esca-stat -v'
	@echo
	@# nginx vanilla vs under ESCA: server, wrk and the consumer each on a
	@# CPU of their own, so this guest gets three. The consumer owns its
	@# core: it polls for 200 ms before sleeping, and the server's threads
	@# spin up to 200 ms on a result before sleeping in the module (under
	@# TCG a hand-off between vCPUs takes milliseconds when the host is
	@# short of cores; natively the defaults, 1 ms and 50 us, suffice).
	@ESCA_VM_APPEND="$(DEMO_APPEND)" ESCA_VM_SMP=3 ESCA_VM_MEM=3G tests/vm/run --kernel $(K) --servers \
		--insmod-args "cores=2 dev_mode=0666 idle_us=200000" \
		--add bench/servers/demo-servers.sh \
		-- 'DEMO_ESCA_ENV=ESCA_SPIN_US=200000 sh /extra/demo-servers.sh'

# make bench [QUICK=1] [K=6.1] [OUT=DIR]: bench/servers/run in a guest of 3
# vCPUs (server, consumer, load tool); results in OUT (default
# build/bench/<kernel>-<date>). A full run takes about 25 min under TCG.
bench: deps
	@bench/servers/run $(if $(filter 1,$(QUICK)),--quick) --kernel $(K) $(if $(OUT),--out $(OUT))

# make install [PREFIX=/usr/local] [DESTDIR=...]: the library (static,
# shared, preload shim), its headers and pkg-config file, esca-stat,
# esca-affinity, esca-run and their man pages. The module is not installed
# here: it is built for the guest kernels (see README, "Choosing cores").
PREFIX ?= /usr/local
ESCA_VERSION := 0.$(shell sed -n 's/^\#define ESCA_ABI_VERSION \([0-9]*\)U.*/\1/p' include/esca/abi.h)
install: user
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig \
		$(DESTDIR)$(PREFIX)/include/esca $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 755 $(B)/bin/esca-stat $(B)/bin/esca-affinity $(B)/bin/esca-run \
		$(DESTDIR)$(PREFIX)/bin/
	install -m 644 $(B)/lib/libesca.a $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(B)/lib/libesca.so $(DESTDIR)$(PREFIX)/lib/libesca.so.1
	ln -sf libesca.so.1 $(DESTDIR)$(PREFIX)/lib/libesca.so
	install -m 755 $(B)/lib/libesca-preload.so $(DESTDIR)$(PREFIX)/lib/
	install -m 644 include/esca/abi.h include/esca/esca.h $(DESTDIR)$(PREFIX)/include/esca/
	install -m 644 man/esca-stat.1 man/esca-affinity.1 man/esca-run.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(ESCA_VERSION)|' lib/libesca.pc.in \
		> $(DESTDIR)$(PREFIX)/lib/pkgconfig/libesca.pc

# make load: build esca.ko for the running kernel and load it on the
# consumer cores esca-affinity chooses (LOAD_ARGS adds parameters, such as
# dev_mode=0666); make unload removes it. Natively, where modules load.
RUNNING := $(shell uname -r)
load: user
	@if [ ! -e /proc/modules ]; then \
		echo "esca: this kernel ($(RUNNING)) cannot load modules (no /proc/modules): use a guest, tests/vm/run" >&2; exit 1; fi
	@if [ ! -d /lib/modules/$(RUNNING)/build ]; then \
		echo "esca: no headers for $(RUNNING) at /lib/modules/$(RUNNING)/build: apt-get install linux-headers-$(RUNNING)" >&2; exit 1; fi
	@$(MAKE) -s module K=$(RUNNING) KDIR=/lib/modules/$(RUNNING)/build
	@cores=$$($(B)/bin/esca-affinity --cores-only) || exit 1; \
	echo "esca: insmod $(B)/k$(RUNNING)/src/kmod/esca.ko cores=$$cores $(LOAD_ARGS)"; \
	$(B)/bin/esca-affinity | sed 's/^/esca:   /'; \
	insmod $(B)/k$(RUNNING)/src/kmod/esca.ko cores=$$cores $(LOAD_ARGS) && \
	$(B)/bin/esca-stat | head -n 1

unload:
	@if grep -q '^esca ' /proc/modules 2>/dev/null; then rmmod esca && echo "esca: unloaded"; \
	else echo "esca: not loaded"; fi

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(B)
