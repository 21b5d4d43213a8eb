// SPDX-License-Identifier: MIT
/*
 * build/lib/libesca.so exports libesca's API (every function of
 * include/esca/esca.h, versioned LIBESCA_1) and the preload shim exports
 * none of it: a program linked with -lesca must find its functions, and
 * one running under LD_PRELOAD must not see libesca's names interposed.
 * (Until this test, libesca.so was built hidden and exported nothing.)
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

static const char *const api[] = { "esca_init",	      "esca_active",
				   "esca_thread_cpu", "esca_call",
				   "esca_defer",      "esca_drain",
				   "esca_direct",     "esca_thread_exit" };

int main(void)
{
	void *lib = dlopen("build/lib/libesca.so", RTLD_NOW | RTLD_LOCAL);
	void *shim;

	if (!CHECK(lib,
		   "dlopen build/lib/libesca.so: %s (run from the "
		   "repo root after make)",
		   dlerror()))
		return unit_done();
	for (size_t i = 0; i < sizeof(api) / sizeof(api[0]); i++) {
		CHECK(dlsym(lib, api[i]), "libesca.so does not export %s",
		      api[i]);
		CHECK(dlvsym(lib, api[i], "LIBESCA_1"),
		      "libesca.so: %s is not versioned LIBESCA_1", api[i]);
	}
	CHECK(!dlsym(lib, "sys"), "libesca.so exports an internal name");
	dlclose(lib);

	shim = dlopen("build/lib/libesca-preload.so", RTLD_LAZY | RTLD_LOCAL);
	if (CHECK(shim, "dlopen build/lib/libesca-preload.so: %s", dlerror())) {
		for (size_t i = 0; i < sizeof(api) / sizeof(api[0]); i++)
			CHECK(!dlsym(shim, api[i]),
			      "the preload shim exports %s", api[i]);
		CHECK(dlsym(shim, "write") && dlsym(shim, "close"),
		      "the preload shim does not export write and close");
	}
	return unit_done();
}
