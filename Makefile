# kaskad - build, run, test.  `make V=1` shows full command lines.
#   make            bin/kaskad and bin/kaskad-sim (release build)
#   make run        installs what is missing, builds, starts the demo
#   make test       unit tests, fuzz corpora, end-to-end tests (ASan+UBSan build)
#   make fuzz       libFuzzer targets for FUZZ_SECONDS each, FUZZ_JOBS at once (clang)
BUILD ?= release
B := build/$(BUILD)
PKGS := libuv libmicrohttpd jansson sqlite3 libcurl openssl libpq icu-uc icu-i18n

CC ?= cc
ifeq ($(BUILD),fuzz)
CC := clang
endif

WARN := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter -Wstrict-prototypes
CFLAGS_base := -std=c11 -D_GNU_SOURCE -MMD -MP -Isrc -g $(WARN) \
	$(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lcsv -lpthread -lm

ifeq ($(BUILD),release)
CFLAGS_mode := -O2
LDFLAGS_mode :=
else ifeq ($(BUILD),asan)
# KK_TESTING: fault-injection hooks the tests use (never in bin/).
CFLAGS_mode := -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined \
	-DKK_TESTING
LDFLAGS_mode := -fsanitize=address,undefined
else ifeq ($(BUILD),fuzz)
CFLAGS_mode := -O1 -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined -DKK_FUZZING
LDFLAGS_mode := -fsanitize=address,undefined
endif
ALL_CFLAGS := $(CFLAGS_base) $(CFLAGS_mode) $(CFLAGS)

ifeq ($(V),1)
Q :=
else
Q := @
endif

LIB_SRC := $(sort $(shell find src -name '*.c' ! -name main.c))
SIM_SRC := $(sort $(wildcard sim/*.c))
UNIT_SRC := $(sort $(wildcard tests/unit/*.c))
TLIB_SRC := $(sort $(wildcard tests/lib/*.c))
FUZZ_SRC := $(sort $(wildcard fuzz/fuzz_*.c))
FUZZ_NAMES := $(patsubst fuzz/%.c,%,$(FUZZ_SRC))

LIB_OBJ := $(LIB_SRC:%.c=$(B)/%.o)
SIM_OBJ := $(SIM_SRC:%.c=$(B)/%.o)
UNIT_OBJ := $(UNIT_SRC:%.c=$(B)/%.o)
TLIB_OBJ := $(TLIB_SRC:%.c=$(B)/%.o)

.PHONY: all run test fuzz fuzz-build fuzz-run clean deps bench
# Only the release build is copied to bin/ (a sanitizer build there would
# quietly slow down every benchmark and demo).
ifeq ($(BUILD),release)
all: bin/kaskad bin/kaskad-sim
else
all: $(B)/kaskad $(B)/kaskad-sim
endif

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) -Itests/unit -Itests -c $< -o $@

$(B)/libkaskad.a: $(LIB_OBJ)
	$(Q)rm -f $@ && ar rcs $@ $^

$(B)/kaskad: $(B)/src/main.o $(B)/libkaskad.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS_mode) -o $@ $^ $(LDLIBS)

$(B)/kaskad-sim: $(SIM_OBJ) $(B)/libkaskad.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS_mode) -o $@ $^ $(LDLIBS)

$(B)/unit-tests: $(UNIT_OBJ) $(TLIB_OBJ) $(B)/libkaskad.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS_mode) -o $@ $^ $(LDLIBS)

# Corpus replay: each fuzz target linked with a plain main() (no libFuzzer).
$(B)/replay_%: $(B)/fuzz/%.o $(B)/fuzz/replay.o $(TLIB_OBJ) $(B)/libkaskad.a
	$(Q)$(CC) $(LDFLAGS_mode) -o $@ $^ $(LDLIBS)

# libFuzzer binaries (BUILD=fuzz).
$(B)/libfuzz_%: $(B)/fuzz/%.o $(TLIB_OBJ) $(B)/libkaskad.a
	$(Q)$(CC) -fsanitize=fuzzer,address,undefined -o $@ $^ $(LDLIBS)

bin/kaskad bin/kaskad-sim: bin/%: $(B)/%
	@mkdir -p bin
	$(Q)cp $< $@.tmp && mv -f $@.tmp $@

deps:
	@tools/deps.sh

# The builds that make run, test and fuzz start use every core.
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

run: deps
	@$(MAKE) --no-print-directory -j$(JOBS) all
	@tools/demo.sh

# The release build (make all) and the fuzz build run inside run-tests.sh,
# in the background at idle priority while the tests wait.
test:
	@$(MAKE) --no-print-directory -j$(JOBS) BUILD=asan build/asan/kaskad build/asan/kaskad-sim \
		build/asan/unit-tests $(FUZZ_NAMES:%=build/asan/replay_%)
	@tools/run-tests.sh

fuzz: fuzz-build
	@$(MAKE) --no-print-directory fuzz-run

fuzz-build:
	@$(MAKE) --no-print-directory -j$(JOBS) BUILD=fuzz $(FUZZ_NAMES:%=build/fuzz/libfuzz_%)

fuzz-run:
	@tools/run-fuzz.sh $(FUZZ_NAMES)

bench: all
	@bench/run.sh

clean:
	rm -rf build bin

-include $(shell find build -name '*.d' 2>/dev/null)
