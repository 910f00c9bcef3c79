/* SPDX-License-Identifier: MIT */
/* The machine a report describes, and small readers of /proc and /sys. */
#define _GNU_SOURCE
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

bool cli_read_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return false;
	bool ok = fgets(buf, (int)len, f) != NULL;
	fclose(f);
	if (!ok)
		return false;
	buf[strcspn(buf, "\n")] = 0;
	return true;
}

bool cli_sysfs_choice(const char *path, char *buf, size_t len)
{
	char line[256];
	if (!cli_read_line(path, line, sizeof line))
		return false;
	char *a = strchr(line, '['), *b = a ? strchr(a, ']') : NULL;
	if (!a || !b) {
		snprintf(buf, len, "%s", line);
		return true;
	}
	*b = 0;
	snprintf(buf, len, "%s", a + 1);
	return true;
}

void cli_machine(struct machine *m)
{
	memset(m, 0, sizeof *m);
	snprintf(m->cpu, sizeof m->cpu, "unknown");
	FILE *f = fopen("/proc/cpuinfo", "re");
	if (f) {
		char line[256];
		while (fgets(line, sizeof line, f)) {
			if (!strncmp(line, "model name", 10)) {
				char *v = strchr(line, ':');
				if (v) {
					v++;
					v += strspn(v, " \t");
					v[strcspn(v, "\n")] = 0;
					snprintf(m->cpu, sizeof m->cpu, "%s", v);
				}
				break;
			}
		}
		fclose(f);
	}
	m->cpus = sysconf(_SC_NPROCESSORS_ONLN);
	struct utsname u;
	if (uname(&u) == 0)
		snprintf(m->kernel, sizeof m->kernel, "%s %s %s", u.sysname, u.release, u.machine);
	time_t now = time(NULL);
	struct tm tm;
	if (localtime_r(&now, &tm))
		strftime(m->date, sizeof m->date, "%Y-%m-%d %H:%M:%S %Z", &tm);
	double load[1];
	m->load1 = getloadavg(load, 1) == 1 ? load[0] : -1;
}

void cli_machine_json(struct jw *w, const struct machine *m)
{
	jw_object(w, "machine");
	jw_str(w, "cpu", m->cpu);
	jw_int(w, "cpus", m->cpus);
	jw_str(w, "kernel", m->kernel);
	jw_str(w, "date", m->date);
	jw_num(w, "load_average_1min", m->load1);
	jw_object_end(w);
}
