# flotilla: see README.md. GNU make; every library through pkg-config.
#
#   make            ./flotilla (optimised) and build/toml-decoder
#   make test       ASan+UBSan build, every unit and integration test, toml-test,
#                   the threaded tests under TSan; ends with Criterion's summary
#   make tsan       the threaded tests under ThreadSanitizer
#   make test-faults  seeded crash, race and signal trials (tests/faults/run), after make test in CI
#   make demo       throwaway PostgreSQL + migrate the seven services of manifests/pcc.toml
#   make bench      benchmarks (bench/README.md)
#   make bench-engine / bench-drift   per-migration cost; where drift's time goes
#   make bench-lint lint of 5,000 generated migration files (target: under 1 s)
#   make bench-git  gitdiff on a generated 20,000-commit repository (GITBENCH_REPO, made once)
#   make fuzz-NAME  libFuzzer target tests/fuzz/fuzz_NAME.c (FUZZ_TIME seconds, default 600)
#   make deps       install the missing Debian packages (as root), or print the apt-get line
#   make install    binary, man pages, completions under $(DESTDIR)$(PREFIX) (default /usr/local)
#   make uninstall  removes what make install put there
#   make deb        build/deb/flotilla_<version>_<arch>.deb (Depends from dpkg-shlibdeps)
#   make test-deb   the .deb in a clean bookworm root (mmdebstrap, as root): install, migrate the demo
#   make format / lint / clean

CC      ?= cc
PKGS    := libpq libgit2 jansson zlib
TESTPKGS := criterion
DEBS    := build-essential pkg-config libpq-dev libgit2-dev libjansson-dev zlib1g-dev \
           libcriterion-dev postgresql postgresql-client clang libclang-rt-14-dev \
           cppcheck clang-format python3 python3-yaml man-db git util-linux procps tmux \
           libpg-query-dev python3-jsonschema chromium groff-base bsdextrautils \
           alembic python3-sqlalchemy python3-psycopg2
VERSION := 0.1.0

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# libpg_query (PostgreSQL's parser, for lint) ships no pkg-config file: its static library by name
PGQUERY_LIBS := -l:libpg_query.a
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null) $(PGQUERY_LIBS) -lpthread
TEST_CFLAGS := $(shell pkg-config --cflags $(TESTPKGS) 2>/dev/null)
TEST_LIBS   := $(shell pkg-config --libs $(TESTPKGS) 2>/dev/null)

WARN    := -Wall -Wextra -Werror -Wno-unused-parameter
BASE    := -std=c11 -D_GNU_SOURCE -DFL_VERSION='"$(VERSION)"' -Icore -Ibuild/gen $(WARN) $(PKG_CFLAGS)
REL_CFLAGS  := $(BASE) -O2 -g
ASAN_CFLAGS := $(BASE) -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
TSAN_CFLAGS := $(BASE) -O1 -g -fno-omit-frame-pointer -fsanitize=thread

CORE_SRC := $(sort $(wildcard core/*.c))
CMD_SRC  := $(sort $(wildcard cmd/*.c))
TEST_SRC := $(sort $(wildcard tests/test_*.c)) tests/harness.c tests/faultproxy.c
CTRL_SQL := $(sort $(wildcard migrations/*.sql))
GEN      := build/gen/control_sql.c
HDRS     := $(wildcard core/*.h cmd/*.h tests/*.h)

.PHONY: all test test-one tsan demo bench deps format lint clean check-deps install uninstall deb test-deb
all: flotilla build/toml-decoder

# Generated: flotilla's own control schema, embedded into the binary.
$(GEN): $(CTRL_SQL) ci/embed-sql
	@mkdir -p build/gen
	sh ci/embed-sql $(CTRL_SQL) > $@.tmp && mv $@.tmp $@

define variant
build/$(1)/%.o: %.c $(HDRS)
	@mkdir -p $$(dir $$@)
	$$(CC) $(2) -c $$< -o $$@
build/$(1)/gen/%.o: build/gen/%.c
	@mkdir -p $$(dir $$@)
	$$(CC) $(2) -c $$< -o $$@
build/$(1)/libflotilla.a: $$(CORE_SRC:%.c=build/$(1)/%.o) build/$(1)/gen/control_sql.o
	@rm -f $$@
	ar rcs $$@ $$^
build/$(1)/flotilla: $$(CMD_SRC:%.c=build/$(1)/%.o) build/$(1)/libflotilla.a
	$$(CC) $(2) $$^ -o $$@ $(PKG_LIBS)
build/$(1)/flotilla-tests: $$(TEST_SRC:%.c=build/$(1)/%.o) build/$(1)/libflotilla.a
	$$(CC) $(2) $$^ -o $$@ $(TEST_LIBS) $(PKG_LIBS)
build/$(1)/tests/%.o: tests/%.c $(HDRS)
	@mkdir -p $$(dir $$@)
	$$(CC) $(2) $(TEST_CFLAGS) -c $$< -o $$@
endef
$(eval $(call variant,rel,$(REL_CFLAGS)))
$(eval $(call variant,asan,$(ASAN_CFLAGS)))
$(eval $(call variant,tsan,$(TSAN_CFLAGS)))

flotilla: build/rel/flotilla
	cp $< $@

build/toml-decoder: build/rel/tests/toml_decoder.o build/rel/libflotilla.a
	$(CC) $(REL_CFLAGS) $^ -o $@ $(PKG_LIBS)

build/asan/toml-decoder: build/asan/tests/toml_decoder.o build/asan/libflotilla.a
	$(CC) $(ASAN_CFLAGS) $^ -o $@ $(PKG_LIBS)

deps:
	@sh ci/deps $(DEBS)

test: deps
	$(MAKE) build/asan/flotilla build/asan/flotilla-tests build/asan/toml-decoder build/tsan/flotilla
	sh tests/run

# make test-faults: seeded kill -9, race, signal and server-crash trials against the release
# binary, each followed by a rerun that must converge (tests/faults/run; FAULT_SEED=N repeats one)
.PHONY: test-faults
test-faults: build/rel/flotilla
	/usr/bin/python3 tests/faults/run

# make test-one T='suite/*': only those tests (ASan build), for work on one module
test-one:
	$(MAKE) build/asan/flotilla build/asan/flotilla-tests
	FLOTILLA_TEST_FILTER='$(T)' sh tests/run

tsan: deps
	$(MAKE) build/tsan/flotilla build/asan/flotilla-tests
	FLOTILLA_TSAN_ONLY=1 sh tests/run

demo: deps
	$(MAKE) flotilla
	sh ci/demo

bench: deps
	$(MAKE) flotilla
	sh bench/run
	BENCH_LATENCY_MS=1 sh bench/run

# the same measurements over TCP through bench/latproxy, 1 ms each way (bench/README.md)
.PHONY: bench-latency
bench-latency: deps
	$(MAKE) flotilla
	BENCH_LATENCY_MS=1 sh bench/run

# bench/README.md: 1,000 trivial migrations on one service; drift on 7 x 200 tables
.PHONY: bench-engine bench-drift bench-lint
bench-engine: deps
	$(MAKE) flotilla
	sh bench/engine-1000

bench-drift: deps
	$(MAKE) flotilla
	sh bench/drift-200

# flotilla lint over 5,000 generated files (bench/lint-5000); under 1 s is the target
bench-lint:
	$(MAKE) flotilla
	sh bench/lint-5000

build/rel/gitdiff_bench: build/rel/tests/gitdiff_bench.o build/rel/libflotilla.a
	$(CC) $(REL_CFLAGS) $^ -o $@ $(PKG_LIBS)

# The repository takes a minute or two to generate; it is kept for the next run.
GITBENCH_REPO ?= /tmp/flotilla-gitbench
.PHONY: bench-git
bench-git: build/rel/gitdiff_bench
	test -d $(GITBENCH_REPO) || python3 bench/gen-git-repo $(GITBENCH_REPO)
	build/rel/gitdiff_bench $(GITBENCH_REPO)

FUZZ_TIME ?= 600
build/fuzz/%: tests/fuzz/%.c $(CORE_SRC) $(HDRS) $(GEN)
	@mkdir -p build/fuzz
	clang $(BASE) -O1 -g -fsanitize=fuzzer,address,undefined $< $(CORE_SRC) $(GEN) -o $@ $(PKG_LIBS)
fuzz-%: build/fuzz/fuzz_%
	sh tests/fuzz/run $* $(FUZZ_TIME)

# Installation. The man pages and completions are installed when they exist
# (man/flotilla.1 and completion/ are generated from cmd/'s option table).
PREFIX  ?= /usr/local
DESTDIR ?=
BINDIR      = $(PREFIX)/bin
MANDIR      = $(PREFIX)/share/man
BASHCOMPDIR = $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR  = $(PREFIX)/share/zsh/site-functions
INSTALL ?= install
MANPAGES := man/flotilla.1 man/flotilla.toml.5
# the binary to install (tests install the ASan build)
INSTALL_BIN ?= flotilla

install: $(INSTALL_BIN)
	$(INSTALL) -d '$(DESTDIR)$(BINDIR)'
	$(INSTALL) -m 755 '$(INSTALL_BIN)' '$(DESTDIR)$(BINDIR)/flotilla'
	@set -e; for page in $(MANPAGES); do \
	  [ -f "$$page" ] || { echo "install: $$page not there yet, skipped"; continue; }; \
	  sec=$${page##*.}; \
	  $(INSTALL) -d "$(DESTDIR)$(MANDIR)/man$$sec"; \
	  echo "$(INSTALL) -m 644 $$page $(DESTDIR)$(MANDIR)/man$$sec/"; \
	  $(INSTALL) -m 644 "$$page" "$(DESTDIR)$(MANDIR)/man$$sec/"; \
	done
	@set -e; for f in completion/flotilla.bash completion/flotilla; do \
	  [ -f "$$f" ] || continue; \
	  $(INSTALL) -d '$(DESTDIR)$(BASHCOMPDIR)'; \
	  echo "$(INSTALL) -m 644 $$f $(DESTDIR)$(BASHCOMPDIR)/flotilla"; \
	  $(INSTALL) -m 644 "$$f" '$(DESTDIR)$(BASHCOMPDIR)/flotilla'; break; \
	done
	@set -e; for f in completion/_flotilla completion/flotilla.zsh; do \
	  [ -f "$$f" ] || continue; \
	  $(INSTALL) -d '$(DESTDIR)$(ZSHCOMPDIR)'; \
	  echo "$(INSTALL) -m 644 $$f $(DESTDIR)$(ZSHCOMPDIR)/_flotilla"; \
	  $(INSTALL) -m 644 "$$f" '$(DESTDIR)$(ZSHCOMPDIR)/_flotilla'; break; \
	done

uninstall:
	rm -f '$(DESTDIR)$(BINDIR)/flotilla' '$(DESTDIR)$(MANDIR)/man1/flotilla.1' \
	  '$(DESTDIR)$(MANDIR)/man5/flotilla.toml.5' '$(DESTDIR)$(BASHCOMPDIR)/flotilla' \
	  '$(DESTDIR)$(ZSHCOMPDIR)/_flotilla'

# A Debian package of a staged `make install` (PREFIX=/usr); ci/mkdeb says how.
# flotilla(1) is written from the command table (cmd/options.c); a test keeps it current.
.PHONY: man
# plain text of flotilla.toml(5), no hyphenation (tests/test_cli.c renders it the same way)
MANIFEST_REF_TEXT = groff -man -Tascii -P-cbou -rHY=0 man/flotilla.toml.5
# `flotilla help manifest` shows flotilla.toml(5) as text, embedded as cmd/manifest_ref.c.
man: flotilla
	./flotilla help --man > man/flotilla.1
	$(MANIFEST_REF_TEXT) > build/manifest_ref.txt
	sh ci/embed-text fl_cli_manifest_reference build/manifest_ref.txt > cmd/manifest_ref.c
	clang-format -i cmd/manifest_ref.c
	$(MAKE) flotilla

deb: flotilla
	sh ci/mkdeb $(VERSION)

# Not part of make test: it needs root and the Debian mirror (a few minutes).
test-deb: deb
	sh ci/test-deb build/deb/flotilla_$(VERSION)_$$(dpkg --print-architecture).deb

format:
	clang-format -i core/*.[ch] cmd/*.[ch] tests/*.[ch] tests/fuzz/*.c bench/*.c
lint:
	clang-format --dry-run --Werror core/*.[ch] cmd/*.[ch] tests/*.[ch] tests/fuzz/*.c bench/*.c
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability --inline-suppr \
	  --suppress=missingIncludeSystem -Icore core cmd

clean:
	rm -rf build flotilla
