# Postern - plain make, no autotools.
#   make            build every program into build/bin/
#   make check      build, then run unit and integration tests (ends "N passed, N failed")
#   make run        create ./run/ (config, queue, Maildirs, certificate) and start in foreground
#   make install    PREFIX=/usr/local DESTDIR=
#   make clean
#   SAN=1           build with AddressSanitizer and UndefinedBehaviorSanitizer

CC      ?= gcc
PREFIX  ?= /usr/local
DESTDIR ?=
B       := build

WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wformat=2 -Wno-format-nonliteral
HARDEN  := -fstack-protector-strong -D_FORTIFY_SOURCE=2 -fPIE
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE $(WARN) $(HARDEN) -Ilibcommon -Ilibsmtp -Ilibtls -MMD -MP
LDFLAGS += -pie -Wl,-z,relro,-z,now
LDLIBS  := -ldb-5.3 -lssl -lcrypto -lpcre2-8 -lcrypt -lpthread
# Per-program extra libraries: LDLIBS_<program> (LDLIBS_<name>_test for a unit test).
LDLIBS_smtp := -lunbound
LDLIBS_smtpd := -lunbound
LDLIBS_dns_test := -lunbound
LDLIBS_smtpd_dns_test := -lunbound

ifeq ($(SAN),1)
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -U_FORTIFY_SOURCE
LDFLAGS += -fsanitize=address,undefined
endif

# Libraries: every .c in the folder.
COMMON_SRC := $(wildcard libcommon/*.c)
SMTP_SRC   := $(wildcard libsmtp/*.c)
TLS_SRC    := $(wildcard libtls/*.c)
COMMON_LIB := $(B)/lib/libcommon.a
SMTP_LIB   := $(B)/lib/libsmtp.a
TLS_LIB    := $(B)/lib/libtls.a
LIBS       := $(TLS_LIB) $(SMTP_LIB) $(COMMON_LIB)

obj = $(patsubst %.c,$(B)/obj/%.o,$(1))

# Programs: one folder each.
DAEMONS  := master smtpd qmgr local smtp anvil
PROGRAMS := $(addprefix $(B)/bin/,$(DAEMONS) postern)
LINKS    := $(addprefix $(B)/bin/,sendmail mailq newaliases)

UNIT_SRC   := $(wildcard tests/unit/*_test.c)
UNIT_BINS  := $(patsubst tests/unit/%.c,$(B)/tests/%,$(UNIT_SRC))

.PHONY: all check unit integration run install clean deps bench fuzz
all: $(PROGRAMS) $(LINKS)

$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(COMMON_LIB): $(call obj,$(COMMON_SRC))
$(SMTP_LIB): $(call obj,$(SMTP_SRC))
$(TLS_LIB): $(call obj,$(TLS_SRC))
$(B)/lib/%.a:
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

define program
$(B)/bin/$(1): $(call obj,$(wildcard $(2)/*.c)) $(LIBS)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS) -o $$@ $$(call obj,$$(wildcard $(2)/*.c)) $$(LIBS) $$(LDLIBS_$(1)) $$(LDLIBS)
endef
$(foreach d,$(DAEMONS),$(eval $(call program,$(d),daemons/$(d))))
$(eval $(call program,postern,cli))

$(LINKS): $(B)/bin/postern
	ln -sf postern $@

$(B)/tests/%: $(B)/obj/tests/unit/%.o $(LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(LIBS) $(LDLIBS_$*) $(LDLIBS)

# libFuzzer targets (clang), not part of `make check`: make fuzz; then e.g.
#   $(B)/fuzz/fuzz_smtp_data -max_total_time=60
FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(B)/fuzz/%,$(wildcard tests/fuzz/fuzz_*.c))
fuzz: $(FUZZ_BINS)
$(B)/fuzz/%: tests/fuzz/%.c $(SMTP_SRC) $(COMMON_SRC)
	@mkdir -p $(dir $@)
	clang -g -O1 -std=c11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined \
	    -Ilibcommon -Ilibsmtp -o $@ $< $(SMTP_SRC) $(COMMON_SRC) -lunbound $(LDLIBS)

deps:
	@tools/install-deps

check: deps all $(UNIT_BINS)
	@tools/run-tests $(UNIT_BINS)

unit: all $(UNIT_BINS)
	@tools/run-tests --unit-only $(UNIT_BINS)

integration: all
	@tools/run-tests --integration-only

run: deps all
	@tools/make-run

bench: deps all
	@tools/bench $(if $(QUICK),--quick)

install: all
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/libexec/postern
	install -m 0755 $(B)/bin/postern $(DESTDIR)$(PREFIX)/sbin/postern
	for l in sendmail mailq newaliases; do ln -sf postern $(DESTDIR)$(PREFIX)/sbin/$$l; done
	for d in $(DAEMONS); do install -m 0755 $(B)/bin/$$d $(DESTDIR)$(PREFIX)/libexec/postern/$$d; done
	install -d $(DESTDIR)$(PREFIX)/share/postern
	install -m 0644 conf/postern.conf $(DESTDIR)$(PREFIX)/share/postern/postern.conf.default
	install -m 0644 conf/postern.service $(DESTDIR)$(PREFIX)/share/postern/postern.service

clean:
	rm -rf $(B)

-include $(shell find $(B)/obj -name '*.d' 2>/dev/null)

# Keep test objects between runs.
.SECONDARY:
