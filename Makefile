# gust — plain Makefile, pkg-config for every library.
#
#   make            build bin/gust (optimised, with debug info)
#   make run        install missing packages, build, run the main job
#   make test       install missing packages, build the sanitizer build, run every suite
#   make fuzz       build the libFuzzer targets (clang) and run each for FUZZ_SECONDS
#   make deps       install the Debian packages the build and the tests need
#
# Sources are found by wildcard: a new .c file in a module folder is part of the build,
# a new tests/unit/test_*.c is a new CUnit suite. Nothing else to register.

CC       ?= cc
PKGS     := yaml-0.1 libcjson libpq sqlite3 openssl libcurl libmicrohttpd hiredis librabbitmq zlib
MODULES  := core store broker-adapters cluster scheduler worker worker/operators api cli
WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
            -Wformat=2 -Wvla -Wpointer-arith -Wundef -Wwrite-strings -Wno-unused-parameter
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread -lm
CPPFLAGS := -I. -D_GNU_SOURCE
CFLAGS   ?= -O2 -g
ALLCFLAGS = -std=c11 $(WARN) $(CPPFLAGS) $(PKG_CFLAGS) $(CFLAGS) -MMD -MP
SANFLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

LIB_SRC  := $(filter-out cli/main.c,$(foreach m,$(MODULES),$(wildcard $(m)/*.c)))
# The web UI's files, embedded as byte arrays (ui/embed.sh); a generated source like the others.
UI_FILES := $(sort $(wildcard ui/*.html ui/*.js ui/*.css ui/*.svg))
LIB_SRC  += build/gen/ui_assets.c
MAIN_SRC := cli/main.c
TEST_SRC := $(wildcard tests/unit/test_*.c)
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
BENCH_SRC := $(wildcard tests/bench/bench_*.c)
BENCHES  := $(BENCH_SRC:tests/bench/%.c=bin/bench/%)

REL_OBJ  := $(LIB_SRC:%.c=build/rel/%.o)
SAN_OBJ  := $(LIB_SRC:%.c=build/san/%.o)
TESTS    := $(TEST_SRC:tests/unit/%.c=bin/tests/%)
FUZZERS  := $(FUZZ_SRC:tests/fuzz/%.c=bin/fuzz/%)

FUZZ_SECONDS ?= 60

.PHONY: all run test check unit cli-test fuzz fuzz-build deps clean bench format
all: bin/gust

bin/gust: $(REL_OBJ) build/rel/cli/main.o
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $^ $(PKG_LIBS)

bin/gust-san: $(SAN_OBJ) build/san/cli/main.o
	@mkdir -p $(@D)
	$(CC) $(SANFLAGS) -o $@ $^ $(PKG_LIBS)

build/gen/ui_assets.c: $(UI_FILES) ui/embed.sh
	@mkdir -p $(@D)
	sh ui/embed.sh $@ $(UI_FILES)

build/rel/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALLCFLAGS) -c -o $@ $<

build/san/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALLCFLAGS) $(SANFLAGS) -c -o $@ $<

bin/tests/%: tests/unit/%.c tests/unit/unit.h $(SAN_OBJ)
	@mkdir -p $(@D)
	$(CC) $(ALLCFLAGS) $(SANFLAGS) -o $@ $< $(SAN_OBJ) $(PKG_LIBS) -lcunit

# The main job: gust standalone on the example DAGs (state in $GUST_HOME, default ~/.gust).
# The examples start unpaused here so that a first run shows them running; Ctrl-C stops it.
run: deps bin/gust
	./bin/gust dags validate dags/
	./bin/gust --core.dags_folder=$(CURDIR)/dags --core.dags_are_paused_at_creation=false standalone

# Every suite, under AddressSanitizer + UBSan. Each binary exits non-zero on a failure.
# The servers the suites talk to (PostgreSQL, RabbitMQ, Redis) are started first by
# tests/services.sh, whose `env` gives the suites their URLs.
test: deps
	@bash tests/services.sh start
	@eval "$$(bash tests/services.sh env)" && $(MAKE) --no-print-directory check

check: unit cli-test

unit: $(TESTS) bin/gust-san
	@set -e; for t in $(TESTS); do echo "== $$t"; ASAN_OPTIONS=detect_leaks=1 $$t; done

cli-test: bin/gust-san
	@set -e; for t in tests/cli/*.sh; do echo "== $$t"; GUST_BIN=$(CURDIR)/bin/gust-san bash $$t; done

# Benchmarks: optimised build, real servers; figures go to docs/performance.md.
bench: deps $(BENCHES) bin/gust bin/bench/seed_api
	@bash tests/services.sh start
	@eval "$$(bash tests/services.sh env)" && set -e && for b in $(BENCHES); do echo "== $$b"; $$b; done; \
	  echo "== api (tests/bench/bench_api.sh)"; bash tests/bench/bench_api.sh; \
	  echo "== ui (tests/bench/bench_ui.mjs)"; node tests/bench/bench_ui.mjs; \
	  echo "== distributed, then the Celery peer (tests/bench/bench_dist.sh)"; bash tests/bench/bench_dist.sh

bin/bench/%: tests/bench/%.c $(REL_OBJ)
	@mkdir -p $(@D)
	$(CC) $(ALLCFLAGS) -o $@ $< $(REL_OBJ) $(PKG_LIBS)

fuzz-build:
	$(MAKE) $(FUZZERS) CC=clang

bin/fuzz/%: tests/fuzz/%.c $(LIB_SRC)
	@mkdir -p $(@D)
	clang -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined $(CPPFLAGS) $(PKG_CFLAGS) \
	  -o $@ $< $(LIB_SRC) $(PKG_LIBS)

fuzz: deps fuzz-build
	@set -e; for f in $(FUZZERS); do n=$${f##*/}; mkdir -p build/fuzz-corpus/$$n; \
	  echo "== $$n ($(FUZZ_SECONDS)s)"; \
	  $$f -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -timeout=5 \
	    build/fuzz-corpus/$$n tests/fuzz/corpus/$$n; done

deps:
	@bash tests/deps.sh

format:
	clang-format -i $(LIB_SRC) $(MAIN_SRC) $(TEST_SRC)

clean:
	rm -rf build bin

-include $(shell find build -name '*.d' 2>/dev/null)
