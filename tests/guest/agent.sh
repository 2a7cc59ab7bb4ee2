#!/bin/sh
# Guest side of the serial protocol (host side: tests/harness/vm.py).
#   host -> guest:  "@@CMD <id> <base64 of a shell script>"
#   guest -> host:  "@@BEGIN <id>", the script's output, "@@END <id> <rc>"
# The line is raw (-icanon), so scripts are not limited to 4 KiB.
# AGENT_TTY: the serial port (ttyS0 in busybox guests, where it is also the
# console; ttyS1 in full Debian systems, whose console is ttyS0).
tty=/dev/${AGENT_TTY:-ttyS0}
stty -F "$tty" -echo -icanon min 1 time 0 -icrnl -opost 2>/dev/null
exec 0<"$tty" 1>"$tty" 2>&1
echo "@@GUEST-READY $(uname -r)@@"
while IFS= read -r line; do
	case "$line" in
	"@@CMD "*)
		set -- $line
		id=$2
		echo "$3" | base64 -d > /tmp/.cmd-$id.sh
		echo "@@BEGIN $id"
		# -e: a test script stops at its first failing command
		(cd /root && sh -e /tmp/.cmd-$id.sh) < /dev/null
		rc=$?
		echo "@@END $id $rc"
		;;
	esac
done
