// SPDX-License-Identifier: MIT
/*
 * esca-affinity: choose the consumer cores for esca.ko (cores=) and the
 * cores of the application and of its load generator, from the machine's
 * topology as hwloc sees it (or an hwloc XML file).
 *
 * The default policy places each consumer
 *   - on a whole core: its SMT siblings are left idle, never given to the
 *     application (a sibling shares the core's pipelines and L1/L2, so a
 *     polling consumer would slow the very thread it serves);
 *   - in the last-level cache of the application cores it serves (the ring
 *     entries and the caller's buffers then move between cores through
 *     that cache, not across sockets);
 *   - one per NUMA node that runs application cores, by default;
 *   - away from CPU 0 on machines of more than two cores (CPU 0 takes most
 *     interrupts and housekeeping); on two cores the consumer takes the
 *     last one and the application CPU 0.
 * "compact" puts the consumers on the last whole cores of the machine, in
 * one block, caches and NUMA nodes notwithstanding (still whole cores,
 * still away from CPU 0).
 *
 * Every CPU printed is an OS index (what insmod and numactl take), never
 * an hwloc logical index. Usable CPUs are those online and allowed.
 */
#define _GNU_SOURCE

#include <errno.h>
#include <getopt.h>
#include <hwloc.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXIT_TOPOLOGY 1 /* the topology cannot be read */
#define EXIT_USAGE 2 /* bad option, policy or --consumers */
#define EXIT_TOO_SMALL 3 /* not enough whole cores for the request */
#define EXIT_APP_CPUS 4 /* --app-cpus malformed, empty or unusable */
#define EXIT_WRITE 5 /* --modprobe: the file cannot be written */

#define MAX_CPU 65535 /* highest CPU number accepted in a list */

static const char usage_text[] =
	"usage: esca-affinity [--topology FILE] [--consumers N] [--app-cpus LIST]\n"
	"                     [--policy default|compact] [--json | --cores-only]\n"
	"                     [--modprobe FILE]\n"
	"Choose consumer cores for esca.ko and the cores of the server and of its\n"
	"load generator. CPUs are OS indexes, as insmod and numactl take them.\n"
	"  --topology FILE   read an hwloc XML topology instead of this machine's\n"
	"  --consumers N     consumer cores (default: one per NUMA node that runs\n"
	"                    application cores)\n"
	"  --app-cpus LIST   the CPUs the application may use, e.g. 0-5,8\n"
	"                    (default: every usable CPU the consumers leave)\n"
	"  --policy NAME     default: each consumer on a whole core (SMT siblings\n"
	"                    idle), sharing the last-level cache with the\n"
	"                    application CPUs it serves, off CPU 0 when there are\n"
	"                    more than two cores; compact: the last whole cores\n"
	"  --json            one JSON object instead of text\n"
	"  --cores-only      print only the cores= value (e.g. 7,15)\n"
	"  --modprobe FILE   also write 'options esca cores=LIST' to FILE (such as\n"
	"                    /etc/modprobe.d/esca.conf), replacing it whole\n"
	"Output: cores=LIST, the numactl --physcpubind lists of the server and of\n"
	"the load generator, and two lines saying why.\n"
	"Exit status: 0 chosen; 1 topology unreadable (missing file, malformed\n"
	"XML); 2 usage (unknown option or policy, bad --consumers); 3 machine too\n"
	"small (not enough whole cores for N consumers and at least one\n"
	"application core); 4 --app-cpus malformed, empty, or naming a CPU that\n"
	"is offline, not allowed (cpuset cgroup) or absent; 5 the --modprobe\n"
	"file cannot be written.\n";

enum policy { POLICY_DEFAULT, POLICY_COMPACT };

/* A core: its usable CPUs and the cache and NUMA node it belongs to. */
struct core {
	hwloc_bitmap_t cpus;
	int first_cpu; /* lowest usable OS index: the consumer's CPU */
	int llc; /* index in domains[] */
	int numa; /* index in numas[] */
	bool consumer;
};

/* A last-level cache (or, without caches, the package or machine). */
struct domain {
	hwloc_obj_t obj;
	hwloc_bitmap_t cpus; /* usable CPUs under it */
	int consumers;
};

struct plan {
	hwloc_topology_t topo;
	hwloc_bitmap_t usable, app;
	bool app_fixed; /* --app-cpus given */
	struct core *cores;
	int ncores;
	struct domain *domains;
	int ndomains;
	hwloc_bitmap_t *numas; /* usable CPUs of each NUMA node that has any */
	int nnumas;
	bool cpu0_used; /* a consumer had to take CPU 0's core */
};

static void die(int status, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));

static void die(int status, const char *fmt, ...)
{
	va_list ap;

	fputs("esca-affinity: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(status);
}

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);

	if (!p)
		die(EXIT_TOPOLOGY, "out of memory");
	return p;
}

static hwloc_bitmap_t xbitmap(void)
{
	hwloc_bitmap_t b = hwloc_bitmap_alloc();

	if (!b)
		die(EXIT_TOPOLOGY, "out of memory");
	return b;
}

/* "0-3,8" for @set; "" when empty. */
static char *list_str(hwloc_const_bitmap_t set)
{
	char *s;

	if (hwloc_bitmap_iszero(set))
		return strdup("");
	if (hwloc_bitmap_list_asprintf(&s, set) < 0)
		die(EXIT_TOPOLOGY, "out of memory");
	return s;
}

/*
 * Parse a CPU list ("0-3,8,10-11") strictly: numbers, ranges, commas,
 * nothing else. Returns false with @why set on a malformed list.
 */
static bool parse_list(const char *s, hwloc_bitmap_t set, const char **why)
{
	hwloc_bitmap_zero(set);
	if (!*s) {
		*why = "empty list";
		return false;
	}
	for (;;) {
		unsigned long lo, hi;
		char *end;

		if (*s < '0' || *s > '9')
			goto bad;
		lo = strtoul(s, &end, 10);
		hi = lo;
		s = end;
		if (*s == '-') {
			s++;
			if (*s < '0' || *s > '9')
				goto bad;
			hi = strtoul(s, &end, 10);
			s = end;
		}
		if (lo > MAX_CPU || hi > MAX_CPU) {
			*why = "CPU number too large";
			return false;
		}
		if (hi < lo) {
			*why = "backwards range";
			return false;
		}
		hwloc_bitmap_set_range(set, (unsigned)lo, (int)hi);
		if (!*s)
			return true;
		if (*s++ != ',')
			goto bad;
	}
bad:
	*why = "want numbers and ranges separated by commas, e.g. 0-3,8";
	return false;
}

static void load_topology(struct plan *p, const char *file)
{
	hwloc_const_bitmap_t topo_set, allowed;

	if (hwloc_topology_init(&p->topo) < 0)
		die(EXIT_TOPOLOGY, "cannot initialise hwloc: %s",
		    strerror(errno));
	/* keep disallowed CPUs in view, to say why a requested CPU is unusable */
	hwloc_topology_set_flags(p->topo,
				 HWLOC_TOPOLOGY_FLAG_INCLUDE_DISALLOWED);
	if (file) {
		FILE *f = fopen(file, "r");

		if (!f)
			die(EXIT_TOPOLOGY, "cannot read %s: %s", file,
			    strerror(errno));
		fclose(f);
		if (hwloc_topology_set_xml(p->topo, file) < 0)
			die(EXIT_TOPOLOGY, "%s: not an hwloc XML topology: %s",
			    file, strerror(errno));
	}
	if (hwloc_topology_load(p->topo) < 0) {
		if (file)
			die(EXIT_TOPOLOGY,
			    "%s: malformed or unsupported hwloc XML topology",
			    file);
		die(EXIT_TOPOLOGY, "cannot read this machine's topology: %s",
		    strerror(errno));
	}
	topo_set = hwloc_topology_get_topology_cpuset(p->topo);
	allowed = hwloc_topology_get_allowed_cpuset(p->topo);
	p->usable = xbitmap();
	hwloc_bitmap_and(p->usable, topo_set, allowed);
	if (hwloc_bitmap_iszero(p->usable))
		die(EXIT_TOPOLOGY, "%s: no usable CPU in the topology",
		    file ? file : "this machine");
}

/* The highest data cache above @obj, else its package, else the machine. */
static hwloc_obj_t llc_of(hwloc_topology_t topo, hwloc_obj_t obj)
{
	hwloc_obj_t llc = NULL, pkg = NULL, o;

	for (o = obj->parent; o; o = o->parent) {
		if (hwloc_obj_type_is_dcache(o->type))
			llc = o;
		else if (o->type == HWLOC_OBJ_PACKAGE && !pkg)
			pkg = o;
	}
	if (llc)
		return llc;
	return pkg ? pkg : hwloc_get_root_obj(topo);
}

static int domain_index(struct plan *p, hwloc_obj_t obj)
{
	int i;

	for (i = 0; i < p->ndomains; i++)
		if (p->domains[i].obj == obj)
			return i;
	p->domains[i].obj = obj;
	p->domains[i].cpus = xbitmap();
	p->ndomains++;
	return i;
}

/* Cores (or PUs, if the topology has no cores), with their cache and node. */
static void build_cores(struct plan *p)
{
	hwloc_obj_type_t type = HWLOC_OBJ_CORE;
	int n = hwloc_get_nbobjs_by_type(p->topo, HWLOC_OBJ_CORE);
	hwloc_obj_t obj = NULL, node = NULL;

	if (n <= 0) {
		type = HWLOC_OBJ_PU;
		n = hwloc_get_nbobjs_by_type(p->topo, HWLOC_OBJ_PU);
	}
	p->cores = xcalloc((size_t)n, sizeof(*p->cores));
	p->domains = xcalloc((size_t)n, sizeof(*p->domains));
	p->numas = xcalloc(
		(size_t)hwloc_get_nbobjs_by_type(p->topo, HWLOC_OBJ_NUMANODE) +
			1,
		sizeof(*p->numas));
	while ((node = hwloc_get_next_obj_by_type(p->topo, HWLOC_OBJ_NUMANODE,
						  node))) {
		hwloc_bitmap_t cpus = xbitmap();

		hwloc_bitmap_and(cpus, node->cpuset, p->usable);
		if (hwloc_bitmap_iszero(cpus)) { /* memory only: no CPU */
			hwloc_bitmap_free(cpus);
			continue;
		}
		p->numas[p->nnumas++] = cpus;
	}
	if (!p->nnumas) /* no NUMA information: one node */
		p->numas[p->nnumas++] = hwloc_bitmap_dup(p->usable);

	while ((obj = hwloc_get_next_obj_by_type(p->topo, type, obj))) {
		struct core *c = &p->cores[p->ncores];
		int i;

		c->cpus = xbitmap();
		hwloc_bitmap_and(c->cpus, obj->cpuset, p->usable);
		if (hwloc_bitmap_iszero(c->cpus)) { /* offline or disallowed */
			hwloc_bitmap_free(c->cpus);
			continue;
		}
		c->first_cpu = hwloc_bitmap_first(c->cpus);
		c->llc = domain_index(p, llc_of(p->topo, obj));
		hwloc_bitmap_or(p->domains[c->llc].cpus,
				p->domains[c->llc].cpus, c->cpus);
		for (i = 0; i < p->nnumas; i++)
			if (hwloc_bitmap_isset(p->numas[i], c->first_cpu))
				break;
		c->numa = i < p->nnumas ? i : 0;
		p->ncores++;
	}
}

/* The --app-cpus list: every CPU online, allowed and present. */
static void check_app(struct plan *p, const char *list)
{
	hwloc_const_bitmap_t complete, online, allowed;
	const char *why;
	int cpu;

	if (!parse_list(list, p->app, &why))
		die(EXIT_APP_CPUS, "--app-cpus '%s': %s", list, why);
	complete = hwloc_topology_get_complete_cpuset(p->topo);
	online = hwloc_topology_get_topology_cpuset(p->topo);
	allowed = hwloc_topology_get_allowed_cpuset(p->topo);
	cpu = hwloc_bitmap_first(p->app);
	for (; cpu >= 0; cpu = hwloc_bitmap_next(p->app, cpu)) {
		if (!hwloc_bitmap_isset(complete, cpu)) {
			char *all = list_str(complete);

			die(EXIT_APP_CPUS,
			    "--app-cpus: CPU %d does not exist (CPUs: %s)", cpu,
			    all);
		}
		if (!hwloc_bitmap_isset(online, cpu))
			die(EXIT_APP_CPUS, "--app-cpus: CPU %d is offline",
			    cpu);
		if (!hwloc_bitmap_isset(allowed, cpu))
			die(EXIT_APP_CPUS,
			    "--app-cpus: CPU %d is not allowed here (cpuset cgroup)",
			    cpu);
	}
	p->app_fixed = true;
}

static bool is_cpu0_core(const struct core *c)
{
	return hwloc_bitmap_isset(c->cpus, 0);
}

/*
 * Application CPUs left in domain @d if @extra also became a consumer:
 * the fixed list's CPUs there, or every usable CPU of the domain that no
 * consumer core holds.
 */
static int app_left(const struct plan *p, int d, const struct core *extra)
{
	hwloc_bitmap_t left = xbitmap();
	int i, n;

	if (p->app_fixed) {
		hwloc_bitmap_and(left, p->domains[d].cpus, p->app);
	} else {
		hwloc_bitmap_copy(left, p->domains[d].cpus);
		for (i = 0; i < p->ncores; i++)
			if (p->cores[i].consumer || &p->cores[i] == extra)
				hwloc_bitmap_andnot(left, left,
						    p->cores[i].cpus);
	}
	n = hwloc_bitmap_weight(left);
	hwloc_bitmap_free(left);
	return n;
}

/* How good a consumer core @c would be: larger is better, 0 for ties. */
static int compare(const struct plan *p, enum policy policy, int want_numa,
		   const struct core *a, const struct core *b)
{
	const struct domain *da = &p->domains[a->llc],
			    *db = &p->domains[b->llc];
	int la, lb, per_a, per_b;

	if (is_cpu0_core(a) != is_cpu0_core(b))
		return is_cpu0_core(a) ? -1 : 1;
	if (policy == POLICY_DEFAULT) {
		if ((a->numa == want_numa) != (b->numa == want_numa))
			return a->numa == want_numa ? 1 : -1;
		la = app_left(p, a->llc, a);
		lb = app_left(p, b->llc, b);
		if ((la > 0) != (lb > 0)) /* shares its cache with the app */
			return la > 0 ? 1 : -1;
		/* a cache not yet served first */
		if (!da->consumers != !db->consumers)
			return !da->consumers ? 1 : -1;
		/* then the most application CPUs per consumer in the cache */
		per_a = la * (db->consumers + 1);
		per_b = lb * (da->consumers + 1);
		if (per_a != per_b)
			return per_a > per_b ? 1 : -1;
	}
	return a->first_cpu - b->first_cpu; /* the last core */
}

static bool is_candidate(const struct plan *p, const struct core *c)
{
	return !c->consumer &&
	       !(p->app_fixed && hwloc_bitmap_intersects(c->cpus, p->app));
}

static void choose(struct plan *p, enum policy policy, int nconsumers)
{
	int targets[p->nnumas > 0 ? p->nnumas : 1], ntargets = 0;
	int i, k, free_cores = 0;

	for (i = 0; i < p->ncores; i++)
		free_cores += is_candidate(p, &p->cores[i]);
	/* the nodes that run application CPUs, in order */
	for (i = 0; i < p->nnumas; i++)
		if (!p->app_fixed ||
		    hwloc_bitmap_intersects(p->numas[i], p->app))
			targets[ntargets++] = i;
	if (nconsumers <= 0)
		nconsumers = ntargets;
	if (p->app_fixed && nconsumers > free_cores)
		die(EXIT_TOO_SMALL,
		    "%d consumer%s need%s %d whole core%s outside --app-cpus; "
		    "only %d %s free",
		    nconsumers, nconsumers > 1 ? "s" : "",
		    nconsumers > 1 ? "" : "s", nconsumers,
		    nconsumers > 1 ? "s" : "", free_cores,
		    free_cores == 1 ? "is" : "are");
	if (!p->app_fixed && nconsumers >= p->ncores)
		die(EXIT_TOO_SMALL,
		    "%d consumer%s and one application core need %d whole cores; "
		    "this machine has %d usable",
		    nconsumers, nconsumers > 1 ? "s" : "", nconsumers + 1,
		    p->ncores);
	for (k = 0; k < nconsumers; k++) {
		int want = targets[k % ntargets];
		struct core *best = NULL;

		for (i = 0; i < p->ncores; i++) {
			struct core *c = &p->cores[i];

			if (is_candidate(p, c) &&
			    (!best || compare(p, policy, want, c, best) > 0))
				best = c;
		}
		/* avoid CPU 0 only where there is a core to spare */
		if (is_cpu0_core(best) && p->ncores > 2)
			p->cpu0_used = true;
		best->consumer = true;
		p->domains[best->llc].consumers++;
	}
	if (!p->app_fixed) {
		hwloc_bitmap_copy(p->app, p->usable);
		for (i = 0; i < p->ncores; i++)
			if (p->cores[i].consumer)
				hwloc_bitmap_andnot(p->app, p->app,
						    p->cores[i].cpus);
	}
}

/* The result, as strings ready to print. */
struct result {
	hwloc_bitmap_t consumers, loadgen, idle;
	char *cores, *server, *loadgen_s, *idle_s;
	char why_llc[4096], why_rest[1024];
};

static void appendf(char *buf, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void appendf(char *buf, size_t size, const char *fmt, ...)
{
	size_t len = strlen(buf);
	va_list ap;

	if (len >= size - 1)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + len, size - len, fmt, ap);
	va_end(ap);
}

static void explain(const struct plan *p, struct result *r)
{
	hwloc_bitmap_t shared = xbitmap();
	bool smt = false;
	int i;

	r->why_llc[0] = r->why_rest[0] = '\0';
	for (i = 0; i < p->ncores; i++) {
		const struct core *c = &p->cores[i];
		const struct domain *d = &p->domains[c->llc];
		char type[64];
		char *list;

		smt |= hwloc_bitmap_weight(c->cpus) > 1;
		if (!c->consumer)
			continue;
		hwloc_bitmap_and(shared, d->cpus, p->app);
		if (d->obj->type == HWLOC_OBJ_PACKAGE ||
		    d->obj->type == HWLOC_OBJ_MACHINE)
			snprintf(type, sizeof(type), "%s (no cache known)",
				 d->obj->type == HWLOC_OBJ_PACKAGE ? "package" :
								     "machine");
		else
			hwloc_obj_type_snprintf(type, sizeof(type), d->obj, 0);
		list = list_str(shared);
		appendf(r->why_llc, sizeof(r->why_llc), "%sconsumer %d ",
			r->why_llc[0] ? "; " : "", c->first_cpu);
		if (*list)
			appendf(r->why_llc, sizeof(r->why_llc),
				"shares its %s with server CPU%s %s", type,
				hwloc_bitmap_weight(shared) > 1 ? "s" : "",
				list);
		else
			appendf(r->why_llc, sizeof(r->why_llc),
				"shares no cache with the server (no whole core was free in the server's)");
		free(list);
	}

	if (!smt) {
		appendf(r->why_rest, sizeof(r->why_rest),
			"SMT: none (one CPU per core)");
	} else {
		appendf(r->why_rest, sizeof(r->why_rest),
			"SMT: consumers take whole cores, siblings used by neither side (idle: %s)",
			*r->idle_s ? r->idle_s : "none");
	}
	if (p->cpu0_used)
		appendf(r->why_rest, sizeof(r->why_rest),
			"; CPU 0 taken by a consumer: no other whole core was free");
	else if (p->ncores > 2)
		appendf(r->why_rest, sizeof(r->why_rest),
			"; CPU 0 avoided (%d cores; it takes most interrupts)",
			p->ncores);
	else
		appendf(r->why_rest, sizeof(r->why_rest),
			"; CPU 0 allowed (only %d cores)", p->ncores);
	hwloc_bitmap_free(shared);
}

static void result(const struct plan *p, struct result *r)
{
	int i;

	r->consumers = xbitmap();
	r->loadgen = xbitmap();
	r->idle = xbitmap();
	for (i = 0; i < p->ncores; i++) {
		const struct core *c = &p->cores[i];

		if (c->consumer)
			hwloc_bitmap_set(r->consumers, c->first_cpu);
		else if (!hwloc_bitmap_intersects(c->cpus, p->app))
			/* whole cores left over: the load generator's */
			hwloc_bitmap_or(r->loadgen, r->loadgen, c->cpus);
	}
	/* consumers' siblings, and siblings of partly used server cores */
	hwloc_bitmap_andnot(r->idle, p->usable, p->app);
	hwloc_bitmap_andnot(r->idle, r->idle, r->consumers);
	hwloc_bitmap_andnot(r->idle, r->idle, r->loadgen);
	r->cores = list_str(r->consumers);
	r->server = list_str(p->app);
	r->loadgen_s = list_str(r->loadgen);
	r->idle_s = list_str(r->idle);
	explain(p, r);
}

static void json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", *s);
		else
			putchar(*s);
	}
	putchar('"');
}

static void print_json(const char *policy, const struct result *r)
{
	int cpu, n = 0;

	printf("{\"policy\":");
	json_string(policy);
	printf(",\"cores\":");
	json_string(r->cores);
	printf(",\"consumers\":[");
	cpu = hwloc_bitmap_first(r->consumers);
	for (; cpu >= 0; cpu = hwloc_bitmap_next(r->consumers, cpu))
		printf("%s%d", n++ ? "," : "", cpu);
	printf("],\"server\":");
	json_string(r->server);
	printf(",\"loadgen\":");
	if (*r->loadgen_s)
		json_string(r->loadgen_s);
	else
		printf("null");
	printf(",\"idle\":");
	json_string(r->idle_s);
	printf(",\"why\":[");
	json_string(r->why_llc);
	putchar(',');
	json_string(r->why_rest);
	printf("]}\n");
}

static void print_text(const struct result *r)
{
	printf("cores=%s\n", r->cores);
	printf("server: numactl --physcpubind=%s\n", r->server);
	if (*r->loadgen_s)
		printf("loadgen: numactl --physcpubind=%s\n", r->loadgen_s);
	else
		printf("loadgen: none left (every core is the server's or a consumer's): "
		       "share the server's (numactl --physcpubind=%s) or leave cores out with --app-cpus\n",
		       r->server);
	printf("why: %s\n", r->why_llc);
	printf("why: %s\n", r->why_rest);
}

/*
 * FILE gets the modprobe line, whole or not at all: written next to it,
 * then renamed over it, so modprobe never reads half a file.
 */
static void write_modprobe(const char *file, const char *cores)
{
	char tmp[4096];
	FILE *f;
	int n = snprintf(tmp, sizeof(tmp), "%s.esca-affinity.%ld", file,
			 (long)getpid());

	if (n < 0 || (size_t)n >= sizeof(tmp))
		die(EXIT_WRITE, "--modprobe '%s': path too long", file);
	f = fopen(tmp, "w");
	if (!f)
		die(EXIT_WRITE, "cannot write %s: %s", tmp, strerror(errno));
	fprintf(f,
		"# written by esca-affinity: the consumer cores it chose here\n"
		"options esca cores=%s\n",
		cores);
	if (fflush(f) || fsync(fileno(f)) || fclose(f)) {
		int err = errno;

		unlink(tmp);
		die(EXIT_WRITE, "cannot write %s: %s", tmp, strerror(err));
	}
	if (rename(tmp, file)) {
		int err = errno;

		unlink(tmp);
		die(EXIT_WRITE, "cannot write %s: %s", file, strerror(err));
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "topology", required_argument, NULL, 't' },
		{ "consumers", required_argument, NULL, 'n' },
		{ "app-cpus", required_argument, NULL, 'a' },
		{ "policy", required_argument, NULL, 'p' },
		{ "json", no_argument, NULL, 'j' },
		{ "cores-only", no_argument, NULL, 'c' },
		{ "modprobe", required_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *file = NULL, *app = NULL, *policy_name = "default";
	const char *modprobe = NULL;
	enum policy policy = POLICY_DEFAULT;
	bool json = false, cores_only = false;
	struct plan p = { 0 };
	struct result r;
	int nconsumers = 0, opt;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 't':
			file = optarg;
			break;
		case 'n': {
			char *end;
			long v;

			errno = 0;
			v = strtol(optarg, &end, 10);
			if (errno || end == optarg || *end || v < 1 || v > 4096)
				die(EXIT_USAGE,
				    "--consumers '%s': want a number from 1 to 4096",
				    optarg);
			nconsumers = (int)v;
			break;
		}
		case 'a':
			app = optarg;
			break;
		case 'p':
			policy_name = optarg;
			if (!strcmp(optarg, "default"))
				policy = POLICY_DEFAULT;
			else if (!strcmp(optarg, "compact"))
				policy = POLICY_COMPACT;
			else
				die(EXIT_USAGE,
				    "unknown policy '%s' (known: default, compact)",
				    optarg);
			break;
		case 'j':
			json = true;
			break;
		case 'c':
			cores_only = true;
			break;
		case 'm':
			modprobe = optarg;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		default:
			fprintf(stderr, "esca-affinity: bad option '%s'\n%s",
				argv[optind - 1], usage_text);
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "esca-affinity: unexpected argument '%s'\n%s",
			argv[optind], usage_text);
		return EXIT_USAGE;
	}
	if (json && cores_only)
		die(EXIT_USAGE, "--json and --cores-only exclude each other");

	load_topology(&p, file);
	p.app = xbitmap();
	if (app)
		check_app(&p, app);
	build_cores(&p);
	choose(&p, policy, nconsumers);
	result(&p, &r);

	if (modprobe)
		write_modprobe(modprobe, r.cores);
	if (cores_only)
		printf("%s\n", r.cores);
	else if (json)
		print_json(policy_name, &r);
	else
		print_text(&r);
	hwloc_topology_destroy(p.topo);
	return 0;
}
