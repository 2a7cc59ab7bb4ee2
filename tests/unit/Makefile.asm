# Native (userspace) build and run of tresor.ko's AES-128-XTS assembly:
# module/tresor_aesni.S + module/tresor_vaes.S with -DTRESOR_KEY_FROM_MEMORY
# (key from tresor_bench_key[] instead of DR0-DR3, no cli; otherwise the
# same code the kernel runs), tested and benchmarked against OpenSSL.
#
#   make -f tests/unit/Makefile.asm            build all three binaries
#   make -f tests/unit/Makefile.asm check      correctness, then ASan/UBSan run
#   make -f tests/unit/Makefile.asm bench      4 KiB benchmark vs OpenSSL
#
# Needs gcc, binutils with VAES/AVX-512 support (Debian 12: yes), libssl-dev;
# page_costs (static) liblz4-dev and liblzo2-dev.
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

all: $(UBIN)/xts_asm_test $(UBIN)/xts_asm_test_asan $(BBIN)/xts_bench \
	$(BBIN)/page_costs

$(UBIN)/xts_asm_test: $(TEST_SRC) $(ASM) $(HDRS)
	@mkdir -p $(UBIN)
	$(CC) $(CFLAGS_T) -O2 $(ASMFLAGS) -o $@ $(TEST_SRC) $(ASM) $(LIBS)

$(UBIN)/xts_asm_test_asan: $(TEST_SRC) $(ASM) $(HDRS)
	@mkdir -p $(UBIN)
	$(CC) $(CFLAGS_T) -O1 -g -fsanitize=address,undefined \
		-fno-sanitize-recover=all $(ASMFLAGS) -o $@ $(TEST_SRC) $(ASM) $(LIBS)

$(BBIN)/xts_bench: $(ROOT)/tests/bench/xts_bench.c $(ASM) $(HDRS)
	@mkdir -p $(BBIN)
	$(CC) $(CFLAGS_T) -O2 $(ASMFLAGS) -o $@ $(ROOT)/tests/bench/xts_bench.c $(ASM) $(LIBS)

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
		$(BBIN)/page_costs

.PHONY: all check bench clean
