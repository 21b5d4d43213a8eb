/* SPDX-License-Identifier: MIT */
/*
 * What libesca offers the preload shim (linked into the same object) and
 * nobody else: not part of the public API, never exported.
 */
#ifndef ESCA_LIB_INTERNAL_H
#define ESCA_LIB_INTERNAL_H

#include <stdbool.h>

/* ESCA_LOG as the shim read it: 0 silences libesca's lines; -1 unset. */
extern int esca__log_level;

/* Calls the module bounced and the library then made directly. */
unsigned long esca__bounced(void);

/* Does this thread have queued entries it has not looked at yet? */
bool esca__pending(void);

/*
 * From a signal handler: wait until every entry this thread queued has
 * run. False if it could not (the ring is paused on an entry only the
 * interrupted code may make). Async-signal-safe.
 */
bool esca__settle(void);

/*
 * The library's /dev/esca descriptor (-1 if none): the program never
 * opened it, so to the program that number is not open.
 */
int esca__fd(void);

/* Before the program replaces that number (dup2 onto it): move it away. */
void esca__fd_move(void);

#endif /* ESCA_LIB_INTERNAL_H */
