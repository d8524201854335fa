#!/bin/bash
# t/run-tests.sh: the whole test suite of one build.  Runs the unit tests
# (each counts its own cases) and every t/*.sh integration test (one case
# each: exit 0 pass, 77 skip, else fail), then prints
#   N passed, N failed, N skipped
# Usage: BUILDDIR=... [LABEL=...] t/run-tests.sh [--unit-only | TEST.sh...]
set -u
SRCDIR=$(cd "$(dirname "$0")/.." && pwd)
: "${BUILDDIR:=$PWD}"
: "${LABEL:=}"
export SRCDIR BUILDDIR
pass=0 failn=0 skip=0
failed_names=()
logdir=${LOGDIR:-$BUILDDIR/test-logs}
mkdir -p "$logdir"

if [ "${1:-}" = --unit-only ]; then
	shift
	run_unit=1
elif [ $# -eq 0 ]; then
	set -- $(cd "$SRCDIR/t" && ls *.sh | grep -v -e '^functions.sh$' \
		-e '^run-tests.sh$' -e '^suite.sh$')
	run_unit=1
else
	run_unit=0
fi

if [ $run_unit = 1 ] && [ -z "${SKIP_UNIT:-}" ]; then
	for u in "$BUILDDIR"/t/unit/test-*; do
		[ -x "$u" ] || continue
		name=$(basename "$u")
		out=$("$u" 2>&1); rc=$?
		echo "$out" > "$logdir/$name.log"
		line=$(echo "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -1)
		p=$(echo "$line" | sed -E 's/^([0-9]+) passed.*/\1/')
		f=$(echo "$line" | sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/')
		if [ -z "$line" ]; then p=0; f=1; fi
		if [ $rc -ne 0 ] && [ "$f" = 0 ]; then f=1; fi
		pass=$((pass + p)); failn=$((failn + f))
		echo "${LABEL}unit/$name: $p passed, $f failed"
		[ "$f" = 0 ] || { failed_names+=("${LABEL}unit/$name"); echo "$out" | grep -E '^FAIL|not ok' | head -20; }
	done
fi

for t in "$@"; do
	name=${t%.sh}
	start=$(date +%s)
	( cd "$BUILDDIR" && timeout 900 bash "$SRCDIR/t/$t" ) >"$logdir/$name.log" 2>&1
	rc=$?
	secs=$(( $(date +%s) - start ))
	case $rc in
	0) pass=$((pass+1)); echo "PASS: ${LABEL}$name (${secs}s)";;
	77) skip=$((skip+1)); echo "SKIP: ${LABEL}$name: $(grep SKIP "$logdir/$name.log" | head -1)";;
	*) failn=$((failn+1)); failed_names+=("${LABEL}$name"); echo "FAIL: ${LABEL}$name (exit $rc, ${secs}s)"; tail -25 "$logdir/$name.log" | sed 's/^/    /';;
	esac
done
if [ ${#failed_names[@]} -gt 0 ]; then
	echo "failed: ${failed_names[*]}"
fi
echo "$pass passed, $failn failed, $skip skipped"
[ $failn -eq 0 ]
