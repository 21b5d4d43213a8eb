/* SPDX-License-Identifier: MIT */
/*
 * Host unit tests that run a built tool: run it with arguments, collect
 * its exit status, stdout and stderr. Include after unit.h, with
 * _POSIX_C_SOURCE 200809L defined.
 */
#ifndef ESCA_TESTS_RUNBIN_H
#define ESCA_TESTS_RUNBIN_H

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

struct run {
	int status; /* exit code, or -1 if it did not exit normally */
	char *out, *err;
	size_t out_len, err_len;
};

/* All of @f from the start, NUL-terminated; its length in @len. */
static inline char *slurp(FILE *f, size_t *len)
{
	char *buf = NULL;
	size_t cap = 0, n = 0, got;

	rewind(f);
	do {
		if (cap - n < 4096) {
			buf = realloc(buf, cap = cap * 2 + 4096);
			if (!buf) {
				perror("unit test");
				exit(1);
			}
		}
		got = fread(buf + n, 1, cap - n - 1, f);
		n += got;
	} while (got);
	buf[n] = '\0';
	*len = n;
	return buf;
}

/* Run @bin with @args (NULL-terminated, at most 14), collecting stdout
 * and stderr. */
static inline struct run run_bin(const char *bin, const char *const *args)
{
	struct run r = { .status = -1 };
	FILE *out = tmpfile(), *err = tmpfile();
	char *argv[16] = { (char *)bin };
	int st;
	pid_t pid;

	for (int i = 0; args[i] && i < 14; i++)
		argv[i + 1] = (char *)args[i];
	if (!out || !err) {
		perror("unit test: tmpfile");
		exit(1);
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		perror("unit test: fork");
		exit(1);
	}
	if (pid == 0) {
		dup2(fileno(out), 1);
		dup2(fileno(err), 2);
		execv(bin, argv);
		_exit(127);
	}
	if (waitpid(pid, &st, 0) == pid && WIFEXITED(st))
		r.status = WEXITSTATUS(st);
	r.out = slurp(out, &r.out_len);
	r.err = slurp(err, &r.err_len);
	fclose(out);
	fclose(err);
	return r;
}

static inline void run_free(struct run *r)
{
	free(r->out);
	free(r->err);
}

#endif
