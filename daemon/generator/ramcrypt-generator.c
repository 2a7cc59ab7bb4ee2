// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ramcrypt-generator - a systemd system generator (systemd.generator(7)):
 * every service whose unit file and drop-ins say [X-RamCrypt] RamCrypt=yes
 * gets <normal-dir>/<unit>.d/50-ramcrypt.conf, which makes its start wait for
 * ramcryptd and enroll the unit first. A service whose [X-RamCrypt] section
 * cannot be parsed gets the same drop-in, so it fails to start instead of
 * running unprotected (ramcryptd refuses the enrollment with the same
 * message). See ramcrypt.unit(5).
 *
 * The unit files are found as systemd finds them: the directories of
 * $SYSTEMD_UNIT_PATH or the built-in list, the first directory with a name
 * wins, a unit linked to /dev/null or empty is masked, and drop-ins come from
 * NAME.d/ of the unit's names, its template, its dash prefixes and service.d/
 * in every directory, ordered by file name (for one name, the earlier
 * directory wins).
 *
 * Logs go to /dev/kmsg (stderr if it cannot be opened) unless stderr is a
 * terminal; RAMCRYPT_GENERATOR_LOG=stderr forces stderr, =/PATH appends the
 * kmsg records to PATH (tests). A generator must not talk to D-Bus, this
 * one talks to nobody.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <syslog.h>
#include <unistd.h>

#include "rc-marker.h"

#define DROPIN_NAME "50-ramcrypt.conf"

static const char *const default_unit_path[] = {
	"/etc/systemd/system.control",
	"/run/systemd/system.control",
	"/run/systemd/transient",
	"/etc/systemd/system",
	"/etc/systemd/system.attached",
	"/run/systemd/system",
	"/run/systemd/system.attached",
	"/usr/local/lib/systemd/system",
	"/usr/lib/systemd/system",
	"/lib/systemd/system",
};
#define ELEMENTS_DEFAULT (sizeof(default_unit_path) / sizeof(default_unit_path[0]))

/* ---- logging, as systemd's generators do it ---- */

static int log_kmsg = -1;
static int log_max = LOG_INFO;

static void log_setup(void)
{
	const char *t = getenv("RAMCRYPT_GENERATOR_LOG");
	const char *l = getenv("SYSTEMD_LOG_LEVEL");
	static const char *const levels[] = { "emerg", "alert", "crit", "err",
		"warning", "notice", "info", "debug" };

	for (int i = 0; l && i < 8; i++)
		if (!strcmp(l, levels[i]) || (l[0] == '0' + i && !l[1]))
			log_max = i;
	if (t && t[0] == '/') {	/* tests: kmsg records into this file */
		log_kmsg = open(t, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		return;
	}
	if (t ? !strcmp(t, "stderr") : isatty(STDERR_FILENO))
		return;
	log_kmsg = open("/dev/kmsg", O_WRONLY | O_NOCTTY | O_CLOEXEC);
}

static void __attribute__((format(printf, 2, 3)))
log_msg(int prio, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;
	int n;

	if (prio > log_max)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (log_kmsg >= 0) {
		char rec[2200];

		/* one write() is one kernel log record */
		n = snprintf(rec, sizeof(rec), "<%d>ramcrypt-generator: %s\n",
			     LOG_DAEMON | prio, msg);
		if (n > 0 && write(log_kmsg, rec, (size_t)n < sizeof(rec) ?
				   (size_t)n : sizeof(rec) - 1) >= 0)
			return;
	}
	fprintf(stderr, "%s\n", msg);
}

/* ---- small helpers ---- */

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p) {
		log_msg(LOG_ERR, "Out of memory.");
		exit(EXIT_FAILURE);
	}
	return p;
}

static char *xstrdup(const char *s)
{
	return strcpy(xmalloc(strlen(s) + 1), s);
}

static char *__attribute__((format(printf, 1, 2))) xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (r < 0) {
		log_msg(LOG_ERR, "Out of memory.");
		exit(EXIT_FAILURE);
	}
	return s;
}

struct strv {
	char **v;
	size_t n, cap;
};

static void strv_push(struct strv *s, char *str)
{
	if (s->n + 1 >= s->cap) {
		s->cap = s->cap ? 2 * s->cap : 16;
		s->v = realloc(s->v, s->cap * sizeof(*s->v));
		if (!s->v) {
			log_msg(LOG_ERR, "Out of memory.");
			exit(EXIT_FAILURE);
		}
	}
	s->v[s->n++] = str;
	s->v[s->n] = NULL;
}

static bool strv_contains(const struct strv *s, const char *str)
{
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->v[i], str))
			return true;
	return false;
}

static void strv_free(struct strv *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	*s = (struct strv){ 0 };
}

static bool endswith(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && !strcmp(s + a - b, suffix);
}

/* A service unit name: [A-Za-z0-9:_.\-@] before ".service", at most 255
 * characters, at most one '@' (unit_name_is_valid()). */
static bool is_service_name(const char *n)
{
	size_t len = strlen(n);
	const char *at = strchr(n, '@');

	if (len <= strlen(".service") || len > 255 || !endswith(n, ".service"))
		return false;
	if (at && (at == n || strchr(at + 1, '@')))
		return false;
	for (const char *p = n; p < n + len - strlen(".service"); p++)
		if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			    "0123456789:_.-\\@", *p))
			return false;
	return true;
}

/* foo@bar.service (an instance, not the template foo@.service) */
static bool is_instance(const char *n)
{
	const char *at = strchr(n, '@');

	return at && strcmp(at, "@.service") != 0;
}

static char *template_of(const char *instance)
{
	const char *at = strchr(instance, '@');

	return xasprintf("%.*s@.service", (int)(at - instance), instance);
}

/* ---- the unit directories ---- */

enum kind { K_FILE, K_MASKED, K_ALIAS, K_DROPINS };

struct entry {
	char *name;		/* unit name (for K_DROPINS: without ".d") */
	size_t dir;		/* index into dirs */
	enum kind kind;
	char *target;		/* K_ALIAS: the unit it names */
};

static struct strv dirs;
static struct entry *ents;
static size_t n_ents, cap_ents;

static void add_entry(const char *name, size_t dir, enum kind kind,
		      const char *target)
{
	if (n_ents == cap_ents) {
		cap_ents = cap_ents ? 2 * cap_ents : 256;
		ents = realloc(ents, cap_ents * sizeof(*ents));
		if (!ents) {
			log_msg(LOG_ERR, "Out of memory.");
			exit(EXIT_FAILURE);
		}
	}
	ents[n_ents++] = (struct entry){ xstrdup(name), dir, kind,
					  target ? xstrdup(target) : NULL };
}

static void add_dir(const char *path, struct stat *seen, size_t *n_seen)
{
	struct stat st;

	if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
		return;
	/* /lib/systemd/system is /usr/lib/systemd/system on merged /usr */
	for (size_t i = 0; i < *n_seen; i++)
		if (seen[i].st_dev == st.st_dev && seen[i].st_ino == st.st_ino)
			return;
	seen[(*n_seen)++] = st;
	strv_push(&dirs, xstrdup(path));
}

/* $SYSTEMD_UNIT_PATH as systemd reads it: colon-separated, a trailing ':'
 * appends the built-in list. */
static void find_dirs(void)
{
	const char *e = getenv("SYSTEMD_UNIT_PATH");
	size_t n_max = ELEMENTS_DEFAULT + 1, n_seen = 0;
	struct stat *seen;
	bool defaults = true;
	char *copy, *p, *tok;

	if (e)
		for (const char *c = e; *c; c++)
			n_max += *c == ':';
	seen = xmalloc(n_max * sizeof(*seen));
	if (e) {
		defaults = endswith(e, ":");
		copy = xstrdup(e);
		for (p = copy; (tok = strsep(&p, ":"));)
			if (*tok)
				add_dir(tok, seen, &n_seen);
		free(copy);
	}
	if (defaults)
		for (size_t i = 0; i < ELEMENTS_DEFAULT; i++)
			add_dir(default_unit_path[i], seen, &n_seen);
	free(seen);
}

static void scan_dir(size_t di)
{
	const char *dir = dirs.v[di];
	struct dirent *de;
	DIR *d = opendir(dir);
	int dfd;

	if (!d) {
		log_msg(LOG_WARNING, "Failed to open %s, ignoring: %s", dir,
			strerror(errno));
		return;
	}
	dfd = dirfd(d);
	while ((de = readdir(d))) {
		const char *n = de->d_name;
		struct stat lst, st;

		if (n[0] == '.')
			continue;
		if (endswith(n, ".d")) {
			char *u = xasprintf("%.*s", (int)(strlen(n) - 2), n);

			if ((is_service_name(u) || !strcmp(u, "service")) &&
			    fstatat(dfd, n, &st, 0) == 0 && S_ISDIR(st.st_mode))
				add_entry(u, di, K_DROPINS, NULL);
			free(u);
			continue;
		}
		if (!is_service_name(n) || fstatat(dfd, n, &lst, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (fstatat(dfd, n, &st, 0) < 0) {
			log_msg(LOG_DEBUG, "%s/%s: dangling symlink, ignoring.", dir, n);
			continue;
		}
		if (S_ISCHR(st.st_mode) || (S_ISREG(st.st_mode) && st.st_size == 0)) {
			add_entry(n, di, K_MASKED, NULL);
		} else if (!S_ISREG(st.st_mode)) {
			continue;
		} else if (S_ISLNK(lst.st_mode)) {
			char target[4096], *base;
			ssize_t len = readlinkat(dfd, n, target, sizeof(target) - 1);

			if (len < 0)
				continue;
			target[len] = 0;
			base = strrchr(target, '/');
			base = base ? base + 1 : target;
			if (strcmp(base, n) && is_service_name(base))
				add_entry(n, di, K_ALIAS, base);
			else
				add_entry(n, di, K_FILE, NULL);	/* a linked unit file */
		} else {
			add_entry(n, di, K_FILE, NULL);
		}
	}
	closedir(d);
}

static int cmp_entry(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	int r = strcmp(x->name, y->name);

	if (r)
		return r;
	if (x->kind != y->kind)
		return (x->kind == K_DROPINS) - (y->kind == K_DROPINS);
	return x->dir < y->dir ? -1 : x->dir > y->dir;
}

/* The entry that defines a unit name (the first directory's), or NULL. */
static const struct entry *unit_entry(const char *name)
{
	for (size_t i = 0; i < n_ents; i++)
		if (ents[i].kind != K_DROPINS && !strcmp(ents[i].name, name))
			return &ents[i];	/* sorted: the lowest dir first */
	return NULL;
}

static bool has_dropins(const char *name, size_t dir)
{
	for (size_t i = 0; i < n_ents; i++)
		if (ents[i].kind == K_DROPINS && ents[i].dir == dir &&
		    !strcmp(ents[i].name, name))
			return true;
	return false;
}

/* ---- drop-ins of one unit ---- */

/* systemd's unit_file_expand_dropin_names(): the name, its template, then
 * its dash prefixes ("a-b-c.service" -> "a-b-.service", "a-.service"), each
 * expanded again. */
static void expand_names(const char *name, struct strv *out)
{
	char *prefix, *dash, *built;
	const char *at = strchr(name, '@'), *inst = NULL;
	size_t n;
	bool chopped = false;

	strv_push(out, xstrdup(name));
	if (is_instance(name)) {
		char *t = template_of(name);

		expand_names(t, out);
		free(t);
	}
	n = at ? (size_t)(at - name) : strlen(name) - strlen(".service");
	prefix = xasprintf("%.*s", (int)n, name);
	for (;;) {
		dash = strrchr(prefix, '-');
		if (!dash || dash == prefix) {
			free(prefix);
			return;
		}
		if (dash[1] || chopped) {
			dash[1] = 0;
			break;
		}
		*dash = 0;	/* a trailing dash: chop it, once */
		chopped = true;
	}
	if (is_instance(name)) {
		inst = at + 1;
		built = xasprintf("%s@%.*s", prefix,
				  (int)(strlen(inst) - strlen(".service")), inst);
		free(prefix);
		prefix = built;
	}
	built = xasprintf("%s.service", prefix);
	free(prefix);
	expand_names(built, out);
	free(built);
}

struct dropin {
	char *path;
	const char *base;
};

static int cmp_dropin(const void *a, const void *b)
{
	return strcmp(((const struct dropin *)a)->base,
		      ((const struct dropin *)b)->base);
}

static void add_dropin_dir(const char *dir, struct dropin **list, size_t *n,
			   size_t *cap)
{
	struct dirent *de;
	DIR *d = opendir(dir);

	if (!d)
		return;
	while ((de = readdir(d))) {
		bool dup = false;

		if (de->d_name[0] == '.' || !endswith(de->d_name, ".conf"))
			continue;
		if (de->d_type != DT_REG && de->d_type != DT_LNK &&
		    de->d_type != DT_UNKNOWN)
			continue;
		for (size_t i = 0; i < *n && !dup; i++)
			dup = !strcmp((*list)[i].base, de->d_name);
		if (dup)
			continue;	/* an earlier directory has this name */
		if (*n == *cap) {
			*cap = *cap ? 2 * *cap : 16;
			*list = realloc(*list, *cap * sizeof(**list));
			if (!*list) {
				log_msg(LOG_ERR, "Out of memory.");
				exit(EXIT_FAILURE);
			}
		}
		(*list)[*n].path = xasprintf("%s/%s", dir, de->d_name);
		(*list)[*n].base = strrchr((*list)[*n].path, '/') + 1;
		(*n)++;
	}
	closedir(d);
}

/* The drop-ins systemd applies to unit `name` (aliases: its other names),
 * in the order it applies them. */
static void find_dropins(const char *name, const struct strv *aliases,
			 struct strv *out)
{
	struct strv seen = { 0 };
	struct dropin *list = NULL;
	size_t n = 0, cap = 0;

	/* systemd: for each name of the unit (the unit's own first), for each
	 * directory, the name's expansions; then service.d/ of each directory */
	for (size_t a = 0; a <= aliases->n + 1; a++) {
		struct strv cands = { 0 };

		if (a == 0)
			expand_names(name, &cands);
		else if (a <= aliases->n)
			expand_names(aliases->v[a - 1], &cands);
		else
			strv_push(&cands, xstrdup("service"));
		for (size_t d = 0; d < dirs.n; d++)
			for (size_t c = 0; c < cands.n; c++) {
				char *path;

				if (!has_dropins(cands.v[c], d))
					continue;
				path = xasprintf("%s/%s.d", dirs.v[d], cands.v[c]);
				if (strv_contains(&seen, path)) {
					free(path);
					continue;
				}
				add_dropin_dir(path, &list, &n, &cap);
				strv_push(&seen, path);
			}
		strv_free(&cands);
	}
	if (n)
		qsort(list, n, sizeof(*list), cmp_dropin);
	for (size_t i = 0; i < n; i++)
		strv_push(out, list[i].path);
	free(list);
	strv_free(&seen);
}

/* ---- one unit ---- */

/* Slice= of [Service] in one unit file: the last assignment wins, an empty
 * one resets it (the same merge as rc-marker's [Service] keys; continued
 * lines are joined as systemd does). *set is left alone if the file has
 * none; unreadable files are rc_marker_parse_file()'s to report. */
static void scan_slice(const char *path, bool *set)
{
	FILE *f = fopen(path, "re");
	char *line = NULL, *join = NULL;
	size_t cap = 0;
	bool service = false;

	if (!f)
		return;
	while (getline(&line, &cap, f) >= 0) {
		char *l, *eq, *e;
		size_t n;

		n = strcspn(line, "\n");
		line[n] = 0;
		if (join) {
			char *t = xasprintf("%s %s", join, line);

			free(join);
			join = t;
		} else {
			join = xstrdup(line);
		}
		n = strlen(join);
		if (n && join[n - 1] == '\\') {
			join[n - 1] = 0;
			continue;
		}
		l = join + strspn(join, " \t");
		if (*l == '[') {
			service = !strncmp(l, "[Service]", 9);
		} else if (service && *l && !strchr("#;", *l) &&
			   (eq = strchr(l, '='))) {
			e = eq;
			while (e > l && strchr(" \t", e[-1]))
				e--;
			if (e - l == 5 && !strncmp(l, "Slice", 5)) {
				char *v = eq + 1 + strspn(eq + 1, " \t");

				*set = *v != 0;
			}
		}
		free(join);
		join = NULL;
	}
	free(join);
	free(line);
	fclose(f);
}

static char *dropin_text(const struct rc_marker *m, bool slice_set)
{
	/* DeviceAllow= only where device access is already restricted: on
	 * the default DevicePolicy=auto a first DeviceAllow= closes it */
	bool restricted = m->device_allow || m->device_policy_closed ||
			  m->private_devices;

	/* machine.slice, systemd's slice for VMs: SetupHost restricts
	 * system.slice to the housekeeping CPUs, and a cgroup's cpuset lies
	 * within its parent's, so the unit's AllowedCPUs= would not apply
	 * there. A Slice= of the unit's own is kept (ramcryptd checks the
	 * effective cpuset).
	 * Wants=, not Requires=: a Requires= unit is restarted whenever
	 * ramcryptd is (systemd.unit(5)), so `systemctl restart ramcryptd`
	 * would restart every VM. ramcryptctl enroll fails, and so the start,
	 * when the daemon cannot be reached: still fail closed. */
	return xasprintf("# Automatically generated by ramcrypt-generator\n"
			 "[Unit]\n"
			 "Wants=ramcryptd.service\n"
			 "After=ramcryptd.service ramcrypt-host.service\n"
			 "[Service]\n"
			 "ExecStartPre=+/usr/bin/ramcryptctl enroll %%n\n"
			 "ExecStopPost=+/usr/bin/ramcryptctl release %%n\n"
			 "%s%s",
			 restricted ? "DeviceAllow=/dev/ramcrypt rw\n" : "",
			 slice_set ? "" : "Slice=machine.slice\n");
}

/* What one unit needs: 50-ramcrypt.conf (text, NULL: nothing), and where a
 * later drop-in resets ExecStartPre=, a drop-in sorting after that one which
 * adds the enrollment again (late, its file name). */
struct plan {
	char *text;
	char *late;
};

static void plan_free(struct plan *p)
{
	free(p->text);
	free(p->late);
	*p = (struct plan){ 0 };
}

static bool same(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

static bool plan_equal(const struct plan *a, const struct plan *b)
{
	return same(a->text, b->text) && same(a->late, b->late);
}

static void log_error(const char *name, const struct rc_marker_error *err)
{
	char buf[4096 + 1024];

	log_msg(LOG_ERR, "%s: %s; the unit will fail to start.", name,
		rc_marker_error_string(err, buf, sizeof(buf)));
}

/* The plan for unit `name`, logging what is wrong unless quiet. */
static struct plan evaluate(const char *name, const char *fragment, bool quiet)
{
	struct strv aliases = { 0 }, dropins = { 0 };
	struct plan p = { 0 };
	struct rc_marker m;
	struct rc_marker_error err;
	const char *reset = NULL;
	bool slice_set = false;
	int r;

	for (size_t i = 0; i < n_ents; i++)
		if (ents[i].kind == K_ALIAS && !strcmp(ents[i].target, name) &&
		    unit_entry(ents[i].name) == &ents[i])
			strv_push(&aliases, xstrdup(ents[i].name));
	find_dropins(name, &aliases, &dropins);

	/* rc_marker_parse_unit(), file by file to see the resets */
	rc_marker_init(&m);
	r = rc_marker_parse_file(fragment, &m, &err);
	scan_slice(fragment, &slice_set);
	for (size_t i = 0; i < dropins.n; i++)
		scan_slice(dropins.v[i], &slice_set);
	for (size_t i = 0; r >= 0 && i < dropins.n; i++) {
		const char *base = strrchr(dropins.v[i], '/') + 1;
		int order = strcmp(base, DROPIN_NAME);

		if (order == 0 && !quiet)
			log_msg(LOG_WARNING, "%s: %s replaces the generator's " DROPIN_NAME ".",
				name, dropins.v[i]);
		m.exec_start_pre_reset = false;
		r = rc_marker_parse_file(dropins.v[i], &m, &err);
		if (order > 0 && m.exec_start_pre_reset)
			reset = dropins.v[i];
	}

	if (r < 0) {
		p.text = dropin_text(&m, slice_set);
		if (!quiet)
			log_error(name, &err);
	} else if (m.ramcrypt) {
		p.text = dropin_text(&m, slice_set);
		if (!quiet)
			log_msg(LOG_DEBUG, "%s: RamCrypt=yes, adding %s.", name,
				DROPIN_NAME);
	}
	if (p.text && reset) {
		const char *base = strrchr(reset, '/') + 1;

		/* "override.conf" -> "override~ramcrypt.conf", sorting after it */
		p.late = xasprintf("%.*s~ramcrypt.conf",
				   (int)(strlen(base) - strlen(".conf")), base);
		if (!quiet)
			log_msg(LOG_WARNING,
				"%s: %s resets ExecStartPre= after " DROPIN_NAME ", adding the enrollment again in %s.",
				name, reset, p.late);
	}
	if (m.service_hint && !quiet)
		log_msg(LOG_WARNING,
			"%s: %s:%u: RamCrypt= belongs in an [X-RamCrypt] section, this line is ignored%s.",
			name, m.hint_file, m.hint_line,
			m.ramcrypt ? "" : " and the unit is not protected");
	strv_free(&aliases);
	strv_free(&dropins);
	return p;
}

static int write_file(const char *out, const char *unit, const char *file,
		      const char *text)
{
	char *dir = xasprintf("%s/%s.d", out, unit);
	char *path = xasprintf("%s/%s", dir, file);
	FILE *f;
	int r = 0;

	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		r = -errno;
	else if (!(f = fopen(path, "we")))
		r = -errno;
	else if (fputs(text, f) < 0 || fflush(f) != 0 || ferror(f)) {
		r = errno ? -errno : -EIO;
		fclose(f);
	} else if (fclose(f) != 0)
		r = -errno;
	if (r < 0)
		log_msg(LOG_ERR, "Failed to write %s: %s", path, strerror(-r));
	free(dir);
	free(path);
	return r;
}

static int write_plan(const char *out, const char *unit, const struct plan *p,
		      const char *template)
{
	int r = 0;

	if (p->text) {
		r = write_file(out, unit, DROPIN_NAME, p->text);
	} else if (template) {	/* an unmarked instance of a marked template */
		char *text = xasprintf("# Automatically generated by ramcrypt-generator\n"
				       "# %s is not marked: this replaces %s.d/" DROPIN_NAME "\n",
				       unit, template);

		r = write_file(out, unit, DROPIN_NAME, text);
		free(text);
	}
	if (r == 0 && p->late)
		r = write_file(out, unit, p->late,
			       "# Automatically generated by ramcrypt-generator\n"
			       "# A drop-in before this one resets ExecStartPre=: the enrollment again.\n"
			       "[Service]\n"
			       "ExecStartPre=+/usr/bin/ramcryptctl enroll %n\n");
	return r;
}

static char *fragment_path(const struct entry *e)
{
	return xasprintf("%s/%s", dirs.v[e->dir], e->name);
}

/* An instance with a unit file or drop-in directory of its own: it inherits
 * its template's drop-in, so it needs one only where its own differs. */
static int do_instance(const char *out, const char *name)
{
	const struct entry *own = unit_entry(name), *tmpl;
	char *t = template_of(name), *frag = NULL;
	struct plan ip, tp = { 0 };
	int r = 0;

	tmpl = unit_entry(t);
	if (own && own->kind == K_FILE)
		frag = fragment_path(own);
	else if ((!own || own->kind == K_ALIAS) && tmpl && tmpl->kind == K_FILE)
		frag = fragment_path(tmpl);	/* no file, or a link to the template */
	if (!frag || (own && own->kind == K_ALIAS && strcmp(own->target, t))) {
		free(frag);
		free(t);
		return 0;	/* masked, an alias of another unit, or no fragment */
	}
	if (tmpl && tmpl->kind == K_FILE) {
		char *tfrag = fragment_path(tmpl);

		tp = evaluate(t, tfrag, true);
		free(tfrag);
	}
	ip = evaluate(name, frag, true);
	if (!plan_equal(&ip, &tp)) {
		plan_free(&ip);
		ip = evaluate(name, frag, false);
		r = write_plan(out, name, &ip, tp.text ? t : NULL);
	}
	plan_free(&ip);
	plan_free(&tp);
	free(frag);
	free(t);
	return r;
}

int main(int argc, char *argv[])
{
	const char *out;
	struct strv instances = { 0 };
	int failed = 0;

	log_setup();
	if (argc != 1 && argc != 4) {
		log_msg(LOG_ERR, "This program takes zero or three arguments.");
		return EXIT_FAILURE;
	}
	out = argc > 1 ? argv[1] : "/run/systemd/generator";
	if (mkdir(out, 0755) < 0 && errno != EEXIST) {
		log_msg(LOG_ERR, "Failed to create %s: %s", out, strerror(errno));
		return EXIT_FAILURE;
	}

	find_dirs();
	for (size_t d = 0; d < dirs.n; d++)
		scan_dir(d);
	if (n_ents)
		qsort(ents, n_ents, sizeof(*ents), cmp_entry);
	/* an alias of a unit that is nowhere in the path is a unit file */
	for (size_t i = 0; i < n_ents; i++)
		if (ents[i].kind == K_ALIAS && !unit_entry(ents[i].target))
			ents[i].kind = K_FILE;

	for (size_t i = 0; i < n_ents; i++) {
		const struct entry *e = &ents[i];

		if (e->kind == K_DROPINS && !unit_entry(e->name) &&
		    is_instance(e->name) && !strv_contains(&instances, e->name))
			strv_push(&instances, xstrdup(e->name));
		if (e->kind == K_DROPINS || unit_entry(e->name) != e)
			continue;	/* not the first directory's */
		if (is_instance(e->name)) {
			if (e->kind != K_MASKED && !strv_contains(&instances, e->name))
				strv_push(&instances, xstrdup(e->name));
		} else if (e->kind == K_FILE) {
			char *frag = fragment_path(e);
			struct plan p = evaluate(e->name, frag, false);

			if (write_plan(out, e->name, &p, NULL) < 0)
				failed = 1;
			plan_free(&p);
			free(frag);
		}
	}
	for (size_t i = 0; i < instances.n; i++)
		if (do_instance(out, instances.v[i]) < 0)
			failed = 1;
	strv_free(&instances);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
