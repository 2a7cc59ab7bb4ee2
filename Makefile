# ramcrypt-host top-level build.
#   make                      userspace programs
#   make modules KVER=<rel>   tresor.ko and ramcrypt.ko for that kernel
#   make check                installs what is missing, unit tests + VM tests on every test kernel
#   make check-quick          unit tests + VM tests on the first kernel, no slow tests
#   make bench                benchmarks (ratios against a same-run baseline)
#   make demo                 a stock host and a ramcrypt-host under a simulated
#                             cold-boot attack, side by side (demo/run.py)
#   make install DESTDIR=...  install userspace (modules go through DKMS)
KVER ?= $(shell uname -r)

all: userspace

userspace:
	$(MAKE) -C daemon/shared
	$(MAKE) -C tests/guest
	$(MAKE) -C daemon/tresor-unlock
	$(MAKE) -C daemon/generator
	$(MAKE) -C daemon/ramcryptd
	$(MAKE) -C daemon/ramcryptctl

modules:
	$(MAKE) -C module KVER=$(KVER)

# Each first installs what is missing (tests/install-deps: apt, root only
# then), so that `make userspace` finds its libraries.
check:
	tests/install-deps
	$(MAKE) userspace
	tests/run --jobs 2

check-quick:
	tests/install-deps
	$(MAKE) userspace
	tests/run --quick

bench:
	tests/install-deps
	$(MAKE) userspace
	tests/run --bench

demo:
	tests/install-deps
	$(MAKE) userspace
	demo/run.py

PREFIX     ?= /usr
LIBDIR     := $(PREFIX)/lib
DRACUTDIR  := $(LIBDIR)/dracut/modules.d/90tresor
ITOOLSDIR  := $(PREFIX)/share/initramfs-tools
UNITDIR    := $(LIBDIR)/systemd/system
UDEVDIR    := $(LIBDIR)/udev/rules.d
DOCDIR     := $(PREFIX)/share/doc/ramcrypt-host

install:
	$(MAKE) -C daemon/tresor-unlock install DESTDIR=$(DESTDIR) \
		LIBEXECDIR=$(LIBDIR)/ramcrypt
	install -D -m 0755 -t $(DESTDIR)$(DRACUTDIR) \
		dracut/90tresor/module-setup.sh dracut/90tresor/parse-tresor.sh \
		dracut/90tresor/tresor-unlock.sh dracut/90tresor/tresor-emergency.sh
	install -m 0644 -t $(DESTDIR)$(DRACUTDIR) \
		dracut/90tresor/tresor-unlock.service
	install -D -m 0755 initramfs-tools/hooks/tresor \
		$(DESTDIR)$(ITOOLSDIR)/hooks/tresor
	install -D -m 0755 initramfs-tools/scripts/local-top/tresor \
		$(DESTDIR)$(ITOOLSDIR)/scripts/local-top/tresor
	install -D -m 0755 initramfs-tools/scripts/local-block/tresor \
		$(DESTDIR)$(ITOOLSDIR)/scripts/local-block/tresor
	install -D -m 0644 -t $(DESTDIR)$(UNITDIR) systemd/tresor-unlock.service
	install -D -m 0755 systemd/tresor-generator \
		$(DESTDIR)$(LIBDIR)/systemd/system-generators/tresor-generator
	install -D -m 0644 -t $(DESTDIR)$(UDEVDIR) udev/60-ramcrypt.rules
	install -D -m 0644 README.md $(DESTDIR)$(DOCDIR)/README.md
	install -D -m 0644 daemon/tresor-unlock/README.md \
		$(DESTDIR)$(DOCDIR)/tresor-unlock.md
	$(MAKE) -C daemon/generator install DESTDIR=$(DESTDIR) \
		SYSTEMGENERATORDIR=$(LIBDIR)/systemd/system-generators
	install -D -m 0644 docs/man/ramcrypt.unit.5 \
		$(DESTDIR)$(PREFIX)/share/man/man5/ramcrypt.unit.5
	$(MAKE) -C daemon/ramcryptd install DESTDIR=$(DESTDIR) \
		LIBEXECDIR=$(LIBDIR)/ramcrypt
	$(MAKE) -C daemon/ramcryptctl install DESTDIR=$(DESTDIR) \
		BINDIR=$(PREFIX)/bin
	install -D -m 0644 -t $(DESTDIR)$(PREFIX)/share/dbus-1/system.d \
		dbus/org.ramcrypt.RamCrypt1.conf
	install -D -m 0644 -t $(DESTDIR)$(PREFIX)/share/dbus-1/system-services \
		dbus/org.ramcrypt.RamCrypt1.service
	install -D -m 0644 -t $(DESTDIR)$(UNITDIR) systemd/ramcryptd.service \
		systemd/ramcrypt-host.service systemd/run-ramcryptfs.mount
	install -D -m 0644 systemd/libvirtd.service.d/ramcrypt.conf \
		$(DESTDIR)$(UNITDIR)/libvirtd.service.d/ramcrypt.conf
	install -D -m 0644 systemd/libvirtd.service.d/ramcrypt.conf \
		$(DESTDIR)$(UNITDIR)/virtqemud.service.d/ramcrypt.conf
	install -D -m 0644 'systemd/user-runtime-dir@.service.d/ramcrypt.conf' \
		'$(DESTDIR)$(UNITDIR)/user-runtime-dir@.service.d/ramcrypt.conf'
	install -D -m 0755 systemd/ramcrypt-session-dir \
		$(DESTDIR)$(LIBDIR)/ramcrypt/ramcrypt-session-dir
	install -D -m 0755 etc/libvirt/hooks/qemu.d/50-ramcrypt \
		$(DESTDIR)/etc/libvirt/hooks/qemu.d/50-ramcrypt
	install -D -m 0644 etc/ramcrypt/ramcryptd.json \
		$(DESTDIR)/etc/ramcrypt/ramcryptd.json
	install -D -m 0644 -t $(DESTDIR)$(PREFIX)/share/man/man8 \
		docs/man/ramcryptd.8 docs/man/ramcryptctl.8
	install -D -m 0644 -t $(DESTDIR)$(PREFIX)/share/man/man5 \
		docs/man/ramcryptd.json.5
	install -D -m 0644 -t $(DESTDIR)$(PREFIX)/share/man/man5 \
		docs/man/tresortab.5 docs/man/ramcryptfs.5
	install -D -m 0644 -t $(DESTDIR)$(PREFIX)/share/man/man8 \
		docs/man/tresor-unlock.8

clean:
	$(MAKE) -C daemon/shared clean
	$(MAKE) -C tests/guest clean
	$(MAKE) -C tests/guest/mbguest clean
	$(MAKE) -C daemon/tresor-unlock clean
	$(MAKE) -C daemon/ramcryptd clean
	$(MAKE) -C daemon/ramcryptctl clean
	rm -rf module/*.o module/*.ko module/*.mod* module/.*.cmd \
		module/Module.symvers module/modules.order

.PHONY: all userspace modules check check-quick bench demo install clean
