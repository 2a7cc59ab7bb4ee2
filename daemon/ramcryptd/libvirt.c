// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libvirt.c - libvirt domains on ramcryptfs (Manager.LibvirtHook).
 *
 * libvirt's qemu hook (/etc/libvirt/hooks/qemu.d/50-ramcrypt, through
 * `ramcryptctl libvirt-hook`) hands us the live domain XML at each step of
 * a start. A domain marked in its <metadata> with
 *   <ramcrypt:ramcrypt xmlns:ramcrypt="urn:ramcrypt-host:libvirt:1" .../>
 * is protected like a [X-RamCrypt] unit, with the same keys:
 *   prepare  the XML puts all guest RAM in shared files, the key is loaded,
 *            memory_backing_dir is a ramcryptfs mount; else the start fails;
 *   start    libvirt has made the domain's memory directory (and chowned
 *            it) and QEMU does not exist yet: the directory gets the
 *            region policy (RAMCRYPT_IOC_SET_DIR_POLICY), so every RAM
 *            file QEMU creates in it is a region with the domain's window
 *            from its first fault; the domain becomes a unit object;
 *   started  backstop: the directory holds the RAM files, each a region
 *            whose policy came from the directory; else libvirt kills it;
 *   release  the object goes (libvirt has deleted the directory).
 * A user's session libvirtd (qemu:///session) runs the same hook as that
 * user (Manager.LibvirtSessionHook, with the user's qemu.conf as text):
 * its domains' directories must be under RC_SESSION_DIR/<uid>/ and owned
 * by the caller all the way down, its markers within the session limits
 * of ramcryptd.json; ramcryptd sets the policy on the user's behalf.
 * See docs/libvirt-design.md for libvirt's side (v9.0.0 line numbers).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <json-c/json.h>
#include <expat.h>

#include "ramcrypt.h"
#include "rc-kernel.h"
#include "rc-macro.h"
#include "rc-qemu.h"
#include "ramcryptd.h"

#define QEMU_CONF "/etc/libvirt/qemu.conf"
/* libvirt's default when memory_backing_dir is unset (qemu_conf.c) */
#define LIBVIRT_DEFAULT_RAM_DIR "/var/lib/libvirt/qemu/ram"
#define SHORT_NAME_MAX 20	/* VIR_DOMAIN_SHORT_NAME_MAX */
#define MACHINE_NAME_MAX 64	/* virDomainMachineNameAppendValid */
#define XML_MAX (4U << 20)
/* libvirt's QEMU passthrough namespace (<qemu:commandline> and the like) */
#define QEMU_NS "http://libvirt.org/schemas/domain/qemu/1.0"

struct lv_domain {
	char *name;
	char *uuid;
	int id;				/* -1: inactive XML */
	uint64_t memory_bytes;
	bool marked;
	struct rc_marker mk;
	char unprotectable[768];	/* why its RAM cannot be on regions */
};

static void lv_domain_free(struct lv_domain *d)
{
	free(d->name);
	free(d->uuid);
}

static void unprotectable(struct lv_domain *d, const char *fmt, ...)
{
	va_list ap;

	if (d->unprotectable[0])
		return;		/* the first reason is the one to fix first */
	va_start(ap, fmt);
	vsnprintf(d->unprotectable, sizeof(d->unprotectable), fmt, ap);
	va_end(ap);
}

/* libvirt's memory units (virScaleInteger); default KiB */
static int scale(const char *unit, uint64_t *mult)
{
	static const struct { const char *u; uint64_t m; } t[] = {
		{ "b", 1 }, { "bytes", 1 },
		{ "KB", 1000ULL }, { "k", 1024ULL }, { "KiB", 1024ULL },
		{ "MB", 1000000ULL }, { "M", 1ULL << 20 }, { "MiB", 1ULL << 20 },
		{ "GB", 1000000000ULL }, { "G", 1ULL << 30 }, { "GiB", 1ULL << 30 },
		{ "TB", 1000000000000ULL }, { "T", 1ULL << 40 }, { "TiB", 1ULL << 40 },
	};

	if (!unit || !*unit) {
		*mult = 1024;
		return 0;
	}
	for (size_t i = 0; i < ELEMENTSOF(t); i++)
		if (strcasecmp(unit, t[i].u) == 0 &&
		    (t[i].u[0] != 'b' || strcmp(unit, t[i].u) == 0)) {
			*mult = t[i].m;
			return 0;
		}
	return -EINVAL;
}

/* the marker's attributes are the [X-RamCrypt] keys */
static const struct { const char *attr, *key; } marker_attrs[] = {
	{ "window", "Window" },
	{ "max-plaintext-age", "MaxPlaintextAge" },
	{ "cpus", "CPUs" },
	{ "cache-confinement", "CacheConfinement" },
};

/*
 * The XML is read with expat (as dbus-daemon is: no new library on the
 * host), namespaces on: an element is "local" without a namespace (all of
 * libvirt's) or "URI\1local". No DOCTYPE is accepted, so no entity of any
 * kind is expanded.
 */
#define NS_SEP '\1'
#define MAX_DEPTH 64

struct parse {
	XML_Parser p;
	struct lv_domain *d;
	char *err;
	size_t errlen;
	int failed;
	unsigned int depth;
	const char *path[MAX_DEPTH];	/* containers[] entries or "" */
	char **capture;			/* text of <name>, <uuid>, <memory> */
	char *memory_unit;
	char *memory_text;
	bool has_file_source, shared, has_memory;
	unsigned int cells, cells_unshared;
};

static void parse_fail(struct parse *ps, int r, const char *fmt, ...)
{
	va_list ap;

	if (ps->failed)
		return;
	va_start(ap, fmt);
	vsnprintf(ps->err, ps->errlen, fmt, ap);
	va_end(ap);
	ps->failed = r;
	XML_StopParser(ps->p, XML_FALSE);
}

static const char *get_attr(const XML_Char **atts, const char *name)
{
	for (size_t i = 0; atts[i]; i += 2)
		if (strcmp(atts[i], name) == 0)
			return atts[i + 1];
	return NULL;
}

static bool under(const struct parse *ps, const char *a, const char *b)
{
	/* the current element (path[depth - 1]) is in <domain><a>[<b>] */
	if (!b)
		return ps->depth == 3 && strcmp(ps->path[1], a) == 0;
	return ps->depth == 4 && strcmp(ps->path[1], a) == 0 &&
	       strcmp(ps->path[2], b) == 0;
}

static void parse_marker(struct parse *ps, const XML_Char **atts)
{
	struct lv_domain *d = ps->d;

	for (size_t i = 0; atts[i]; i += 2) {
		const char *key = NULL;
		struct rc_marker_error merr;

		for (size_t k = 0; k < ELEMENTSOF(marker_attrs); k++)
			if (strcmp(atts[i], marker_attrs[k].attr) == 0)
				key = marker_attrs[k].key;
		if (!key)
			return parse_fail(ps, -EINVAL,
				"<ramcrypt:ramcrypt> has an unknown attribute '%s' (known: window, max-plaintext-age, cpus, cache-confinement)",
				strchr(atts[i], NS_SEP) ? strchr(atts[i], NS_SEP) + 1 : atts[i]);
		memset(&merr, 0, sizeof(merr));
		if (rc_marker_assign(&d->mk, "metadata", key, atts[i + 1], &merr) < 0)
			return parse_fail(ps, -EINVAL, "<ramcrypt:ramcrypt %s='%s'>: %s",
					  atts[i], atts[i + 1], merr.message);
	}
	d->marked = true;
	d->mk.ramcrypt = true;
}

/* the elements whose children are looked at */
static const char *const containers[] = {
	"metadata", "memoryBacking", "cpu", "numa", "devices",
};

static void XMLCALL on_start(void *data, const XML_Char *el,
			     const XML_Char **atts)
{
	struct parse *ps = data;
	struct lv_domain *d = ps->d;
	const char *sep = strchr(el, NS_SEP), *v;

	if (ps->failed)
		return;
	if (ps->depth >= MAX_DEPTH)
		return parse_fail(ps, -EINVAL, "the domain XML nests deeper than %d elements",
				  MAX_DEPTH);
	ps->path[ps->depth] = "";
	for (size_t i = 0; !sep && i < ELEMENTSOF(containers); i++)
		if (strcmp(el, containers[i]) == 0)
			ps->path[ps->depth] = containers[i];
	ps->depth++;
	if (ps->depth == 1) {
		if (sep || strcmp(el, "domain") != 0)
			return parse_fail(ps, -EINVAL, "the XML is not a libvirt <domain>");
		v = get_attr(atts, "id");
		if (v) {
			char *e;
			long id = strtol(v, &e, 10);

			if (!*v || *e || id < 0 || id > INT32_MAX)
				return parse_fail(ps, -EINVAL, "<domain id='%s'> is not a domain id", v);
			d->id = (int)id;
		}
		return;
	}
	if (ps->depth == 2 && !sep) {
		if (strcmp(el, "name") == 0)
			ps->capture = &d->name;
		else if (strcmp(el, "uuid") == 0)
			ps->capture = &d->uuid;
		else if (strcmp(el, "memory") == 0) {
			ps->capture = &ps->memory_text;
			ps->has_memory = true;
			free(ps->memory_unit);
			ps->memory_unit = get_attr(atts, "unit") ?
				strdup(get_attr(atts, "unit")) : NULL;
		}
		if (ps->capture) {
			free(*ps->capture);
			*ps->capture = strdup("");
			if (!*ps->capture)
				abort();
		}
		return;
	}
	if (under(ps, "metadata", NULL) && sep &&
	    (size_t)(sep - el) == strlen(RC_LIBVIRT_NS) &&
	    strncmp(el, RC_LIBVIRT_NS, sep - el) == 0) {
		if (strcmp(sep + 1, "ramcrypt") != 0)
			return parse_fail(ps, -EINVAL,
				"<metadata> has an unknown element <%s> in the namespace " RC_LIBVIRT_NS " (known: ramcrypt)",
				sep + 1);
		return parse_marker(ps, atts);
	}
	if (sep && ps->depth == 2 &&
	    (size_t)(sep - el) == strlen(QEMU_NS) &&
	    strncmp(el, QEMU_NS, sep - el) == 0 &&
	    strcmp(sep + 1, "deprecation") != 0)
		/* -object/-machine/-device of its own can put guest RAM on
		 * an anonymous backend next to the files libvirt makes */
		unprotectable(d, "<qemu:%s> passes QEMU options libvirt does not check, which can put guest RAM outside the memory directory",
			      sep + 1);
	if (sep)
		return;
	if (under(ps, "memoryBacking", NULL)) {
		if (strcmp(el, "hugepages") == 0)
			unprotectable(d, "<memoryBacking><hugepages/> puts guest RAM in hugetlbfs, not on ramcryptfs");
		else if (strcmp(el, "source") == 0) {
			v = get_attr(atts, "type");
			if (v && strcmp(v, "file") == 0)
				ps->has_file_source = true;
			else
				unprotectable(d, "<memoryBacking><source type='%s'/> is plaintext RAM: use <source type='file'/>",
					      v ? v : "");
		} else if (strcmp(el, "access") == 0) {
			v = get_attr(atts, "mode");
			ps->shared = v && strcmp(v, "shared") == 0;
		}
	} else if (under(ps, "cpu", "numa") && strcmp(el, "cell") == 0) {
		v = get_attr(atts, "memAccess");
		ps->cells++;
		if (v && strcmp(v, "private") == 0)
			unprotectable(d, "NUMA cell %u has memAccess='private': its RAM would be copy-on-write anonymous pages",
				      ps->cells - 1);
		else if (!(v && strcmp(v, "shared") == 0))
			ps->cells_unshared++;	/* <access> decides, at the end */
	} else if (under(ps, "devices", NULL) &&
		   (strcmp(el, "hostdev") == 0 ||
		    (strcmp(el, "interface") == 0 &&
		     (v = get_attr(atts, "type")) && strcmp(v, "hostdev") == 0))) {
		/* VFIO pins all guest RAM for the device's DMA: every page
		 * stays plaintext, whatever the window */
		unprotectable(d, "<%s> assigns a host device, and VFIO pins all guest RAM for its DMA, every page in plaintext",
			      el);
	} else if (under(ps, "devices", NULL) && strcmp(el, "memory") == 0) {
		v = get_attr(atts, "model");
		if (!v || (strcmp(v, "dimm") != 0 && strcmp(v, "virtio-mem") != 0))
			unprotectable(d, "<memory model='%s'> device memory is not guest RAM in the memory directory (only dimm and virtio-mem are)",
				      v ? v : "");
	}
}

static void XMLCALL on_end(void *data, const XML_Char *el)
{
	struct parse *ps = data;

	(void)el;
	if (ps->depth == 2)
		ps->capture = NULL;
	if (ps->depth)
		ps->depth--;
}

static void XMLCALL on_text(void *data, const XML_Char *s, int len)
{
	struct parse *ps = data;
	size_t l;
	char *n;

	if (!ps->capture || ps->depth != 2 || len <= 0)
		return;
	l = strlen(*ps->capture);
	if (l + (size_t)len > 4096)
		return parse_fail(ps, -EINVAL, "the domain XML has a <name>, <uuid> or <memory> longer than 4096 bytes");
	n = realloc(*ps->capture, l + len + 1);
	if (!n)
		abort();
	memcpy(n + l, s, len);
	n[l + len] = 0;
	*ps->capture = n;
}

static void XMLCALL on_doctype(void *data, const XML_Char *name,
			       const XML_Char *sysid, const XML_Char *pubid,
			       int has_internal_subset)
{
	(void)name; (void)sysid; (void)pubid; (void)has_internal_subset;
	parse_fail(data, -EINVAL, "the domain XML has a DOCTYPE, which libvirt never writes");
}

/* File-backed and shared: domain-wide, or every NUMA cell shared. */
static void check_backing(struct parse *ps)
{
	if (!ps->has_file_source)
		unprotectable(ps->d, "its RAM is anonymous memory: add <memoryBacking><source type='file'/><access mode='shared'/></memoryBacking>");
	if (!ps->shared && (!ps->cells || ps->cells_unshared))
		unprotectable(ps->d, "its RAM is mapped private (copy-on-write anonymous pages): add <access mode='shared'/> to <memoryBacking>");
}

static int lv_domain_parse(const char *xml, struct lv_domain *d, char *err,
			   size_t errlen)
{
	struct parse ps = { .d = d, .err = err, .errlen = errlen };
	size_t len = strlen(xml);
	int r = 0;

	memset(d, 0, sizeof(*d));
	d->id = -1;
	rc_marker_init(&d->mk);
	if (len > XML_MAX) {
		snprintf(err, errlen, "the domain XML is larger than %u bytes", XML_MAX);
		return -E2BIG;
	}
	ps.p = XML_ParserCreateNS("UTF-8", NS_SEP);
	if (!ps.p) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	XML_SetUserData(ps.p, &ps);
	XML_SetElementHandler(ps.p, on_start, on_end);
	XML_SetCharacterDataHandler(ps.p, on_text);
	XML_SetStartDoctypeDeclHandler(ps.p, on_doctype);
	if (XML_Parse(ps.p, xml, (int)len, XML_TRUE) != XML_STATUS_OK &&
	    !ps.failed) {
		snprintf(err, errlen, "the domain XML is not well-formed: line %lu: %s",
			 (unsigned long)XML_GetCurrentLineNumber(ps.p),
			 XML_ErrorString(XML_GetErrorCode(ps.p)));
		r = -EINVAL;
		goto out;
	}
	if (ps.failed) {
		r = ps.failed;
		goto out;
	}
	if (!d->name || !*d->name) {
		snprintf(err, errlen, "the domain XML has no <name>");
		r = -EINVAL;
		goto out;
	}
	if (ps.has_memory) {
		uint64_t mult, n = 0;
		char *e = NULL;

		if (ps.memory_text)
			n = strtoull(ps.memory_text, &e, 10);
		if (!ps.memory_text || !*ps.memory_text || *e ||
		    scale(ps.memory_unit, &mult) < 0 ||
		    (n && mult > UINT64_MAX / n)) {
			snprintf(err, errlen, "<memory unit='%s'>%s</memory> is not a size",
				 ps.memory_unit ? ps.memory_unit : "",
				 ps.memory_text ? ps.memory_text : "");
			r = -EINVAL;
			goto out;
		}
		d->memory_bytes = n * mult;
	}
	check_backing(&ps);
out:
	free(ps.memory_unit);
	free(ps.memory_text);
	XML_ParserFree(ps.p);
	return r;
}


/*
 * memory_backing_dir from the text of a qemu.conf (libvirt's virconf
 * syntax: `key = "value"` or 'value', # comments; the first assignment
 * wins), as libvirt uses it: "<dir>/libvirt/qemu", or @dflt when unset.
 * @buf is cut up.
 */
static int parse_ram_dir(const char *conf, char *buf, const char *dflt,
			 char **ret, char *err, size_t errlen)
{
	_cleanup_free_ char *val = NULL;
	char *line, *save = NULL;

	for (line = buf ? strtok_r(buf, "\n", &save) : NULL; line;
	     line = strtok_r(NULL, "\n", &save)) {
		char *p = line + strspn(line, " \t"), q, *end;

		if (strncmp(p, "memory_backing_dir", 18) != 0)
			continue;
		p += 18;
		p += strspn(p, " \t");
		if (*p != '=')
			continue;
		p++;
		p += strspn(p, " \t");
		q = *p;
		end = (q == '"' || q == '\'') ? strchr(p + 1, q) : NULL;
		if (!end) {
			snprintf(err, errlen, "%s: memory_backing_dir is not a quoted string: %.200s",
				 conf, line);
			return -EINVAL;
		}
		if (val)
			continue;	/* libvirt's virConfGetValue: the first */
		val = strndup(p + 1, end - p - 1);
		if (!val)
			return -ENOMEM;
	}
	if (val && *val) {
		size_t l = strlen(val);

		while (l > 1 && val[l - 1] == '/')
			val[--l] = 0;
		if (asprintf(ret, "%s/libvirt/qemu", val) < 0)
			return -ENOMEM;
	} else if (!(*ret = strdup(dflt))) {
		return -ENOMEM;
	}
	return 0;
}

/* The system libvirtd's: /etc/libvirt/qemu.conf */
int libvirt_ram_dir(const char *root, char **ret, char *err, size_t errlen)
{
	_cleanup_free_ char *buf = NULL;
	int r;

	r = rc_read_full(root, QEMU_CONF, &buf, NULL);
	if (r < 0 && r != -ENOENT) {
		snprintf(err, errlen, "cannot read %s: %s", QEMU_CONF, strerror(-r));
		return r;
	}
	return parse_ram_dir(QEMU_CONF, buf, LIBVIRT_DEFAULT_RAM_DIR, ret, err,
			     errlen);
}

/*
 * A session libvirtd's, from the text of its qemu.conf, which is
 * $XDG_CONFIG_HOME/libvirt/qemu.conf: unset, libvirt uses
 * $XDG_CONFIG_HOME/libvirt/qemu/ram (qemu_conf.c), next to it.
 */
static int session_ram_dir(const struct lv_caller *c, char **ret, char *err,
			   size_t errlen)
{
	_cleanup_free_ char *buf = strdup(c->qemu_conf_text);
	_cleanup_free_ char *dflt = NULL;
	const char *slash = strrchr(c->qemu_conf, '/');

	if (!buf)
		return -ENOMEM;
	if (c->qemu_conf[0] != '/' || !slash) {
		snprintf(err, errlen, "the hook names no absolute qemu.conf of the session libvirt ('%s')",
			 c->qemu_conf);
		return -EINVAL;
	}
	if (asprintf(&dflt, "%.*s/qemu/ram", (int)(slash - c->qemu_conf),
		     c->qemu_conf) < 0)
		return -ENOMEM;
	return parse_ram_dir(c->qemu_conf, buf, dflt, ret, err, errlen);
}

/* virDomainDriverGenerateMachineName: "qemu-<id>-<name>", a session
 * daemon's "qemu-<user>-<id>-<name>" (@user non-NULL); 64 characters */
char *libvirt_machine_name(int id, const char *user, const char *name)
{
	size_t l, cap = (user ? strlen(user) : 0) + MACHINE_NAME_MAX + 32;
	char *buf = malloc(cap);
	bool skip = true;

	if (!buf)
		return NULL;
	if (user)
		l = (size_t)snprintf(buf, cap, "qemu-%s-%d-", user, id);
	else
		l = (size_t)snprintf(buf, cap, "qemu-%d-", id);
	for (const char *c = name; *c && l < MACHINE_NAME_MAX; c++) {
		if (*c == '.' || *c == '-') {
			if (!skip)
				buf[l++] = *c;
			skip = true;
			continue;
		}
		skip = false;
		if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		    (*c >= '0' && *c <= '9'))
			buf[l++] = *c;
	}
	while (l && (buf[l - 1] == '-' || buf[l - 1] == '.'))
		l--;
	buf[l] = 0;
	return buf;
}

/* machined's scope: "machine-" + unit_name_escape(machine) + ".scope" */
static char *machine_scope(const char *machine)
{
	size_t l = strlen(machine);
	char *s = malloc(l * 4 + 16), *p = s;

	if (!s)
		return NULL;
	p += sprintf(p, "machine-");
	for (const char *c = machine; *c; c++) {
		if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		    (*c >= '0' && *c <= '9') || *c == ':' || *c == '_' ||
		    (*c == '.' && c != machine))
			*p++ = *c;
		else
			p += sprintf(p, "\\x%02x", (unsigned char)*c);
	}
	strcpy(p, ".scope");
	return s;
}

/* "<id>-<first 20 characters of the name>" (virDomainDefGetShortName):
 * bytes for an ASCII name; otherwise the one entry "<id>-..." in dir. */
static int open_session_dir(struct manager *m, const struct lv_caller *c,
			    const char *dir, int *ret, char *why, size_t len);

static int memory_dir(struct manager *m, const struct lv_caller *c,
		      const char *base, const struct lv_domain *d, char **ret)
{
	_cleanup_free_ char *abs = NULL;
	_cleanup_closedir_ DIR *dir = NULL;
	char prefix[32], why[1024];
	struct dirent *de;
	bool ascii = true;
	char *found = NULL;
	int r, fd;

	for (const char *c = d->name; *c; c++)
		if ((unsigned char)*c >= 0x80)
			ascii = false;
	if (ascii)
		return asprintf(ret, "%s/%d-%.*s", base, d->id, SHORT_NAME_MAX,
				d->name) < 0 ? -ENOMEM : 0;
	if (c->session) {
		/* listed as the user may: no symlink out of their directory */
		r = open_session_dir(m, c, base, &fd, why, sizeof(why));
		if (r < 0)
			return r;
		dir = fdopendir(fd);
		if (!dir) {
			r = rc_negative_errno();
			close(fd);
			return r;
		}
	} else {
		r = rc_path(m->root, base, &abs);
		if (r < 0)
			return r;
		dir = opendir(abs);
		if (!dir)
			return rc_negative_errno();
	}
	snprintf(prefix, sizeof(prefix), "%d-", d->id);
	while ((de = readdir(dir))) {
		if (strncmp(de->d_name, prefix, strlen(prefix)) != 0)
			continue;
		if (found) {
			free(found);
			return -ENOTUNIQ;
		}
		if (asprintf(&found, "%s/%s", base, de->d_name) < 0)
			return -ENOMEM;
	}
	if (!found)
		return -ENOENT;
	*ret = found;
	return 0;
}

/* " of the session libvirt of uid N" while a session hook runs (the
 * daemon handles one call at a time), for the log */
static char lv_whose[64];

static int lv_refuse(sd_bus_error *error, const char *domain,
		     const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	log_err("Refusing to start libvirt domain %s%s: %s", domain, lv_whose,
		buf);
	return sd_bus_error_setf(error, RC_ERROR_ENROLL_REFUSED, "%s", buf);
}

/* "/run/ramcryptfs/session/<uid>" */
static char *session_root(uid_t uid)
{
	char *p;

	return asprintf(&p, RC_SESSION_DIR "/%u", (unsigned int)uid) < 0 ?
		NULL : p;
}

/* @path is @sroot or below it, with no "", "." or ".." component */
static bool below(const char *sroot, const char *path)
{
	size_t l = strlen(sroot);
	const char *p;

	if (strncmp(path, sroot, l) != 0 || (path[l] && path[l] != '/'))
		return false;
	for (p = path + l; *p; ) {
		size_t n;

		p++;		/* the '/' */
		n = strcspn(p, "/");
		if (n == 0 || (n == 1 && p[0] == '.') ||
		    (n == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		p += n;
	}
	return true;
}

/*
 * The region policy of a domain: the marker's values, else ramcryptd's
 * defaults. A session domain may not ask for a looser window or age than
 * the session limits (libvirt_session_max_*, by default the defaults),
 * and gets the limit where the default is looser.
 */
static int domain_policy(struct manager *m, const struct lv_caller *c,
			 const struct lv_domain *d,
			 struct ramcrypt_dir_policy *pol, sd_bus_error *error)
{
	uint32_t max_w = m->cfg.session_max_window_pages ?
		m->cfg.session_max_window_pages : m->cfg.window_pages;
	uint32_t max_a = m->cfg.session_max_plaintext_age_ms ?
		m->cfg.session_max_plaintext_age_ms : m->cfg.max_plaintext_age_ms;

	memset(pol, 0, sizeof(*pol));
	pol->window_pages = d->mk.window_pages ? d->mk.window_pages :
		m->cfg.window_pages;
	pol->max_plaintext_age_ms = d->mk.max_plaintext_age_ms ?
		d->mk.max_plaintext_age_ms : m->cfg.max_plaintext_age_ms;
	pol->evict_ahead_pages = m->cfg.evict_ahead_pages;
	pol->crypto_cpu = -1;
	if (!c->session)
		return 0;
	if (d->mk.window_pages > max_w)
		return lv_refuse(error, d->name,
				 "window='%" PRIu32 "K' is larger than this host allows domains of a session libvirt (%" PRIu32 "K: libvirt_session_max_window in %s)",
				 d->mk.window_pages * 4, max_w * 4, m->config_path);
	if (d->mk.max_plaintext_age_ms > max_a)
		return lv_refuse(error, d->name,
				 "max-plaintext-age='%" PRIu32 "ms' is longer than this host allows domains of a session libvirt (%" PRIu32 "ms: libvirt_session_max_plaintext_age_ms in %s)",
				 d->mk.max_plaintext_age_ms, max_a, m->config_path);
	if (pol->window_pages > max_w)
		pol->window_pages = max_w;
	if (pol->max_plaintext_age_ms > max_a)
		pol->max_plaintext_age_ms = max_a;
	return 0;
}

/* What prepare and start both check: marker values, RAM layout, key,
 * modules, a ramcryptfs memory_backing_dir (a session's: in the caller's
 * directory, which prepare checks; start checks the domain's directory,
 * from the caller's down). */
static int check_domain(struct manager *m, const struct lv_caller *c,
			const struct lv_domain *d, const char *base,
			bool prepare, sd_bus_error *error)
{
	_cleanup_free_ char *abs = NULL, *sroot = NULL;
	_cleanup_close_ int fd = -1;
	char why[1024];
	struct ramcrypt_dir_policy pol;
	struct rc_tresor_status ts;
	struct rc_ramcrypt_totals tot;
	struct statfs sfs;
	int r;

	if (d->unprotectable[0])
		return lv_refuse(error, d->name, "%s", d->unprotectable);
	if (d->mk.cpus)
		return lv_refuse(error, d->name,
				 "cpus='%u': ramcryptd does not assign VM cores to libvirt domains yet; pin the domain with <cputune> to free VM CPUs (ramcryptctl status) and drop cpus=",
				 d->mk.cpus);
	if (d->mk.confinement == RC_CONFINE_REQUIRED ||
	    m->cfg.cache_confinement == RC_CONFINE_REQUIRED)
		return lv_refuse(error, d->name,
				 "cache confinement is required, and ramcryptd does not confine libvirt domains yet");
	r = domain_policy(m, c, d, &pol, error);
	if (r < 0)
		return r;
	if (c->session) {
		sroot = session_root(c->uid);
		if (!sroot)
			return -ENOMEM;
		if (!below(sroot, base))
			return lv_refuse(error, d->name,
					 "its RAM would be in %s, not in your directory %s: set memory_backing_dir = \"%s\" in %s and restart your session libvirtd",
					 base, sroot, sroot, c->qemu_conf);
	}
	memset(&ts, 0, sizeof(ts));
	r = rc_tresor_read_status(m->root, &ts);
	if (r < 0 || !ts.module_loaded)
		return lv_refuse(error, d->name, "tresor.ko is not loaded (no key in the CPU registers).");
	if (!ts.key_loaded)
		return lv_refuse(error, d->name, "no key is loaded in tresor.ko: guest RAM cannot be encrypted.");
	memset(&tot, 0, sizeof(tot));
	r = rc_ramcrypt_read_totals(m->root, &tot);
	if (r < 0 || !tot.module_loaded)
		return lv_refuse(error, d->name, "ramcrypt.ko is not loaded.");
	if (c->session && !prepare)
		return 0;
	if (c->session) {
		r = open_session_dir(m, c, sroot, &fd, why, sizeof(why));
		if (r == -ENOENT)
			return lv_refuse(error, d->name,
					 "your directory %s does not exist: it is made when your user manager starts (a login, or loginctl enable-linger) with ramcryptfs mounted on /run/ramcryptfs",
					 sroot);
		if (r < 0 && r != -ENOMEM)
			return lv_refuse(error, d->name, "%s", why);
		return r;
	}
	r = rc_path(m->root, base, &abs);
	if (r < 0)
		return r;
	if (statfs(abs, &sfs) < 0)
		return lv_refuse(error, d->name,
				 "its RAM would be in %s, which cannot be checked (%m): set memory_backing_dir to a ramcryptfs mount (e.g. \"/run/ramcryptfs\") in " QEMU_CONF " and restart libvirtd",
				 base);
	if ((unsigned long)sfs.f_type != RAMCRYPTFS_MAGIC)
		return lv_refuse(error, d->name,
				 "its RAM would be in %s, which is not on ramcryptfs: set memory_backing_dir to a ramcryptfs mount (e.g. \"/run/ramcryptfs\") in " QEMU_CONF " and restart libvirtd",
				 base);
	return 0;
}

/* libvirt-<machine>.json; a session's libvirt-session-<uid>-<machine>.json
 * (machine names of different users can coincide) */
static void state_file(struct manager *m, const struct unit *u, char *buf,
		       size_t len)
{
	if (u->session)
		snprintf(buf, len, "%s/libvirt-session-%u-%s.json", m->state_dir,
			 (unsigned int)u->session_uid, u->machine);
	else
		snprintf(buf, len, "%s/libvirt-%s.json", m->state_dir, u->machine);
}

static void save_state(struct manager *m, const struct unit *u)
{
	char path[4200], tmp[4300];
	_cleanup_close_ int fd = -1;
	json_object *o = json_object_new_object();

	json_object_object_add(o, "unit", json_object_new_string(u->name));
	json_object_object_add(o, "machine", json_object_new_string(u->machine));
	json_object_object_add(o, "domain", json_object_new_string(u->domain));
	json_object_object_add(o, "uuid", json_object_new_string(u->uuid));
	json_object_object_add(o, "memory_directory",
			       json_object_new_string(u->memory_dir));
	if (u->session)
		json_object_object_add(o, "session_uid",
				       json_object_new_int64(u->session_uid));
	state_file(m, u, path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = mkdir_p(m->state_dir, 0755) < 0 ? -1 :
		open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || json_object_to_fd(fd, o, JSON_C_TO_STRING_PLAIN) < 0 ||
	    fsync(fd) < 0 || rename(tmp, path) < 0) {
		log_warning("%s: cannot save %s (a restart of ramcryptd will not list it): %m",
			    u->name, path);
		(void)unlink(tmp);
	}
	json_object_put(o);
}

static void drop_state(struct manager *m, const struct unit *u)
{
	char path[4200];

	state_file(m, u, path, sizeof(path));
	(void)unlink(path);
}

/* The caller's domain of that name: the system's, or that user's session */
static struct unit *find_domain(struct manager *m, const struct lv_caller *c,
				const char *domain)
{
	for (struct unit *u = m->units; u; u = u->next)
		if (u->kind == UNIT_KIND_LIBVIRT && u->session == c->session &&
		    (!c->session || u->session_uid == c->uid) &&
		    strcmp(u->domain, domain) == 0)
			return u;
	return NULL;
}

static void drop_domain(struct manager *m, struct unit *u, const char *why)
{
	log_info("Released libvirt domain %s (%s)%s.", u->domain, u->name, why);
	drop_state(m, u);
	unit_set_state(u, UNIT_RELEASED, "");
	(void)sd_bus_emit_signal(m->bus, RC_MANAGER_PATH, RC_MANAGER_IFACE,
				 "UnitReleased", "so", u->name, u->path);
	unit_unlink(m, u);
	unit_free(u);
}

/* The directory the policy was set on: later checks look at that one,
 * not at whatever has its name by then. */
static void pin_dir(struct unit *u, int fd)
{
	struct stat st;

	if (fstat(fd, &st) == 0) {
		u->memory_dir_dev = st.st_dev;
		u->memory_dir_ino = st.st_ino;
	}
}

/*
 * A domain's unit object (not linked yet), named @name or else after the
 * machine's scope, with the policy of its memory directory, pinned to the
 * inode of @fd (-1: the caller copies a pin).
 */
static struct unit *new_domain_unit(struct manager *m,
				    const struct lv_caller *c, const char *name,
				    const char *machine, const char *domain,
				    const char *uuid, const char *dir,
				    const struct ramcrypt_dir_policy *pol,
				    int fd)
{
	/* a session's domain has no scope: named after its machine */
	_cleanup_free_ char *scope = name || c->session ? NULL :
		machine_scope(machine);

	if (c->session && !name)
		name = machine;
	struct unit *u;

	if (!name && !scope)
		return NULL;
	u = unit_new(m, name ? name : scope, "", "");
	if (!u)
		return NULL;
	u->kind = UNIT_KIND_LIBVIRT;
	u->machine = strdup(machine);
	u->domain = strdup(domain);
	u->uuid = strdup(uuid ? uuid : "");
	u->memory_dir = strdup(dir);
	if (!u->machine || !u->domain || !u->uuid || !u->memory_dir) {
		unit_free(u);
		return NULL;
	}
	u->window_pages = pol->window_pages;
	u->max_plaintext_age_ms = pol->max_plaintext_age_ms;
	u->evict_ahead_pages = pol->evict_ahead_pages;
	u->confinement = RC_CONFINE_OFF;
	u->state = UNIT_ENROLLING;
	u->session = c->session;
	u->session_uid = c->session ? c->uid : 0;
	if (fd >= 0)
		pin_dir(u, fd);
	return u;
}

static int open_memory_dir(struct manager *m, const char *dir, int *ret)
{
	_cleanup_free_ char *abs = NULL;
	_cleanup_close_ int fd = -1;
	struct statfs sfs;
	int r;

	r = rc_path(m->root, dir, &abs);
	if (r < 0)
		return r;
	fd = open(abs, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return rc_negative_errno();
	if (fstatfs(fd, &sfs) < 0)
		return rc_negative_errno();
	if ((unsigned long)sfs.f_type != RAMCRYPTFS_MAGIC)
		return -EXDEV;
	*ret = TAKE_FD(fd);
	return 0;
}

/*
 * A directory of a session domain, as its user's: @dir is below
 * RC_SESSION_DIR/<uid>, which and every directory down to @dir is owned
 * by that uid, on the same ramcryptfs, and opened without following a
 * symlink (the user can make any below their directory). The refusal
 * names the problem (in @why); -EACCES: not the caller's.
 */
static int open_session_dir(struct manager *m, const struct lv_caller *c,
			    const char *dir, int *ret, char *why, size_t len)
{
	_cleanup_free_ char *sroot = session_root(c->uid), *abs = NULL;
	_cleanup_close_ int fd = -1;
	struct statfs sfs;
	struct stat st, st0;
	const char *p;
	int r;

	if (!sroot)
		return -ENOMEM;
	if (!below(sroot, dir)) {
		snprintf(why, len, "%s is not in your directory %s", dir, sroot);
		return -EACCES;
	}
	r = rc_path(m->root, sroot, &abs);
	if (r < 0)
		return r;
	fd = open(abs, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st0) < 0) {
		r = rc_negative_errno();
		snprintf(why, len, "cannot open your directory %s: %s", sroot,
			 strerror(-r));
		return r;
	}
	if (st0.st_uid != c->uid) {
		snprintf(why, len, "%s is owned by uid %u, not by you (uid %u)",
			 sroot, (unsigned int)st0.st_uid, (unsigned int)c->uid);
		return -EACCES;
	}
	for (p = dir + strlen(sroot); *p; ) {
		size_t n = strcspn(++p, "/");
		_cleanup_free_ char *comp = strndup(p, n);
		int nfd;

		if (!comp)
			return -ENOMEM;
		nfd = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
			     O_CLOEXEC);
		if (nfd < 0 || fstat(nfd, &st) < 0) {
			r = rc_negative_errno();
			if (nfd >= 0)
				close(nfd);
			snprintf(why, len, "cannot open %.*s: %s",
				 (int)(p + n - dir), dir,
				 r == -ELOOP || r == -ENOTDIR ?
				 "not a directory (a symlink?)" : strerror(-r));
			return r;
		}
		close(fd);
		fd = nfd;
		p += n;
		if (st.st_uid != c->uid || st.st_dev != st0.st_dev) {
			snprintf(why, len, "%.*s is %s",
				 (int)(p - dir), dir,
				 st.st_dev != st0.st_dev ? "on another file system than your directory" :
				 "not owned by you");
			return -EACCES;
		}
	}
	if (fstatfs(fd, &sfs) < 0)
		return rc_negative_errno();
	if ((unsigned long)sfs.f_type != RAMCRYPTFS_MAGIC) {
		snprintf(why, len, "%s is not on ramcryptfs (is run-ramcryptfs.mount active?)",
			 dir);
		return -EXDEV;
	}
	*ret = TAKE_FD(fd);
	return 0;
}

/* The domain's memory directory, opened as its caller may */
static int open_domain_dir(struct manager *m, const struct lv_caller *c,
			   const char *dir, int *ret, char *why, size_t len)
{
	int r;

	if (c->session)
		return open_session_dir(m, c, dir, ret, why, len);
	r = open_memory_dir(m, dir, ret);
	if (r == -EXDEV)
		snprintf(why, len, "its memory directory %s is not on ramcryptfs", dir);
	else if (r < 0)
		snprintf(why, len, "cannot open its memory directory %s: %s", dir,
			 strerror(-r));
	return r;
}

/* Nothing in it yet (QEMU does not exist at the start hook) */
static bool dir_empty(int fd)
{
	_cleanup_closedir_ DIR *dir = NULL;
	struct dirent *de;
	int dfd = dup(fd);

	if (dfd < 0)
		return false;
	dir = fdopendir(dfd);
	if (!dir) {
		close(dfd);
		return false;
	}
	while ((de = readdir(dir)))
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			return false;
	return true;
}

static int hook_start(struct manager *m, const struct lv_caller *c,
		      const char *user, const struct lv_domain *d,
		      const char *base, sd_bus_error *error)
{
	struct ramcrypt_dir_policy pol, cur;
	_cleanup_free_ char *dir = NULL, *machine = NULL;
	_cleanup_close_ int fd = -1;
	char why[1024];
	struct unit *u;
	int r;

	r = check_domain(m, c, d, base, false, error);
	if (r < 0)
		return r;
	if (d->id < 0)
		return lv_refuse(error, d->name, "the hook's XML has no domain id (not a live definition)");
	r = memory_dir(m, c, base, d, &dir);
	if (r == -ENOMEM)
		return r;
	if (r < 0)
		return lv_refuse(error, d->name, "cannot find its memory directory under %s: %s",
				 base, r == -EXDEV ? "not on ramcryptfs" :
				 r == -EACCES ? "not yours" : strerror(-r));
	r = open_domain_dir(m, c, dir, &fd, why, sizeof(why));
	if (r == -ENOMEM)
		return r;
	if (r < 0)
		return lv_refuse(error, d->name, "%s", why);
	r = domain_policy(m, c, d, &pol, error);
	if (r < 0)
		return r;
	if (ioctl(fd, RAMCRYPT_IOC_SET_DIR_POLICY, &pol) < 0) {
		r = -errno;
		if (r == -EBUSY && ioctl(fd, RAMCRYPT_IOC_GET_DIR_POLICY, &cur) == 0 &&
		    cur.window_pages == pol.window_pages &&
		    cur.max_plaintext_age_ms == pol.max_plaintext_age_ms &&
		    cur.evict_ahead_pages == pol.evict_ahead_pages &&
		    cur.crypto_cpu == pol.crypto_cpu && dir_empty(fd))
			r = 0;	/* set by an earlier start hook: the same */
		else if (r == -ENOTEMPTY)
			return lv_refuse(error, d->name,
					 "its memory directory %s already holds files made without its policy (a stale directory? remove it)",
					 dir);
		else if (r == -EBUSY)
			return lv_refuse(error, d->name,
					 "its memory directory %s already has another region policy",
					 dir);
		else
			return lv_refuse(error, d->name, "cannot set the region policy of %s: %s",
					 dir, strerror(-r));
	}

	machine = libvirt_machine_name(d->id, user, d->name);
	if (!machine)
		return -ENOMEM;
	u = find_domain(m, c, d->name);
	if (u)
		drop_domain(m, u, ": started again");
	if (c->session && manager_find_unit(m, machine))
		/* libvirt's names are ambiguous: user "a-1", domain 2 "x"
		 * and user "a", domain 1 "2-x" are both qemu-a-1-2-x */
		return lv_refuse(error, d->name,
				 "another enrolled domain is already named %s",
				 machine);
	u = new_domain_unit(m, c, NULL, machine, d->name, d->uuid, dir, &pol, fd);
	if (!u)
		return -ENOMEM;
	unit_link(m, u);
	save_state(m, u);
	log_info("Enrolled libvirt domain %s%s as %s: memory directory %s, window %" PRIu32 " pages, max plaintext age %" PRIu32 " ms.",
		 d->name, lv_whose, u->name, dir, u->window_pages,
		 u->max_plaintext_age_ms);
	(void)sd_bus_emit_signal(m->bus, RC_MANAGER_PATH, RC_MANAGER_IFACE,
				 "UnitEnrolled", "so", u->name, u->path);
	return 0;
}

/* The stats of the region a file of a memory directory is */
static int region_file_stats(DIR *dir, const char *name,
			     struct ramcrypt_stats *st)
{
	_cleanup_close_ int f = openat(dirfd(dir), name, O_RDONLY | O_NOFOLLOW |
				       O_NONBLOCK | O_CLOEXEC);

	if (f < 0)
		return rc_negative_errno();
	memset(st, 0, sizeof(*st));
	if (ioctl(f, RAMCRYPT_IOC_STATS, st) < 0)
		return rc_negative_errno();
	return 0;
}

/* Every file of the directory is a region with the directory's policy. */
int libvirt_unit_verify(struct unit *u, uint64_t *bytes, char *why,
			size_t len)
{
	struct manager *m = u->m;
	_cleanup_closedir_ DIR *dir = NULL;
	_cleanup_close_ int fd = -1;
	struct dirent *de;
	unsigned int files = 0;
	int r;

	*bytes = 0;
	r = open_memory_dir(m, u->memory_dir, &fd);
	if (r < 0) {
		snprintf(why, len, "its memory directory %s %s", u->memory_dir,
			 r == -EXDEV ? "is not on ramcryptfs" : strerror(-r));
		return r;
	}
	if (u->memory_dir_ino) {
		struct stat st;

		if (fstat(fd, &st) < 0 || st.st_dev != u->memory_dir_dev ||
		    st.st_ino != u->memory_dir_ino) {
			snprintf(why, len, "its memory directory %s is not the one its policy was set on (replaced?)",
				 u->memory_dir);
			return -EPERM;
		}
	}
	dir = fdopendir(fd);
	if (!dir) {
		snprintf(why, len, "cannot read its memory directory %s: %m",
			 u->memory_dir);
		return rc_negative_errno();
	}
	fd = -1;
	while ((de = readdir(dir))) {
		_cleanup_free_ char *src = NULL;
		struct ramcrypt_stats st;
		char rel[128];

		if (de->d_name[0] == '.')
			continue;
		r = region_file_stats(dir, de->d_name, &st);
		if (r < 0) {
			snprintf(why, len, "%s/%s is not a ramcrypt region one can read: %s",
				 u->memory_dir, de->d_name, strerror(-r));
			return r;
		}
		snprintf(rel, sizeof(rel), "sys/kernel/ramcrypt/regions/%llu/policy_source",
			 (unsigned long long)st.region_id);
		r = rc_read_string(m->root, rel, &src);
		if (r >= 0 && strcmp(src, "directory") == 0) {
			_cleanup_free_ char *age = NULL;

			snprintf(rel, sizeof(rel), "sys/kernel/ramcrypt/regions/%llu/max_plaintext_age_ms",
				 (unsigned long long)st.region_id);
			if (rc_read_string(m->root, rel, &age) < 0 ||
			    strtoul(age, NULL, 10) != u->max_plaintext_age_ms)
				r = -EPERM;
		}
		if (r < 0 || strcmp(src, "directory") != 0 ||
		    st.window_pages != u->window_pages) {
			snprintf(why, len, "%s/%s is region %llu with policy from '%s' and a window of %u pages, not the domain's (%u pages)",
				 u->memory_dir, de->d_name,
				 (unsigned long long)st.region_id,
				 r < 0 ? "?" : src, st.window_pages, u->window_pages);
			return -EPERM;
		}
		*bytes += st.size;
		files++;
	}
	if (!files) {
		snprintf(why, len, "its memory directory %s holds no RAM file", u->memory_dir);
		return -ENOENT;
	}
	return 0;
}

void libvirt_unit_stats(const struct unit *u, uint32_t *regions,
			uint64_t *bytes, uint64_t *plaintext, uint64_t *faults,
			uint64_t *evictions, uint64_t *oldest)
{
	_cleanup_closedir_ DIR *dir = NULL;
	_cleanup_close_ int fd = -1;
	struct dirent *de;
	struct stat st;

	/* the directory the policy was set on, not whatever has its name */
	if (open_memory_dir(u->m, u->memory_dir, &fd) < 0 ||
	    fstat(fd, &st) < 0 || (u->memory_dir_ino &&
	    (st.st_dev != u->memory_dir_dev || st.st_ino != u->memory_dir_ino)))
		return;
	dir = fdopendir(fd);
	if (dir)
		fd = -1;
	while (dir && (de = readdir(dir))) {
		struct ramcrypt_stats st;

		if (de->d_name[0] == '.' ||
		    region_file_stats(dir, de->d_name, &st) < 0)
			continue;
		(*regions)++;
		*bytes += st.size;
		*plaintext += st.plaintext_pages;
		*faults += st.faults;
		*evictions += st.evictions_window + st.evictions_age +
			      st.evictions_flush;
		if (st.oldest_plaintext_age_ms > *oldest)
			*oldest = st.oldest_plaintext_age_ms;
	}
}

/*
 * The domain's QEMU: a qemu-system-* process whose -name says guest=<domain>
 * (libvirt doubles a ',' in the name), in the domain's machine scope for a
 * system domain (no user can move a process there), or owned by the
 * session's user outside machine.slice for a session domain. 0: none.
 */
static bool qemu_guest_name_is(const char *val, const char *domain)
{
	const char *g = NULL, *p;
	size_t i = 0;

	if (strncmp(val, "guest=", 6) == 0)
		g = val + 6;
	else if (!strchr(val, '='))
		g = val;
	else if ((p = strstr(val, ",guest=")))
		g = p + 7;
	if (!g)
		return false;
	for (; *g; g++) {
		if (*g == ',') {
			if (g[1] != ',')
				break;	/* the next option */
			g++;
		}
		if (domain[i++] != *g)
			return false;
	}
	return domain[i] == '\0';
}

static pid_t find_domain_qemu(const struct unit *u)
{
	struct manager *m = u->m;
	_cleanup_closedir_ DIR *proc = NULL;
	_cleanup_free_ char *procdir = NULL;
	struct dirent *de;

	if (rc_path(m->root, "proc", &procdir) < 0)
		return 0;
	proc = opendir(procdir);
	while (proc && (de = readdir(proc))) {
		_cleanup_free_ char *cmd = NULL, *cg = NULL;
		char rel[64], *a, *end;
		long pid = strtol(de->d_name, &end, 10);
		bool named = false, is_qemu;
		size_t len;

		if (pid <= 0 || *end)
			continue;
		snprintf(rel, sizeof(rel), "proc/%ld/cmdline", pid);
		if (rc_read_full(m->root, rel, &cmd, &len) < 0 || !len)
			continue;
		a = strrchr(cmd, '/');
		a = a ? a + 1 : cmd;
		is_qemu = strncmp(a, "qemu-system-", 12) == 0 ||
			  strcmp(a, "qemu-kvm") == 0 || strcmp(a, "kvm") == 0;
		for (a = cmd; is_qemu && a < cmd + len; a += strlen(a) + 1)
			if (strcmp(a, "-name") == 0 && a + strlen(a) + 1 < cmd + len &&
			    qemu_guest_name_is(a + strlen(a) + 1, u->domain)) {
				named = true;
				break;
			}
		if (!named)
			continue;
		snprintf(rel, sizeof(rel), "proc/%ld/cgroup", pid);
		if (rc_read_string(m->root, rel, &cg) < 0)
			continue;
		if (!u->session) {
			const char *hit = strstr(cg, u->name);
			size_t nl = strlen(u->name);

			if (hit && hit > cg && hit[-1] == '/' &&
			    (hit[nl] == '/' || hit[nl] == '\0' || hit[nl] == '\n'))
				return (pid_t)pid;
		} else {
			struct stat st;
			char path[4200];

			snprintf(path, sizeof(path), "%s/proc/%ld", procdir, pid);
			if (!strstr(cg, "/machine.slice/") && stat(path, &st) == 0 &&
			    st.st_uid == u->session_uid)
				return (pid_t)pid;
		}
	}
	return 0;
}

/*
 * After the start: the running QEMU, as services are checked (rc-qemu.c):
 * its RAM must still be on ramcryptfs and nothing else, which catches guest
 * RAM added later (a memory-backend-ram over QMP, a hotplugged DIMM on
 * anonymous memory), which no hook sees. Unprotected: the domain is
 * stopped (its scope; a session domain's QEMU is killed), unless
 * unprotected_action=warn.
 */
int libvirt_unit_check_running(struct unit *u)
{
	struct manager *m = u->m;
	struct rc_qemu_result res;
	pid_t pid;
	int r;

	if (u->state != UNIT_PROTECTED && u->state != UNIT_UNPROTECTED)
		return 0;	/* not started yet, or released */
	pid = find_domain_qemu(u);
	if (!pid)
		return 0;	/* starting, stopping, or gone: the hooks say */
	if (pid != (pid_t)u->main_pid) {
		u->main_pid = (uint32_t)pid;
		(void)sd_bus_emit_properties_changed(m->bus, u->path,
						     RC_UNIT_IFACE, "MainPID", NULL);
	}
	r = rc_qemu_check_process(m->root, pid, m->cfg.anonymous_ram_threshold,
				  &res);
	if (r < 0 || res.verdict == RC_QEMU_UNKNOWN ||
	    res.verdict == RC_QEMU_NOT_QEMU ||
	    (res.verdict == RC_QEMU_UNPROTECTED && res.ramcrypt_pending))
		return 0;
	unit_set_anonymous_bytes(u, res.anonymous_bytes);
	if (res.verdict == RC_QEMU_PROTECTED)
		return 0;
	if (u->state != UNIT_UNPROTECTED)
		log_err("%s (libvirt domain %s) is UNPROTECTED: %s", u->name,
			u->domain, res.reason);
	unit_set_state(u, UNIT_UNPROTECTED, res.reason);
	if (!u->session) {
		unit_stop_unprotected(u, "domain");	/* its machine scope */
		return 0;
	}
	/* a session domain has no scope: its QEMU goes */
	if (m->cfg.unprotected_warn || u->stop_requested)
		return 0;
	u->stop_requested = true;
	log_err("Killing QEMU (PID %d) of %s: a marked domain never runs unprotected (unprotected_action=stop).",
		(int)pid, u->name);
	if (kill(pid, SIGKILL) < 0)
		log_err("%s: cannot kill PID %d: %m", u->name, (int)pid);
	return 0;
}

/* machined's name for the scope, if it differs from the prediction */
static void resolve_scope(struct manager *m, const struct lv_caller *c,
			  struct unit *u)
{
	const struct ramcrypt_dir_policy pol = {
		.window_pages = u->window_pages,
		.max_plaintext_age_ms = u->max_plaintext_age_ms,
		.evict_ahead_pages = u->evict_ahead_pages,
		.crypto_cpu = -1,
	};
	sd_bus_error e = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	const char *path;
	char *scope = NULL;
	struct unit *nu;
	int r;

	r = sd_bus_call_method(m->bus, "org.freedesktop.machine1",
			       "/org/freedesktop/machine1",
			       "org.freedesktop.machine1.Manager", "GetMachine",
			       &e, &reply, "s", u->machine);
	if (r < 0 || sd_bus_message_read(reply, "o", &path) < 0 ||
	    sd_bus_get_property_string(m->bus, "org.freedesktop.machine1", path,
				       "org.freedesktop.machine1.Machine", "Unit",
				       &e, &scope) < 0) {
		log_debug("%s: machined does not know machine %s (%s): keeping the name %s.",
			  u->domain, u->machine, e.message ? e.message : "no reply",
			  u->name);
		goto out;
	}
	if (strcmp(scope, u->name) == 0)
		goto out;
	nu = new_domain_unit(m, c, scope, u->machine, u->domain, u->uuid,
			     u->memory_dir, &pol, -1);
	if (!nu)
		goto out;
	nu->memory_dir_dev = u->memory_dir_dev;
	nu->memory_dir_ino = u->memory_dir_ino;
	nu->state = u->state;
	log_notice("%s: machined named its scope %s, not %s.", u->domain,
		   nu->name, u->name);
	drop_domain(m, u, ": renamed");
	unit_link(m, nu);
	save_state(m, nu);
	(void)sd_bus_emit_signal(m->bus, RC_MANAGER_PATH, RC_MANAGER_IFACE,
				 "UnitEnrolled", "so", nu->name, nu->path);
out:
	free(scope);
	sd_bus_error_free(&e);
	sd_bus_message_unref(reply);
}

static int hook_started(struct manager *m, const struct lv_caller *c,
			const struct lv_domain *d, sd_bus_error *error)
{
	struct unit *u = find_domain(m, c, d->name);
	char why[1024];
	uint64_t bytes;
	int r;

	if (!u)
		return lv_refuse(error, d->name,
				 "it was not enrolled at its start (was ramcryptd restarted, or the hook installed while libvirtd ran?)");
	r = libvirt_unit_verify(u, &bytes, why, sizeof(why));
	if (r >= 0 && bytes < d->memory_bytes) {
		snprintf(why, sizeof(why), "its RAM files in %s hold %" PRIu64 " MiB, less than its <memory> of %" PRIu64 " MiB",
			 u->memory_dir, bytes >> 20, d->memory_bytes >> 20);
		r = -EPERM;
	}
	if (r < 0) {
		unit_set_state(u, UNIT_UNPROTECTED, why);
		return lv_refuse(error, d->name, "%s", why);
	}
	unit_set_state(u, UNIT_PROTECTED, "");
	log_info("%s: protected: %" PRIu64 " MiB of guest RAM on ramcryptfs in %s.",
		 u->name, bytes >> 20, u->memory_dir);
	if (!u->session)	/* no machined, no scope for a session's */
		resolve_scope(m, c, u);
	return 0;
}

static int hook_reconnect(struct manager *m, const struct lv_caller *c,
			  const char *user, const struct lv_domain *d,
			  const char *base, sd_bus_error *error)
{
	_cleanup_free_ char *dir = NULL, *machine = NULL;
	_cleanup_close_ int fd = -1;
	struct ramcrypt_dir_policy pol;
	struct unit *u = find_domain(m, c, d->name);
	char why[1024];

	if (u)
		return hook_started(m, c, d, error);
	if (d->id < 0 || memory_dir(m, c, base, d, &dir) < 0 ||
	    open_domain_dir(m, c, dir, &fd, why, sizeof(why)) < 0 ||
	    ioctl(fd, RAMCRYPT_IOC_GET_DIR_POLICY, &pol) < 0)
		return lv_refuse(error, d->name,
				 "it runs without a ramcrypt region policy on its memory directory");
	machine = libvirt_machine_name(d->id, user, d->name);
	if (!machine)
		return -ENOMEM;
	u = new_domain_unit(m, c, NULL, machine, d->name, d->uuid, dir, &pol, fd);
	if (!u)
		return -ENOMEM;
	unit_link(m, u);
	save_state(m, u);
	return hook_started(m, c, d, error);
}

int libvirt_hook(struct manager *m, const struct lv_caller *c,
		 const char *domain, const char *op, const char *subop,
		 const char *xml, sd_bus_error *error)
{
	_cleanup_free_ char *base = NULL, *user = NULL;
	struct lv_domain d;
	char err[1024];
	struct unit *u;
	int r;

	(void)subop;
	lv_whose[0] = 0;
	if (c->session)
		snprintf(lv_whose, sizeof(lv_whose),
			 " of the session libvirt of uid %u", (unsigned int)c->uid);
	if (strcmp(op, "release") == 0 || strcmp(op, "stopped") == 0) {
		/* results ignored by libvirt; the XML is not needed */
		u = find_domain(m, c, domain);
		if (u && strcmp(op, "release") == 0)
			drop_domain(m, u, "");
		else if (u)
			unit_set_state(u, UNIT_RELEASED, "");
		return 0;
	}
	r = lv_domain_parse(xml, &d, err, sizeof(err));
	if (r < 0) {
		r = lv_refuse(error, domain, "%s", err);
		lv_domain_free(&d);
		return r;
	}
	for (const char *c = d.name; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f || *c == '/') {
			r = lv_refuse(error, domain, "its name has a '/' or a control character");
			goto out;
		}
	if (strcmp(d.name, domain) != 0) {
		r = lv_refuse(error, domain, "the XML is of domain '%s'", d.name);
		goto out;
	}
	if (!d.marked) {
		r = 0;		/* not ours */
		goto out;
	}
	if (c->session) {
		/* libvirt's machine name has the session's user name */
		struct passwd pw, *res = NULL;
		char pwbuf[4096];

		if (getpwuid_r(c->uid, &pw, pwbuf, sizeof(pwbuf), &res) != 0 ||
		    !res) {
			r = lv_refuse(error, domain, "your uid %u has no user name",
				      (unsigned int)c->uid);
			goto out;
		}
		user = strdup(pw.pw_name);
		if (!user) {
			r = -ENOMEM;
			goto out;
		}
		r = session_ram_dir(c, &base, err, sizeof(err));
	} else {
		r = libvirt_ram_dir(m->root, &base, err, sizeof(err));
	}
	if (r < 0) {
		r = r == -ENOMEM ? r : lv_refuse(error, domain, "%s", err);
		goto out;
	}
	if (strcmp(op, "prepare") == 0)
		r = check_domain(m, c, &d, base, true, error);
	else if (strcmp(op, "start") == 0)
		r = hook_start(m, c, user, &d, base, error);
	else if (strcmp(op, "started") == 0)
		r = hook_started(m, c, &d, error);
	else if (strcmp(op, "reconnect") == 0)
		r = hook_reconnect(m, c, user, &d, base, error);
	else if (strcmp(op, "migrate") == 0)
		r = lv_refuse(error, domain, "migration of a RamCrypt domain is not supported (its RAM would cross the network in plaintext)");
	else
		r = 0;	/* restore, attach: XML filters, nothing to enroll */
out:
	lv_domain_free(&d);
	return r;
}

/* After a restart of ramcryptd: the domains of its state files whose
 * directory still carries a policy. */
int libvirt_rediscover(struct manager *m)
{
	_cleanup_closedir_ DIR *dir = NULL;
	const char *abs = m->state_dir;
	struct dirent *de;

	dir = opendir(abs);
	while (dir && (de = readdir(dir))) {
		_cleanup_free_ char *path = NULL;
		_cleanup_close_ int fd = -1;
		struct ramcrypt_dir_policy pol;
		json_object *o, *v[5], *suid;
		const char *keys[] = { "unit", "machine", "domain", "uuid",
				       "memory_directory" };
		struct lv_caller c = { .uid = 0 };
		struct unit *u;
		bool ok = true;
		char why[1024];

		if (strncmp(de->d_name, "libvirt-", 8) != 0 ||
		    asprintf(&path, "%s/%s", abs, de->d_name) < 0)
			continue;
		o = json_object_from_file(path);
		for (size_t i = 0; i < ELEMENTSOF(keys); i++)
			ok = ok && o && json_object_object_get_ex(o, keys[i], &v[i]) &&
			     json_object_is_type(v[i], json_type_string);
		/* a session's: its directory must still be its user's */
		if (ok && json_object_object_get_ex(o, "session_uid", &suid)) {
			c.session = true;
			c.uid = (uid_t)json_object_get_int64(suid);
			ok = json_object_is_type(suid, json_type_int) &&
			     json_object_get_int64(suid) >= 0 &&
			     json_object_get_int64(suid) < UINT32_MAX;
		}
		if (!ok || open_domain_dir(m, &c, json_object_get_string(v[4]), &fd,
					   why, sizeof(why)) < 0 ||
		    ioctl(fd, RAMCRYPT_IOC_GET_DIR_POLICY, &pol) < 0) {
			log_notice("Removing %s: its domain is gone.", path);
			(void)unlink(path);
			json_object_put(o);
			continue;
		}
		u = new_domain_unit(m, &c, json_object_get_string(v[0]),
				    json_object_get_string(v[1]),
				    json_object_get_string(v[2]),
				    json_object_get_string(v[3]),
				    json_object_get_string(v[4]), &pol, fd);
		if (u) {
			char why[1024];
			uint64_t bytes;

			unit_link(m, u);
			if (libvirt_unit_verify(u, &bytes, why, sizeof(why)) < 0)
				unit_set_state(u, UNIT_UNPROTECTED, why);
			else
				unit_set_state(u, UNIT_PROTECTED, "");
			log_info("Rediscovered libvirt domain %s (%s).", u->domain,
				 u->name);
		}
		json_object_put(o);
	}
	return 0;
}
