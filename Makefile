# pgtether build. `make` builds build/pgtetherd and build/pgtether; `make test` runs
# every test (unit tests, a short round of each fuzz harness and integration tests under
# ASan+UBSan); `make fuzz FUZZ_SECONDS=N` runs each libFuzzer harness for N seconds;
# `make demo` shows a real workload being intercepted. test and demo install what is
# missing first.

CC      ?= cc
CLANG   ?= clang
BPFTOOL ?= bpftool
BUILD   ?= build

# -Wno-format-truncation: messages go into fixed buffers on purpose and are cut to fit.
CFLAGS_BASE := -std=gnu11 -O2 -g -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wno-format-truncation \
               -Wno-missing-field-initializers -D_GNU_SOURCE -fno-strict-aliasing
ifeq ($(SAN),1)
CFLAGS_BASE += -O1 -fsanitize=address,undefined -fno-sanitize-recover=undefined \
               -fno-omit-frame-pointer
LDFLAGS     += -fsanitize=address,undefined
endif
# FUZZ=1 (set by `make fuzz`, with CC=clang): libFuzzer's coverage on every object, the
# sanitizers as for SAN=1.
ifeq ($(FUZZ),1)
CFLAGS_BASE += -O1 -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -Wno-unknown-warning-option \
               -fno-omit-frame-pointer
endif
CFLAGS  += $(CFLAGS_BASE) -I$(BUILD) -Idaemon $(shell pkg-config --cflags libnl-3.0 2>/dev/null)
# --wrap: sqlclass.c plugs a leak of libpg_query 15-4.0.0's pg_query_parse_plpgsql
LDLIBS  += -Wl,--wrap=pg_query_raw_parse -lbpf -lelf -lz -ljansson -ljwt -l:libpg_query.a -lssl -lcrypto -pthread $(shell pkg-config --libs libnl-3.0 2>/dev/null)

# Pure modules: no socket, no kernel, no global; unit-tested directly.
PURE    := addr escape jsonpos cfgsrc config quota pgwire scram scrampool b64url jwks token issuers policy pgtree sqlclass sqlclass_out sqlguard searchpath prepared gate startopts record mask maskset rowmask maskednames taint fault cgroup attest attest_pool log
KERNEL  := intercept sockdiag notify tls sandbox
# the session, in the files it is being split into (issue 13)
SESSION := session refuse startup relay client_side server_side approval sbuf sessrec cancel upstream
# the privileged parent and its workers (DESIGN.md "Processes")
PRIVSEP := privsep monitor monitor_login monitor_held worker
DAEMON  := $(PURE) $(KERNEL) $(SESSION) $(PRIVSEP) control
CLI     := addr escape jsonpos cfgsrc config pgwire b64url jwks token issuers policy pgtree sqlclass sqlclass_out sqlguard searchpath prepared gate record mask maskset cgroup control log

DAEMON_OBJS := $(DAEMON:%=$(BUILD)/obj/%.o)
CLI_OBJS    := $(CLI:%=$(BUILD)/obj/%.o)
UNIT_TESTS  := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/test_*.c))

.PHONY: all deps test unit-binaries demo clean fuzz fuzz-binaries
# keep BPF objects: they are inputs of the skeleton, not throwaway intermediates
.SECONDARY:
all: $(BUILD)/pgtetherd $(BUILD)/pgtether

deps:
	@scripts/install-deps.sh

$(BUILD)/vmlinux.h:
	@mkdir -p $(@D)
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp && mv $@.tmp $@

$(BUILD)/%.bpf.o: bpf/%.bpf.c bpf/%.h $(BUILD)/vmlinux.h
	$(CLANG) -g -O2 -Wall -Werror -target bpf -D__TARGET_ARCH_x86 -I$(BUILD) -Ibpf -c $< -o $@

$(BUILD)/%.skel.h: $(BUILD)/%.bpf.o
	$(BPFTOOL) gen skeleton $< name $*_bpf > $@.tmp && mv $@.tmp $@

$(BUILD)/obj/intercept.o: $(BUILD)/intercept.skel.h

# the JSON key of each field of libpg_query's parse tree, from the installed pg_query.proto
PG_QUERY_PROTO ?= /usr/include/pg_query/pg_query.proto
$(BUILD)/pgtree_names.h: $(PG_QUERY_PROTO) scripts/pgtree-names.awk
	@mkdir -p $(@D)
	awk -f scripts/pgtree-names.awk $(PG_QUERY_PROTO) | LC_ALL=C sort > $@.tmp && mv $@.tmp $@

$(BUILD)/obj/pgtree.o: $(BUILD)/pgtree_names.h

$(BUILD)/obj/%.o: daemon/%.c daemon/*.h bpf/intercept.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/pgtetherd: $(BUILD)/obj/pgtetherd.o $(DAEMON_OBJS)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/pgtether: $(BUILD)/obj/pgtether.o $(CLI_OBJS)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/tests/test_%: tests/unit/test_%.c $(PURE:%=$(BUILD)/obj/%.o)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -DFIXTURES=\"$(CURDIR)/tests/fixtures\" $(LDFLAGS) $^ $(LDLIBS) -lcmocka -o $@

$(BUILD)/tests/test_privsep: $(BUILD)/obj/privsep.o
# the parent's request channel, with a test playing the workers (kernel modules stubbed)
$(BUILD)/tests/test_monitor: tests/stubs/kernel.c $(BUILD)/obj/privsep.o $(BUILD)/obj/monitor.o $(BUILD)/obj/monitor_login.o $(BUILD)/obj/monitor_held.o

# real loopback TCP sockets looked up and aborted (needs root)
$(BUILD)/tests/test_sockdiag: $(BUILD)/obj/sockdiag.o

# the buffers are driven over socketpairs; TLS is linked, not used
$(BUILD)/tests/test_sbuf: $(BUILD)/obj/sbuf.o $(BUILD)/obj/tls.o
# a load recorded and replayed ends with the TLS contexts built
$(BUILD)/tests/test_cfgsrc: $(BUILD)/obj/tls.o
# the sandbox is entered in forked children (the test runs as root)
$(BUILD)/tests/test_sandbox: $(BUILD)/obj/sandbox.o

# Tests run against a sanitizer build in build/san so memory errors in the daemon's
# relay fail the integration tests too, not only the unit tests.
test: deps
	$(MAKE) --no-print-directory all
	$(MAKE) --no-print-directory BUILD=build/san SAN=1 all unit-binaries
	$(MAKE) --no-print-directory BUILD=$(FUZZ_BUILD) CC=$(CLANG) FUZZ=1 fuzz-binaries
	@scripts/run-tests.sh build/san

unit-binaries: $(UNIT_TESTS)

# ---- fuzzing (tests/fuzz/README.md) ----------------------------------------------
# `make fuzz FUZZ_SECONDS=N` builds the libFuzzer harnesses into build/fuzz and runs
# each for N seconds from its seed corpus, one line per harness: "NAME: N executions".
FUZZ_BUILD   ?= build/fuzz
FUZZ_SECONDS ?= 60
FUZZ_BINS    := $(patsubst tests/fuzz/fuzz_%.c,$(BUILD)/fuzz_%,$(wildcard tests/fuzz/fuzz_*.c))

$(BUILD)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(PURE:%=$(BUILD)/obj/%.o)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Itests/fuzz -fsanitize=fuzzer,address,undefined $(filter %.c %.o,$^) $(LDLIBS) -o $@

# the session harnesses: the session code whole, the parent played by worker_stub.c
$(BUILD)/fuzz_client $(BUILD)/fuzz_server: tests/fuzz/session_fixture.c tests/fuzz/session_fixture.h \
	tests/fuzz/worker_stub.c $(filter-out $(BUILD)/obj/worker.o,$(DAEMON_OBJS))
# the root parent's request channel (tests/fuzz/fuzz_monitor.c): the kernel modules
# are tests/stubs/kernel.c, as in test_monitor; /proc, the file-system threads, the proof thread,
# recordings, kill, waitpid and connect are wrapped at link time, so the daemon's code
# is unchanged
$(BUILD)/fuzz_monitor: tests/stubs/kernel.c $(BUILD)/obj/privsep.o $(BUILD)/obj/monitor.o $(BUILD)/obj/monitor_login.o $(BUILD)/obj/monitor_held.o
$(BUILD)/fuzz_monitor: LDLIBS += -Wl,--wrap=attest_read,--wrap=attest_read_token,--wrap=attest_vouch_exe,--wrap=attest_fs_submit \
	-Wl,--wrap=attest_fs_cancel,--wrap=attest_fs_collect,--wrap=record_create,--wrap=kill,--wrap=waitpid,--wrap=connect \
	-Wl,--wrap=scrampool_submit,--wrap=scrampool_cancel,--wrap=scrampool_collect

fuzz-binaries: $(FUZZ_BINS)

fuzz:
	$(MAKE) --no-print-directory BUILD=$(FUZZ_BUILD) CC=$(CLANG) FUZZ=1 fuzz-binaries
	@scripts/fuzz.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

demo: deps all
	@scripts/demo.sh

clean:
	rm -rf build

# ---- install ------------------------------------------------------------------
# PREFIX and DESTDIR as usual. The configuration lives in /etc/pgtether whatever
# PREFIX is: that is where pgtetherd looks by default. Existing files in /etc/pgtether
# are never overwritten, and uninstall leaves /etc/pgtether and /var/lib/pgtether.
PREFIX     ?= /usr
SBINDIR    ?= $(PREFIX)/sbin
BINDIR     ?= $(PREFIX)/bin
DATADIR    ?= $(PREFIX)/share
MANDIR     ?= $(DATADIR)/man
UNITDIR    ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR ?= /etc
EXAMPLES   := $(DATADIR)/pgtether/examples
# the system user the workers run as (pgtether.json's worker_user; pgtether by default)
WORKER_USER ?= pgtether

INSTALLED_FILES := \
	$(SBINDIR)/pgtetherd $(BINDIR)/pgtether $(BINDIR)/pgtether-attach-runner \
	$(UNITDIR)/pgtether.service \
	$(MANDIR)/man1/pgtether.1 $(MANDIR)/man8/pgtetherd.8 \
	$(MANDIR)/man5/pgtether.json.5 $(MANDIR)/man5/pgtether-policy.5 \
	$(EXAMPLES)/pgtether.json $(EXAMPLES)/pgtether.example.json \
	$(EXAMPLES)/credentials.example.json $(EXAMPLES)/README.md \
	$(EXAMPLES)/policy.example.json $(EXAMPLES)/issuer.example.json $(EXAMPLES)/policy.schema.json \
	$(EXAMPLES)/policy.d/10-ci-migrations.json $(EXAMPLES)/policy.d/20-ai-agent.json $(EXAMPLES)/policy.d/30-oncall.json \
	$(EXAMPLES)/policy.d/40-backup-restore.json

.PHONY: install uninstall
install: all
	install -d -m 0755 $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) \
		$(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)$(EXAMPLES)
	install -m 0755 $(BUILD)/pgtetherd $(DESTDIR)$(SBINDIR)/pgtetherd
	install -m 0755 $(BUILD)/pgtether $(DESTDIR)$(BINDIR)/pgtether
	install -m 0755 scripts/pgtether-attach-runner $(DESTDIR)$(BINDIR)/pgtether-attach-runner
	sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' dist/pgtether.service.in > $(DESTDIR)$(UNITDIR)/pgtether.service.tmp
	chmod 0644 $(DESTDIR)$(UNITDIR)/pgtether.service.tmp
	mv $(DESTDIR)$(UNITDIR)/pgtether.service.tmp $(DESTDIR)$(UNITDIR)/pgtether.service
	install -m 0644 man/pgtether.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 0644 man/pgtetherd.8 $(DESTDIR)$(MANDIR)/man8/
	install -m 0644 man/pgtether.json.5 man/pgtether-policy.5 $(DESTDIR)$(MANDIR)/man5/
	install -m 0644 dist/pgtether.json policies/pgtether.example.json policies/README.md \
		policies/policy.example.json policies/issuer.example.json policies/policy.schema.json $(DESTDIR)$(EXAMPLES)/
	install -d -m 0755 $(DESTDIR)$(EXAMPLES)/policy.d
	install -m 0644 policies/examples/*.json $(DESTDIR)$(EXAMPLES)/policy.d/
	install -m 0600 dist/credentials.example.json $(DESTDIR)$(EXAMPLES)/
	@for d in pgtether pgtether/policy.d pgtether/issuers.d; do \
		[ -d $(DESTDIR)$(SYSCONFDIR)/$$d ] || install -d -m 0755 $(DESTDIR)$(SYSCONFDIR)/$$d; \
	done
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/pgtether/pgtether.json ]; then \
		echo "kept the existing $(DESTDIR)$(SYSCONFDIR)/pgtether/pgtether.json"; \
	else \
		install -m 0644 dist/pgtether.json $(DESTDIR)$(SYSCONFDIR)/pgtether/pgtether.json; \
	fi
	@# A staged install (DESTDIR, packaging) must not add users to the build host.
	@if [ -n "$(DESTDIR)" ]; then \
		echo "not creating the workers' system user '$(WORKER_USER)' for a DESTDIR install: on the target host run scripts/worker-user.sh $(WORKER_USER), or as root: useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin --user-group $(WORKER_USER)"; \
	else \
		scripts/worker-user.sh $(WORKER_USER); \
	fi

uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED_FILES))
	-rmdir $(DESTDIR)$(EXAMPLES)/policy.d $(DESTDIR)$(EXAMPLES) $(DESTDIR)$(DATADIR)/pgtether 2>/dev/null
	@echo "left $(DESTDIR)$(SYSCONFDIR)/pgtether and $(DESTDIR)/var/lib/pgtether in place: remove them yourself if they are no longer needed"
	@echo "left the workers' system user '$(WORKER_USER)' in place: userdel $(WORKER_USER) removes it"
