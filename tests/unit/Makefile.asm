# Native (userspace) build and run of tresor.ko's AES-128-XTS assembly:
# module/tresor_aesni.S + module/tresor_vaes.S with -DTRESOR_KEY_FROM_MEMORY
# (key from tresor_bench_key[] instead of DR0-DR3, no cli; otherwise the
# same code the kernel runs), tested and benchmarked against OpenSSL.
#
#   make -f tests/unit/Makefile.asm            build all three binaries
#   make -f tests/unit/Makefile.asm check      correctness, then ASan/UBSan run
#   make -f tests/unit/Makefile.asm bench      512 B/4 KiB benchmark vs the
#                                              kernel's XTS asm and OpenSSL
#
# Needs gcc, binutils with VAES/AVX-512 support (Debian 12: yes), libssl-dev;
# page_costs (static) liblz4-dev and liblzo2-dev.
#
# xts_bench's anchor, the kernel's own AES-XTS assembly
# (arch/x86/crypto/aes-xts-avx-x86_64.S of Debian's linux-source-6.12), is
# unpacked from $(KTAR) into $(KXTS_DIR) at build time (never committed) and
# assembled with kasm_shim.h standing in for <linux/linkage.h> and
# <linux/cfi_types.h>. Without the tarball xts_bench is built without it
# and says so.
ROOT      := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))/../..)
CC        ?= gcc
UBIN      := $(ROOT)/tests/unit/bin
BBIN      := $(ROOT)/tests/bench/bin
ASM       := $(ROOT)/module/tresor_aesni.S $(ROOT)/module/tresor_vaes.S
HDRS      := $(ROOT)/module/tresor_asm.h $(ROOT)/tests/unit/kasm_shim.h $(ROOT)/tests/include/xts_ieee1619.h
ASMFLAGS  := -DTRESOR_KEY_FROM_MEMORY -I$(ROOT)/module -I$(ROOT)/tests/unit -I$(ROOT)/tests/include
CFLAGS_T  := -std=gnu11 -Wall -Wextra -Werror
LIBS      := -lcrypto
CASES     ?= 10000

TEST_SRC  := $(ROOT)/tests/unit/xts_asm_test.c $(ROOT)/tests/unit/xts_regdump.S

KTAR      ?= /usr/src/linux-source-6.12.tar.xz
KXTS_DIR  := $(BBIN)/kernel-6.12
KXTS_PATH := arch/x86/crypto/aes-xts-avx-x86_64.S
KXTS_S    := $(KXTS_DIR)/$(KXTS_PATH)
KXTS_O    := $(BBIN)/kernel_aes_xts.o
ifneq ($(wildcard $(KTAR)),)
KXTS_VER  := $(shell dpkg-query -W -f='$${Package} $${Version}' linux-source-6.12 2>/dev/null)
BENCH_KX  := $(KXTS_O)
BENCH_KXF := -DHAVE_KERNEL_XTS '-DKERNEL_XTS_SRC="$(or $(KXTS_VER),$(notdir $(KTAR))) $(KXTS_PATH)"'
endif

all: $(UBIN)/xts_asm_test $(UBIN)/xts_asm_test_asan $(BBIN)/xts_bench \
	$(BBIN)/page_costs

$(UBIN)/xts_asm_test: $(TEST_SRC) $(ASM) $(HDRS)
	@mkdir -p $(UBIN)
	$(CC) $(CFLAGS_T) -O2 $(ASMFLAGS) -o $@ $(TEST_SRC) $(ASM) $(LIBS)

$(UBIN)/xts_asm_test_asan: $(TEST_SRC) $(ASM) $(HDRS)
	@mkdir -p $(UBIN)
	$(CC) $(CFLAGS_T) -O1 -g -fsanitize=address,undefined \
		-fno-sanitize-recover=all $(ASMFLAGS) -o $@ $(TEST_SRC) $(ASM) $(LIBS)

$(BBIN)/xts_bench: $(ROOT)/tests/bench/xts_bench.c $(ASM) $(HDRS) $(BENCH_KX)
	@mkdir -p $(BBIN)
	$(CC) $(CFLAGS_T) -O2 $(ASMFLAGS) $(BENCH_KXF) -o $@ \
		$(ROOT)/tests/bench/xts_bench.c $(ASM) $(BENCH_KX) $(LIBS)

# The kernel's file, unchanged; only the two headers it includes are stubs.
$(KXTS_S): $(KTAR)
	rm -rf $(KXTS_DIR)
	mkdir -p $(KXTS_DIR)/include/linux
	tar -xJf $(KTAR) -C $(KXTS_DIR) --strip-components=1 --occurrence=1 \
		--wildcards '*/$(KXTS_PATH)'
	printf '#include "kasm_shim.h"\n' >$(KXTS_DIR)/include/linux/linkage.h
	printf '/* userspace build: no CFI type hashes */\n' \
		>$(KXTS_DIR)/include/linux/cfi_types.h
	touch $@

$(KXTS_O): $(KXTS_S) $(ROOT)/tests/unit/kasm_shim.h
	$(CC) -c -DCONFIG_AS_VAES -DCONFIG_AS_VPCLMULQDQ -I$(KXTS_DIR)/include \
		-I$(ROOT)/tests/unit -o $@ $<

# Static: it runs in the test VM too (busybox, no libraries)
$(BBIN)/page_costs: $(ROOT)/tests/bench/page_costs.c $(ROOT)/tests/guest/mix64.h $(ASM) $(HDRS)
	@mkdir -p $(BBIN)
	$(CC) $(CFLAGS_T) -O2 $(ASMFLAGS) -static -o $@ $(ROOT)/tests/bench/page_costs.c $(ASM) -llz4 -llzo2

check: $(UBIN)/xts_asm_test $(UBIN)/xts_asm_test_asan
	$(UBIN)/xts_asm_test $(CASES)
	$(UBIN)/xts_asm_test_asan $(CASES)

bench: $(BBIN)/xts_bench
	$(BBIN)/xts_bench

clean:
	rm -f $(UBIN)/xts_asm_test $(UBIN)/xts_asm_test_asan $(BBIN)/xts_bench \
		$(BBIN)/page_costs $(KXTS_O)
	rm -rf $(KXTS_DIR)

.PHONY: all check bench clean
