/*
 * bench/connfloor: the floor of a fleet's no-op. Reads database names (one a
 * line) on stdin and, in J threads, opens one libpq connection to each
 * (PGHOST, PGPORT, PGUSER from the environment), runs one query (default
 * `SELECT 1`) and closes it: what any tool that reads each database must
 * at least cost the server. Prints the count and the seconds.
 *
 *   connfloor [-j J] [-c SQL] < names
 *
 * Exits 1 at the first connection or query that fails.
 */
#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char **names;
static size_t nnames;
static atomic_size_t next_name;
static const char *query = "SELECT 1";
static atomic_int failed;

static void *worker(void *arg)
{
	(void)arg;
	for (;;) {
		size_t i = atomic_fetch_add(&next_name, 1);
		if (i >= nnames || atomic_load(&failed))
			return NULL;
		const char *keys[] = {"dbname", "application_name", NULL};
		const char *vals[] = {names[i], "connfloor", NULL};
		PGconn *c = PQconnectdbParams(keys, vals, 1);
		if (PQstatus(c) != CONNECTION_OK) {
			fprintf(stderr, "connfloor: %s: %s", names[i], PQerrorMessage(c));
			atomic_store(&failed, 1);
		} else {
			PGresult *r = PQexec(c, query);
			if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK) {
				fprintf(stderr, "connfloor: %s: %s", names[i], PQerrorMessage(c));
				atomic_store(&failed, 1);
			}
			PQclear(r);
		}
		PQfinish(c);
	}
}

int main(int argc, char **argv)
{
	int jobs = 8, opt;
	while ((opt = getopt(argc, argv, "j:c:")) != -1) {
		if (opt == 'j')
			jobs = atoi(optarg);
		else if (opt == 'c')
			query = optarg;
		else {
			fprintf(stderr, "usage: connfloor [-j J] [-c SQL] < names\n");
			return 2;
		}
	}
	if (jobs < 1 || jobs > 1000)
		jobs = 8;
	char line[256];
	size_t cap = 0;
	while (fgets(line, sizeof(line), stdin)) {
		line[strcspn(line, "\r\n")] = '\0';
		if (!*line)
			continue;
		if (nnames == cap) {
			cap = cap ? cap * 2 : 64;
			names = realloc(names, cap * sizeof(*names));
			if (!names)
				return 1;
		}
		names[nnames++] = strdup(line);
	}
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pthread_t th[1000];
	int n = (size_t)jobs < nnames ? jobs : (int)nnames;
	for (int i = 0; i < n; i++)
		pthread_create(&th[i], NULL, worker, NULL);
	for (int i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("%zu connections, %d at a time: %.3f s\n", nnames, n, s);
	for (size_t i = 0; i < nnames; i++)
		free(names[i]);
	free(names);
	return atomic_load(&failed) ? 1 : 0;
}
