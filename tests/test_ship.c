/*
 * What flotilla ships: the pipeline examples under ci/, the Dockerfile, the
 * manifest reference and make install, checked by tests/ship_check.py
 * (python3 with PyYAML) against $FLOTILLA_BIN's own help; and
 * ci/with-secret-files, which the image runs before flotilla.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* Runs tests/ship_check.py ARGS from the top of the tree; output into *out. */
static int ship_check(const char *args, char **out)
{
	char cmd[4096];
	snprintf(cmd, sizeof(cmd), "cd '%s' && /usr/bin/python3 tests/ship_check.py %s 2>&1", th_top(), args);
	return th_sh(cmd, out);
}

Test(ship, every_pipeline_yaml_parses_and_runs_what_its_image_has)
{
	char *out;
	int rc = ship_check("yaml", &out);
	cr_assert_eq(rc, 0, "ship_check yaml:\n%s", out);
	cr_assert(th_contains(out, "ship_check yaml: ok ("), "%s", out);
	free(out);
}

Test(ship, yaml_check_names_each_bad_step)
{
	char *dir = th_tmpdir();
	th_write(dir, "cloudbuild.yaml",
	         "steps:\n"
	         "  - id: migrate\n"
	         "    name: europe-docker.pkg.dev/p/pcc/flotilla:v1\n"
	         "    entrypoint: bash\n"
	         "    args:\n"
	         "      - -c\n"
	         "      - |\n"
	         "        sleep 3\n"
	         "        flotilla -e prod migrate --no-such-flag --rev v1 > m.json\n"
	         "        flotilla -e prod migrat\n"
	         "        gsutil cp m.json gs://b/m.json\n"
	         "        echo $rc\n");
	th_write(dir, "github.yml",
	         "on: push\n"
	         "jobs:\n"
	         "  migrate:\n"
	         "    runs-on: ubuntu-latest\n"
	         "    steps:\n"
	         "      - run: |\n"
	         "          set -euo pipefail\n"
	         "          ./flotilla -e prod drift --json --shadoww x\n");
	th_write(dir, "job.yaml",
	         "apiVersion: batch/v1\n"
	         "kind: Job\n"
	         "spec:\n"
	         "  template:\n"
	         "    spec:\n"
	         "      containers:\n"
	         "        - name: proxy\n"
	         "          image: gcr.io/alloydb-connectors/alloydb-auth-proxy:1.10.1\n"
	         "        - name: flotilla\n"
	         "          image: europe-docker.pkg.dev/p/pcc/flotilla:v1\n"
	         "          args: [-e, prod, status, --jsonn]\n"
	         "          volumeMounts: [{name: nope, mountPath: /x}]\n");
	char args[2048];
	snprintf(args, sizeof(args),
	         "yaml cloudbuild:%s/cloudbuild.yaml github:%s/github.yml kubernetes:%s/job.yaml", dir, dir,
	         dir);
	char *out;
	int rc = ship_check(args, &out);
	cr_assert_eq(rc, 1, "rc %d:\n%s", rc, out);
	const char *want[] = {
	    "which no earlier step built",
	    "no secretEnv for AUTH_DB_PASSWORD",
	    "does not start with 'set -euo pipefail'",
	    "waits with sleep",
	    "flotilla migrate --no-such-flag: not in 'flotilla help migrate'",
	    "flotilla has no command 'migrat'",
	    "runs gsutil, which the image (ours) does not have",
	    "$rc is no substitution",
	    "maps no exit code 127",
	    "runs-on is not a self-hosted runner",
	    "runs flotilla before any step starts the Auth Proxy",
	    "runs ./flotilla, which no earlier step makes",
	    "flotilla drift --shadoww",
	    "the proxy is not a native sidecar",
	    "the proxy has no startupProbe",
	    "flotilla status --jsonn",
	    "mounts volume nope, which the pod does not define",
	    "no secret file for ",
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		cr_expect(th_contains(out, want[i]), "expected \"%s\" in:\n%s", want[i], out);
	/* flags that exist are not reported */
	cr_expect(!th_contains(out, "--rev:"), "%s", out);
	cr_expect(!th_contains(out, "drift --json"), "%s", out);
	free(out);
	free(dir);
}

Test(ship, dockerfile_installs_packages_bookworm_has_and_runs_makefile_targets)
{
	char *out;
	int rc = ship_check("dockerfile", &out);
	cr_assert_eq(rc, 0, "ship_check dockerfile:\n%s", out);
	cr_assert(th_contains(out, "ship_check dockerfile: ok"), "%s", out);
	free(out);
}

Test(ship, dockerfile_check_names_each_problem)
{
	char *dir = th_tmpdir();
	th_write(dir, "Dockerfile",
	         "FROM debian:bookworm-slim AS build\n"
	         "RUN apt-get update && apt-get install -y build-essential\n"
	         "COPY . /src\n"
	         "RUN make no-such-target\n"
	         "FROM debian:trixie-slim\n"
	         "RUN apt-get update && apt-get install -y libgit2-1.9 libjansson4\n"
	         "COPY --from=build /src/.git /srv/.git\n"
	         "COPY ci/no-such-file /usr/local/bin/x\n"
	         "USER root\n"
	         "ENTRYPOINT [\"sh\"]\n");
	char args[1024];
	snprintf(args, sizeof(args), "dockerfile %s/Dockerfile", dir);
	char *out;
	cr_assert_eq(ship_check(args, &out), 1, "%s", out);
	const char *want[] = {
	    "FROM debian:trixie-slim: build and run on debian:bookworm-slim",
	    "RUN make no-such-target: not a target of the Makefile",
	    "installs libgit2-1.9, which bookworm does not have",
	    "the runtime stage does not install libpq5",
	    "(libgit2-1.5), which the runtime stage does not install",
	    "the image runs as root",
	    "ENTRYPOINT is not [\"flotilla\"]",
	    "COPY ci/no-such-file: not in the build context",
	    "the image lacks manifests",
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		cr_expect(th_contains(out, want[i]), "expected \"%s\" in:\n%s", want[i], out);
	/* what bookworm has and the runtime stage installs is not reported */
	cr_expect(!th_contains(out, "libjansson4"), "%s", out);
	cr_expect(!th_contains(out, "installs build-essential"), "%s", out);
	free(out);
	free(dir);
}

Test(ship, manifest_reference_documents_every_key_and_renders)
{
	char *out;
	int rc = ship_check("manpage", &out);
	cr_assert_eq(rc, 0, "ship_check manpage:\n%s", out);
	cr_assert(th_contains(out, "ship_check manpage: ok"), "%s", out);
	free(out);
}

Test(ship, make_install_and_uninstall_into_destdir)
{
	char *out;
	int rc = ship_check("install", &out);
	cr_assert_eq(rc, 0, "ship_check install:\n%s", out);
	cr_assert(th_contains(out, "ship_check install: ok"), "%s", out);
	free(out);
}

Test(ship, with_secret_files_exports_files_and_folders_by_name)
{
	char *dir = th_tmpdir();
	th_write(dir, "s/FLYWAY_PASSWORD/value", "from-a-folder\n");
	th_write(dir, "s/PCC_ADMIN_PASSWORD", "from-a-file");
	th_write(dir, "s/..data/HIDDEN", "hidden");
	char cmd[2048];
	snprintf(cmd, sizeof(cmd),
	         "FLOTILLA_SECRETS_DIR='%s/s' sh '%s/ci/with-secret-files' sh -c "
	         "'echo \"[$FLYWAY_PASSWORD][$PCC_ADMIN_PASSWORD][${HIDDEN-unset}]\"'",
	         dir, th_top());
	char *out;
	cr_assert_eq(th_sh(cmd, &out), 0, "%s", out);
	cr_assert_str_eq(out, "[from-a-folder][from-a-file][unset]\n");
	free(out);

	th_write(dir, "s/not-a-name", "x");
	snprintf(cmd, sizeof(cmd), "FLOTILLA_SECRETS_DIR='%s/s' sh '%s/ci/with-secret-files' true", dir,
	         th_top());
	cr_assert_eq(th_sh(cmd, &out), 2, "%s", out);
	cr_assert(th_contains(out, "not-a-name is not a variable name"), "%s", out);
	free(out);
	free(dir);
}
