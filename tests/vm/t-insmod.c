// SPDX-License-Identifier: MIT
/*
 * t-insmod MODULE [PARAMS...]: one finit_module() call, nothing else.
 * (busybox insmod retries with init_module after a failure, so the module
 * would log its refusal twice.) Not a test itself: t-badcores.sh uses it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	char params[1024] = "";
	int fd;

	if (argc < 2) {
		fprintf(stderr, "usage: %s MODULE [PARAM=VALUE...]\n", argv[0]);
		return 2;
	}
	for (int i = 2; i < argc; i++) {
		strncat(params, argv[i], sizeof(params) - strlen(params) - 2);
		strcat(params, " ");
	}
	fd = open(argv[1], O_RDONLY | O_CLOEXEC);
	if (fd < 0 || syscall(SYS_finit_module, fd, params, 0)) {
		fprintf(stderr, "t-insmod: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	return 0;
}
