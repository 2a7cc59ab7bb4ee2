# ramcrypt-host top-level build.
#   make                      userspace programs
#   make modules KVER=<rel>   tresor.ko and ramcrypt.ko for that kernel
#   make check                unit tests + VM tests on every test kernel
#   make check-quick          unit tests + VM tests on the first kernel, no slow tests
#   make bench                benchmarks (ratios against a same-run baseline)
KVER ?= $(shell uname -r)

all: userspace

userspace:
	$(MAKE) -C tests/guest
	$(MAKE) -C daemon/tresor-unlock

modules:
	$(MAKE) -C module KVER=$(KVER)

check: userspace
	tests/run --jobs 2

check-quick: userspace
	tests/run --quick

bench: userspace
	tests/run --bench

clean:
	$(MAKE) -C tests/guest clean
	$(MAKE) -C tests/guest/mbguest clean
	$(MAKE) -C daemon/tresor-unlock clean
	rm -rf module/*.o module/*.ko module/*.mod* module/.*.cmd \
		module/Module.symvers module/modules.order

.PHONY: all userspace modules check check-quick bench clean
